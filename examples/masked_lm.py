"""Document 004: a masked language model, trained on real English text.

The document's model -- Embedding, then N blocks of multi-head self-attention with dropout, then
Dense(vocab) -- learns to fill in hidden words BERT-style: 15% of the tokens are chosen, of those
80% become [MASK], 10% a random word, 10% stay, and the loss is the cross-entropy at the chosen
positions only. `--arch bert` swaps the blocks for full Transformer encoder layers.

The text is the documentation of Python's keywords, statements and types that ships with every
CPython (`pydoc_data.topics`); whole topics are held out for evaluation. The run reports the
masked-token accuracy on the held-out text next to the accuracy of always guessing the most
frequent word, saves a loss curve and a checkpoint, and shows the model's fills for a few
held-out sentences.

Two additions to the document's listing, both standard: a learned position embedding (without
one, self-attention cannot tell word order) and a residual connection with LayerNorm around each
attention block (without it, a stack of attention layers does not train).

    python examples/masked_lm.py [--steps 1200] [--layers 2] [--dim 128] [--arch doc|bert] [--device cpu]
"""
import argparse
import collections
import json
import math
import os
import re
import sys
import time

import numpy as np

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from common import add_device_option, checked_device, progress, save_plot

PAD, UNK, MASK = 0, 1, 2
SPECIALS = ["[PAD]", "[UNK]", "[MASK]"]


# ---- data -------------------------------------------------------------------------------------
def load_corpus():
    """{topic: text} of pydoc_data.topics: about a megabyte of English prose and code."""
    from pydoc_data.topics import topics
    return topics


def tokenize(text):
    """Words, numbers and punctuation; a run of one punctuation mark ("-----") is one token."""
    return [m.group(1) or m.group(0) for m in re.finditer(r"[a-z]+|[0-9]+|([^\sa-z0-9])\1*", text.lower())]


def build_vocab(token_lists, size):
    counts = collections.Counter(t for toks in token_lists for t in toks)
    words = [w for w, _ in counts.most_common(size - len(SPECIALS))]
    return SPECIALS + words


def to_sequences(token_lists, index, seq_len):
    """Each topic's ids cut into rows of seq_len (the tail padded)."""
    rows = []
    for toks in token_lists:
        ids = [index.get(t, UNK) for t in toks]
        for start in range(0, len(ids), seq_len):
            chunk = ids[start:start + seq_len]
            if len(chunk) < seq_len // 4:
                continue
            rows.append(chunk + [PAD] * (seq_len - len(chunk)))
    return np.array(rows, dtype=np.int64)


def mask_tokens(batch, vocab_size, rng, rate=0.15):
    """BERT masking: returns (inputs, targets) with targets = -100 where nothing is predicted."""
    inputs = batch.copy()
    targets = np.full_like(batch, -100)
    chosen = (rng.random(batch.shape) < rate) & (batch != PAD)
    targets[chosen] = batch[chosen]
    roll = rng.random(batch.shape)
    inputs[chosen & (roll < 0.8)] = MASK
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = rng.integers(len(SPECIALS), vocab_size, size=int(swap.sum()))
    return inputs, targets


# ---- model ------------------------------------------------------------------------------------
class AttentionBlock(nn.Module):
    """The document's block: multi-head self-attention and dropout (+ residual and LayerNorm)."""

    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.attention = nn.MultiHeadAttention(dim, heads)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, key_padding_mask=None):
        return self.norm(x + self.dropout(self.attention(x, key_padding_mask=key_padding_mask)))


class EncoderBlock(nn.Module):
    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu")

    def forward(self, x, key_padding_mask=None):
        return self.layer(x, src_key_padding_mask=key_padding_mask)


class MaskedLMModel(nn.Module):
    def __init__(self, vocab_size, dim, layers, heads, seq_len, dropout=0.1, arch="doc"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.position = nn.Embedding(seq_len, dim)
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)
        nn.init.normal_(self.position.weight, 0.0, 0.02)
        block = AttentionBlock if arch == "doc" else EncoderBlock
        self.blocks = nn.ModuleList([block(dim, heads, dropout) for _ in range(layers)])
        self.final_dense = nn.Dense(dim, vocab_size)

    def encode(self, ids):
        T = ids.shape[1]
        x = self.embedding(ids) + self.position(tg.arange(T, device=ids.device))
        pad = ids == PAD
        for blk in self.blocks:
            x = blk(x, key_padding_mask=pad)
        return x

    def forward(self, ids, positions=None):
        """Logits (B, T, vocab), or (n, vocab) at the flat `positions` only: the output layer is
        most of the work, and only the masked positions need it."""
        h = self.encode(ids)
        if positions is not None:
            h = h.reshape(-1, h.shape[-1])[positions]
        return self.final_dense(h)


def masked_batch(rows, vocab_size, rng, device="cpu"):
    inputs, targets = mask_tokens(rows, vocab_size, rng)
    flat = targets.reshape(-1)
    positions = np.nonzero(flat != -100)[0]
    return (tg.tensor(inputs, device=device), tg.tensor(positions, device=device),
            tg.tensor(flat[positions], device=device))


def evaluate(model, rows, vocab_size, seed=1234, batch_size=64, device="cpu"):
    """Masked-token accuracy on rows, with a fixed masking so runs compare."""
    rng = np.random.default_rng(seed)
    model.eval()
    correct = total = 0
    with tg.no_grad():
        for i in range(0, len(rows), batch_size):
            ids, pos, tgt = masked_batch(rows[i:i + batch_size], vocab_size, rng, device)
            if tgt.numel() == 0:
                continue
            pred = model(ids, pos).argmax(-1)
            correct += int((pred == tgt).sum().item())
            total += tgt.numel()
    model.train()
    return correct / max(total, 1), total


def show_fills(model, rows, vocab, n=4, seed=7, device="cpu"):
    rng = np.random.default_rng(seed)
    model.eval()
    with tg.no_grad():
        for row in rows[rng.choice(len(rows), size=min(n, len(rows)), replace=False)]:
            length = int((row != PAD).sum())
            shown = row[:min(length, 24)].copy()
            k = max(1, len(shown) // 7)
            where = np.sort(rng.choice(np.arange(1, len(shown)), size=k, replace=False))
            ids = shown.copy()
            ids[where] = MASK
            logits = model(tg.tensor(ids[None], device=device))
            guess = logits[0].argmax(-1).cpu().numpy()
            text = " ".join(f"[{vocab[guess[j]]}|{vocab[shown[j]]}]" if j in where else vocab[shown[j]]
                            for j in range(len(shown)))
            print("  " + text)
    model.train()


# ---- main -------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="Masked-LM pre-training on pydoc_data.topics (document 004)")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--arch", choices=["doc", "bert"], default="doc")
    add_device_option(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out")
    ap.add_argument("--distributed", action="store_true",
                    help="data-parallel over MPI: mpiexec -n 2 python -m mpi4py examples/masked_lm.py --distributed "
                         "(each rank takes batch-size / ranks rows of every batch; rank 0 prints and saves)")
    args = ap.parse_args(argv)
    checked_device(args.device)
    rank, world = 0, 1
    if args.distributed:
        import tapegrad.distributed as dist
        dist.init()
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.batch_size % world:
            raise SystemExit(f"--batch-size {args.batch_size} must divide among {world} ranks")
        if rank != 0:  # one voice: rank 0 prints, draws the progress bar and saves
            sys.stdout = open(os.devnull, "w")

    tg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    topics = load_corpus()
    names = sorted(topics)
    held = set(names[::10])  # every tenth topic is held out
    train_toks = [tokenize(topics[k]) for k in names if k not in held]
    test_toks = [tokenize(topics[k]) for k in names if k in held]
    vocab = build_vocab(train_toks, args.vocab)
    index = {w: i for i, w in enumerate(vocab)}
    train_rows = to_sequences(train_toks, index, args.seq_len)
    test_rows = to_sequences(test_toks, index, args.seq_len)
    V = len(vocab)
    counts = np.bincount(train_rows[train_rows != PAD], minlength=V)
    top = int(counts.argmax())
    print(f"corpus: {len(names)} topics, {sum(map(len, train_toks)):,} training tokens, vocabulary {V}; "
          f"{len(train_rows)} training and {len(test_rows)} held-out sequences of {args.seq_len}")

    model = MaskedLMModel(V, args.dim, args.layers, args.heads, args.seq_len, args.dropout, args.arch).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.arch}, {args.layers} layers, dim {args.dim}, {args.heads} heads, {n_params:,} parameters")
    if args.distributed:  # rank 0's weights everywhere, gradients averaged over the ranks
        model = tg.nn.parallel.DistributedDataParallel(model)
    optimizer = tg.optim.Adam(model.parameters(), lr=args.lr)
    warmup = max(1, args.steps // 20)

    history, unread = [], []
    start = time.time()
    bar = progress(range(args.steps), desc="training") if rank == 0 else range(args.steps)
    order = rng.permutation(len(train_rows))
    cursor = 0
    for step in bar:
        if cursor + args.batch_size > len(order):
            order, cursor = rng.permutation(len(train_rows)), 0
        # every rank draws the same batch (the same seed) and trains on its share of the rows
        rows = train_rows[order[cursor:cursor + args.batch_size]][rank::world]
        cursor += args.batch_size
        ids, pos, tgt = masked_batch(rows, V, rng, args.device)
        # linear warm-up, then cosine decay
        frac = step / max(1, args.steps)
        scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in optimizer.param_groups:
            g["lr"] = args.lr * scale
        loss = F.cross_entropy(model(ids, pos), tgt)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(list(model.parameters()), 1.0)
        optimizer.step()
        # Reading a loss makes the host wait for the GPU, so they are read ten at a time: in
        # between, the host queues the next steps while the device works.
        unread.append(loss.detach())
        if step % 10 == 0 or step == args.steps - 1:
            history.extend(tg.stack(unread).tolist())
            unread = []
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{np.mean(history[-50:]):.3f}")
            elif step % 100 == 0:
                print(f"step {step}: loss {np.mean(history[-50:]):.3f}")
    elapsed = time.time() - start
    tokens = args.steps * args.batch_size * args.seq_len
    print(f"trained {args.steps} steps in {elapsed:.0f} s ({tokens / elapsed:,.0f} tokens/s)")

    if args.distributed:
        model = model.module
    accuracy, n_masked = evaluate(model, test_rows, V, device=args.device)
    test_targets = test_rows[test_rows != PAD]
    baseline = float((test_targets == top).mean())
    print(f"held-out masked-token accuracy: {accuracy:.3f} over {n_masked} masked tokens")
    print(f"unigram baseline (always '{vocab[top]}'):  {baseline:.3f}")
    print("held-out fills, [model's guess|truth]:")
    show_fills(model, test_rows, vocab, device=args.device)

    if rank != 0:
        return {"accuracy": accuracy, "baseline": baseline, "loss": history}
    os.makedirs(args.out, exist_ok=True)
    # The trailing 25-step mean at step i covers steps i-24..i: pad the start so it lines up.
    smooth = (np.concatenate([np.full(24, np.nan), np.convolve(history, np.ones(25) / 25, mode="valid")])
              if len(history) >= 25 else history)
    png = save_plot(os.path.join(args.out, "masked_lm_loss.png"), {"loss": history, "25-step mean": smooth},
                    "Masked-LM training loss", "step", "cross-entropy")
    ckpt = os.path.join(args.out, "masked_lm.safetensors")
    try:
        tg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, ckpt,
                metadata={"vocab": json.dumps(vocab), "args": json.dumps(vars(args))})
        print(f"saved {ckpt}" + (f" and {png}" if png else ""))
    except ImportError as e:
        print(f"(no checkpoint: {e})")
    return {"accuracy": accuracy, "baseline": baseline, "loss": history}


if __name__ == "__main__":
    main()
