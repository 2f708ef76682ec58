// Reductions over a dim, a tuple of dims, or all dims, with keepdim.
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

Shape reduced_shape(const Shape& in, uint64_t mask, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    if (mask >> d & 1) {
      if (keepdim) out.push_back(1);
    } else {
      out.push_back(in[d]);
    }
  }
  return out;
}

void run_reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t r, int64_t inner, const void* in, const Tensor& out) {
  backend(x.device()).reduce(op, x.dtype(), outer, r, inner, in, out.raw_data());
}

// Runs `op` over the dims in `mask`: lays the input out as (outer, r, inner) -- without a copy
// when the reduced dims are one contiguous run of a contiguous tensor -- and calls the kernel.
Tensor reduce_kernel(ReduceOp op, const Tensor& x, uint64_t mask, bool keepdim, DType out_dtype, const char* name) {
  check_same_device(name, {&x});
  if (x.dtype() != compute_dtype(x.dtype()))  // bfloat16: reduced in float32, rounded once
    return cast_untracked(reduce_kernel(op, compute_copy(x), mask, keepdim, compute_dtype(out_dtype), name), out_dtype);
  const int64_t nd = x.dim();
  Tensor out = empty(reduced_shape(x.shape(), mask, keepdim), out_dtype, x.device());
  int64_t first = -1, last = -1, r = 1;
  for (int64_t d = 0; d < nd; ++d)
    if (mask >> d & 1) {
      if (first < 0) first = d;
      last = d;
      r *= x.shape()[d];
    }
  if (op != ReduceOp::Sum && op != ReduceOp::Prod)
    TG_CHECK(r > 0 || out.numel() == 0, IndexError, name, ": cannot reduce over a zero-size dimension of a tensor of shape ",
             shape_str(x.shape()));
  if (out.numel() == 0) return out;
  bool run = true;
  for (int64_t d = first; d <= last && first >= 0; ++d) run = run && (mask >> d & 1);
  if (first >= 0 && run && x.is_contiguous()) {
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < first; ++d) outer *= x.shape()[d];
    for (int64_t d = last + 1; d < nd; ++d) inner *= x.shape()[d];
    run_reduce(op, x, outer, r, inner, x.raw_data(), out);
    return out;
  }
  // General case: kept dims first, reduced dims last, then one contiguous copy.
  Dims order;
  for (int64_t d = 0; d < nd; ++d)
    if (!(mask >> d & 1)) order.push_back(d);
  for (int64_t d = 0; d < nd; ++d)
    if (mask >> d & 1) order.push_back(d);
  Tensor xp;
  {
    GradModeGuard no_grad(false);
    xp = contiguous(permute(x, order));
  }
  run_reduce(op, x, out.numel(), r, 1, xp.raw_data(), out);
  return out;
}

// The gradient of a reduction, put back at the input's rank (size 1 on the reduced dims).
Tensor unsqueeze_reduced(const Tensor& g, const Shape& in_shape, uint64_t mask, bool keepdim) {
  if (keepdim) return g;
  return reshape(g, reduced_shape(in_shape, mask, true));
}

int64_t count_of(const Shape& shape, uint64_t mask) {
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (mask >> d & 1) n *= shape[d];
  return n;
}

}  // namespace

// sum: y = sum_{reduced} x; dx = broadcast(dy). Integers and bools sum to int64.
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
  uint64_t mask = reduce_mask(dims, x.dim(), "sum");
  DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor in = x.dtype() == DType::Bool ? to_dtype(x, DType::Int64) : x;
  Tensor y = reduce_kernel(ReduceOp::Sum, in, mask, keepdim, out_dtype, "sum");
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("SumBackward", {x}, {y}, {}, [in_shape, mask, keepdim](const BackwardContext&, const TensorList& g) {
      return TensorList{expand(unsqueeze_reduced(g[0], in_shape, mask, keepdim), in_shape)};
    });
  }
  return y;
}

// mean: y = sum / n; dx = broadcast(dy) / n
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  TG_CHECK(is_floating(x.dtype()), TypeError, "mean: expected a floating-point tensor, got ", dtype_name(x.dtype()),
           " (convert it with .float() first)");
  uint64_t mask = reduce_mask(dims, x.dim(), "mean");
  int64_t n = count_of(x.shape(), mask);
  return sum(x, dims, keepdim) / static_cast<double>(n);  // n = 0 gives NaN, as in NumPy
}

// prod: y = prod_{dim} x (integers and bools to int64; float32 accumulated in float64), of
// everything without a dim. dx_k = dy prod_{i != k} x_i = dy L_k R_k, L and R the products of the
// elements before and after k (exclusive running products from either end): right with zeros too,
// where dy y / x_k is not.
Tensor prod(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  if (!dim) {
    const Tensor y = prod(reshape(x, {-1}), 0, false);
    return keepdim ? reshape(y, Shape(static_cast<size_t>(x.dim()), 1)) : y;
  }
  if (x.dim() == 0) {
    wrap_dim(*dim, 0, "prod");
    return prod(reshape(x, {1}), 0, false);
  }
  const int64_t d = wrap_dim(*dim, x.dim(), "prod");
  const uint64_t mask = 1ull << d;
  const Tensor in = is_floating(x.dtype()) ? x : to_dtype(x, DType::Int64);
  Tensor y = reduce_kernel(ReduceOp::Prod, in, mask, keepdim, in.dtype(), "prod");
  if (should_record({&x})) {
    const Shape in_shape = x.shape();
    record("ProdBackward", {x}, {y}, {x}, [in_shape, mask, keepdim, d](const BackwardContext& c, const TensorList& g) {
      const Tensor x = c.saved(0);
      const Tensor others = exclusive_cumprod(x, d) * flip(exclusive_cumprod(flip(x, {d}), d), {d});
      return TensorList{unsqueeze_reduced(g[0], in_shape, mask, keepdim) * others};
    });
  }
  return y;
}

// amax/amin: dx = dy on the elements equal to the extremum, shared evenly among ties.
static Tensor extreme(const Tensor& x, const Dims& dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  uint64_t mask = reduce_mask(dims, x.dim(), name);
  Tensor y = reduce_kernel(is_max ? ReduceOp::Max : ReduceOp::Min, x, mask, keepdim, x.dtype(), name);
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record(is_max ? "AmaxBackward" : "AminBackward", {x}, {y}, {x, y},
           [in_shape, mask, keepdim](const BackwardContext& c, const TensorList& g) {
             Tensor x = c.saved(0);
             Tensor y = unsqueeze_reduced(c.saved(1), in_shape, mask, keepdim);
             Tensor hit = to_dtype(eq(x, y), x.dtype());
             Dims rdims;
             for (size_t d = 0; d < in_shape.size(); ++d)
               if (mask >> d & 1) rdims.push_back(static_cast<int64_t>(d));
             Tensor count = sum(hit, rdims, true);
             return TensorList{hit * (unsqueeze_reduced(g[0], in_shape, mask, keepdim) / count)};
           });
  }
  return y;
}
// max / min over one dim, as PyTorch's: (values, indices), the index of the first extreme (the first
// NaN, where there is one) and its value; the gradient goes to that element alone (gather's),
// where amax shares it among equal extremes.
TensorList max_with_index(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const Tensor index = is_max ? argmax(x, dim, true) : argmin(x, dim, true);
  Tensor values = gather(x, dim, index);
  if (!keepdim && x.dim() > 0) return {squeeze(values, {dim}), squeeze(index, {dim})};
  return {values, index};
}

// any / all: whether some / every element is nonzero (NaN is), as the max / min of x != 0. Bool
// out, no gradient; over no elements any is False and all is True.
static Tensor any_or_all(const Tensor& x, const Dims& dims, bool keepdim, bool is_any) {
  const char* name = is_any ? "any" : "all";
  const uint64_t mask = reduce_mask(dims, x.dim(), name);
  GradModeGuard no_grad(false);
  if (count_of(x.shape(), mask) == 0) {
    Tensor out = zeros(reduced_shape(x.shape(), mask, keepdim), DType::Bool, x.device());
    return is_any ? out : logical_not(out);
  }
  const Tensor nonzero = x.dtype() == DType::Bool ? x : ne(x, wrap_scalar(0.0, x));
  return reduce_kernel(is_any ? ReduceOp::Max : ReduceOp::Min, nonzero, mask, keepdim, DType::Bool, name);
}
Tensor any(const Tensor& x, const Dims& dims, bool keepdim) { return any_or_all(x, dims, keepdim, true); }
Tensor all(const Tensor& x, const Dims& dims, bool keepdim) { return any_or_all(x, dims, keepdim, false); }

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) { return extreme(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) { return extreme(x, dims, keepdim, false); }

static Tensor arg_extreme(const Tensor& x, std::optional<int64_t> dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "argmax" : "argmin";
  ReduceOp op = is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin;
  if (!dim) {
    Tensor flat = reshape(x, {-1});
    Tensor r = reduce_kernel(op, flat, 1, false, DType::Int64, name);
    return keepdim ? reshape(r, Shape(x.dim(), 1)) : r;
  }
  uint64_t mask = x.dim() == 0 ? 0 : 1ull << wrap_dim(*dim, x.dim(), name);
  if (x.dim() == 0) return zeros({}, DType::Int64, x.device());
  return reduce_kernel(op, x, mask, keepdim, DType::Int64, name);
}
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { return arg_extreme(x, dim, keepdim, true); }
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { return arg_extreme(x, dim, keepdim, false); }

// var: sum((x - mean)^2) / (n - correction); composed of differentiable ops.
Tensor var(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  TG_CHECK(is_floating(x.dtype()), TypeError, "var: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  // bfloat16: one rounding of the float32 result (the composition below would round each step)
  if (any_storage_only({&x})) return to_dtype(var(widened(x), dims, correction, keepdim), x.dtype());
  uint64_t mask = reduce_mask(dims, x.dim(), "var");
  int64_t n = count_of(x.shape(), mask);
  Tensor d = x - mean(x, dims, true);
  double denom = std::max(0.0, static_cast<double>(n) - correction);
  return sum(d * d, dims, keepdim) / denom;
}

// std: sqrt(var); d var = dy / (2 std), 0 where std = 0 (a constant input: PyTorch's choice of
// subgradient, where sqrt's derivative would give inf and the chain NaN)
Tensor std(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  const Tensor v = var(x, dims, correction, keepdim);
  Tensor y;
  {
    GradModeGuard no_grad(false);
    y = sqrt(v);
  }
  if (should_record({&v}))
    record("StdBackward", {v}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) {
      const Tensor y = c.saved(0);
      return TensorList{where(eq(y, wrap_scalar(0.0, y)), zeros_like(g[0]), g[0] / (y * 2.0))};
    });
  return y;
}

// logsumexp: m + log(sum(exp(x - m))) with m = max (detached: the result does not depend on it)
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
  TG_CHECK(is_floating(x.dtype()), TypeError, "logsumexp: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  if (any_storage_only({&x})) return to_dtype(logsumexp(widened(x), dims, keepdim), x.dtype());  // as var
  Tensor m;
  const uint64_t rmask = reduce_mask(dims, x.dim(), "logsumexp");
  if (count_of(x.shape(), rmask) == 0) {  // an empty sum: log 0 = -inf, as PyTorch (no max to shift by)
    Tensor out = log(sum(exp(x), dims, true));
    return keepdim ? out : reshape(out, reduced_shape(x.shape(), rmask, false));
  }
  {
    GradModeGuard no_grad(false);
    m = amax(x, dims, true);
    m = where(logical_not(eq(abs(m), wrap_scalar(INFINITY, m))), m, zeros_like(m));  // all -inf rows stay -inf
  }
  Tensor out = log(sum(exp(x - m), dims, true)) + m;
  if (!keepdim) {
    uint64_t mask = reduce_mask(dims, x.dim(), "logsumexp");
    out = reshape(out, reduced_shape(x.shape(), mask, false));
  }
  return out;
}

// sum_to: the adjoint of expand -- sum over the dims that broadcasting added or stretched.
Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  TG_CHECK(lead >= 0, ShapeError, "sum_to: cannot reduce shape ", shape_str(x.shape()), " to ", shape_str(shape));
  Dims dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[d - lead] == 1 && x.shape()[d] != 1) dims.push_back(d);
    else TG_CHECK(shape[d - lead] == x.shape()[d], ShapeError, "sum_to: cannot reduce shape ", shape_str(x.shape()),
                  " to ", shape_str(shape));
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

}  // namespace tg
