"""Document 001: one sigmoid neuron, z1 = x W1 + b1, output = 1 / (1 + e^-z1), MSE loss,
trained by gradient descent with step 0.1 -- and the document's hand-written backward
(delta = y_pred - y; dW1 = x^T delta; db1 = sum(delta)) set beside tapegrad's gradients.

What the comparison shows: the document's formula is not the gradient of its MSE loss (that
needs the sigmoid's slope and the 2/m of the mean); it is exactly the gradient of the summed
binary cross-entropy. tapegrad gives both, so both equalities are checked numerically.

The data: points in the unit square labelled 1 above the line x1 + 2 x2 = 1.2 (a rule the
neuron can learn), as the document leaves its x and y undefined.

    python examples/sigmoid_neuron.py [--epochs 2000] [--out out]
"""
import argparse
import os

import numpy as np

import tapegrad as tg
from common import add_device_option, checked_device, progress, save_plot


def document_backward(x, y, y_pred):
    """The document's backward, verbatim in NumPy."""
    delta = y_pred - y
    dW1 = np.dot(x.T, delta)
    db1 = np.sum(delta)
    return dW1, db1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The document's pseudo-code runs 100 epochs at step 0.1, which leaves the neuron well short
    # of fitting (worse than guessing the majority class); these defaults let it converge.
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--out", default="out")
    add_device_option(ap)
    args = ap.parse_args(argv)
    device = checked_device(args.device)

    rng = np.random.default_rng(1)
    x = rng.random((args.samples, 2))
    y = (x[:, :1] + 2 * x[:, 1:] > 1.2).astype(np.float64)
    X, Y = tg.tensor(x, device=device), tg.tensor(y, device=device)  # float64: the comparison is exact to rounding

    W1 = tg.tensor(rng.standard_normal((2, 1)), device=device, requires_grad=True)
    b1 = tg.zeros(1, 1, dtype=tg.float64, device=device, requires_grad=True)

    # ---- one forward, three gradients ----
    y_pred = tg.sigmoid(X @ W1 + b1)
    mse = ((Y - y_pred) ** 2).mean()
    bce_sum = tg.nn.functional.binary_cross_entropy(y_pred, Y, reduction="sum")
    g_mse = tg.grad(mse, [W1, b1], retain_graph=True)
    g_bce = tg.grad(bce_sum, [W1, b1])
    doc_dW1, doc_db1 = document_backward(x, y, y_pred.detach().numpy())
    p = y_pred.detach().numpy()
    exact_dW1 = x.T @ (2 / len(x) * (p - y) * p * (1 - p))  # chain rule through sigmoid and mean
    print("gradient of W1:")
    print(f"  document's formula      {doc_dW1.ravel()}")
    print(f"  tapegrad, summed BCE    {g_bce[0].numpy().ravel()}   max diff {np.abs(doc_dW1 - g_bce[0].numpy()).max():.2e}")
    print(f"  chain rule of the MSE   {exact_dW1.ravel()}")
    print(f"  tapegrad, MSE           {g_mse[0].numpy().ravel()}   max diff {np.abs(exact_dW1 - g_mse[0].numpy()).max():.2e}")
    print(f"gradient of b1: document {doc_db1:.6f}, tapegrad (BCE) {g_bce[1].item():.6f}")

    # ---- training, the document's loop with tapegrad's gradients ----
    losses = []
    for epoch in progress(range(args.epochs), desc="epochs"):
        y_pred = tg.sigmoid(X @ W1 + b1)
        loss_val = ((Y - y_pred) ** 2).mean()
        loss_val.backward()
        with tg.no_grad():
            W1 -= args.lr * W1.grad
            b1 -= args.lr * b1.grad
        W1.grad = None
        b1.grad = None
        losses.append(loss_val.item())
        if epoch % max(1, args.epochs // 10) == 0:
            print(f"Epoch {epoch}: Loss = {loss_val.item():.6f}")
    with tg.no_grad():
        accuracy = ((tg.sigmoid(X @ W1 + b1) > 0.5).double() == Y).double().mean().item()
    print(f"final loss {losses[-1]:.4f}, accuracy {accuracy:.3f} (majority class {max(y.mean(), 1 - y.mean()):.3f})")
    png = save_plot(os.path.join(args.out, "sigmoid_neuron_loss.png"), {"MSE": losses}, "Sigmoid neuron", "epoch", "loss")
    if png:
        print(f"saved {png}")
    # the graph one backward walks: MSE <- mean <- pow <- sub <- sigmoid <- add <- matmul, W1 and b1 at the leaves
    os.makedirs(args.out, exist_ok=True)
    graph = tg.viz.draw(((Y - tg.sigmoid(X @ W1 + b1)) ** 2).mean(), os.path.join(args.out, "sigmoid_neuron_graph.svg"),
                        params={"W1": W1, "b1": b1})
    print(f"saved {graph}")
    return losses, accuracy


if __name__ == "__main__":
    main()
