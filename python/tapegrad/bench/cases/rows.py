"""Row kernels: layer_norm, softmax, log_softmax and cross_entropy over the last dim of a
(rows, cols) float32 matrix. Memory-bound: the work counted is the bytes a fused kernel must move
(each input read once, each output written once)."""
import numpy as np

import tapegrad as tg

from ..case import Case
from ..peers import as_tg, as_torch, fwd_bwd_step, has_torch, rng, torch

F = tg.nn.functional


# ---- NumPy references, by hand ----

def _np_layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    return xc * rstd * w + b, xc * rstd, rstd


def _np_layer_norm_fwd_bwd(x, w, b, g):
    """y = xhat w + b; dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = g w."""
    y, xhat, rstd = _np_layer_norm(x, w, b)
    dxhat = g * w
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return y, dx, (g * xhat).sum(0), g.sum(0)


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _np_cross_entropy_fwd_bwd(x, t):
    """mean over rows of logsumexp(x) - x[t]; the gradient (softmax(x) - onehot(t)) / rows."""
    n = x.shape[0]
    logp = _np_log_softmax(x)
    grad = np.exp(logp)
    grad[np.arange(n), t] -= 1
    return -logp[np.arange(n), t].mean(), grad / n


def _layer_norm_inputs(rows, cols, r):
    """x, and a weight near 1 (as trained ones are) and a bias."""
    return r.standard_normal((rows, cols), np.float32), r.random(cols, np.float32) + 0.5, r.standard_normal(cols, np.float32)


def layer_norm_forward(rows, cols, affine=True, device="cpu"):
    def setup():
        x, w, b = _layer_norm_inputs(rows, cols, rng())
        if not affine:
            w = b = None
        xt, wt, bt = (None if a is None else as_tg(a, device) for a in (x, w, b))
        peers = {"tapegrad": lambda: F.layer_norm(xt, cols, wt, bt)}
        if device == "cpu":
            peers["numpy"] = lambda: _np_layer_norm(x, 1 if w is None else w, 0 if b is None else b)[0]
        if has_torch(device):
            xo, wo, bo = (None if a is None else as_torch(a, device) for a in (x, w, b))
            peers["torch"] = lambda: torch.nn.functional.layer_norm(xo, (cols,), wo, bo)
        return peers
    return Case(f"layer_norm fwd ({rows},{cols})" + (" w+b" if affine else ""), "rows", setup,
                work=8 * rows * cols, unit="B", limit="bandwidth", rtol=1e-4, atol=1e-5, device=device)


def layer_norm_forward_backward(rows, cols):
    def setup():
        r = rng()
        x, w, b = _layer_norm_inputs(rows, cols, r)
        g = r.standard_normal((rows, cols), np.float32)
        peers = {"tapegrad": fwd_bwd_step(lambda *a: F.layer_norm(a[0], cols, a[1], a[2]),
                                      [as_tg(a, requires_grad=True) for a in (x, w, b)], as_tg(g)),
                 "numpy": lambda: _np_layer_norm_fwd_bwd(x, w, b, g)}
        if has_torch():
            peers["torch"] = fwd_bwd_step(lambda *a: torch.nn.functional.layer_norm(a[0], (cols,), a[1], a[2]),
                                      [as_torch(a, requires_grad=True) for a in (x, w, b)], as_torch(g))
        return peers
    # forward: read x, write y; backward: read x and dy, write dx (the per-row statistics are noise)
    return Case(f"layer_norm fwd+bwd ({rows},{cols}) w+b", "rows", setup, work=20 * rows * cols, unit="B",
                limit="bandwidth", rtol=1e-4, atol=1e-4)


def softmax_rows(rows, cols, log=False, device="cpu"):
    name = "log_softmax" if log else "softmax"

    def setup():
        x = rng().standard_normal((rows, cols), np.float32)
        xt = as_tg(x, device)
        peers = {"tapegrad": lambda: getattr(tg, name)(xt, -1)}
        if device == "cpu":
            reference = _np_log_softmax if log else _np_softmax
            peers["numpy"] = lambda: reference(x)
        if has_torch(device):
            xo = as_torch(x, device)
            peers["torch"] = lambda: getattr(torch, name)(xo, -1)
        return peers
    return Case(f"{name} rows ({rows},{cols})", "rows", setup, work=8 * rows * cols, unit="B", limit="bandwidth",
                rtol=1e-5, atol=1e-5 if log else 1e-8, device=device)


def cross_entropy_forward_backward(rows, classes):
    def setup():
        r = rng()
        x = r.standard_normal((rows, classes), np.float32)
        t = r.integers(0, classes, rows)
        tt = as_tg(t)
        peers = {"tapegrad": fwd_bwd_step(lambda a: F.cross_entropy(a, tt), [as_tg(x, requires_grad=True)]),
                 "numpy": lambda: _np_cross_entropy_fwd_bwd(x, t)}
        if has_torch():
            to = as_torch(t)
            peers["torch"] = fwd_bwd_step(lambda a: torch.nn.functional.cross_entropy(a, to), [as_torch(x, requires_grad=True)])
        return peers
    # forward reads the logits; backward reads them again and writes their gradient
    return Case(f"cross_entropy fwd+bwd ({rows},{classes})", "rows", setup, work=12 * rows * classes, unit="B",
                limit="bandwidth", rtol=1e-4, atol=1e-9)


def cases(quick):
    rows = 512 if quick else 4096
    return [layer_norm_forward(rows, 1024), layer_norm_forward_backward(rows, 1024),
            softmax_rows(rows, 1024), softmax_rows(rows, 1024, log=True),
            cross_entropy_forward_backward(rows, 1024), cross_entropy_forward_backward(307, 8192)]
