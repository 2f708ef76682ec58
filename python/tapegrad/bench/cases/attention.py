"""Fused attention forward + backward: softmax(q k^T / sqrt(D)) v over (B, H, T, D) tensors,
then the gradients of q, k and v. The work counts FlashAttention's FLOPs (forward 2 matmuls,
backward 5, one of them recomputing the scores): 4 B H T^2 D * 3.5 = 14 B H T^2 D."""
import numpy as np

import tapegrad as tg

from ..case import Case
from ..peers import as_tg, as_torch, fwd_bwd_step, has_torch, rng, torch


def _np_attention_fwd_bwd(q, k, v, g):
    """NumPy by hand: o = p v, p = softmax(s), s = q k^T c; then dv = p^T g, dp = g v^T,
    ds = p (dp - rowsum(dp p)), dq = ds k c, dk = ds^T q c."""
    c = np.float32(1 / np.sqrt(q.shape[-1]))
    s = q @ k.swapaxes(-1, -2) * c
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dp = g @ v.swapaxes(-1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    return p @ v, (ds @ k) * c, (ds.swapaxes(-1, -2) @ q) * c, p.swapaxes(-1, -2) @ g


# float32: rows of up to T terms summed in different orders; bfloat16: 8-bit mantissas
_TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-5), "bfloat16": dict(rtol=3e-2, atol=3e-2)}


def _torch_sdpa(device, dtype):
    """PyTorch's attention. On a GPU, the kernel the comparison is meant against: the flash
    backend (FlashAttention-2) for bfloat16 (on Hopper the default may be cuDNN's instead);
    float32 has no flash kernel, so the memory-efficient one."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if device == "cpu":
        return sdpa
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backend = SDPBackend.FLASH_ATTENTION if dtype == "bfloat16" else SDPBackend.EFFICIENT_ATTENTION

    def attention(q, k, v):
        with sdpa_kernel([backend]):
            return sdpa(q, k, v)
    return attention


def attention(b, h, t, d, dtype="float32", device="cpu"):
    def setup():
        r = rng()
        q, k, v, g = (r.standard_normal((b, h, t, d), np.float32) for _ in range(4))
        sdpa = tg.nn.functional.scaled_dot_product_attention
        peers = {"tapegrad": fwd_bwd_step(sdpa, [as_tg(a, device, dtype, requires_grad=True) for a in (q, k, v)],
                                          as_tg(g, device, dtype))}
        if device == "cpu":
            peers["numpy"] = lambda: _np_attention_fwd_bwd(q, k, v, g)
        if has_torch(device):
            peers["torch"] = fwd_bwd_step(_torch_sdpa(device, dtype),
                                          [as_torch(a, device, dtype, requires_grad=True) for a in (q, k, v)],
                                          as_torch(g, device, dtype))
        return peers
    suffix = "" if device == "cpu" else f" {dtype}" + (" (torch flash)" if dtype == "bfloat16" else "")
    return Case(f"attention fwd+bwd B{b} H{h} T{t} D{d}{suffix}", "attention", setup, work=14 * b * h * t * t * d,
                unit="FLOP", limit="flops_bf16" if dtype == "bfloat16" else "flops_f32", device=device,
                settle=0.3 if device == "cpu" else 0.0, **_TOLERANCE[dtype])  # NumPy's peer runs batched GEMMs


def cases(quick):
    batch = 2 if quick else 32
    return [attention(batch, 8, 256, 64), attention(batch, 8, 64, 16)]
