"""Reductions: the sum of a large float32 vector, and sum / mean / var / amax / argmax over the
last dim (short contiguous rows) and a middle dim (strided) of a 3-d tensor. Memory-bound: the
work is the bytes read plus the bytes written."""
import numpy as np

import tapegrad as tg

from ..case import Case, sci
from ..peers import as_tg, as_torch, has_torch, rng, torch


def sum_all(n):
    def setup():
        # uniform in [0, 1): no cancellation, so float32 sums of any order agree to ~1e-7
        x = rng().random(n, np.float32)
        xt = as_tg(x)
        peers = {"tapegrad": lambda: tg.sum(xt), "numpy": lambda: x.sum()}
        if has_torch():
            xo = as_torch(x)
            peers["torch"] = lambda: torch.sum(xo)
        return peers
    return Case(f"sum all {sci(n)} f32", "reduce", setup, work=4 * n, unit="B", limit="bandwidth", rtol=1e-5, atol=0)


# name: (tapegrad call, NumPy call, PyTorch call, output bytes per element, the data it is checked on)
_OPS = {
    "sum": (lambda x, d: tg.sum(x, d), lambda x, d: x.sum(d), lambda x, d: torch.sum(x, d), 4, "uniform"),
    "mean": (lambda x, d: tg.mean(x, d), lambda x, d: x.mean(d), lambda x, d: torch.mean(x, d), 4, "uniform"),
    "var": (lambda x, d: tg.var(x, d, correction=1), lambda x, d: x.var(d, ddof=1),
            lambda x, d: torch.var(x, d, correction=1), 4, "normal"),
    "amax": (lambda x, d: tg.amax(x, d), lambda x, d: x.max(d), lambda x, d: torch.amax(x, d), 4, "distinct"),
    "argmax": (lambda x, d: tg.argmax(x, d), lambda x, d: x.argmax(d), lambda x, d: torch.argmax(x, d), 8, "distinct"),
}


def _data(kind, shape):
    r = rng()
    if kind == "uniform":  # positive: sums in any order agree (no cancellation)
        return r.random(shape, np.float32)
    if kind == "normal":
        return r.standard_normal(shape, np.float32)
    # distinct values (exact in float32 below 2^24): no ties, so every argmax is unique
    return r.permutation(int(np.prod(shape))).astype(np.float32).reshape(shape)


def reduce_dim(op, shape, dim):
    tg_fn, np_fn, torch_fn, out_bytes, kind = _OPS[op]

    def setup():
        x = _data(kind, shape)
        xt = as_tg(x)
        peers = {"tapegrad": lambda: tg_fn(xt, dim), "numpy": lambda: np_fn(x, dim)}
        if has_torch():
            xo = as_torch(x)
            peers["torch"] = lambda: torch_fn(xo, dim)
        return peers
    n = int(np.prod(shape))
    dims = ",".join(map(str, shape))
    # float32 over up to 1024 elements in different orders: ~1e-6 apart; argmax must be exact
    return Case(f"{op} dim={dim} ({dims})", "reduce", setup, work=4 * n + out_bytes * n // shape[dim], unit="B",
                limit="bandwidth", rtol=0 if op == "argmax" else 1e-4, atol=0 if op in ("argmax", "amax") else 1e-6)


def cases(quick):
    shape = (32, 1024, 32) if quick else (256, 1024, 32)
    return [sum_all(1_000_000 if quick else 10_000_000)] + [
        reduce_dim(op, shape, dim) for dim in (-1, 1) for op in _OPS]
