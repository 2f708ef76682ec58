"""Timing helpers shared by the benchmarks: best-of-repeats with timeit, a side-by-side table
of tapegrad against its peers as ratios, and a JSON record of the run."""
import json
import os
import platform
import statistics
import timeit


def measure(fn, min_time=0.2, repeat=7):
    """Seconds per call: the median of `repeat` runs, each long enough (>= min_time / repeat)."""
    fn()  # warm up (allocators, lazy init)
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t >= min_time / repeat or number >= 1 << 20:
            break
        number *= 2
    runs = [timeit.timeit(fn, number=number) / number for _ in range(repeat)]
    return statistics.median(runs)


def fmt_time(s):
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def report(title, rows, peers, path=None, extra=None):
    """rows: [(case, {"tapegrad": s, "torch": s, "numpy": s, ...})]. Prints times and the ratio
    tapegrad / peer (below 1 means tapegrad is faster)."""
    print(f"\n{title}")
    head = f"{'case':44s} {'tapegrad':>11s}" + "".join(f" {p:>11s} {'tg/' + p:>9s}" for p in peers)
    print(head)
    print("-" * len(head))
    for case, times in rows:
        line = f"{case:44s} {fmt_time(times['tapegrad']):>11s}"
        for p in peers:
            if times.get(p) is None:
                line += f" {'-':>11s} {'-':>9s}"
            else:
                line += f" {fmt_time(times[p]):>11s} {times['tapegrad'] / times[p]:>9.2f}"
        print(line)
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        record = {"title": title, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                  "rows": [{"case": c, **t} for c, t in rows]}
        record.update(extra or {})
        with open(path, "w") as f:
            json.dump(record, f, indent=2)
        print(f"(written to {path})")
