"""Document 000: a Dense unit fitted to y = 3x + 2 + noise by gradient descent, with the
document's "continual evolution": every 100 epochs the data drifts (update_data) and the model
keeps learning from where it is. Saves the loss curve as a PNG.

    python examples/linear_regression.py [--epochs 1000] [--out out]
"""
import argparse
import os

import numpy as np

import tapegrad as tg
from common import add_device_option, checked_device, progress, save_plot


def update_data(X, y, rng, num_updates=10, scale=0.1):
    """The document's drift: num_updates rounds of Gaussian noise added to inputs and targets.
    The document adds unit noise, which after a few rounds buries y = 3x + 2 under a random
    walk; `scale` keeps each round small so the curve shows drift and recovery."""
    m = X.shape[0]
    for _ in range(num_updates):
        y = y + scale * rng.standard_normal((m, 1))
        X = X + scale * rng.standard_normal((m, 1))
    return X, y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--out", default="out")
    add_device_option(ap)
    args = ap.parse_args(argv)
    device = checked_device(args.device)

    rng = np.random.default_rng(42)  # the document seeds NumPy and the framework with 42
    tg.manual_seed(42)
    m = 100
    X = rng.random((m, 1))
    y = 3 * X + 2 + rng.standard_normal((m, 1))

    model = tg.nn.Sequential([tg.nn.Dense(1, 1)]).to(device)
    loss_fn = tg.nn.MeanSquaredError()
    optimizer = tg.optim.SGD(model.parameters(), learning_rate=args.lr)

    def train_step(X, y):
        with tg.GradientTape() as tape:
            predictions = model(X)
            loss = loss_fn(y, predictions)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    history, drifts = [], []
    for epoch in progress(range(args.epochs), desc="epochs"):
        loss = train_step(tg.tensor(X, dtype=tg.float32, device=device), tg.tensor(y, dtype=tg.float32, device=device))
        history.append(loss.item())
        if epoch % 100 == 0:
            X, y = update_data(X, y, rng)
            drifts.append(epoch)
            print(f"Epoch {epoch}: Loss = {loss.numpy()}")

    w, b = model[0].weight.item(), model[0].bias.item()
    print(f"final loss {history[-1]:.4f}; learned y = {w:.3f} x + {b:.3f}")
    png = save_plot(os.path.join(args.out, "linear_regression_loss.png"), {"training loss": history},
                    "Training loss with the data drifting every 100 epochs", "epoch", "MSE", marks=drifts)
    if png:
        print(f"saved {png}")
    return history


if __name__ == "__main__":
    main()
