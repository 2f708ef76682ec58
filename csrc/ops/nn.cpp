// Neural-network functions: fused row kernels for the forward and backward, each beside its
// composite reference (the same function in ordinary ops), which create_graph differentiates.
#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// Runs a row kernel over dim `dim` of x: that dim is moved last and made contiguous.
template <class F>
Tensor along_rows(const Tensor& x, int64_t dim, F kernel) {
  GradModeGuard no_grad(false);
  Tensor xt = contiguous(transpose(x, dim, -1));
  Tensor yt = empty(xt.shape(), xt.dtype(), xt.device());
  const int64_t cols = xt.dim() == 0 ? 1 : xt.size(-1);
  kernel(cols == 0 ? 0 : xt.numel() / cols, cols, xt.raw_data(), yt.raw_data());
  return contiguous(transpose(yt, dim, -1));
}

Tensor as_float(const Tensor& x, const char* op) {
  TG_CHECK(is_floating(x.dtype()), TypeError, op, ": expected a floating-point tensor, got ", dtype_name(x.dtype()));
  check_same_device(op, {&x});
  return x;
}

}  // namespace

// softmax: y_j = e^{x_j} / sum_k e^{x_k} along dim; dx = y * (dy - sum(dy * y))
// The backward is already ordinary ops of the output y, which is differentiable (through this
// node), so under create_graph it differentiates again as it is: softmax_reference need not be
// run, and the input need not be kept. The same holds for log_softmax.
Tensor softmax(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, as_float(x, "softmax").dim(), "softmax");
  if (any_storage_only({&x})) return to_dtype(softmax(widened(x), dim), x.dtype());
  Tensor y = along_rows(x, dim, [&](int64_t rows, int64_t cols, const void* in, void* out) {
    backend(x.device()).softmax_rows(x.dtype(), rows, cols, in, out, false);
  });
  if (should_record({&x}))
    record("SoftmaxBackward", {x}, {y}, {y}, [dim](const BackwardContext& c, const TensorList& g) {
      Tensor y = c.saved(0);
      return TensorList{y * (g[0] - sum(g[0] * y, {dim}, true))};
    });
  return y;
}

namespace {
// x less its max along dim (a constant: softmax does not change under a shift), so e^ stays finite;
// a dim of size 0 has no max and nothing to shift.
Tensor shifted_by_max(const Tensor& x, int64_t dim) {
  return x.dim() > 0 && x.size(dim) == 0 ? x : x - detach(amax(x, {dim}, true));
}
}  // namespace

Tensor softmax_reference(const Tensor& x, int64_t dim) {
  const Tensor e = exp(shifted_by_max(x, dim));
  return e / sum(e, {dim}, true);
}

// log_softmax: y_j = x_j - log sum_k e^{x_k}; dx = dy - e^y * sum(dy)
Tensor log_softmax(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, as_float(x, "log_softmax").dim(), "log_softmax");
  if (any_storage_only({&x})) return to_dtype(log_softmax(widened(x), dim), x.dtype());
  Tensor y = along_rows(x, dim, [&](int64_t rows, int64_t cols, const void* in, void* out) {
    backend(x.device()).softmax_rows(x.dtype(), rows, cols, in, out, true);
  });
  if (should_record({&x}))
    record("LogSoftmaxBackward", {x}, {y}, {y}, [dim](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] - exp(c.saved(0)) * sum(g[0], {dim}, true)};
    });
  return y;
}

Tensor log_softmax_reference(const Tensor& x, int64_t dim) {
  const Tensor shifted = shifted_by_max(x, dim);
  return shifted - log(sum(exp(shifted), {dim}, true));
}

// cross_entropy: loss_i = -log softmax(logits_i)[target_i], over rows whose target is not
// ignore_index; logits (N, C) or (N, C, d...) with target (N) or (N, d...), or (C) with a 0-d
// target. Probability targets (float, the logits' shape) give -sum_c target_c log softmax_c.
// mean divides by the number of counted rows (NaN when there are none, as PyTorch).
// Class targets run fused: one pass per row gives its log-sum-exp and loss (no (N, C)
// log-probabilities are stored); the backward writes softmax - onehot from the saved lse.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, int reduction) {
  as_float(logits, "cross_entropy");
  if (any_storage_only({&logits, &target}))
    return to_dtype(cross_entropy(widened(logits), widened(target), ignore_index, reduction), logits.dtype());
  TG_CHECK(reduction >= 0 && reduction <= 2, ValueError, "cross_entropy: reduction must be 'none', 'mean' or 'sum'");
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  TG_CHECK(logits.dim() >= 1, ShapeError, "cross_entropy: logits must have at least 1 dim, got shape ",
           shape_str(logits.shape()));
  if (is_floating(target.dtype())) {
    Tensor lsm = log_softmax(logits, class_dim);
    TG_CHECK(target.shape() == logits.shape(), ShapeError, "cross_entropy: probability targets of shape ",
             shape_str(target.shape()), " must match the logits of shape ", shape_str(logits.shape()));
    Tensor loss = -sum(lsm * target, {class_dim}, false);
    if (reduction == 0) return loss;
    return reduction == 2 ? sum(loss) : mean(loss);
  }
  TG_CHECK(target.dtype() == DType::Int64, TypeError, "cross_entropy: class targets must be int64, got ",
           dtype_name(target.dtype()));
  check_same_device("cross_entropy", {&logits, &target});
  Shape expect = logits.shape();
  expect.erase(expect.begin() + class_dim);
  TG_CHECK(target.shape() == expect, ShapeError, "cross_entropy: target of shape ", shape_str(target.shape()),
           " does not match logits of shape ", shape_str(logits.shape()), " (expected target shape ", shape_str(expect), ")");
  const int64_t C = logits.shape()[class_dim];
  // Rows of C logits: (N, C, d...) -> (N * d..., C); a single (C,) vector is one row.
  Tensor rows2d = logits;
  if (logits.dim() == 1) rows2d = unsqueeze(logits, 0);
  else if (logits.dim() > 2) {
    Dims order{0};
    for (int64_t d = 2; d < logits.dim(); ++d) order.push_back(d);
    order.push_back(1);
    rows2d = flatten(permute(logits, order), 0, -2);
  }
  const int64_t R = rows2d.size(0);
  // Targets as row classes, -1 for ignored rows, checked by the backend (Backend::check_indices):
  // the CPU raises IndexError at once; the GPU raises at the next synchronisation and counts the
  // bad row as ignored, so a training step on the GPU never waits for its targets.
  const Device device = logits.device();
  Tensor in = contiguous(reshape(detach(target), {R})), t = empty({R}, DType::Int64, device);
  // rows not ignored, when the backend knows it without waiting (else -1)
  const int64_t counted = backend(device).check_indices(
      in.data<int64_t>(), t.data<int64_t>(), R, IndexRule{C, false, true, ignore_index, -1, "cross_entropy", -1});
  Tensor x2 = contiguous(detach(rows2d));
  Tensor loss_rows = empty({R}, logits.dtype(), device), lse = empty({R}, logits.dtype(), device);
  backend(device).cross_entropy_rows(logits.dtype(), R, C, x2.raw_data(), t.data<int64_t>(), loss_rows.raw_data(),
                                     lse.raw_data());
  if (should_record({&rows2d}))
    // d loss_i / d x_ij = softmax(x_i)_j - [j == t_i]; one kernel pass, the softmax rebuilt from lse.
    // Under create_graph: the derivative of cross_entropy_reference on the same rows.
    record("CrossEntropyBackward", {rows2d}, {loss_rows}, {rows2d, t, lse}, [C](const BackwardContext& c, const TensorList& g) {
      const Tensor rows = c.saved(0), tt = c.saved(1);
      if (GradMode::is_enabled()) return grad_through_reference({cross_entropy_reference(rows, tt, -1, 0)}, g, {rows});
      Tensor x = contiguous(detach(rows)), l = c.saved(2);
      Tensor gs = contiguous(g[0]), dx = empty(x.shape(), x.dtype(), x.device());
      backend(x.device()).cross_entropy_backward_rows(x.dtype(), x.size(0), C, x.raw_data(), tt.data<int64_t>(),
                                                      l.raw_data(), gs.raw_data(), dx.raw_data());
      return TensorList{dx};
    });
  if (reduction == 0) return reshape(loss_rows, target.shape());
  if (reduction == 2) return sum(loss_rows);
  // 0 counted rows: 0/0 = NaN, as PyTorch.
  if (counted >= 0) return sum(loss_rows) / static_cast<double>(counted);
  const Tensor rows_counted = sum(to_dtype(ge(t, scalar_tensor(0, DType::Int64, true)), loss_rows.dtype()));
  return sum(loss_rows) / rows_counted;
}

// Class targets only (probability targets are ordinary ops in cross_entropy itself).
Tensor cross_entropy_reference(const Tensor& logits, const Tensor& target, int64_t ignore_index, int reduction) {
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  const Tensor counted = ne(target, scalar_tensor(static_cast<double>(ignore_index), DType::Int64, true));
  const Tensor safe_target = target * to_dtype(counted, DType::Int64);  // ignored rows read class 0
  const Tensor picked = gather(log_softmax_reference(logits, class_dim), class_dim, unsqueeze(safe_target, class_dim));
  const Tensor loss = -squeeze(picked, {class_dim}) * to_dtype(counted, logits.dtype());
  if (reduction == 0) return loss;
  return reduction == 2 ? sum(loss) : sum(loss) / sum(to_dtype(counted, logits.dtype()));
}

namespace {
// `saved` and then those of weight and bias that are defined (an undefined saved tensor reads as
// freed in the backward).
TensorList affine_saved(TensorList saved, const Tensor& weight, const Tensor& bias) {
  for (const Tensor* p : {&weight, &bias})
    if (p->defined()) saved.push_back(*p);
  return saved;
}
}  // namespace

// layer_norm over the trailing dims `normalized_shape`:
//   xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased var); y = xhat * w + b
//   dxhat = dy * w;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   dw = sum over the rows of dy * xhat,  db = sum over the rows of dy
// One row kernel each way, w and b applied inside it (no pass over y for each). The backward
// rebuilds xhat from the saved x, mean and rstd (one activation kept, x). Under create_graph it
// differentiates layer_norm_reference, the same function in ordinary ops. A w or b of another
// dtype or device than x is applied after the kernel by ordinary (promoting) ops.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  as_float(x, "layer_norm");
  if (any_storage_only({&x, &weight, &bias}))
    return to_dtype(layer_norm(widened(x), normalized_shape, widened(weight), widened(bias), eps), x.dtype());
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool ok = k >= 1 && k <= x.dim();
  for (int64_t i = 0; ok && i < k; ++i) ok = x.shape()[x.dim() - k + i] == normalized_shape[i];
  TG_CHECK(ok, ShapeError, "layer_norm: normalized_shape ", shape_str(normalized_shape),
           " does not match the trailing dims of the input of shape ", shape_str(x.shape()));
  for (const Tensor* p : {&weight, &bias})
    TG_CHECK(!p->defined() || p->shape() == normalized_shape, ShapeError, "layer_norm: weight and bias must have shape ",
             shape_str(normalized_shape), ", got ", shape_str(p->shape()));
  const auto fusable = [&](const Tensor& p) {
    return !p.defined() || (p.dtype() == x.dtype() && p.device() == x.device());
  };
  if (!fusable(weight) || !fusable(bias)) {
    Tensor y = layer_norm(x, normalized_shape, Tensor(), Tensor(), eps);
    if (weight.defined()) y = y * weight;
    return bias.defined() ? y + bias : y;
  }
  const int64_t cols = numel_of(normalized_shape), rows = cols == 0 ? 0 : x.numel() / cols;
  Tensor xc, wc, bc;
  {
    GradModeGuard no_grad(false);
    xc = contiguous(x);
    if (weight.defined()) wc = contiguous(weight);
    if (bias.defined()) bc = contiguous(bias);
  }
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Shape stat_shape(x.shape().begin(), x.shape().end() - k);
  stat_shape.insert(stat_shape.end(), k, 1);
  Tensor mu = empty(stat_shape, x.dtype(), x.device()), rstd = empty(stat_shape, x.dtype(), x.device());
  const auto data = [](const Tensor& t) -> void* { return t.defined() ? t.raw_data() : nullptr; };
  const LayerNormArgs args{x.dtype(), rows, cols, xc.raw_data(), data(wc), data(bc), mu.raw_data(), rstd.raw_data(), eps};
  backend(x.device()).layer_norm_rows(args, y.raw_data());
  if (should_record({&x, &weight, &bias}))
    record("LayerNormBackward", {x, weight, bias}, {y}, affine_saved({x, mu, rstd}, weight, bias),
           [normalized_shape, eps, rows, cols, has_w = weight.defined(), has_b = bias.defined()](
               const BackwardContext& c, const TensorList& g) {
      const Tensor x = c.saved(0), d = g[0];
      const Tensor w = has_w ? c.saved(3) : Tensor(), b = has_b ? c.saved(3 + has_w) : Tensor();
      if (GradMode::is_enabled()) {
        TensorList inputs{x};
        for (const Tensor& p : {w, b})
          if (p.defined()) inputs.push_back(p);
        TensorList grads = grad_through_reference({layer_norm_reference(x, normalized_shape, w, b, eps)}, g, inputs);
        TensorList out{grads[0], Tensor(), Tensor()};
        size_t next = 1;
        if (w.defined()) out[1] = grads[next++];
        if (b.defined()) out[2] = grads[next++];
        return out;
      }
      const Tensor xc = contiguous(detach(x)), mu = c.saved(1), rs = c.saved(2);
      const Tensor wc = w.defined() ? contiguous(detach(w)) : Tensor(), dc = contiguous(d);
      Tensor dx = empty(d.shape(), d.dtype(), d.device());
      Tensor dw = w.defined() && c.needs_grad(1) ? empty(normalized_shape, d.dtype(), d.device()) : Tensor();
      Tensor db = b.defined() && c.needs_grad(2) ? empty(normalized_shape, d.dtype(), d.device()) : Tensor();
      const auto data = [](const Tensor& t) -> void* { return t.defined() ? t.raw_data() : nullptr; };
      const LayerNormArgs a{d.dtype(), rows, cols, xc.raw_data(), data(wc), nullptr, mu.raw_data(), rs.raw_data(), eps};
      backend(d.device()).layer_norm_backward_rows(a, dc.raw_data(), dx.raw_data(), data(dw), data(db));
      return TensorList{dx, dw, db};
    });
  return y;
}

Tensor layer_norm_reference(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                            double eps) {
  Dims dims;
  for (int64_t i = x.dim() - static_cast<int64_t>(normalized_shape.size()); i < x.dim(); ++i) dims.push_back(i);
  const Tensor centred = x - mean(x, dims, true);
  Tensor y = centred * rsqrt(mean(centred * centred, dims, true) + eps);
  if (weight.defined()) y = y * weight;
  return bias.defined() ? y + bias : y;
}

// embedding: y[..., :] = weight[indices[...], :]; dweight = rows of dy added at their indices
// (never a dense one-hot), except the padding row, which gets no gradient.
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx) {
  TG_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be 2-d (num_embeddings, dim), got shape ",
           shape_str(weight.shape()));
  TG_CHECK(is_integer(indices.dtype()), TypeError, "embedding: indices must be integers, got ", dtype_name(indices.dtype()));
  Tensor flat = reshape(detach(to_dtype(indices, DType::Int64)), {-1});
  Tensor rows;
  {
    GradModeGuard no_grad(false);
    rows = index_select(weight, 0, flat);
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.size(1));
  Tensor y = view(rows, out_shape);
  if (should_record({&weight})) {
    Shape wshape = weight.shape();
    record("EmbeddingBackward", {weight}, {y}, {flat}, [wshape, padding_idx](const BackwardContext& c, const TensorList& g) {
      Tensor idx = c.saved(0);
      Tensor grows = reshape(g[0], {idx.size(0), wshape[1]});
      if (padding_idx) {
        int64_t pad = *padding_idx < 0 ? *padding_idx + wshape[0] : *padding_idx;
        Tensor keep = ne(idx, scalar_tensor(static_cast<double>(pad), DType::Int64, true));
        grows = grows * unsqueeze(to_dtype(keep, grows.dtype()), 1);
      }
      return TensorList{index_add(zeros(wshape, g[0].dtype(), g[0].device()), 0, idx, grows)};
    });
  }
  return y;
}

}  // namespace tg
