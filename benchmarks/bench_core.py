"""Core overheads, side by side with PyTorch eager and NumPy in one run:

  1. per-op overhead: a + b on 1-element tensors
  2. a tiny graph's forward + backward: y = (x * 2 + 1).sum(); y.backward()
  3. example 4's training step: x (100, 10) @ w (10, 1), MSE, backward, SGD step

    python benchmarks/bench_core.py [--json out/bench_core.json]
"""
import argparse

import numpy as np

import tapegrad as tg
from harness import measure, report

try:
    import torch
    torch.set_num_threads(2)
except ImportError:  # the table then shows tapegrad and NumPy only
    torch = None


def per_op():
    a, b = tg.ones(1), tg.ones(1)
    na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
    times = {"tapegrad": measure(lambda: a + b), "numpy": measure(lambda: na + nb)}
    if torch:
        ta, tb = torch.ones(1), torch.ones(1)
        times["torch"] = measure(lambda: ta + tb)
    return times


def tiny_graph():
    x = tg.ones(1, requires_grad=True)

    def step_tg():
        y = (x * 2 + 1).sum()
        y.backward()

    times = {"tapegrad": measure(step_tg)}
    if torch:
        tx = torch.ones(1, requires_grad=True)

        def step_torch():
            y = (tx * 2 + 1).sum()
            y.backward()

        times["torch"] = measure(step_torch)
    return times


def training_step():
    rng = np.random.default_rng(0)
    x_np = rng.random((100, 10), dtype=np.float32)
    y_np = x_np @ rng.standard_normal((10, 1)).astype(np.float32)
    w_np = rng.random((10, 1), dtype=np.float32)

    x, y = tg.tensor(x_np), tg.tensor(y_np)
    w = tg.tensor(w_np, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.01)

    def step_tg():
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()

    # NumPy by hand: the same forward, the hand-derived gradient, the update.
    wn = w_np.copy()

    def step_np():
        r = x_np @ wn - y_np
        _ = (r * r).mean()
        wn[...] -= 0.01 * (x_np.T @ (2.0 / r.size * r))

    times = {"tapegrad": measure(step_tg), "numpy": measure(step_np)}
    if torch:
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
        tw = torch.tensor(w_np, requires_grad=True)
        topt = torch.optim.SGD([tw], lr=0.01)

        def step_torch():
            loss = ((tx @ tw - ty) ** 2).mean()
            loss.backward()
            topt.step()
            topt.zero_grad()

        times["torch"] = measure(step_torch)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = [("a + b, 1-element tensors", per_op()),
            ("(x*2+1).sum() forward + backward", tiny_graph()),
            ("example 4 step: (100,10)@(10,1), MSE, SGD", training_step())]
    report("tapegrad core overheads (median per call; tg/peer < 1 means tapegrad is faster)", rows,
           ["torch", "numpy"], args.json)
    return rows


if __name__ == "__main__":
    main()
