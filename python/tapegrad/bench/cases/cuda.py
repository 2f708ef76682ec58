"""The GPU cases (--device cuda), beside PyTorch CUDA: elementwise add at 1e8, softmax and
layer_norm rows, matmul 4096^3 in float32 / TF32 / bfloat16 with tapegrad's own kernels and with
cuBLAS, attention forward + backward (B8 H16, T 1024 and 4096, D 64 and 128, bfloat16 and
float32), Adam over 100M parameters, and the masked-LM step. The limits (limits.py) are the
device copy and cuBLAS's rates, both through PyTorch.

Matmul and attention read two global switches, tapegrad's matmul backend and TF32: every case
here sets both in its setup, so no case inherits another's.
"""
import dataclasses

import numpy as np

import tapegrad as tg

from ..case import Case
from ..peers import as_tg, as_torch, has_torch, rng, torch
from .attention import attention
from .elementwise import binary
from .gemm import tolerance
from .masked_lm import masked_lm_step
from .rows import layer_norm_forward, softmax_rows
from .training import adam

_DEFAULT_BACKEND = []  # tapegrad's matmul backend when the suite started (TAPEGRAD_CUDA_MATMUL)


def _modes(backend=None, tf32=False):
    if not _DEFAULT_BACKEND:
        _DEFAULT_BACKEND.append(tg.cuda.matmul_backend())
    tg.cuda.set_matmul_backend(backend or _DEFAULT_BACKEND[0])
    tg.cuda.allow_tf32(tf32)
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def _in_default_modes(case):
    def setup():
        _modes()
        return case.setup()
    return dataclasses.replace(case, setup=setup)


def _matmul_tolerance(label, k):
    """float32 as gemm.py; TF32 rounds the inputs to 11 bits (products off by ~2^-10 each, a
    random walk over K terms); bfloat16 rounds the output to 8 bits (one ulp apart at most)."""
    if label == "tf32":
        return dict(rtol=1e-3, atol=8 * 2.0 ** -11 * k ** 0.5 + 8 * 2.0 ** -24 * k)
    if label == "bfloat16":
        return dict(rtol=2.0 ** -6, atol=8 * 2.0 ** -24 * k)
    return tolerance("float32", k)


def matmul(m, label, backend):
    dtype = "bfloat16" if label == "bfloat16" else "float32"

    def setup():
        _modes(backend, tf32=label == "tf32")
        a = rng().standard_normal((m, m), np.float32)
        x = as_tg(a, "cuda", dtype)
        peers = {"tapegrad": lambda: x @ x}
        if has_torch("cuda"):
            xo = as_torch(a, "cuda", dtype)
            peers["torch"] = lambda: xo @ xo
        return peers
    limit = {"float32": "flops_f32", "tf32": "flops_tf32", "bfloat16": "flops_bf16"}[label]
    return Case(f"matmul {m}^3 {label}, {backend}", "gemm", setup, work=2 * m ** 3, unit="FLOP", limit=limit,
                device="cuda", **_matmul_tolerance(label, m))


def cases(quick):
    n = 10_000_000 if quick else 100_000_000
    out = [binary("add", n, device="cuda")]
    for rows, cols in ((8192, 8192), (65536, 1024)):
        out += [softmax_rows(rows, cols, device="cuda"), layer_norm_forward(rows, cols, affine=False, device="cuda")]
    out += [attention(8, 16, t, d, dtype, device="cuda")
            for t in (1024, 4096) for d in (64, 128) for dtype in ("bfloat16", "float32")]
    out += [adam(10, n // 10, device="cuda"), masked_lm_step(quick, device="cuda")]
    out = [_in_default_modes(c) for c in out]
    backends = ["own"] + (["cublas"] if tg.cuda.cublas_built() else [])
    return out + [matmul(4096, label, backend) for label in ("float32", "tf32", "bfloat16") for backend in backends]
