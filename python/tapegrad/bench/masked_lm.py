"""The masked-LM training step, written once for tapegrad and PyTorch: their nn APIs agree, so
`lib` is either module. Token and position embeddings, Transformer encoder layers (post-norm,
GELU, dropout 0.1), a vocabulary-sized output layer applied at the masked positions only,
cross-entropy, Adam (PyTorch's fused one).

This file imports neither library: the peak-RSS child (peak_rss.py) loads it alone, so that a
PyTorch process holds no tapegrad and a tapegrad process no PyTorch.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shape:
    batch: int = 32
    tokens: int = 64
    vocab: int = 8192
    dim: int = 128
    heads: int = 8
    layers: int = 2

    def label(self):
        return f"B{self.batch}xT{self.tokens} V{self.vocab} E{self.dim} H{self.heads} L{self.layers}"


FULL = Shape()
QUICK = Shape(batch=8)
MASK_ID = 2


def masked_batch(shape, seed=0):
    """(input ids (B, T), masked positions in the flattened batch, their original ids): 15% of the
    tokens replaced by MASK_ID, BERT's rate."""
    r = np.random.default_rng(seed)
    ids = r.integers(3, shape.vocab, size=(shape.batch, shape.tokens))
    chosen = np.nonzero(r.random(ids.size) < 0.15)[0]
    inputs = ids.reshape(-1).copy()
    inputs[chosen] = MASK_ID
    return inputs.reshape(ids.shape), chosen, ids.reshape(-1)[chosen]


def build(lib, shape, batch, device="cpu", seed=0):
    """(model, step, eval_loss) for `lib` (tapegrad or torch): step() is one training step and
    returns its loss tensor; eval_loss() is the loss with dropout off, as a float."""
    nn, s = lib.nn, shape

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(s.vocab, s.dim)
            self.position = nn.Embedding(s.tokens, s.dim)
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(s.dim, s.heads, 4 * s.dim, 0.1, "gelu",
                                                                    batch_first=True) for _ in range(s.layers)])
            self.out = nn.Linear(s.dim, s.vocab)

        def forward(self, ids, positions):
            x = self.embedding(ids) + self.position(lib.arange(s.tokens, device=ids.device))
            for layer in self.layers:
                x = layer(x)
            return self.out(x.reshape(-1, s.dim)[positions])

    lib.manual_seed(seed)
    model = Model().to(device)
    fused = {"fused": True} if lib.__name__ == "torch" else {}  # PyTorch's fastest Adam
    opt = lib.optim.Adam(model.parameters(), lr=1e-3, **fused)
    ids, positions, targets = (lib.tensor(a, device=device) for a in batch)

    def loss():
        return nn.functional.cross_entropy(model(ids, positions), targets)

    def step():
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        return value

    def eval_loss():
        model.eval()
        try:
            with lib.no_grad():
                return loss().item()
        finally:
            model.train()
    return model, step, eval_loss
