"""Training-step benchmarks, side by side with PyTorch eager in one run:

  1. the masked-LM training step: batch 32 x 64 tokens, vocabulary 8192, dim 128, 8 heads,
     2 Transformer encoder layers, logits at the masked positions, cross-entropy, Adam
     (PyTorch: the same model with torch.optim.Adam(fused=True))
  2. one Adam step over 10 million parameters (ten 1M tensors)

    python benchmarks/bench_train.py [--json out/bench_train.json]
"""
import argparse

import numpy as np

import tapegrad as tg
from harness import measure, report

try:
    import torch
    torch.set_num_threads(2)
except ImportError:
    torch = None

B, T, V, D, H, L = 32, 64, 8192, 128, 8, 2


def masked_batch(rng):
    ids = rng.integers(3, V, size=(B, T))
    targets = ids.reshape(-1).copy()
    chosen = np.nonzero(rng.random(B * T) < 0.15)[0]
    inputs = ids.reshape(-1).copy()
    inputs[chosen] = 2
    return inputs.reshape(B, T), chosen, targets[chosen]


def tg_step_fn(batch, device="cpu"):
    nn = tg.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, D)
            self.position = nn.Embedding(T, D)
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(D, H, 4 * D, 0.1, "gelu") for _ in range(L)])
            self.out = nn.Linear(D, V)

        def forward(self, ids, positions):
            x = self.embedding(ids) + self.position(tg.arange(T, device=ids.device))
            for layer in self.layers:
                x = layer(x)
            return self.out(x.reshape(-1, D)[positions])

    model = Model().to(device)
    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    ids, pos, tgt = (tg.tensor(a, device=device) for a in batch)

    def step():
        loss = tg.nn.functional.cross_entropy(model(ids, pos), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_step_fn(batch, device="cpu"):
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, D)
            self.position = nn.Embedding(T, D)
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(D, H, 4 * D, 0.1, "gelu", batch_first=True)
                                         for _ in range(L)])
            self.out = nn.Linear(D, V)

        def forward(self, ids, positions):
            x = self.embedding(ids) + self.position(torch.arange(T, device=ids.device))
            for layer in self.layers:
                x = layer(x)
            return self.out(x.reshape(-1, D)[positions])

    model = Model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    ids, pos, tgt = (torch.from_numpy(a).to(device) for a in batch)

    def step():
        loss = torch.nn.functional.cross_entropy(model(ids, pos), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def adam_fns(n_tensors=10, size=1_000_000):
    params = [tg.randn(size, requires_grad=True) for _ in range(n_tensors)]
    for p in params:
        p.grad = tg.randn(size)
    opt = tg.optim.Adam(params, lr=1e-3)
    fns = {"tapegrad": opt.step}
    if torch:
        tparams = [torch.randn(size, requires_grad=True) for _ in range(n_tensors)]
        for p in tparams:
            p.grad = torch.randn(size)
        topt = torch.optim.Adam(tparams, lr=1e-3, fused=True)
        fns["torch"] = topt.step
    return fns


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    batch = masked_batch(rng)
    tg.manual_seed(0)
    mlm = {"tapegrad": measure(tg_step_fn(batch), min_time=3.0, repeat=5)}
    if torch:
        torch.manual_seed(0)
        mlm["torch"] = measure(torch_step_fn(batch), min_time=3.0, repeat=5)
    adam = {k: measure(f, min_time=1.0, repeat=5) for k, f in adam_fns().items()}
    rows = [(f"masked-LM step ({B}x{T} tokens, V={V}, d={D})", mlm), ("Adam step, 10M parameters", adam)]
    tokens = {k: B * T / v for k, v in mlm.items()}
    report("training steps (median; tg/torch < 1 means tapegrad is faster)", rows, ["torch"], args.json,
           extra={"masked_lm_tokens_per_s": tokens})
    print("masked-LM tokens/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in tokens.items()))
    bytes_moved = 10_000_000 * 4 * 7  # Adam reads p, g, m, v and writes p, m, v
    print(f"Adam: {bytes_moved / adam['tapegrad'] / 1e9:.1f} GB/s of parameter traffic (tapegrad)")
    return rows


if __name__ == "__main__":
    main()
