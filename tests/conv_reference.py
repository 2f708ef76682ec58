"""NumPy references and hypothesis cases for the convolution and pooling rows of the spec table
(op_specs.py): direct loops over the kernel taps, written from the definitions, not from the
unfold / GEMM route the library takes."""
import math

import numpy as np
from hypothesis import strategies as st


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(padding, kernel, dilation):
    """(begin, end) per dim; 'same' puts the odd extra row at the end, as PyTorch."""
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [t // 2 for t in total], [t - t // 2 for t in total]
    if padding == "valid":
        return [0, 0], [0, 0]
    p = _pair(padding)
    return list(p), list(p)


def _padded(x, begin, end, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1])), constant_values=value)


def _taps(xp, kernel, stride, dilation, out):
    """For each tap (i, j): the (N, C, Ho, Wo) pixels it reads."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            h0, w0 = i * dilation[0], j * dilation[1]
            yield i, j, xp[:, :, h0:h0 + stride[0] * (out[0] - 1) + 1:stride[0], w0:w0 + stride[1] * (out[1] - 1) + 1:stride[1]]


def _out_size(size, begin, end, kernel, stride, dilation):
    return tuple((n + b + e - d * (k - 1) - 1) // s + 1 for n, b, e, k, s, d in zip(size, begin, end, kernel, stride, dilation))


def np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    stride, dilation, kernel = _pair(stride), _pair(dilation), w.shape[2:]
    begin, end = _pads(padding, kernel, dilation)
    out = _out_size(x.shape[2:], begin, end, kernel, stride, dilation)
    N, C = x.shape[:2]
    O, cg = w.shape[0], C // groups
    og = O // groups
    y = np.zeros((N, O) + out)
    for i, j, patch in _taps(_padded(x, begin, end), kernel, stride, dilation, out):
        for g in range(groups):
            y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og, :, i, j])
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def np_conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pad = padding if isinstance(padding, str) else (0, padding)
    return np_conv2d(x[:, :, None], w[:, :, None], b, (1, stride), pad, (1, dilation), groups)[:, :, 0]


def np_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The adjoint of conv2d in its input: every input pixel spreads w over the output."""
    stride, padding, dilation, extra = _pair(stride), _pair(padding), _pair(dilation), _pair(output_padding)
    N, C, H, W = x.shape
    og, kh, kw = w.shape[1:]
    cg = C // groups
    size = [(n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in zip((H, W), stride, padding, dilation, (kh, kw), extra)]
    full = np.zeros((N, og * groups, size[0] + 2 * padding[0] + stride[0] + dilation[0] * kh,
                     size[1] + 2 * padding[1] + stride[1] + dilation[1] * kw))
    for i in range(kh):
        for j in range(kw):
            for g in range(groups):
                contrib = np.einsum("nchw,co->nohw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
                h0, w0 = i * dilation[0], j * dilation[1]
                full[:, g * og:(g + 1) * og, h0:h0 + stride[0] * (H - 1) + 1:stride[0],
                     w0:w0 + stride[1] * (W - 1) + 1:stride[1]] += contrib
    y = full[:, :, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _ceil_end(size, kernel, stride, begin, end, dilation):
    out = []
    for n, k, s, b, e, d in zip(size, kernel, stride, begin, end, dilation):
        span = n + b + e - d * (k - 1) - 1
        o = -(-span // s) + 1
        if (o - 1) * s >= n + b:
            o -= 1
        out.append(e + max(0, (o - 1) * s - span))
    return out


def np_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    kernel, dilation = _pair(kernel_size), _pair(dilation)
    stride = kernel if stride is None else _pair(stride)
    begin, end = _pads(padding, kernel, dilation)
    if ceil_mode:
        end = _ceil_end(x.shape[2:], kernel, stride, begin, end, dilation)
    out = _out_size(x.shape[2:], begin, end, kernel, stride, dilation)
    return np.max([p for _, _, p in _taps(_padded(x, begin, end, -np.inf), kernel, stride, dilation, out)], axis=0)


def np_avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    begin, end = _pads(padding, kernel, (1, 1))
    if ceil_mode:
        end = _ceil_end(x.shape[2:], kernel, stride, begin, end, (1, 1))
    out = _out_size(x.shape[2:], begin, end, kernel, stride, (1, 1))
    total = sum(p for _, _, p in _taps(_padded(x, begin, end), kernel, stride, (1, 1), out))
    if count_include_pad:  # the window inside the padded image (a ceil_mode window may overhang it)
        inside = np.ones((1, 1, x.shape[2] + 2 * begin[0], x.shape[3] + 2 * begin[1]))
        ones = np.pad(inside, ((0, 0), (0, 0), (0, end[0] - begin[0]), (0, end[1] - begin[1])))
    else:
        ones = _padded(np.ones((1, 1) + x.shape[2:]), begin, end)
    return total / sum(p for _, _, p in _taps(ones, kernel, stride, (1, 1), out))


def np_adaptive_avg_pool2d(x, output_size):
    oh, ow = _pair(output_size)
    H, W = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
        for j in range(ow):
            w0, w1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            y[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return y


def np_unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    kernel, dilation, stride = _pair(kernel_size), _pair(dilation), _pair(stride)
    begin, end = _pads(padding, kernel, dilation)
    out = _out_size(x.shape[2:], begin, end, kernel, stride, dilation)
    taps = [p for _, _, p in _taps(_padded(x, begin, end), kernel, stride, dilation, out)]  # each (N, C, Ho, Wo)
    N, C = x.shape[:2]
    return np.stack(taps, axis=2).reshape(N, C * len(taps), out[0] * out[1])


def np_fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of unfold: each patch entry added back where it was read."""
    kernel, dilation, stride, (H, W) = _pair(kernel_size), _pair(dilation), _pair(stride), _pair(output_size)
    begin, end = _pads(padding, kernel, dilation)
    out = _out_size((H, W), begin, end, kernel, stride, dilation)
    N, K = cols.shape[0], kernel[0] * kernel[1]
    C = cols.shape[1] // K
    c = cols.reshape(N, C, kernel[0], kernel[1], out[0], out[1])
    xp = np.zeros((N, C, H + begin[0] + end[0], W + begin[1] + end[1]))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            h0, w0 = i * dilation[0], j * dilation[1]
            xp[:, :, h0:h0 + stride[0] * (out[0] - 1) + 1:stride[0], w0:w0 + stride[1] * (out[1] - 1) + 1:stride[1]] += c[:, :, i, j]
    return xp[:, :, begin[0]:begin[0] + H, begin[1]:begin[1] + W]


# ---- hypothesis cases: shapes that fit their windows ------------------------------------------------

@st.composite
def _window(draw, pooling=False):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k // 2 if pooling else 1)) for k in kernel)
    return kernel, stride, padding, dilation


def _image_side(draw, k, d, p):
    return draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 6))


def conv2d_case(min_side):
    @st.composite
    def c(draw):
        kernel, stride, padding, dilation = draw(_window())
        groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        if draw(st.booleans()) and stride == (1, 1):
            padding = "same"
        pads = (0, 0) if padding == "same" else padding
        size = tuple(_image_side(draw, k, d, p) for k, d, p in zip(kernel, dilation, pads))
        n = draw(st.integers(max(1, min_side), 2))
        shapes = [(n, groups * cg) + size, (groups * og, cg) + kernel, (groups * og,)]
        return shapes, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return c()


def conv1d_case(min_side):
    @st.composite
    def c(draw):
        k, s, d, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        length = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
        shapes = [(draw(st.integers(max(1, min_side), 2)), groups * cg, length), (groups * og, cg, k), (groups * og,)]
        return shapes, {"stride": s, "padding": p, "dilation": d, "groups": groups}
    return c()


def conv_transpose2d_case(min_side):
    @st.composite
    def c(draw):
        kernel, stride, padding, dilation = draw(_window())
        extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        # the output must be at least 1 wide: (n - 1) s - 2 p + d (k - 1) + extra + 1 >= 1
        size = tuple(draw(st.integers(max(1, math.ceil((2 * p - d * (k - 1) - e) / s) + 1), 4))
                     for k, s, p, d, e in zip(kernel, stride, padding, dilation, extra))
        shapes = [(draw(st.integers(max(1, min_side), 2)), groups * cg) + size, (groups * cg, og) + kernel, (groups * og,)]
        return shapes, {"stride": stride, "padding": padding, "output_padding": extra, "dilation": dilation,
                        "groups": groups}
    return c()


def pool2d_case(min_side, average=False):
    @st.composite
    def c(draw):
        kernel, stride, padding, dilation = draw(_window(pooling=True))
        size = tuple(_image_side(draw, k, 1, p) for k, p in zip(kernel, padding))
        n, ch = draw(st.integers(max(1, min_side), 2)), draw(st.integers(max(1, min_side), 2))
        params = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": draw(st.booleans())}
        if average:
            params["count_include_pad"] = draw(st.booleans())
        else:
            params["dilation"] = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            size = tuple(max(s, d * (k - 1) + 1 - 2 * p) for s, k, d, p in zip(size, kernel, params["dilation"], padding))
        return [(n, ch) + size], params
    return c()


def adaptive_pool_case(min_side):
    @st.composite
    def c(draw):
        size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        out = (draw(st.integers(1, size[0] + 1)), draw(st.integers(1, size[1] + 1)))
        return [(draw(st.integers(max(1, min_side), 2)), 2) + size], {"output_size": out}
    return c()


def unfold_case(min_side):
    @st.composite
    def c(draw):
        kernel, stride, padding, dilation = draw(_window())
        size = tuple(_image_side(draw, k, d, p) for k, d, p in zip(kernel, dilation, padding))
        shape = (draw(st.integers(max(1, min_side), 2)), draw(st.integers(1, 2))) + size
        return [shape], {"kernel_size": kernel, "dilation": dilation, "padding": padding, "stride": stride}
    return c()


def fold_case(min_side):
    @st.composite
    def c(draw):
        kernel, stride, padding, dilation = draw(_window())
        size = tuple(_image_side(draw, k, d, p) for k, d, p in zip(kernel, dilation, padding))
        out = _out_size(size, padding, padding, kernel, stride, dilation)
        n, ch = draw(st.integers(max(1, min_side), 2)), draw(st.integers(1, 2))
        return [(n, ch * kernel[0] * kernel[1], out[0] * out[1])], {
            "output_size": size, "kernel_size": kernel, "dilation": dilation, "padding": padding, "stride": stride}
    return c()
