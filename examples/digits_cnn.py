"""A small convolutional network on real handwritten digits: the 1,797 8x8 grey images of
scikit-learn's `load_digits` (the UCI "Optical Recognition of Handwritten Digits" test set, 43
writers), split 80/20 with a fixed seed.

    Conv2d(1, 16, 3, padding=1) -> ReLU -> Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)
    -> Flatten -> Linear(512, 64) -> ReLU -> Dropout(0.25) -> Linear(64, 10)

trained with cross-entropy and Adam in mini-batches (a progress bar per epoch), the test accuracy
measured after every epoch and plotted. Every layer here is tapegrad's: the convolutions are
unfold + GEMM, the pooling a max over the unfolded windows (csrc/ops/conv.cpp).

    python examples/digits_cnn.py [--epochs 15] [--batch 64] [--lr 2e-3] [--out out/] [--quick]

Needs scikit-learn for the data (pip install scikit-learn); tqdm and matplotlib are optional.
"""
import argparse
import os
import time

import numpy as np

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from common import add_device_option, checked_device, progress, save_plot


def load_data(seed):
    """(train images, train labels, test images, test labels): images (N, 1, 8, 8) in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("digits_cnn needs scikit-learn for its data: pip install scikit-learn")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return images[train], labels[train], images[test], labels[test]


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.25),
                                        nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def accuracy(model, images, labels, device, batch=256):
    model.eval()
    correct = 0
    with tg.no_grad():
        for i in range(0, len(labels), batch):
            logits = model(tg.tensor(images[i:i + batch], device=device))
            correct += int((logits.argmax(-1).numpy() == labels[i:i + batch]).sum())
    model.train()
    return correct / len(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out", help="folder for the accuracy plot")
    ap.add_argument("--quick", action="store_true", help="6 epochs (the tests' run)")
    add_device_option(ap)
    args = ap.parse_args()
    device = checked_device(args.device)
    epochs = 6 if args.quick else args.epochs

    train_x, train_y, test_x, test_y = load_data(args.seed)
    print(f"digits: {len(train_y)} training and {len(test_y)} test images of 8x8, 10 classes")
    tg.manual_seed(args.seed)
    model = DigitsCNN().to(device)
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    optimizer = tg.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train_y))
        batches = range(0, len(order), args.batch)
        total = 0.0
        for i in progress(batches, total=len(batches), desc=f"epoch {epoch}/{epochs}"):
            idx = order[i:i + args.batch]
            loss = F.cross_entropy(model(tg.tensor(train_x[idx], device=device)), tg.tensor(train_y[idx], device=device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(accuracy(model, test_x, test_y, device))
        print(f"epoch {epoch}: train loss {total / len(order):.4f}, test accuracy {history[-1]:.4f}")
    print(f"trained in {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {history[-1]:.4f}")
    plot = save_plot(os.path.join(args.out, "digits_cnn.png"), {"test accuracy": history}, "Digits CNN on tapegrad",
                     "epoch", "accuracy")
    if plot:
        print(f"plot: {plot}")


if __name__ == "__main__":
    main()
