"""Convolution and pooling for tapegrad.nn.functional: PyTorch's arguments (an int or a pair,
padding 'same' / 'valid', ceil_mode) turned into the one window the C++ ops take,
(kh, kw, sh, sw, ph, pw, ph_end, pw_end, dh, dw); 1-d inputs are images of height 1. The
arithmetic is in csrc/ops/conv.cpp."""
from .. import _C


def _pair(value, name):
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return value


def _padding(padding, kernel, stride, dilation, op):
    """(begin, end) per dim: 'valid' is none; 'same' keeps the size (stride 1), the odd extra
    row of an even kernel at the end, as PyTorch."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        begin = tuple(t // 2 for t in total)
        return begin, tuple(t - b for t, b in zip(total, begin))
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair, got {padding!r}")
    begin = _pair(padding, f"{op}: padding")
    return begin, begin


def _ceil_extra(size, kernel, stride, pad, dilation):
    """Rows past the end padding that ceil_mode adds so that the last partial window counts; a
    window must start inside the input or its left padding (PyTorch's rule)."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return max(0, (out - 1) * stride - span)


def window(kernel_size, stride=1, padding=0, dilation=1, op="conv2d", ceil_mode=False, size=None):
    kernel = _pair(kernel_size, f"{op}: kernel_size")
    stride = _pair(stride, f"{op}: stride")
    dilation = _pair(dilation, f"{op}: dilation")
    begin, end = _padding(padding, kernel, stride, dilation, op)
    if ceil_mode:
        end = tuple(e + _ceil_extra(n, k, s, b, d) for e, n, k, s, b, d in zip(end, size, kernel, stride, begin, dilation))
    return (*kernel, *stride, *begin, *end, *dilation)


def _as_images(input, op, dims):
    """A batch of images: an unbatched input gets a batch dim (and loses it after)."""
    if input.dim() == dims - 1:
        return input.unsqueeze(0), True
    if input.dim() != dims:
        raise ValueError(f"{op}: expected a {dims - 1}-d or {dims}-d input, got shape {tuple(input.shape)}")
    return input, False


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _as_images(input, "conv2d", 4)
    if weight.dim() != 4:
        raise ValueError(f"conv2d: expected a 4-d weight (O, C / groups, kh, kw), got shape {tuple(weight.shape)}")
    out = _C._conv2d(x, weight, bias, window(tuple(weight.shape[2:]), stride, padding, dilation), groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _as_images(input, "conv1d", 3)
    if weight.dim() != 3:
        raise ValueError(f"conv1d: expected a 3-d weight (O, C / groups, k), got shape {tuple(weight.shape)}")
    if not isinstance(padding, str):
        padding = (0, padding if isinstance(padding, int) else tuple(padding)[0])
    out = _C._conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias,
                     window((1, weight.shape[2]), (1, _one(stride)), padding, (1, _one(dilation)), "conv1d"), groups)
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def _one(value):
    return value if isinstance(value, int) else tuple(value)[0]


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    x, unbatched = _as_images(input, "conv_transpose2d", 4)
    kernel, stride_, pad, dil = (_pair(v, f"conv_transpose2d: {n}") for v, n in (
        (tuple(weight.shape[2:]), "kernel"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    extra = _pair(output_padding, "conv_transpose2d: output_padding")
    if any(e >= max(s, d) for e, s, d in zip(extra, stride_, dil)):
        raise ValueError(f"conv_transpose2d: output_padding {extra} must be smaller than stride {stride_} or dilation {dil}")
    out_h, out_w = ((n - 1) * s - 2 * p + d * (k - 1) + e + 1
                    for n, s, p, d, k, e in zip(x.shape[2:], stride_, pad, dil, kernel, extra))
    out = _C._conv_transpose2d(x, weight, bias, window(kernel, stride_, pad, dil, "conv_transpose2d"), groups, out_h, out_w)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """conv_transpose2d on (N, C, 1, L) images with a (C, O / groups, 1, k) weight."""
    x, unbatched = _as_images(input, "conv_transpose1d", 3)
    if weight.dim() != 3:
        raise ValueError(f"conv_transpose1d: expected a 3-d weight (C, O / groups, k), got shape {tuple(weight.shape)}")
    out = conv_transpose2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _one(stride)), (0, _one(padding)),
                           (0, _one(output_padding)), groups, (1, _one(dilation))).squeeze(2)
    return out.squeeze(0) if unbatched else out


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    return _C._unfold(input, window(kernel_size, stride, padding, dilation, "unfold"))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    h, w = _pair(output_size, "fold: output_size")
    return _C._fold(input, h, w, window(kernel_size, stride, padding, dilation, "fold"))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """return_indices=True: also each maximum's flat position in its (H, W) plane, as PyTorch."""
    x, unbatched = _as_images(input, "max_pool2d", 4)
    win = window(kernel_size, kernel_size if stride is None else stride, padding, dilation, "max_pool2d", ceil_mode,
                 tuple(x.shape[2:]))
    if return_indices:
        out, at = _C._max_pool2d_with_indices(x, win)
        return (out.squeeze(0), at.squeeze(0)) if unbatched else (out, at)
    out = _C._max_pool2d(x, win)
    return out.squeeze(0) if unbatched else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    if divisor_override is not None:
        raise NotImplementedError("avg_pool2d: divisor_override is not supported")
    x, unbatched = _as_images(input, "avg_pool2d", 4)
    win = window(kernel_size, kernel_size if stride is None else stride, padding, 1, "avg_pool2d", ceil_mode,
                 tuple(x.shape[2:]))
    out = _C._avg_pool2d(x, win, count_include_pad)
    return out.squeeze(0) if unbatched else out


def _pool1d(pool2d, input, kernel_size, stride, padding, ceil_mode, op, **kw):
    x, unbatched = _as_images(input, op, 3)
    stride = kernel_size if stride is None else stride
    out = pool2d(x.unsqueeze(2), (1, _one(kernel_size)), (1, _one(stride)), (0, _one(padding)), ceil_mode=ceil_mode, **kw)
    outs = tuple(o.squeeze(2) for o in (out if isinstance(out, tuple) else (out,)))  # (values, indices) or values
    outs = tuple(o.squeeze(0) for o in outs) if unbatched else outs
    return outs if isinstance(out, tuple) else outs[0]


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _pool1d(max_pool2d, input, kernel_size, stride, padding, ceil_mode, "max_pool1d", dilation=(1, _one(dilation)),
                   return_indices=return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _pool1d(avg_pool2d, input, kernel_size, stride, padding, ceil_mode, "avg_pool1d",
                   count_include_pad=count_include_pad)


def adaptive_avg_pool2d(input, output_size):
    h, w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    return _C._adaptive_avg_pool2d(input, input.shape[-2] if h is None else h, input.shape[-1] if w is None else w)
