"""Document 002: sentiment classification with Embedding + LSTM + Dense(sigmoid), then the
document's continual learning: online learning on a new domain, and transfer.

The document's pipeline, step for step on tapegrad: Tokenizer (fitted on the training texts,
with an OOV token), texts_to_sequences, pad_sequences, train_test_split(test_size=0.2,
random_state=42), Embedding -> LSTM -> Dense(1, sigmoid), binary cross-entropy, Adam,
mini-batches, evaluation, a prediction for "This is a negative sentence", and saving the model
(here a safetensors checkpoint with the tokenizer's word_index in its metadata, loaded back to
show the same prediction).

The data are real review sentences: the UCI "Sentiment Labelled Sentences" (Kotzias et al.,
KDD 2015), 1,000 Amazon and 1,000 Yelp sentences, one `sentence<TAB>0|1` per line. Each file is
split 80/20 on its own (seed 42), so every domain keeps its own held-out sentences.

The continual-learning part (sections 3.3.1 and 3.3.2 of the document):
  * a fresh model learns the first domain (Amazon) and is tested on both domains;
  * it then keeps learning *online* from the second domain's (Yelp) training sentences, a small
    batch at a time, each seen once -- and both test sets are measured along the way, so what it
    gains on Yelp and what it forgets of Amazon are both visible;
  * transfer: a new model starts from the Amazon-trained embedding and trains on Yelp, next to
    a model trained from scratch for the same number of steps (same seed, same batches).

Two additions to the document's listing: Dropout on the embeddings and on the final state (the
document's LSTM(dropout=0.2)), and length bucketing -- batches group sentences of similar length
and leading columns that are padding in every row are skipped, which makes the LSTM 3-4x faster
here (the sentences average 11 words, maxlen is 40).

    python examples/sentiment_lstm.py [--epochs 6] [--maxlen 40] [--data PATH ...] [--quick]
"""
import argparse
import glob
import json
import os
import time

import numpy as np

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from common import add_device_option, checked_device, progress

# Where the models and batches live (--device): set once by main().
DEVICE = "cpu"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "sentiment")
OOV = "<OOV>"
NEW_SENTENCES = ["This is a negative sentence",
                 "The food was great and the service was excellent, I loved it"]


# ---- data -------------------------------------------------------------------------------------
def read_labelled(path):
    """(sentences, labels) from a `sentence<TAB>label` file; lines that do not parse are skipped."""
    sentences, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            text, tab, label = line.rstrip("\r\n").rpartition("\t")
            if not tab or label.strip() not in ("0", "1") or not text.strip():
                continue
            sentences.append(text.strip())
            labels.append(int(label))
    return sentences, np.array(labels, dtype=np.int64)


def load_domains(paths):
    """{domain name: (sentences, labels)} for every file (or *.txt in every folder) that parses."""
    files = []
    for p in paths:
        files += sorted(glob.glob(os.path.join(p, "*.txt"))) if os.path.isdir(p) else [p]
    domains = {}
    for path in files:
        if not os.path.isfile(path):
            print(f"  {path}: not found, skipped")
            continue
        sentences, labels = read_labelled(path)
        if not sentences:
            print(f"  {os.path.basename(path)}: no sentence<TAB>label lines, skipped")
            continue
        name = os.path.splitext(os.path.basename(path))[0].split("_")[0] or os.path.basename(path)
        while name in domains:
            name += "'"
        domains[name] = (sentences, labels)
    return domains


def encode(tokenizer, texts, maxlen):
    """The document's preprocessing: word indices, pre-padded / pre-truncated to maxlen."""
    return tg.data.pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=maxlen)


def trim(x):
    """Drop the leading columns that are padding (0) in every row; keep at least one column."""
    used = np.flatnonzero((x != 0).any(axis=0))
    return x[:, used[0]:] if len(used) else x[:, -1:]


def bucketed_batches(x, y, batch_size, rng, pool=16):
    """Mini-batches in random order, each of sentences of similar length (sorted within a random
    pool of `pool` batches), trimmed of all-padding columns: (ids, labels) tensors."""
    order = rng.permutation(len(x))
    lengths = (x != 0).sum(axis=1)
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start:start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    for k in rng.permutation(len(batches)):
        rows = batches[k]
        yield tg.tensor(trim(x[rows]), device=DEVICE), tg.tensor(y[rows, None].astype(np.float32), device=DEVICE)


# ---- model ------------------------------------------------------------------------------------
class SentimentLSTM(nn.Module):
    """Embedding -> LSTM -> Dense(1, sigmoid): the probability that a sentence is positive."""

    def __init__(self, vocab_size, embed_dim, hidden, dropout=0.2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        with tg.no_grad():  # Keras' embedding initialiser, uniform(-0.05, 0.05); padding stays 0
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            self.embedding.weight[0] = 0.0
        self.lstm = nn.LSTM(embed_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Dense(hidden, 1, activation="sigmoid")

    def forward(self, ids):
        _, (h, _) = self.lstm(self.dropout(self.embedding(ids)))
        return self.dense(self.dropout(h[-1]))  # h[-1]: the last layer's final state, (B, hidden)


def train(model, optimizer, batch_lists, desc, clip=1.0, on_step=None, quiet=False):
    """One optimiser step per batch of the iterables in `batch_lists` (e.g. one per epoch), with
    the gradient norm clipped at `clip` (the usual guard for an LSTM); returns every step's loss."""
    model.train()
    history = []
    bar = progress((b for epoch in batch_lists for b in epoch), desc=desc, disable=quiet)
    for ids, labels in bar:
        loss = F.binary_cross_entropy(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(list(model.parameters()), clip)
        optimizer.step()
        history.append(loss.item())
        if hasattr(bar, "set_postfix") and len(history) % 5 == 0:
            bar.set_postfix(loss=f"{np.mean(history[-20:]):.3f}")
        if on_step:
            on_step(len(history))
    return history


def predict(model, x, batch_size=256):
    """Probabilities for the padded rows x, in order (batches of similar length, trimmed)."""
    model.eval()
    order = np.argsort((x != 0).sum(axis=1), kind="stable")
    out = np.empty(len(x), dtype=np.float64)
    with tg.no_grad():
        for i in range(0, len(x), batch_size):
            rows = order[i:i + batch_size]
            out[rows] = model(tg.tensor(trim(x[rows]), device=DEVICE)).numpy()[:, 0]
    model.train()
    return out


def evaluate(model, x, y):
    """(binary cross-entropy, accuracy) on padded rows x with labels y."""
    p = np.clip(predict(model, x), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(((p > 0.5) == y).mean())


def majority(y_train, y_test):
    """Accuracy of always answering the training set's most frequent label."""
    label = int(np.mean(y_train) >= 0.5)
    return float((y_test == label).mean())


def show_predictions(model, tokenizer, maxlen, prefix=""):
    probs = predict(model, encode(tokenizer, NEW_SENTENCES, maxlen))
    for sentence, p in zip(NEW_SENTENCES, probs):
        print(f"{prefix}{sentence!r}: Prediction: {'Positive' if p > 0.5 else 'Negative'} (p = {p:.3f})")
    return probs


# ---- the parts of the run ---------------------------------------------------------------------
def document_pipeline(args, split, rng):
    """Sections 5.2/5.3 of the document: fit, evaluate, predict, save, load."""
    texts_train, texts_test, y_train, y_test = split
    tokenizer = tg.data.Tokenizer(oov_token=OOV)
    tokenizer.fit_on_texts(texts_train)
    x_train, x_test = encode(tokenizer, texts_train, args.maxlen), encode(tokenizer, texts_test, args.maxlen)
    vocab = len(tokenizer.word_index) + 1
    print(f"tokenizer: {vocab - 1} words (index 1 is {OOV!r}); padded to {x_train.shape[1]} tokens; "
          f"{len(x_train)} training and {len(x_test)} test sentences")

    tg.manual_seed(args.seed)
    model = SentimentLSTM(vocab, args.embed_dim, args.hidden).to(DEVICE)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Embedding({vocab}, {args.embed_dim}) -> LSTM({args.hidden}) -> Dense(1, sigmoid), "
          f"{n_params:,} parameters; Adam lr {args.lr}, batch {args.batch_size}")
    optimizer = tg.optim.Adam(model.parameters(), lr=args.lr)
    history, epoch_ends = [], []
    for epoch in range(args.epochs):  # model.fit(..., validation_data=(x_test, y_test))
        history += train(model, optimizer, [bucketed_batches(x_train, y_train, args.batch_size, rng)],
                         desc=f"epoch {epoch + 1}/{args.epochs}", clip=args.clip, quiet=args.quiet)
        epoch_ends.append(len(history))
        val_loss, val_acc = evaluate(model, x_test, y_test)
        print(f"Epoch {epoch + 1}/{args.epochs}: loss {np.mean(history[-len(x_train) // args.batch_size:]):.4f}"
              f" - val_loss {val_loss:.4f} - val_accuracy {val_acc:.4f}")

    loss, accuracy = evaluate(model, x_test, y_test)
    baseline = majority(y_train, y_test)
    print(f"Test Loss: {loss:.4f}, Test Accuracy: {accuracy:.4f}")
    print(f"majority-class baseline: {baseline:.4f}")
    probs = show_predictions(model, tokenizer, args.maxlen)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "sentiment_lstm.safetensors")
    config = {"vocab_size": vocab, "embed_dim": args.embed_dim, "hidden": args.hidden,
              "maxlen": args.maxlen, "oov_token": OOV}
    tg.save(model.state_dict(), path,
            metadata={"word_index": json.dumps(tokenizer.word_index), "config": json.dumps(config)})
    print(f"saved {path} ({os.path.getsize(path) / 1024:.0f} KiB)")

    # ---- load it back, as a deployed service would: weights, tokenizer and sizes from the file
    meta = tg.io.load_metadata(path)
    cfg = json.loads(meta["config"])
    restored_tok = tg.data.Tokenizer(oov_token=cfg["oov_token"])
    restored_tok.word_index = json.loads(meta["word_index"])
    restored_tok.index_word = {i: w for w, i in restored_tok.word_index.items()}
    restored = SentimentLSTM(cfg["vocab_size"], cfg["embed_dim"], cfg["hidden"]).to(DEVICE)
    restored.load_state_dict(tg.load(path))
    again = show_predictions(restored, restored_tok, cfg["maxlen"], prefix="loaded model: ")
    print(f"loaded model: same predictions (max |diff| {np.abs(again - probs).max():.1e})")
    return {"accuracy": accuracy, "baseline": baseline, "loss": loss, "history": history,
            "epoch_ends": epoch_ends, "model": model, "tokenizer": tokenizer}


def continual(args, domains, splits, rng):
    """Online learning on a new domain (forgetting made visible) and transfer of the embedding."""
    (name_a, name_b) = list(domains)[:2]
    (ta_tr, ta_te, ya_tr, ya_te), (tb_tr, tb_te, yb_tr, yb_te) = splits[name_a], splits[name_b]
    # One vocabulary for both domains, built from training sentences only, so that the numbers
    # below compare what the weights learn rather than which words the tokenizer knows.
    tokenizer = tg.data.Tokenizer(oov_token=OOV)
    tokenizer.fit_on_texts(ta_tr + tb_tr)
    vocab = len(tokenizer.word_index) + 1
    xa_tr, xa_te = encode(tokenizer, ta_tr, args.maxlen), encode(tokenizer, ta_te, args.maxlen)
    xb_tr, xb_te = encode(tokenizer, tb_tr, args.maxlen), encode(tokenizer, tb_te, args.maxlen)

    def both(model):
        return evaluate(model, xa_te, ya_te)[1], evaluate(model, xb_te, yb_te)[1]

    rows = {"majority baseline": (majority(ya_tr, ya_te), majority(yb_tr, yb_te))}
    print(f"\n== continual learning: {name_a} first, then {name_b} ==")

    # 1. learn domain A
    tg.manual_seed(args.seed + 1)
    model = SentimentLSTM(vocab, args.embed_dim, args.hidden).to(DEVICE)
    opt = tg.optim.Adam(model.parameters(), lr=args.lr)
    epochs_a = [bucketed_batches(xa_tr, ya_tr, args.batch_size, rng) for _ in range(args.epochs)]
    train(model, opt, epochs_a, desc=f"{name_a}", clip=args.clip, quiet=args.quiet)
    rows[f"trained on {name_a}"] = both(model)
    embedding_a = model.embedding.weight.detach().numpy().copy()

    # 2. online: domain B arrives a few sentences at a time, each batch seen once, in stream order
    stream = tg.data.batches(xb_tr, yb_tr.astype(np.float32)[:, None], batch_size=args.online_batch, seed=args.seed)
    stream = [(tg.tensor(trim(xb.numpy()), device=DEVICE), yb.to(DEVICE)) for xb, yb in stream]
    curve_x, curve_a, curve_b = [0], [rows[f"trained on {name_a}"][0]], [rows[f"trained on {name_a}"][1]]
    every = max(1, len(stream) // args.curve_points)

    def measure(step):
        if step % every == 0 or step == len(stream):
            acc_a, acc_b = both(model)
            model.train()
            curve_x.append(min(step * args.online_batch, len(xb_tr)))
            curve_a.append(acc_a)
            curve_b.append(acc_b)

    train(model, opt, [stream], desc=f"online on {name_b}", on_step=measure, clip=args.clip, quiet=args.quiet)
    rows[f"+ online on {name_b} ({len(stream)} batches of {args.online_batch})"] = both(model)

    # 3. transfer: the domain-A embedding as the starting point, against from scratch
    steps = args.transfer_steps
    results = {}
    for label, init in (("from scratch", None), (f"{name_a} embedding", embedding_a)):
        tg.manual_seed(args.seed + 2)  # same initial LSTM and Dense, same batches for both
        m = SentimentLSTM(vocab, args.embed_dim, args.hidden).to(DEVICE)
        if init is not None:
            with tg.no_grad():
                m.embedding.weight.copy_(tg.tensor(init))
        o = tg.optim.Adam(m.parameters(), lr=args.lr)
        brng = np.random.default_rng(args.seed + 3)
        epochs: list[list] = []
        while sum(len(e) for e in epochs) < steps:
            epochs.append(list(bucketed_batches(xb_tr, yb_tr, args.batch_size, brng)))
        batches = [b for e in epochs for b in e][:steps]
        curve = [evaluate(m, xb_te, yb_te)[0]]
        marks = [0]

        def track(step, m=m, curve=curve, marks=marks):
            if step % max(1, steps // args.curve_points) == 0 or step == steps:
                curve.append(evaluate(m, xb_te, yb_te)[0])
                marks.append(step)
                m.train()

        losses = train(m, o, [batches], desc=f"{name_b}, {label}", on_step=track, clip=args.clip, quiet=args.quiet)
        rows[f"{name_b} for {steps} steps, {label}"] = both(m)
        results[label] = {"loss": losses, "steps": marks, "test_loss": curve, "acc": rows[f"{name_b} for {steps} steps, {label}"][1]}

    print(f"\n{'':52s} {name_a + ' test':>12s} {name_b + ' test':>12s}")
    for label, (acc_a, acc_b) in rows.items():
        print(f"{label:52s} {acc_a:12.3f} {acc_b:12.3f}")
    before, after = rows[f"trained on {name_a}"], rows[next(k for k in rows if k.startswith("+ online"))]
    low = int(np.argmin(curve_a))
    print(f"online learning: {name_b} test {before[1]:.3f} -> {after[1]:.3f}; {name_a} test {before[0]:.3f} -> "
          f"{after[0]:.3f}, lowest {curve_a[low]:.3f} after {curve_x[low]} {name_b} sentences "
          f"({'forgetting' if curve_a[low] < before[0] else 'no forgetting'} along the way"
          f"{', recovered by the end' if curve_a[low] < before[0] <= after[0] else ''})")
    scratch, transfer = results["from scratch"]["acc"], results[f"{name_a} embedding"]["acc"]
    print(f"transfer: after {steps} steps on {name_b}, the {name_a} embedding gives {transfer:.3f} "
          f"against {scratch:.3f} from scratch ({transfer - scratch:+.3f})")
    return {"rows": rows, "names": (name_a, name_b), "online": (curve_x, curve_a, curve_b),
            "transfer": results, "steps": steps}


def save_figure(path, main_run, cont):
    """Training loss, the online-learning accuracies, and transfer vs scratch, side by side."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install tapegrad[examples])")
        return None
    panels = 3 if cont else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), dpi=110, squeeze=False)
    ax = axes[0][0]
    h = np.asarray(main_run["history"])
    ax.plot(h, color="0.75", linewidth=0.8, label="batch loss")
    k = max(1, min(15, len(h) // 5))
    ax.plot(np.arange(k - 1, len(h)), np.convolve(h, np.ones(k) / k, mode="valid"), label=f"{k}-step mean")
    for e in main_run["epoch_ends"][:-1]:
        ax.axvline(e, color="0.88", linewidth=0.8, zorder=0)
    ax.set_title(f"Training loss (test accuracy {main_run['accuracy']:.3f},\n"
                 f"majority baseline {main_run['baseline']:.3f})")
    ax.set_xlabel("step (grey lines: epochs)")
    ax.set_ylabel("binary cross-entropy")
    ax.legend()
    if cont:
        name_a, name_b = cont["names"]
        xs, acc_a, acc_b = cont["online"]
        base_a, base_b = cont["rows"]["majority baseline"]
        ax = axes[0][1]
        ax.plot(xs, acc_a, marker="o", markersize=3, label=f"{name_a} test (old domain)")
        ax.plot(xs, acc_b, marker="o", markersize=3, label=f"{name_b} test (new domain)")
        ax.axhline(max(base_a, base_b), color="0.6", linestyle=":", label="majority baseline")
        ax.set_title(f"Online learning: the {name_a} model\nreads {name_b} sentences once each")
        ax.set_xlabel(f"{name_b} training sentences seen")
        ax.set_ylabel("accuracy")
        ax.legend()
        ax = axes[0][2]
        for label, r in cont["transfer"].items():
            ax.plot(r["steps"], r["test_loss"], marker="o", markersize=3,
                    label=f"{label} (final accuracy {r['acc']:.3f})")
        ax.set_title(f"Transfer: {name_b} test loss,\n{name_a} embedding vs from scratch")
        ax.set_xlabel(f"training steps on {name_b}")
        ax.set_ylabel("binary cross-entropy")
        ax.legend()
    for row in axes:
        for a in row:
            a.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ---- main -------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="Sentiment LSTM and continual learning (document 002)")
    ap.add_argument("--data", nargs="+", default=[DEFAULT_DATA],
                    help="sentence<TAB>label files, or folders of them (*.txt); default %(default)s")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--maxlen", type=int, default=40)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping (0: off)")
    ap.add_argument("--online-batch", type=int, default=None, help="batch size of the online phase (8; --quick 16)")
    ap.add_argument("--transfer-steps", type=int, default=None,
                    help="steps of the transfer comparison (default: 2 epochs of the new domain)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out")
    ap.add_argument("--quick", action="store_true", help="a short run for the tests")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_option(ap)
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = checked_device(args.device)
    args.curve_points = 20
    if args.online_batch is None:
        args.online_batch = 16 if args.quick else 8
    if args.quick:  # about 350 steps in all
        args.epochs = min(args.epochs, 3)
        args.curve_points = 4
        args.quiet = True
    start = time.time()

    print(f"data: {', '.join(args.data)}")
    domains = load_domains(args.data)
    if not domains:
        raise SystemExit("no labelled sentences found. Pass files or folders of `sentence<TAB>0|1` "
                         "lines with --data PATH [PATH ...], e.g. the UCI 'Sentiment Labelled "
                         f"Sentences' (amazon_cells_labelled.txt, yelp_labelled.txt); looked in {args.data}")
    splits = {}
    for name, (sentences, labels) in domains.items():
        # the document: train_test_split(text, label, test_size=0.2, random_state=42), per file
        splits[name] = tg.data.train_test_split(sentences, labels, test_size=0.2, seed=42)
        print(f"  {name}: {len(sentences)} sentences, {labels.mean():.0%} positive")
    combined: tuple = (sum((s[0] for s in splits.values()), []), sum((s[1] for s in splits.values()), []),
                np.concatenate([s[2] for s in splits.values()]), np.concatenate([s[3] for s in splits.values()]))

    rng = np.random.default_rng(args.seed)
    main_run = document_pipeline(args, combined, rng)
    cont = None
    if len(domains) >= 2:
        if args.transfer_steps is None:
            n_b = len(splits[list(domains)[1]][0])
            args.transfer_steps = max(1, (1 if args.quick else 2) * -(-n_b // args.batch_size))
        cont = continual(args, domains, splits, rng)
    else:
        print("\n(continual learning needs two domains, i.e. two data files; skipped)")

    png = save_figure(os.path.join(args.out, "sentiment_lstm.png"), main_run, cont)
    if png:
        print(f"saved {png}")
    print(f"total time {time.time() - start:.0f} s")
    return {"main": {k: main_run[k] for k in ("accuracy", "baseline", "loss")}, "continual": cont}


if __name__ == "__main__":
    main()
