"""Soak: resident memory stays flat over long training. Two loops, each measured after a warm-up
(allocator caches filled) and at the end; growth over 5% of the warm RSS is a leak:

- masked-LM training steps at a small size (the benchmark's model: embeddings, a Transformer
  encoder layer, the output layer, cross-entropy, Adam; dropout on, so every step differs), and
- a small graph's forward + backward (a few elementwise ops on 16 numbers, .grad reset).

    python tests/soak.py                     # the full soak: 10,000 steps and 100,000 iterations
    python tests/soak.py --mlm-steps 500 --graph-iterations 5000   # what tests/test_soak.py runs
"""
import argparse
import os
import sys

import tapegrad as tg
from tapegrad.bench import masked_lm

SMALL = masked_lm.Shape(batch=4, tokens=16, vocab=512, dim=32, heads=2, layers=1)
LIMIT = 0.05


def rss_mb():
    """This process's resident set (Linux: /proc/self/status VmRSS), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(step, iterations, warmup):
    """(RSS after `warmup` iterations, RSS at the end, the highest RSS sampled), in MB."""
    start = highest = None
    for i in range(iterations):
        step()
        if i + 1 == warmup:
            start = highest = rss_mb()
        elif start is not None and i % 256 == 0:
            highest = max(highest, rss_mb())
    end = rss_mb()
    return start, end, max(highest, end)


def masked_lm_soak(steps):
    _, step, _ = masked_lm.build(tg, SMALL, masked_lm.masked_batch(SMALL))
    return measure(step, steps, warmup=max(1, steps // 10))


def small_graph_soak(iterations):
    x = tg.randn(16, requires_grad=True)

    def step():
        y = ((x * 2).tanh() * x + x.exp().log()).sum()
        y.backward()
        x.grad = None

    return measure(step, iterations, warmup=max(1, iterations // 10))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mlm-steps", type=int, default=10_000)
    ap.add_argument("--graph-iterations", type=int, default=100_000)
    args = ap.parse_args(argv)
    failed = False
    for name, (start, end, highest) in (("masked-LM steps", masked_lm_soak(args.mlm_steps)),
                                        ("small-graph iterations", small_graph_soak(args.graph_iterations))):
        count = args.mlm_steps if name.startswith("masked") else args.graph_iterations
        growth = (end - start) / start
        failed |= growth > LIMIT
        print(f"{count} {name}: RSS {start:.1f} MB after warm-up, {end:.1f} MB at the end ({growth:+.1%}), "
              f"highest {highest:.1f} MB{'  <- over the 5% limit' if growth > LIMIT else ''}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
