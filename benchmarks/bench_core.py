"""Core overheads: per-op overhead (a + b on 1-element tensors), a tiny graph's forward + backward,
and example 4's training step, beside NumPy and PyTorch -- the suite's rows of that name:

    python benchmarks/bench_core.py [--quick] [--threads N] [--json PATH]
    (the same as: python -m tapegrad.bench --only '^(per-op|tiny graph|example 4)' ...)
"""
import sys

from tapegrad.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["--only", "^(per-op|tiny graph|example 4)", *sys.argv[1:]]))
