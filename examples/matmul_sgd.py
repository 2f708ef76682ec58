"""Document 003: x (100, 10) @ w, mean squared error, SGD with learning rate 0.01 for 1000
steps, gradients from a GradientTape.

The document's listing has two slips that no framework would run: w is created as (1, 10),
which cannot multiply x (100, 10), and the targets are pure noise. Here w is (10, 1) and the
targets follow a real linear rule, y = x w_true + noise, so the loop has something to learn.

    python examples/matmul_sgd.py [--steps 1000] [--out out]
"""
import argparse
import os

import numpy as np

import tapegrad as tg
from common import add_device_option, checked_device, progress, save_plot


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--out", default="out")
    add_device_option(ap)
    args = ap.parse_args(argv)
    device = checked_device(args.device)

    rng = np.random.default_rng(42)
    tg.manual_seed(42)
    x_np = rng.random((100, 10))
    x = tg.tensor(x_np, dtype=tg.float32, device=device)  # inputs
    w_true = rng.normal(size=(10, 1))
    y = tg.tensor(x_np.astype(np.float32) @ w_true + 0.05 * rng.standard_normal((100, 1)), dtype=tg.float32, device=device)
    w = tg.tensor(rng.random((10, 1)), dtype=tg.float32, device=device, requires_grad=True)  # initial weights

    loss_fn = tg.nn.MeanSquaredError()
    optimizer = tg.optim.SGD([w], learning_rate=args.lr)

    history = []
    for step in progress(range(args.steps), desc="SGD"):
        with tg.GradientTape() as tape:
            y_pred = tg.matmul(x, w)
            loss = loss_fn(y, y_pred)
        gradients = tape.gradient(loss, [w])
        optimizer.apply_gradients(zip(gradients, [w]))
        history.append(loss.item())
        if step % 100 == 0 or step == args.steps - 1:
            print(f"Epoch {step + 1}, Loss: {loss.numpy()}")

    print(f"Final weights: {w.detach().numpy().ravel()}")
    print(f"True weights:  {w_true.ravel()}")
    png = save_plot(os.path.join(args.out, "matmul_sgd_loss.png"), {"MSE": history}, "SGD on y = x w", "step", "loss")
    if png:
        print(f"saved {png}")
    os.makedirs(args.out, exist_ok=True)
    graph = tg.viz.draw(loss_fn(y, tg.matmul(x, w)), os.path.join(args.out, "matmul_sgd_graph.svg"), params={"w": w})
    print(f"saved {graph}")
    return history


if __name__ == "__main__":
    main()
