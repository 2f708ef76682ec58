"""Elementwise ops on float32 vectors: add and mul from cache-resident to memory-sized (1e3..1e7:
the small end measures per-call overhead, the large end bandwidth), and the transcendental
activations at 1e6 (gelu, tanh, exp, sigmoid, silu, erf). The work is the bytes moved."""
import numpy as np

import tapegrad as tg

from ..case import Case, Peer, sci
from ..peers import as_tg, as_torch, fwd_bwd_step, has_torch, rng, torch


def binary(op, n, device="cpu"):
    def setup():
        r = rng()
        a, b = r.standard_normal(n, np.float32), r.standard_normal(n, np.float32)
        at, bt = as_tg(a, device), as_tg(b, device)
        peers = {"tapegrad": lambda: getattr(tg, op)(at, bt)}
        if device == "cpu":
            peers["numpy"] = lambda: getattr(np, {"add": "add", "mul": "multiply"}[op])(a, b)
        if has_torch(device):
            ao, bo = as_torch(a, device), as_torch(b, device)
            peers["torch"] = lambda: getattr(torch, op)(ao, bo)
        return peers
    # one IEEE operation per element: every library must give the same bits
    return Case(f"{op} {sci(n)} f32", "elementwise", setup, work=12 * n, unit="B", limit="bandwidth",
                rtol=0, atol=0, device=device)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (tapegrad, NumPy (None: NumPy has no erf, hence no gelu), PyTorch (lambdas: torch may be None))
_UNARY = {
    "gelu": (tg.gelu, None, lambda x: torch.nn.functional.gelu(x)),
    "tanh": (tg.tanh, np.tanh, lambda x: torch.tanh(x)),
    "exp": (tg.exp, np.exp, lambda x: torch.exp(x)),
    "sigmoid": (tg.sigmoid, _np_sigmoid, lambda x: torch.sigmoid(x)),
    "silu": (tg.silu, lambda x: x * _np_sigmoid(x), lambda x: torch.nn.functional.silu(x)),
    "erf": (tg.erf, None, lambda x: torch.erf(x)),
}
# PyTorch's float32 gelu forms 1 + erf(x / sqrt 2) and so loses up to ~1e-6 absolute for x in
# [-4, -3] (measured against float64: PyTorch 9.5e-7, tapegrad 2.4e-7). Checked against PyTorch's
# float32 result, tapegrad would be judged by PyTorch's error; against its float64 result, by
# its own, at the same tolerance as the other functions.
#
# A few ulps of float32 (vectorised polynomials are allowed that much); atol covers the values
# near 0 (gelu of very negative x), where a relative error means nothing.
_UNARY_TOL = dict(rtol=1e-5, atol=1e-6)


def unary(op, n):
    tg_fn, np_fn, torch_fn = _UNARY[op]

    def setup():
        x = rng().standard_normal(n, np.float32)
        xt = as_tg(x)
        peers = {"tapegrad": lambda: tg_fn(xt)}
        if np_fn is not None:
            peers["numpy"] = lambda: np_fn(x)
        if has_torch():
            xo = as_torch(x)
            # gelu: checked against PyTorch's float64 result (the note above)
            peers["torch"] = Peer(lambda: torch_fn(xo), (lambda _: torch_fn(xo.double())) if op == "gelu" else None)
        return peers
    return Case(f"{op} {sci(n)} f32", "elementwise", setup, work=8 * n, unit="B", limit="bandwidth", **_UNARY_TOL)


def gelu_forward_backward(n):
    def setup():
        r = rng()
        x, g = r.standard_normal(n, np.float32), r.standard_normal(n, np.float32)
        peers = {"tapegrad": fwd_bwd_step(tg.gelu, [as_tg(x, requires_grad=True)], as_tg(g))}
        if has_torch():
            in_float64 = fwd_bwd_step(torch.nn.functional.gelu, [as_torch(x, "cpu", "float64", requires_grad=True)],
                                      as_torch(g, "cpu", "float64"))
            peers["torch"] = Peer(fwd_bwd_step(torch.nn.functional.gelu, [as_torch(x, requires_grad=True)], as_torch(g)),
                                  lambda _: in_float64())
        return peers
    # forward: read x, write y; backward: read x and dy, write dx
    return Case(f"gelu fwd+bwd {sci(n)} f32", "elementwise", setup, work=20 * n, unit="B", limit="bandwidth",
                **_UNARY_TOL)


def cases(quick):
    sizes = (1_000, 10_000, 100_000, 1_000_000) if quick else (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    n = 100_000 if quick else 1_000_000
    return ([binary(op, s) for op in ("add", "mul") for s in sizes]
            + [unary("gelu", n), gelu_forward_backward(n)] + [unary(op, n) for op in _UNARY if op != "gelu"])
