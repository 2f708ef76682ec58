"""Small helpers shared by the examples: the --device option, a progress bar and plot saving
(tqdm and matplotlib are optional extras, pip install tapegrad[examples]; without them the
examples still run and print)."""
import os
import sys


def add_device_option(ap):
    ap.add_argument("--device", default="cpu", help="where to run: cpu, cuda or cuda:N")


def checked_device(device):
    """`device`, or a clear exit when it names a GPU this machine or build does not have."""
    import tapegrad as tg
    if device != "cpu" and not tg.cuda.is_available():
        raise SystemExit(f"--device {device}: no CUDA device here (tapegrad.cuda.is_available() is False)")
    return device


def progress(iterable, total=None, desc="", disable=False):
    """tqdm when it is installed and the output is a terminal or a log; else the iterable itself."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=sys.stdout, dynamic_ncols=True)


def save_plot(path, series, title, xlabel, ylabel, marks=None):
    """Line plot of {label: values} to a PNG; vertical lines at `marks`. Returns the path or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install tapegrad[examples])")
        return None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, values in series.items():
        ax.plot(values, label=label, linewidth=1.4)
    for m in marks or []:
        ax.axvline(m, color="0.8", linewidth=0.8, zorder=0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
