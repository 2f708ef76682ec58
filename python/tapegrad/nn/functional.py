"""Stateless neural-network functions. Each is a thin call into the C++ op of the same name;
the few composites spell out their math in terms of those ops."""

import math

from .. import _C
from ._conv import (  # noqa: F401
    adaptive_avg_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose1d, conv_transpose2d, fold, max_pool1d,
    max_pool2d, unfold,
)

relu = _C.relu
sigmoid = _C.sigmoid
tanh = _C.tanh
silu = _C.silu
softplus = _C.softplus
softmax = _C.softmax
log_softmax = _C.log_softmax
leaky_relu = _C.leaky_relu
elu = _C.elu
celu = _C.celu
selu = _C.selu
hardtanh = _C.hardtanh
relu6 = _C.relu6
hardsigmoid = _C.hardsigmoid
hardswish = _C.hardswish
softsign = _C.softsign
mish = _C.mish
logsigmoid = _C.logsigmoid


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Per-channel normalisation of (N, C, *): the batch's statistics when training (updating the
    running ones in place by momentum), else the running statistics."""
    return _C._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    return _C._group_norm(input, num_groups, weight, bias, eps)


def pad(input, pad, mode="constant", value=None):
    """(left, right) widths from the last dim backwards; mode constant, reflect, replicate or circular."""
    return _C._pad(input, list(pad), mode, 0.0 if value is None else value)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p over dim, eps), as torch.nn.functional.normalize."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
    """Resizes (N, C, *spatial) by 'nearest' or '(bi|tri)linear', as torch.nn.functional.interpolate."""
    spatial = input.dim() - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the linear modes")
    if size is not None:
        sizes = [size] * spatial if isinstance(size, int) else list(size)
        scales = [0.0] * spatial
    else:
        factors = [scale_factor] * spatial if isinstance(scale_factor, (int, float)) else list(scale_factor)
        if len(factors) != spatial:
            raise ValueError(f"interpolate: {len(factors)} scale factors for {spatial} spatial dims (shape {tuple(input.shape)})")
        sizes = [int(math.floor(input.shape[2 + k] * f)) for k, f in enumerate(factors)]
        scales = [0.0] * spatial if recompute_scale_factor else [float(f) for f in factors]
    if any(not -2 ** 63 <= n < 2 ** 63 for n in sizes):
        raise ValueError(f"interpolate: output sizes {sizes} do not fit in an int64 (input shape {tuple(input.shape)})")
    return _C._interpolate(input, sizes, scales, mode, bool(align_corners))


def gelu(input, approximate="none"):
    return _C.gelu(input, approximate)


def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features): one C++ op (csrc/ops/matmul.cpp)."""
    return _C._linear(input, weight, bias)


def dropout(input, p=0.5, training=True):
    return _C._dropout(input, p, training)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C._layer_norm(input, list(normalized_shape), weight, bias, eps)


def embedding(input, weight, padding_idx=None):
    return _C._embedding(weight, input, padding_idx)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got '{reduction}'")


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced; one fused pass (C++ mse_loss)."""
    return _C._mse_loss(input, target, reduction)


def _weighted(loss_fn, weight, reduction):
    """A C++ loss with an elementwise weight: the unreduced loss times weight, then reduced."""
    if weight is None:
        return loss_fn(reduction)
    return _reduce(loss_fn("none") * weight, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)). Each log is clamped at -100 and the gradient's
    denominator p (1 - p) at 1e-12, as in PyTorch, so p = 0 or 1 gives a finite loss and
    gradient."""
    return _weighted(lambda r: _C._binary_cross_entropy(input, target, r), weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """BCE of sigmoid(x), computed stably as (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x):
    finite for any logit (+-1e4 included), with gradient sigmoid(x) - t."""
    return _weighted(lambda r: _C._binary_cross_entropy_with_logits(input, target, pos_weight, r), weight, reduction)


def cross_entropy(input, target, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy of logits (N, C) / (N, C, d...) against class indices, or against
    class probabilities of the logits' shape."""
    return _C._cross_entropy(input, target, ignore_index, reduction)


def nll_loss(input, target, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C) at the target classes."""
    valid = target != ignore_index
    safe = _C.where(valid, target, 0)
    picked = input.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -(picked * valid.float().to(dtype=input.dtype))
    if reduction == "mean":
        return loss.sum() / valid.sum().to(dtype=input.dtype)
    return _reduce(loss, reduction)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) as a (..., L, S) tensor, from unfused (differentiable) ops: the
    composite reference of scaled_dot_product_attention, and what attention returns with
    need_weights=True. A query that may attend nothing gets all-zero weights (not the NaN of a
    softmax over -inf)."""
    return _C._attention_weights(query, key, attn_mask, is_causal, scale)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v over the last two dims: q (..., L, E), k (..., S, E),
    v (..., S, Ev). A bool mask marks the positions that may be attended (True = keep); a float
    mask is added to the scores. is_causal hides the future (j > i). A query that may attend
    nothing gets a zero output (and zero gradients), as in PyTorch.

    One fused C++ op: the (L x S) scores exist for one (batch, head) at a time. The fused kernel
    treats the mask as a constant, so a mask that requires grad takes the composite reference
    (attention_weights); so does create_graph, which makes attention twice differentiable."""
    return _C._scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
