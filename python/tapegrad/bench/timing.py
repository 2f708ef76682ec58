"""The timer: seconds per call as the median of several runs, each run long enough to swamp
the clock's resolution and the loop's own cost.

On a GPU the host only queues work, so a run ends with the device's synchronize (`sync`): the
time then covers the kernels, not just their launch.
"""
import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import List


@dataclass
class Timing:
    seconds: float  # per call: the median over the runs
    number: int  # calls per run
    repeat: int  # runs
    runs: List[float] = field(default_factory=list)  # per call, one entry per run


def _no_sync():
    pass


def _run(fn, number, sync):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    sync()
    return time.perf_counter() - t0


def measure(fn, min_time=0.3, repeat=7, sync=_no_sync):
    """Times fn: `repeat` runs of `number` calls, number doubled until one run lasts at least
    min_time / repeat. A call that alone outlasts min_time gets 3 runs, not `repeat` (slow cases
    stay affordable; the median of 3 still drops one outlier). The garbage collector is off while
    timing, as in timeit: a collection landing in one peer's runs is noise, not its cost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        first = _run(fn, 1, sync)  # also the warm-up: allocator pools, lazy initialisation, caches
        if first >= min_time:
            repeat = min(repeat, 3)
        number = 1
        while True:
            t = _run(fn, number, sync)
            if t >= min_time / repeat or number >= 1 << 20:
                break
            number *= 2
        runs = [t / number] + [_run(fn, number, sync) / number for _ in range(repeat - 1)]
    finally:
        if was_enabled:
            gc.enable()
    return Timing(statistics.median(runs), number, repeat, runs)
