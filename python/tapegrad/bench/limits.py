"""This machine's limits, measured at the start of a run, against which each case's rate is a
fraction: arithmetic (FLOP/s) and memory traffic (bytes/s).

CPU: float32 FLOP/s is tapegrad's own fused multiply-add loop on every thread at the GEMM's
vector width (tg._C._peak_fma_flops); float64 is half of it (half the lanes per vector).
Bandwidth is a large NumPy copy, counted as bytes read + bytes written; the arrays are far
larger than any cache, so this is the memory's rate, not a cache's. NumPy copies on one thread:
a threaded kernel may pass 100% of it where one core cannot saturate the memory.

GPU: the device copy (PyTorch's clone of 1e8 float32, or tapegrad's where PyTorch has no CUDA)
and cuBLAS's matmul rates at 4096^3 through PyTorch (absent without it).
"""
import numpy as np

import tapegrad as tg

from .peers import sync_for, torch
from .timing import measure

# What each case's `limit` names, and how the table prints it.
LABELS = {"flops_f32": "float32 FLOP/s", "flops_f64": "float64 FLOP/s", "flops_tf32": "TF32 FLOP/s",
          "flops_bf16": "bfloat16 FLOP/s", "bandwidth": "memory bandwidth (B/s, read + write)"}


def _copy_rate(copy, nbytes, sync, quick):
    t = measure(copy, min_time=0.1 if quick else 0.5, repeat=3 if quick else 7, sync=sync)
    return 2 * nbytes / t.seconds


def cpu_limits(quick):
    out = {}
    peak = getattr(tg._C, "_peak_fma_flops", None)  # missing in builds older than the suite
    if peak is not None:
        # a peak: the best of three, so that a moment of other load on the machine does not lower it
        out["flops_f32"] = max(peak(seconds=0.02 if quick else 0.1) for _ in range(3))
        out["flops_f64"] = out["flops_f32"] / 2
    src = np.ones(1 << 25, np.float32)  # 128 MiB: several times any last-level cache
    dst = np.zeros_like(src)  # written once first, so the timing sees no page faults
    out["bandwidth"] = _copy_rate(lambda: np.copyto(dst, src), src.nbytes, sync_for("numpy", "cpu"), quick)
    return out


def _torch_matmul_rate(dtype, tf32, quick):
    m = 4096
    a = torch.randn(m, m, device="cuda", dtype=dtype)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        t = measure(lambda: a @ a, min_time=0.1 if quick else 0.3, repeat=3 if quick else 5,
                    sync=torch.cuda.synchronize)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * m ** 3 / t.seconds


def cuda_limits(quick):
    n = 10_000_000 if quick else 100_000_000
    use_torch = torch is not None and torch.cuda.is_available()
    x = torch.empty(n, device="cuda") if use_torch else tg.zeros(n, device="cuda")
    out = {"bandwidth": _copy_rate(x.clone, 4 * n, sync_for("torch" if use_torch else "tapegrad", "cuda"), quick)}
    del x
    if use_torch:
        out["flops_f32"] = _torch_matmul_rate(torch.float32, False, quick)
        out["flops_tf32"] = _torch_matmul_rate(torch.float32, True, quick)
        out["flops_bf16"] = _torch_matmul_rate(torch.bfloat16, False, quick)
        torch.cuda.empty_cache()
    return out


def measure_limits(device, quick):
    return cuda_limits(quick) if device == "cuda" else cpu_limits(quick)
