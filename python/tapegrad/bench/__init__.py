"""tapegrad's benchmark suite: tapegrad side by side with NumPy and PyTorch (when installed), each
case checked against its peers before anything is timed.

    python -m tapegrad.bench                     # every CPU case: a table, exit status 1 on a mismatch
    python -m tapegrad.bench --quick             # small sizes, short timings (a smoke run)
    python -m tapegrad.bench --list              # the cases by group; runs nothing
    python -m tapegrad.bench --only 'gemm|softmax' --threads 1 --json out/bench.json
    python -m tapegrad.bench --device cuda       # the GPU cases (beside PyTorch CUDA)

Layout: case.py (what a case is), cases/ (the cases, one file per op family), timing.py (the
timer), limits.py (this machine's FLOP/s and bandwidth), check.py (comparing results), runner.py
(check, then time, one case at a time), report.py (the table and the JSON), peak_rss.py (a
framework's peak memory, measured in a process of its own). docs/performance.md explains the
method.
"""
from .case import Case, Peer

__all__ = ["Case", "Peer"]  # the types a new case is written with
