// Writing by masks and by index tensors along a dim: masked_select, masked_scatter, scatter and
// scatter_reduce. Each works on the flattened tensor with flat positions computed on the device
// (nonzero of the mask; index * stride + the other coordinates), then uses ops with gradients:
// index_select reads, index_put writes (the gradient of what was overwritten is 0), index_add
// accumulates.
#include "autograd/grad_mode.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

Tensor flat(const Tensor& t) { return reshape(t, {-1}); }

// The flat positions of the mask's true elements (int64, in row-major order).
Tensor true_positions(const Tensor& mask, const char* op) {
  TG_CHECK(mask.dtype() == DType::Bool, TypeError, op, ": mask must be a bool tensor, got ", dtype_name(mask.dtype()));
  GradModeGuard no_grad(false);
  return flat(nonzero(flat(mask)));
}

// Checks index against x (and src) as PyTorch's scatter does: as many dims, and no larger than x
// outside dim nor than src anywhere. Returns the index wrapped and bounds-checked.
Tensor checked_scatter_index(const Tensor& x, int64_t dim, const Tensor& index, const Tensor* src, const char* op) {
  TG_CHECK(index.dim() == x.dim(), ShapeError, op, ": index of shape ", shape_str(index.shape()), " needs as many dims as ",
           "the input of shape ", shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    TG_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, op, ": index of shape ", shape_str(index.shape()),
             " is larger than the input of shape ", shape_str(x.shape()), " in dim ", d);
    TG_CHECK(!src || (src->dim() == x.dim() && index.size(d) <= src->size(d)), ShapeError, op, ": index of shape ",
             shape_str(index.shape()), " is larger than src of shape ", src ? shape_str(src->shape()) : std::string(),
             " in dim ", d);
  }
  return checked_index(index, x.dim() == 0 ? 1 : x.size(dim), op, dim, x.device());
}

// The flat position in a contiguous tensor of shape `shape` of each index element:
// sum_{d != dim} i_d stride_d + index[i] stride_dim, flattened in the index's row-major order.
Tensor scatter_positions(const Shape& shape, int64_t dim, const Tensor& index) {
  GradModeGuard no_grad(false);
  const int64_t nd = static_cast<int64_t>(shape.size());
  std::vector<int64_t> stride(static_cast<size_t>(nd), 1);
  for (int64_t d = nd - 2; d >= 0; --d) stride[static_cast<size_t>(d)] = stride[static_cast<size_t>(d + 1)] * shape[static_cast<size_t>(d + 1)];
  Tensor pos = nd == 0 ? index : index * double(stride[static_cast<size_t>(dim)]);
  for (int64_t d = 0; d < nd; ++d) {
    if (d == dim) continue;
    Shape along(static_cast<size_t>(nd), 1);
    along[static_cast<size_t>(d)] = index.size(d);
    pos = pos + reshape(arange(0, double(index.size(d)), 1, DType::Int64, index.device()) * double(stride[static_cast<size_t>(d)]),
                        along);
  }
  return flat(pos);
}

// src's leading part of the index's shape (PyTorch reads src only where the index has elements).
Tensor leading_part(const Tensor& src, const Tensor& index) {
  Tensor t = src;
  for (int64_t d = 0; d < src.dim(); ++d)
    if (t.size(d) != index.size(d)) t = narrow(t, d, 0, index.size(d));
  return t;
}

}  // namespace

// masked_select: the elements of x where mask is true (both broadcast), as a 1-d tensor
Tensor masked_select(const Tensor& x, const Tensor& mask) {
  check_same_device("masked_select", {&x, &mask});
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_select");
  return index_select(flat(expand(x, shape)), 0, true_positions(expand(mask, shape), "masked_select"));
}

// masked_scatter: x with its masked elements (mask broadcast to x) replaced, in row-major order,
// by the first elements of source
Tensor masked_scatter(const Tensor& x, const Tensor& mask, const Tensor& source) {
  check_same_device("masked_scatter", {&x, &mask, &source});
  const Tensor positions = true_positions(expand(mask, x.shape()), "masked_scatter");
  const int64_t n = positions.numel();
  TG_CHECK(source.numel() >= n, ShapeError, "masked_scatter: the mask selects ", n, " elements but source of shape ",
           shape_str(source.shape()), " has ", source.numel());
  return reshape(index_put(flat(x), {positions}, narrow(flat(source), 0, 0, n)), x.shape());
}

// scatter: x with x[..., index[i], ...] = src[i] along dim (src a tensor or a number); with
// repeated positions one write wins, as in PyTorch
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_same_device("scatter", {&x, &src});
  dim = x.dim() == 0 ? wrap_dim(dim, 0, "scatter") : wrap_dim(dim, x.dim(), "scatter");
  const bool number = src.is_wrapped_number() || src.dim() == 0;
  const Tensor idx = checked_scatter_index(x, dim, index, number ? nullptr : &src, "scatter");
  const Tensor values = number ? src : flat(leading_part(src, idx));
  return reshape(index_put(flat(x), {scatter_positions(x.shape(), dim, idx)}, values), x.shape());
}

// scatter_reduce: combines src into x at the index's positions along dim by reduce = "sum",
// "prod", "mean", "amax" or "amin", with x's own value (include_self) or without it. Positions no
// index names keep x. prod / amax / amin sort the values into one run per position: amax / amin
// take each run's extreme (the gradient goes to that one element; PyTorch shares it among equal
// ones), prod multiplies each run by a segmented scan.
Tensor scatter_reduce(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const std::string& reduce,
                      bool include_self) {
  check_same_device("scatter_reduce", {&x, &src});
  dim = x.dim() == 0 ? wrap_dim(dim, 0, "scatter_reduce") : wrap_dim(dim, x.dim(), "scatter_reduce");
  const Tensor idx = checked_scatter_index(x, dim, index, &src, "scatter_reduce");
  const Tensor positions = scatter_positions(x.shape(), dim, idx);
  const Tensor values = to_dtype(flat(leading_part(src, idx)), x.dtype());
  const Tensor base = flat(x);
  const Tensor zero = zeros({}, x.dtype(), x.device());
  const Tensor own = include_self ? base : index_put(base, {positions}, zero);  // x's value, or nothing, at each position
  if (reduce == "sum") return reshape(index_add(own, 0, positions, values), x.shape());
  if (reduce == "mean") {
    Tensor count;
    {
      GradModeGuard no_grad(false);
      count = index_add(zeros({base.numel()}, x.dtype(), x.device()), 0, positions, ones_like(values));
      count = count + (include_self ? 1.0 : 0.0);
      count = where(eq(count, zero), ones_like(count), count);  // untouched positions: x / 1
    }
    const Tensor total = index_add(own, 0, positions, values);
    return reshape(is_floating(x.dtype()) ? total / count : floor_divide(total, count), x.shape());
  }
  TG_CHECK(reduce == "amax" || reduce == "amin" || reduce == "prod", ValueError, "scatter_reduce: reduce must be 'sum', ",
           "'prod', 'mean', 'amax' or 'amin', got '", reduce, "' (input of shape ", shape_str(x.shape()), ")");
  if (positions.numel() == 0) return clone(x);
  const bool is_prod = reduce == "prod", is_max = reduce == "amax";
  // Sort the values into runs of one target position each (for amax / amin by value first, the
  // extreme last in its run); each run's last element then gives its target's result.
  Tensor order, sorted_positions, run_ends;
  {
    GradModeGuard no_grad(false);
    const Tensor by_value = is_prod ? arange(0, double(positions.numel()), 1, DType::Int64, x.device())
                                    : argsort(detach(values), 0, !is_max);
    order = index_select(by_value, 0, argsort(index_select(positions, 0, by_value), 0, false));
    sorted_positions = index_select(positions, 0, order);
    const int64_t n = sorted_positions.numel();
    run_ends = flat(nonzero(cat({ne(narrow(sorted_positions, 0, 1, n - 1), narrow(sorted_positions, 0, 0, n - 1)),
                                 ones({1}, DType::Bool, x.device())}, 0)));
  }
  const Tensor targets = index_select(sorted_positions, 0, run_ends);
  Tensor result;
  if (is_prod) {
    // The product of each run by a segmented scan (Hillis-Steele): at step s an element takes the
    // product s places back when that place is in its run (runs are contiguous, so the whole stretch
    // is). Only multiplications: the gradient is exact with zeros too.
    Tensor running = index_select(values, 0, order);
    const int64_t n = running.numel();
    for (int64_t step = 1; step < n; step *= 2) {
      Tensor same_run;
      {
        GradModeGuard no_grad(false);
        same_run = cat({zeros({step}, DType::Bool, x.device()),
                        eq(narrow(sorted_positions, 0, step, n - step), narrow(sorted_positions, 0, 0, n - step))}, 0);
      }
      const Tensor earlier = cat({ones({step}, running.dtype(), x.device()), narrow(running, 0, 0, n - step)}, 0);
      running = where(same_run, running * earlier, running);
    }
    result = index_select(running, 0, run_ends);
    if (include_self) result = result * index_select(base, 0, targets);
  } else {
    result = index_select(values, 0, index_select(order, 0, run_ends));
    if (include_self) {
      const Tensor current = index_select(base, 0, targets);
      result = is_max ? maximum(current, result) : minimum(current, result);
    }
  }
  return reshape(index_put(base, {targets}, result), x.shape());
}

}  // namespace tg
