"""Convolution forward + backward (the input's, weight's and bias's gradients), 3x3 with padding 1
so the image keeps its size; NumPy has no convolution, so PyTorch (oneDNN on the CPU) is the peer.
The work counts the three products of the im2col formulation: forward, weight gradient and input
gradient, each 2 N O C kh kw Ho Wo FLOPs."""
import numpy as np

import tapegrad as tg

from ..case import Case
from ..peers import as_tg, as_torch, fwd_bwd_step, has_torch, rng, torch


def conv2d(n, c_in, c_out, size, k=3):
    def setup():
        r = rng()
        x = r.standard_normal((n, c_in, size, size), np.float32)
        w = (r.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)).astype(np.float32)
        b = r.standard_normal(c_out).astype(np.float32)
        g = r.standard_normal((n, c_out, size, size), np.float32)
        conv = tg.nn.functional.conv2d
        peers = {"tapegrad": fwd_bwd_step(lambda x, w, b: conv(x, w, b, padding=k // 2),
                                          [as_tg(a, "cpu", "float32", requires_grad=True) for a in (x, w, b)],
                                          as_tg(g, "cpu", "float32"))}
        if has_torch("cpu"):
            peers["torch"] = fwd_bwd_step(lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding=k // 2),
                                          [as_torch(a, "cpu", "float32", requires_grad=True) for a in (x, w, b)],
                                          as_torch(g, "cpu", "float32"))
        return peers
    return Case(f"conv2d fwd+bwd B{n} {c_in}->{c_out} {size}x{size} {k}x{k}", "conv", setup,
                work=3 * 2 * n * c_out * c_in * k * k * size * size, unit="FLOP", limit="flops_f32",
                # the weight and bias gradients sum N H W products of O(1) values, in other orders
                # than oneDNN's: 8 u K absolute, as for a K-term GEMM
                rtol=1e-4, atol=8 * 2.0 ** -24 * n * size * size)


def cases(quick):
    batch = 4 if quick else 32
    return [conv2d(batch, 3, 64, 32), conv2d(batch, 64, 64, 16)]
