"""Training steps: the masked-LM step (tokens/s and each framework's peak RSS) and Adam over 10M
parameters, beside PyTorch eager -- the suite's rows of that name:

    python benchmarks/bench_train.py [--quick] [--threads N] [--json PATH]
    (the same as: python -m tapegrad.bench --only '^(masked-LM|adam)' ...)
"""
import sys

from tapegrad.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["--only", "^(masked-LM|adam)", *sys.argv[1:]]))
