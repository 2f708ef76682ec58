"""The GPU cases beside PyTorch CUDA (device copy and cuBLAS limits, elementwise and row kernels,
matmul, attention, Adam, the masked-LM step) -- the suite under --device cuda:

    python benchmarks/bench_cuda.py [--quick] [--only REGEX] [--json PATH]
    (the same as: python -m tapegrad.bench --device cuda ...)
"""
import sys

from tapegrad.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["--device", "cuda", *sys.argv[1:]]))
