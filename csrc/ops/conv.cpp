// Convolution and pooling over 2-d images (1-d ones are images of height 1), built from one pair
// of ops with kernels, unfold and fold (kernels/im2col.h), and the ops autograd already knows:
//
//   conv2d:  cols = unfold(x)                    (N, C kh kw, L), L = Ho Wo
//            out  = W (O, C kh kw) @ cols        a batched GEMM, W shared: out (N, O, L) is NCHW as it
//                                                comes out (one product per image and group)
//            dW = sum_n dOut_n @ cols_n^T, dcols = W^T @ dOut, dx = fold(dcols): matmul's and
//            unfold's backward
//   conv_transpose2d: the adjoint in x, out = fold(W^T @ x)
//   max / avg pooling: the patches of each channel, reduced (amax / mean) over the window
//
// Every backward is these ops again, so the gradients differentiate once more (double backward).
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

std::string window_str(const Window2d& w) {
  return str("kernel (", w.kh, ", ", w.kw, "), stride (", w.sh, ", ", w.sw, "), padding (", w.ph, ", ", w.pw, ") + (",
             w.ph_end, ", ", w.pw_end, "), dilation (", w.dh, ", ", w.dw, ")");
}

// The patch geometry of window w over (N, C, H, W) images, cols stored channel-major.
Im2ColArgs patches(const char* op, const Shape& image, const Window2d& w) {
  // (ph_end < 0 trims rows at the end: conv_transpose2d's output_padding past the last window's reach)
  TG_CHECK(w.kh > 0 && w.kw > 0 && w.sh > 0 && w.sw > 0 && w.dh > 0 && w.dw > 0 && w.ph >= 0 && w.pw >= 0,
           ValueError, op, ": kernel, stride and dilation must be positive and padding non-negative, got ", window_str(w));
  Im2ColArgs a{};
  a.N = image[0], a.C = image[1], a.H = image[2], a.W = image[3];
  a.kh = w.kh, a.kw = w.kw, a.sh = w.sh, a.sw = w.sw, a.ph = w.ph, a.pw = w.pw, a.dh = w.dh, a.dw = w.dw;
  const int64_t span_h = a.H + w.ph + w.ph_end - w.dh * (w.kh - 1) - 1, span_w = a.W + w.pw + w.pw_end - w.dw * (w.kw - 1) - 1;
  TG_CHECK(span_h >= 0 && span_w >= 0, ShapeError, op, ": the window (", window_str(w), ") is larger than the padded input of shape ",
           shape_str(image));
  a.Ho = span_h / w.sh + 1, a.Wo = span_w / w.sw + 1;
  const int64_t L = a.Ho * a.Wo;
  a.col_n = a.rows() * L, a.col_c = L, a.col_l = 1;
  return a;
}

// y (N, O, ...) + bias per channel O. dy passes to y; dbias = sum over N and the positions, summed
// positions first (contiguous rows) and then N: the broadcast add's own adjoint reduces dims 0 and
// 2 together, which are not one run, through a transposed copy of all of dy.
Tensor add_channel_bias(const Tensor& y, const Tensor& bias) {
  Shape per_channel(static_cast<size_t>(y.dim()), 1);
  per_channel[1] = bias.numel();
  Tensor out;
  {
    GradModeGuard no_grad(false);
    out = y + reshape(bias, per_channel);
  }
  if (should_record({&y, &bias}))
    record("ConvBiasBackward", {y, bias}, {out}, {}, [](const BackwardContext& c, const TensorList& g) {
      Tensor db;
      if (c.needs_grad(1)) {
        const Tensor rows = reshape(g[0], {g[0].size(0), g[0].size(1), -1});  // (N, O, positions)
        db = sum(sum(rows, {2}), {0});
      }
      return TensorList{g[0], db};
    });
  return out;
}

void check_images(const char* op, const Tensor& x) {
  TG_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-d (N, C, H, W) input, got shape ", shape_str(x.shape()));
}

}  // namespace

// unfold: (N, C, H, W) -> cols (N, C kh kw, L), cols[n, (c kh + i) kw + j, ho Wo + wo] = the pixel
// (ho sh - ph + i dh, wo sw - pw + j dw) of channel c (pad_value outside). d x = fold(d cols).
Tensor unfold(const Tensor& x, const Window2d& w, double pad_value) {
  check_images("unfold", x);
  const Im2ColArgs a = [&] {
    Im2ColArgs g = patches("unfold", x.shape(), w);
    g.pad_value = pad_value;
    return g;
  }();
  const Tensor xc = contiguous(x);
  Tensor cols = empty({a.N, a.rows(), a.positions()}, x.dtype(), x.device());
  {
    GradModeGuard no_grad(false);
    backend(x.device()).im2col(x.dtype(), a, xc.raw_data(), cols.raw_data());
  }
  if (should_record({&x})) {
    const Shape image = x.shape();
    record("UnfoldBackward", {x}, {cols}, {}, [w, image](const BackwardContext&, const TensorList& g) {
      return TensorList{fold(g[0], image[2], image[3], w)};
    });
  }
  return cols;
}

// fold: cols (N, C kh kw, L) -> (N, C, H, W), the adjoint of unfold: each pixel sums the patch
// entries read from it. d cols = unfold(d x).
Tensor fold(const Tensor& cols, int64_t H, int64_t W, const Window2d& w) {
  TG_CHECK(cols.dim() == 3, ShapeError, "fold: expected a 3-d (N, C * kh * kw, L) input, got shape ", shape_str(cols.shape()));
  TG_CHECK(is_floating(cols.dtype()), TypeError, "fold: expected a floating-point tensor, got ", dtype_name(cols.dtype()));
  const int64_t K = w.kh * w.kw;
  TG_CHECK(K > 0 && cols.size(1) % K == 0, ShapeError, "fold: dim 1 of shape ", shape_str(cols.shape()),
           " is not a multiple of the kernel's ", w.kh, " x ", w.kw, " = ", K, " taps");
  const int64_t N = cols.size(0), C = cols.size(1) / K;
  Im2ColArgs a = patches("fold", {N, C, H, W}, w);
  TG_CHECK(cols.size(2) == a.positions(), ShapeError, "fold: ", cols.size(2), " positions in input of shape ",
           shape_str(cols.shape()), ", but output (", H, ", ", W, ") with ", window_str(w), " has ", a.Ho, " x ", a.Wo);
  if (cols.dtype() != compute_dtype(cols.dtype()))  // bfloat16: summed in float32, rounded once
    return to_dtype(fold(to_dtype(cols, compute_dtype(cols.dtype())), H, W, w), cols.dtype());
  a.col_n = cols.strides()[0], a.col_c = cols.strides()[1], a.col_l = cols.strides()[2];
  Tensor x = empty({N, C, H, W}, cols.dtype(), cols.device());
  backend(cols.device()).col2im(cols.dtype(), a, cols.raw_data(), x.raw_data());
  if (should_record({&cols}))
    record("FoldBackward", {cols}, {x}, {}, [w](const BackwardContext&, const TensorList& g) { return TensorList{unfold(g[0], w)}; });
  return x;
}

// conv2d: x (N, C, H, W), weight (O, C / groups, kh, kw), bias (O) or undefined ->
//   out[n, o, ho, wo] = bias[o] + sum_{c in o's group, i, j} weight[o, c, i, j] x[n, c, ho sh - ph + i dh, wo sw - pw + j dw]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Window2d& window, int64_t groups) {
  check_same_device("conv2d", {&x, &weight});
  TG_CHECK(x.dim() == 4 && weight.dim() == 4, ShapeError, "conv2d: expected a 4-d input (N, C, H, W) and a 4-d weight (O, C / groups, kh, kw), got shapes ",
           shape_str(x.shape()), " and ", shape_str(weight.shape()));
  const int64_t N = x.size(0), C = x.size(1), O = weight.size(0), G = groups;
  TG_CHECK(G > 0 && C % G == 0 && O % G == 0 && weight.size(1) * G == C, ShapeError, "conv2d: input of shape ",
           shape_str(x.shape()), " and weight of shape ", shape_str(weight.shape()), " do not fit ", G,
           " group(s): need C and O divisible by groups and weight.size(1) = C / groups");
  TG_CHECK(window.kh == weight.size(2) && window.kw == weight.size(3), ShapeError, "conv2d: window ", window_str(window),
           " does not match the weight's shape ", shape_str(weight.shape()));
  TG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == O), ShapeError, "conv2d: bias of shape ",
           shape_str(bias.shape()), " for ", O, " output channels (weight of shape ", shape_str(weight.shape()), ")");
  const Im2ColArgs a = patches("conv2d", x.shape(), window);  // checks the window before unfold does
  const Tensor cols = unfold(x, window);                       // (N, C kh kw, L)
  const int64_t L = cols.size(2), rows = cols.size(1);
  // (1, G, O / G, C / G kh kw) @ (N, G, C / G kh kw, L) -> (N, G, O / G, L) = (N, O, L)
  Tensor out = reshape(matmul(reshape(weight, {1, G, O / G, rows / G}), reshape(cols, {N, G, rows / G, L})), {N, O, L});
  if (bias.defined()) out = add_channel_bias(out, bias);
  return reshape(out, {N, O, a.Ho, a.Wo});
}

// conv_transpose2d: x (N, C, H, W), weight (C, O / groups, kh, kw) -> (N, O, out_h, out_w), the
// adjoint of conv2d in its input: out = fold(W^T @ x) + bias. out_h = (H - 1) sh - 2 ph + dh (kh - 1)
// + 1 + output_padding (the caller's choice among the sizes whose conv2d gives H windows).
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Window2d& window, int64_t groups,
                        int64_t out_h, int64_t out_w) {
  check_same_device("conv_transpose2d", {&x, &weight});
  TG_CHECK(x.dim() == 4 && weight.dim() == 4, ShapeError,
           "conv_transpose2d: expected a 4-d input (N, C, H, W) and a 4-d weight (C, O / groups, kh, kw), got shapes ",
           shape_str(x.shape()), " and ", shape_str(weight.shape()));
  const int64_t N = x.size(0), C = x.size(1), G = groups, Og = weight.size(1), O = Og * G;
  TG_CHECK(G > 0 && C % G == 0 && weight.size(0) == C, ShapeError, "conv_transpose2d: input of shape ", shape_str(x.shape()),
           " and weight of shape ", shape_str(weight.shape()), " do not fit ", G, " group(s)");
  TG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == O), ShapeError, "conv_transpose2d: bias of shape ",
           shape_str(bias.shape()), " for ", O, " output channels");
  // The output rows past the last window's reach (output_padding) get no contribution: the window
  // ends that much earlier, so that fold sees exactly the input's H x W windows.
  Window2d win = window;
  win.ph_end = window.ph - (out_h - ((x.size(2) - 1) * window.sh - 2 * window.ph + window.dh * (window.kh - 1) + 1));
  win.pw_end = window.pw - (out_w - ((x.size(3) - 1) * window.sw - 2 * window.pw + window.dw * (window.kw - 1) + 1));
  const Im2ColArgs a = patches("conv_transpose2d", {N, O, out_h, out_w}, win);
  TG_CHECK(a.Ho == x.size(2) && a.Wo == x.size(3), ShapeError, "conv_transpose2d: an output of (", out_h, ", ", out_w,
           ") has ", a.Ho, " x ", a.Wo, " windows (", window_str(window), "), the input of shape ", shape_str(x.shape()), " has ",
           x.size(2), " x ", x.size(3));
  const int64_t L = a.positions(), K = window.kh * window.kw;
  // (1, G, Og K, C / G) @ (N, G, C / G, L) -> (N, G, Og K, L) = (N, O K, L)
  const Tensor wg = transpose(reshape(weight, {1, G, C / G, Og * K}), 2, 3);
  const Tensor cols = reshape(matmul(wg, reshape(x, {N, G, C / G, L})), {N, O * K, L});
  Tensor out = fold(cols, out_h, out_w, win);
  return bias.defined() ? add_channel_bias(out, bias) : out;
}

// The windows of max pooling as (N, C, K, L) columns, padding read as -inf (so it never wins).
static Tensor max_pool_columns(const Tensor& x, const Window2d& window, Im2ColArgs* a) {
  check_images("max_pool2d", x);
  TG_CHECK(is_floating(x.dtype()), TypeError, "max_pool2d: expected a floating-point tensor, got ", dtype_name(x.dtype()),
           " of shape ", shape_str(x.shape()));
  TG_CHECK(2 * window.ph <= window.kh && 2 * window.pw <= window.kw, ValueError,
           "max_pool2d: padding must be at most half the kernel, got ", window_str(window));
  *a = patches("max_pool2d", x.shape(), window);
  const Tensor cols = unfold(x, window, -std::numeric_limits<double>::infinity());
  return reshape(cols, {x.size(0), x.size(1), window.kh * window.kw, a->positions()});
}

// max_pool2d: the largest element of each window (padding reads -inf, so it never wins); the
// gradient goes to the window's maximum (split evenly among equal maxima).
Tensor max_pool2d(const Tensor& x, const Window2d& window) {
  Im2ColArgs a;
  const Tensor cols = max_pool_columns(x, window, &a);
  return reshape(amax(cols, {2}), {x.size(0), x.size(1), a.Ho, a.Wo});
}

// max_pool2d with indices (PyTorch's return_indices): the position k of each window's first
// maximum (argmax; NaN wins) is mapped back to the input pixel
//   (oh sh - ph + (k / kw) dh) W + ow sw - pw + (k % kw) dw
// and the values are gathered there, so the gradient goes to that one element, as in PyTorch.
TensorList max_pool2d_with_indices(const Tensor& x, const Window2d& window) {
  const int64_t N = x.size(0), C = x.size(1), W = x.size(3);
  Im2ColArgs a;
  const Tensor cols = max_pool_columns(x, window, &a);
  const Tensor k = argmax(cols, 2, true);  // (N, C, 1, L)
  Tensor at;
  {
    GradModeGuard no_grad(false);
    const Tensor l = arange(0, double(a.positions()), 1, DType::Int64, x.device());
    const Tensor oh = floor_divide(l, wrap_scalar(double(a.Wo), l)), ow = remainder(l, wrap_scalar(double(a.Wo), l));
    const Tensor kh = floor_divide(k, wrap_scalar(double(window.kw), k)), kw = remainder(k, wrap_scalar(double(window.kw), k));
    const Tensor ih = oh * double(window.sh) - double(window.ph) + kh * double(window.dh);
    const Tensor iw = ow * double(window.sw) - double(window.pw) + kw * double(window.dw);
    at = reshape(ih * double(W) + iw, {N, C, a.Ho, a.Wo});
  }
  return {reshape(gather(cols, 2, k), {N, C, a.Ho, a.Wo}), at};
}

// avg_pool2d: the mean of each window. count_include_pad: over the window inside the padded image
// (the padding counts as zeros; a ceil_mode window reaching past the padding counts what it
// covers, as PyTorch); else over the window's pixels inside the image alone.
Tensor avg_pool2d(const Tensor& x, const Window2d& window, bool count_include_pad) {
  check_images("avg_pool2d", x);
  TG_CHECK(is_floating(x.dtype()), TypeError, "avg_pool2d: expected a floating-point tensor, got ", dtype_name(x.dtype()),
           " of shape ", shape_str(x.shape()));
  TG_CHECK(2 * window.ph <= window.kh && 2 * window.pw <= window.kw, ValueError,
           "avg_pool2d: padding must be at most half the kernel, got ", window_str(window));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = window.kh * window.kw;
  const Im2ColArgs a = patches("avg_pool2d", x.shape(), window);
  const Tensor sums = sum(reshape(unfold(x, window), {N, C, K, a.positions()}), {2});  // (N, C, L)
  const bool overhang = window.ph_end != window.ph || window.pw_end != window.pw;
  if (count_include_pad && !overhang) return reshape(sums / static_cast<double>(K), {N, C, a.Ho, a.Wo});
  // The divisor per window: its taps counted over an image of ones (the padded image or the image).
  Window2d counted = window;
  Shape ones_shape{1, 1, H, W};
  if (count_include_pad) {
    ones_shape = {1, 1, H + 2 * window.ph, W + 2 * window.pw};
    counted.ph = counted.pw = 0;
    counted.ph_end = window.ph_end - window.ph, counted.pw_end = window.pw_end - window.pw;
  }
  Tensor counts;
  {
    GradModeGuard no_grad(false);
    counts = sum(unfold(ones(ones_shape, x.dtype(), x.device()), counted), {1});  // (1, L)
  }
  return reshape(sums / counts, {N, C, a.Ho, a.Wo});
}

// adaptive_avg_pool2d: output cell (i, j) averages rows [floor(i H / oh), ceil((i + 1) H / oh))
// and the columns alike; as two products with averaging matrices, out = A_h x A_w^T.
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  TG_CHECK(x.dim() >= 2, ShapeError, "adaptive_avg_pool2d: expected (..., H, W), got shape ", shape_str(x.shape()));
  TG_CHECK(out_h > 0 && out_w > 0, ValueError, "adaptive_avg_pool2d: output size must be positive, got (", out_h, ", ",
           out_w, ")");
  TG_CHECK(is_floating(x.dtype()), TypeError, "adaptive_avg_pool2d: expected a floating-point tensor, got ",
           dtype_name(x.dtype()));
  auto averaging = [&](int64_t out, int64_t in) {  // (out, in), built on the host in float64
    Tensor m = zeros({out, in}, DType::Float64);
    double* p = static_cast<double*>(m.raw_data());
    for (int64_t i = 0; i < out; ++i) {
      const int64_t start = (i * in) / out, end = ((i + 1) * in + out - 1) / out;
      for (int64_t k = start; k < end; ++k) p[i * in + k] = 1.0 / static_cast<double>(end - start);
    }
    return to_device(to_dtype(m, x.dtype()), x.device());
  };
  const Tensor ah = averaging(out_h, x.size(-2)), aw = averaging(out_w, x.size(-1));
  return matmul(matmul(ah, x), transpose(aw, 0, 1));
}

}  // namespace tg
