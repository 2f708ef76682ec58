"""What a run ran on, for its JSON record and its header: library versions, the source
commit, threads, and the machine."""
import os
import platform
import subprocess

import numpy as np

import tapegrad as tg

from .peers import torch


def _blas():
    """NumPy's BLAS ("scipy-openblas 0.3.31"), the peer of every GEMM case; None if not reported."""
    try:
        info = np.__config__.CONFIG["Build Dependencies"]["blas"]
        return f"{info['name']} {info.get('version', '')}".strip()
    except (AttributeError, KeyError, TypeError):
        return None


def versions():
    return {"tapegrad": tg.__version__, "numpy": np.__version__, "numpy_blas": _blas(),
            "torch": torch.__version__ if torch is not None else None, "python": platform.python_version(),
            "tapegrad_gemm_isa": tg._C._gemm_isa()}


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def source_commit():
    """(commit, dirty) of the source tree tapegrad was imported from, or (None, None) for an
    installed package. Only a tree whose python/tapegrad is this package counts: a site-packages
    inside some other repository must not lend that repository's commit."""
    package = os.path.dirname(os.path.abspath(tg.__file__))
    try:
        top = _git("rev-parse", "--show-toplevel", cwd=package)
        if os.path.realpath(os.path.join(top, "python", "tapegrad")) != os.path.realpath(package):
            return None, None
        return _git("rev-parse", "HEAD", cwd=top), bool(_git("status", "--porcelain", "--untracked-files=no", cwd=top))
    except (OSError, subprocess.SubprocessError):
        return None, None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def threads():
    """Each library's thread count. NumPy's BLAS takes its own from the environment when it
    loads (None here: OpenBLAS's default, every core)."""
    return {"tapegrad": tg.get_num_threads(), "torch": torch.get_num_threads() if torch is not None else None,
            "numpy_blas": os.environ.get("OPENBLAS_NUM_THREADS")}


def gpu():
    """The GPU and tapegrad's matmul setup on it (the name through PyTorch, when it has CUDA)."""
    name = torch.cuda.get_device_name() if torch is not None and torch.cuda.is_available() else None
    return {"name": name, "count": tg.cuda.device_count(), "matmul_backend": tg.cuda.matmul_backend(),
            "cublas_built": tg.cuda.cublas_built()}


def record(device):
    commit, dirty = source_commit()
    machine = {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform()}
    if device == "cuda":
        machine["gpu"] = gpu()
    return {"suite": "tapegrad.bench", "device": device, "versions": versions(), "commit": commit,
            "dirty": dirty, "threads": threads(), "machine": machine}
