// Running reductions along one dim (the backend's scan kernel): cumsum, cumprod, logcumsumexp,
// cummax / cummin. Each backward is written in these ops and flips, so it differentiates again.
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// The scan kernel over dim of x (a contiguous copy): values in x's dtype (Sum, Prod, LogSumExp)
// or the int64 index of the running extreme (Max, Min). x is int64, float32 or float64.
Tensor run_scan(ScanOp op, const Tensor& x, int64_t dim) {
  const Tensor xc = contiguous(detach(x));
  const bool wants_index = op == ScanOp::Max || op == ScanOp::Min;
  Tensor out = empty(x.shape(), wants_index ? DType::Int64 : x.dtype(), x.device());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  backend(x.device()).scan(op, x.dtype(), outer, x.size(dim), inner, xc.raw_data(), wants_index ? nullptr : out.raw_data(),
                           wants_index ? static_cast<int64_t*>(out.raw_data()) : nullptr);
  return out;
}

// Applies `scan` (a running reduction of a >= 1-d tensor, dim wrapped) to any input: 0-d as one
// element, bools and small integers as int64 (when `bool_as_int`), bfloat16 / float16 in float32
// rounded once.
template <class F>
Tensor running(const Tensor& x, int64_t dim, const char* name, bool bool_as_int, F scan) {
  dim = wrap_dim(dim, x.dim(), name);
  check_same_device(name, {&x});
  if (x.dim() == 0) return reshape(running(reshape(x, {1}), 0, name, bool_as_int, scan), {});
  // bools and small integers sum and multiply in int64 and stay there (PyTorch's cumsum / cumprod)
  if ((x.dtype() == DType::Bool || is_integer(x.dtype())) && x.dtype() != DType::Int64 && bool_as_int)
    return scan(to_dtype(x, DType::Int64), dim);
  if (is_storage_only(x.dtype()))  // computed in float32 / int64, converted back once
    return to_dtype(running(to_dtype(x, compute_dtype(x.dtype())), dim, name, bool_as_int, scan), x.dtype());
  return scan(x, dim);
}

// sum_{k >= j} t_k along dim
Tensor reverse_cumsum(const Tensor& t, int64_t dim) { return flip(cumsum(flip(t, {dim}), dim), {dim}); }

// dx_k = L_k sum_{j >= k} dy_j prod_{k < i <= j} x_i, L the exclusive running product: polynomial
// in x, so its derivative is right at zeros too (the masks of the fast formula are not), at the
// cost of (n x n) products per line. The backward uses it only while building a graph (create_graph).
Tensor cumprod_grad_polynomial(const Tensor& x, const Tensor& dy, int64_t dim) {
  const Tensor xl = movedim(x, {dim}, {-1}), dyl = movedim(dy, {dim}, {-1});  // (..., n)
  const int64_t n = xl.size(-1);
  const Tensor k = reshape(arange(0, double(n), 1, DType::Int64, x.device()), {n, 1});
  const Tensor i = reshape(arange(0, double(n), 1, DType::Int64, x.device()), {1, n});
  const Tensor later = cumprod(where(gt(i, k), unsqueeze(xl, -2), ones({}, x.dtype(), x.device())), -1);  // [k, j]: prod_{k<i<=j} x_i
  const Tensor weighted = where(ge(i, k), later * unsqueeze(dyl, -2), zeros({}, x.dtype(), x.device()));
  return movedim(exclusive_cumprod(xl, -1) * sum(weighted, {-1}), {-1}, {dim});
}

// dx_k = sum_{j >= k} dy_j exp(x_k - y_j) as an (n x n) weight matrix per line: linear in dy
// with every weight at most 1 (y_j >= x_k), so its derivatives in dy and x are exact (the sign
// split of the fast formula has none in dy at dy = 0). The backward uses it only while building
// a graph (create_graph).
Tensor logcumsumexp_grad_matrix(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim) {
  const Tensor xl = movedim(x, {dim}, {-1}), yl = movedim(y, {dim}, {-1}), dyl = movedim(dy, {dim}, {-1});  // (..., n)
  const int64_t n = xl.size(-1);
  const Tensor k = reshape(arange(0, double(n), 1, DType::Int64, x.device()), {n, 1});
  const Tensor j = reshape(arange(0, double(n), 1, DType::Int64, x.device()), {1, n});
  const Tensor gap = where(ge(j, k), unsqueeze(xl, -1) - unsqueeze(yl, -2), full({}, -INFINITY, x.dtype(), x.device()));
  return movedim(sum(exp(gap) * unsqueeze(dyl, -2), {-1}), {-1}, {dim});  // [k, j] weights exp(x_k - y_j), j >= k
}

}  // namespace

// prod_{i < k} x_i along dim: the running product shifted by one, 1 first
Tensor exclusive_cumprod(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "cumprod");
  const int64_t n = x.size(dim);
  Shape one = x.shape();
  one[static_cast<size_t>(dim)] = 1;
  if (n == 0) return x;
  return cat({ones(one, x.dtype(), x.device()), narrow(cumprod(x, dim), dim, 0, n - 1)}, dim);
}

// cumsum: y_j = sum_{k <= j} x_k (float32 accumulated in float64, each output rounded once);
// dx_k = sum_{j >= k} dy_j, the reversed running sum of dy
Tensor cumsum(const Tensor& x_in, int64_t dim_in) {
  return running(x_in, dim_in, "cumsum", true, [](const Tensor& x, int64_t dim) {
    Tensor y = run_scan(ScanOp::Sum, x, dim);
    if (should_record({&x}))
      record("CumsumBackward", {x}, {y}, {}, [dim](const BackwardContext&, const TensorList& g) {
        return TensorList{reverse_cumsum(g[0], dim)};
      });
    return y;
  });
}

// cumprod: y_j = prod_{k <= j} x_k. dx_k = sum_{j >= k} dy_j prod_{i <= j, i != k} x_i:
//   before the first zero of the line:  (sum_{j >= k} dy_j y_j) / x_k
//   at the first zero z:                 sum_{j >= z} dy_j cumprod(x with x_z = 1)_j
//   after it:                            0 (every product holds x_z)
// (while building a graph for a second derivative: cumprod_grad_polynomial)
Tensor cumprod(const Tensor& x_in, int64_t dim_in) {
  return running(x_in, dim_in, "cumprod", true, [](const Tensor& x, int64_t dim) {
    Tensor y = run_scan(ScanOp::Prod, x, dim);
    if (should_record({&x}))
      record("CumprodBackward", {x}, {y}, {x, y}, [dim](const BackwardContext& c, const TensorList& g) {
        const Tensor x = c.saved(0), y = c.saved(1), one = ones_like(x);
        if (GradMode::is_enabled()) return TensorList{cumprod_grad_polynomial(x, g[0], dim)};
        const Tensor is_zero = eq(x, wrap_scalar(0.0, x));
        const Tensor zeros_so_far = cumsum(is_zero, dim);
        const Tensor before = eq(zeros_so_far, wrap_scalar(0.0, zeros_so_far));
        const Tensor first_zero = logical_and(is_zero, eq(zeros_so_far, wrap_scalar(1.0, zeros_so_far)));
        const Tensor dx_before = reverse_cumsum(g[0] * y, dim) / where(before, x, one);
        const Tensor dx_first_zero = reverse_cumsum(g[0] * cumprod(where(first_zero, one, x), dim), dim);
        return TensorList{where(before, dx_before, where(first_zero, dx_first_zero, zeros_like(x)))};
      });
    return y;
  });
}

// logcumsumexp: y_j = log sum_{k <= j} exp(x_k). dx_k = sum_{j >= k} dy_j exp(x_k - y_j), summed in
// log space for the positive and the negative parts of dy apart (no exp overflows):
//   dx = exp(x + rlcse(log dy+ - y)) - exp(x + rlcse(log dy- - y)), rlcse the reversed logcumsumexp
//   (dy+ and dy- the positive part of dy and of -dy; while building a graph: logcumsumexp_grad_matrix)
Tensor logcumsumexp(const Tensor& x_in, int64_t dim_in) {
  TG_CHECK(is_floating(x_in.dtype()), TypeError, "logcumsumexp: expected a floating-point tensor, got ",
           dtype_name(x_in.dtype()));
  return running(x_in, dim_in, "logcumsumexp", false, [](const Tensor& x, int64_t dim) {
    Tensor y = run_scan(ScanOp::LogSumExp, x, dim);
    if (should_record({&x}))
      record("LogcumsumexpBackward", {x}, {y}, {x, y}, [dim](const BackwardContext& c, const TensorList& g) {
        const Tensor x = c.saved(0), y = c.saved(1);
        if (GradMode::is_enabled()) return TensorList{logcumsumexp_grad_matrix(x, y, g[0], dim)};
        const Tensor zero = zeros({}, x.dtype(), x.device()), one = ones({}, x.dtype(), x.device());
        const Tensor minus_inf = full({}, -INFINITY, x.dtype(), x.device());
        // log |dy| - y where dy has the sign, else -inf (a constant: log 0 would give NaN gradients)
        auto part = [&](const Tensor& has_sign, const Tensor& magnitude) {
          const Tensor log_dy = where(has_sign, log(where(has_sign, magnitude, one)) - y, minus_inf);
          return exp(x + flip(logcumsumexp(flip(log_dy, {dim}), dim), {dim}));
        };
        return TensorList{part(gt(g[0], zero), g[0]) - part(lt(g[0], zero), -g[0])};
      });
    return y;
  });
}

// cummax / cummin: (values, indices) of the running extreme, a later equal element and every NaN
// taking over (PyTorch's); the values are gathered, so the gradient goes to the chosen elements.
TensorList cumulative_extreme(const Tensor& x, int64_t dim, bool is_max) {
  const char* name = is_max ? "cummax" : "cummin";
  dim = wrap_dim(dim, x.dim(), name);
  check_same_device(name, {&x});
  if (x.dim() == 0) {
    const TensorList r = cumulative_extreme(reshape(x, {1}), 0, is_max);
    return {reshape(r[0], {}), reshape(r[1], {})};
  }
  const DType key_dtype = x.dtype() == DType::Bool ? DType::Int64 : compute_dtype(x.dtype());
  const Tensor index = run_scan(is_max ? ScanOp::Max : ScanOp::Min, cast_untracked(x, key_dtype), dim);
  return {gather(x, dim, index), index};
}

}  // namespace tg
