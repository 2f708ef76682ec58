"""Optimizer and framework overheads: one Adam step over many parameters, a single tiny op, a
tiny graph's forward + backward, and example 4's whole training step (the matmul_sgd document's
model: x (100, 10) @ w (10, 1), MSE, SGD). Small cases measure what each library spends per
call; only Adam moves enough data to have a rate."""
import numpy as np

import tapegrad as tg

from ..case import Case, Peer
from ..peers import as_tg, as_torch, has_torch, rng, torch

LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8


def _np_adam(params, grads):
    """Adam by hand, in place (the states m and v start at zero; t counts the steps)."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]
    b1, b2 = BETAS

    def step():
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, g, mi, vi in zip(params, grads, m, v):
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * g * g
            p -= (LR / c1) * mi / (np.sqrt(vi / c2) + EPS)
    return step


def adam(n_tensors, size, device="cpu"):
    def setup():
        r = rng()
        params = [r.standard_normal(size, np.float32) for _ in range(n_tensors)]
        grads = [r.standard_normal(size, np.float32) for _ in range(n_tensors)]
        tps = [as_tg(p, device, requires_grad=True) for p in params]
        for p, g in zip(tps, grads):
            p.grad = as_tg(g, device)
        opt = tg.optim.Adam(tps, lr=LR, betas=BETAS, eps=EPS)
        # one step from equal parameters and gradients must give equal parameters
        peers = {"tapegrad": Peer(opt.step, lambda _: tps)}
        if device == "cpu":
            nps = [p.copy() for p in params]
            peers["numpy"] = Peer(_np_adam(nps, grads), lambda _: nps)
        if has_torch(device):
            ops = [as_torch(p, device, requires_grad=True) for p in params]
            for p, g in zip(ops, grads):
                p.grad = as_torch(g, device)
            topt = torch.optim.Adam(ops, lr=LR, betas=BETAS, eps=EPS, fused=True)
            peers["torch"] = Peer(topt.step, lambda _: ops)
        return peers
    total = n_tensors * size
    # reads p, g, m, v and writes p, m, v: 7 float32 per parameter
    return Case(f"adam {total / 1e6:g}M params ({n_tensors}x{size / 1e6:g}M)", "training", setup, work=28 * total,
                unit="B", limit="bandwidth", rtol=1e-5, atol=1e-7, device=device)


def per_op():
    def setup():
        a, b = as_tg(np.ones(1, np.float32)), as_tg(np.ones(1, np.float32))
        na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
        peers = {"tapegrad": lambda: a + b, "numpy": lambda: na + nb}
        if has_torch():
            ta, tb = torch.ones(1), torch.ones(1)
            peers["torch"] = lambda: ta + tb
        return peers
    return Case("per-op a+b (1 element)", "overhead", setup, rtol=0, atol=0)


def tiny_graph():
    def setup():
        # the gradient accumulates over calls (as in a loop that never zeroes it); the check
        # reads it after the first call, when it is exactly 2
        peers = {}
        for name, x in (("tapegrad", tg.ones(1, requires_grad=True)),
                        ("torch", torch.ones(1, requires_grad=True) if has_torch() else None)):
            if x is None:
                continue

            def step(x=x):
                y = (x * 2 + 1).sum()
                y.backward()
                return y
            peers[name] = Peer(step, lambda y, x=x: (y, x.grad))
        return peers
    return Case("tiny graph (x*2+1).sum() fwd+bwd", "overhead", setup, rtol=0, atol=0)


def example4_step():
    def setup():
        r = rng()
        x = r.random((100, 10), dtype=np.float32)
        y = x @ r.standard_normal((10, 1)).astype(np.float32)
        w0 = r.random((10, 1), dtype=np.float32)

        x_t, y_t, w_t = as_tg(x), as_tg(y), as_tg(w0, requires_grad=True)
        opt = tg.optim.SGD([w_t], lr=0.01)

        def tg_step():
            loss = ((x_t @ w_t - y_t) ** 2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        # NumPy by hand: the same forward, the hand-derived gradient 2/n x^T (x w - y), the update
        w_np = w0.copy()

        def np_step():
            res = x @ w_np - y
            loss = (res * res).mean()
            w_np[...] -= 0.01 * (x.T @ (2.0 / res.size * res))
            return loss

        peers = {"tapegrad": Peer(tg_step, lambda loss: (loss, w_t)), "numpy": Peer(np_step, lambda loss: (loss, w_np))}
        if has_torch():
            x_o, y_o, w_o = as_torch(x), as_torch(y), as_torch(w0, requires_grad=True)
            topt = torch.optim.SGD([w_o], lr=0.01)

            def torch_step():
                loss = ((x_o @ w_o - y_o) ** 2).mean()
                loss.backward()
                topt.step()
                topt.zero_grad()
                return loss
            peers["torch"] = Peer(torch_step, lambda loss: (loss, w_o))
        return peers
    # the same initial weights: the same loss, and the same weights after one step
    return Case("example 4 step (100,10)@(10,1) MSE SGD", "training", setup, rtol=1e-5, atol=1e-6)


def cases(quick):
    n_tensors, size = (10, 100_000) if quick else (10, 1_000_000)
    return [per_op(), tiny_graph(), adam(n_tensors, size), example4_step()]
