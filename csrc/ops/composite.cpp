// Small ops written as other ops (their gradients are those ops'): statistics pairs, products of
// vectors, moving dims, diagonals and gathering along a dim with broadcasting.
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

// var_mean: (var, mean) over dims, var with the given correction (1: unbiased)
TensorList var_mean(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  return {var(x, dims, correction, keepdim), mean(x, dims, keepdim)};
}

// count_nonzero: the number of nonzero elements (NaN counts) over dims, int64
Tensor count_nonzero(const Tensor& x, const Dims& dims) {
  GradModeGuard no_grad(false);
  const Tensor nonzero = x.dtype() == DType::Bool ? x : ne(x, wrap_scalar(0.0, x));
  return sum(to_dtype(nonzero, DType::Int64), dims);
}

// dot: sum_i a_i b_i of two vectors of one length; inner: over the last dims, a (..., n) b (..., n)
// -> a's leading dims then b's; outer: a_i b_j
Tensor dot(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dim() == 1 && b.dim() == 1 && a.size(0) == b.size(0), ShapeError, "dot: expected two 1-d tensors of one length, got shapes ",
           shape_str(a.shape()), " and ", shape_str(b.shape()));
  return matmul(a, b);
}
Tensor inner(const Tensor& a, const Tensor& b) {
  if (a.dim() == 0 || b.dim() == 0) return a * b;
  TG_CHECK(a.size(-1) == b.size(-1), ShapeError, "inner: the last dims of shapes ", shape_str(a.shape()), " and ",
           shape_str(b.shape()), " differ");
  const int64_t n = a.size(-1);
  Shape out(a.shape().begin(), a.shape().end() - 1);
  out.insert(out.end(), b.shape().begin(), b.shape().end() - 1);
  return reshape(matmul(reshape(a, {-1, n}), transpose(reshape(b, {-1, n}), 0, 1)), out);
}
Tensor outer(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dim() == 1 && b.dim() == 1, ShapeError, "outer: expected two 1-d tensors, got shapes ", shape_str(a.shape()),
           " and ", shape_str(b.shape()));
  return unsqueeze(a, 1) * unsqueeze(b, 0);
}

// movedim: the source dims moved to the destination positions, the others keeping their order
Tensor movedim(const Tensor& x, const Dims& source, const Dims& destination) {
  TG_CHECK(source.size() == destination.size(), ValueError, "movedim: ", source.size(), " source dims for ",
           destination.size(), " destinations");
  const int64_t n = x.dim();
  if (n == 0) {  // dims 0 and -1 name the only position a 0-d tensor has: nothing moves
    for (size_t k = 0; k < source.size(); ++k) wrap_dim(source[k], 0, "movedim"), wrap_dim(destination[k], 0, "movedim");
    return permute(x, {});
  }
  Dims order(static_cast<size_t>(n), -1);
  std::vector<bool> moved(static_cast<size_t>(n), false), taken(static_cast<size_t>(n), false);
  for (size_t k = 0; k < source.size(); ++k) {
    const int64_t s = wrap_dim(source[k], n, "movedim"), d = wrap_dim(destination[k], n, "movedim");
    TG_CHECK(!moved[static_cast<size_t>(s)] && !taken[static_cast<size_t>(d)], ValueError,
             "movedim: repeated dims in source or destination (shape ", shape_str(x.shape()), ")");
    order[static_cast<size_t>(d)] = s, moved[static_cast<size_t>(s)] = true, taken[static_cast<size_t>(d)] = true;
  }
  int64_t next = 0;
  for (auto& o : order) {
    if (o >= 0) continue;
    while (moved[static_cast<size_t>(next)]) ++next;
    o = next++;
  }
  return permute(x, order);
}

// diagonal: the elements (i, i + offset) of the (dim1, dim2) planes, as a last dim
Tensor diagonal(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  TG_CHECK(x.dim() >= 2, ShapeError, "diagonal: expected at least 2 dims, got shape ", shape_str(x.shape()));
  const int64_t d1 = wrap_dim(dim1, x.dim(), "diagonal"), d2 = wrap_dim(dim2, x.dim(), "diagonal");
  TG_CHECK(d1 != d2, ValueError, "diagonal: dim1 and dim2 must differ, got ", dim1, " and ", dim2);
  const Tensor planes = movedim(x, {d1, d2}, {-2, -1});  // (..., H, W)
  const int64_t H = planes.size(-2), W = planes.size(-1);
  const int64_t row0 = offset >= 0 ? 0 : -offset, col0 = offset >= 0 ? offset : 0;
  const int64_t length = std::max<int64_t>(0, std::min(H - row0, W - col0));
  Shape flat(planes.shape().begin(), planes.shape().end() - 2);
  flat.push_back(H * W);
  // element k sits at (row0 + k) W + col0 + k of the flattened plane
  const Tensor at = arange(double(row0 * W + col0), double(row0 * W + col0 + length * (W + 1)), double(W + 1),
                           DType::Int64, x.device());
  return index_select(reshape(planes, flat), -1, length > 0 ? at : arange(0, 0, 1, DType::Int64, x.device()));
}

// diag: a vector to the matrix with it on diagonal `offset`; a matrix to that diagonal
Tensor diag(const Tensor& x, int64_t offset) {
  if (x.dim() == 2) return diagonal(x, offset, 0, 1);
  TG_CHECK(x.dim() == 1, ShapeError, "diag: expected a 1-d or 2-d tensor, got shape ", shape_str(x.shape()));
  TG_CHECK(offset > INT64_MIN, ValueError, "diag: offset ", offset, " is out of range");
  const int64_t n = x.size(0), side = checked_add(n, offset >= 0 ? offset : -offset, "diag");
  check_shape({side, side}, "diag");
  const int64_t row0 = offset >= 0 ? 0 : -offset, col0 = offset >= 0 ? offset : 0;
  const Tensor at = arange(double(row0 * side + col0), double(row0 * side + col0 + n * (side + 1)), double(side + 1),
                           DType::Int64, x.device());
  return reshape(index_add(zeros({side * side}, x.dtype(), x.device()), 0, at, x), {side, side});
}

// take_along_dim: gather along dim after broadcasting x and indices over the other dims
Tensor take_along_dim(const Tensor& x, const Tensor& indices, std::optional<int64_t> dim) {
  if (!dim) return take_along_dim(reshape(x, {-1}), reshape(indices, {-1}), 0);
  TG_CHECK(x.dim() == indices.dim(), ShapeError, "take_along_dim: input of shape ", shape_str(x.shape()),
           " and indices of shape ", shape_str(indices.shape()), " need as many dims");
  const int64_t d = wrap_dim(*dim, x.dim(), "take_along_dim");
  if (x.dim() == 0) return reshape(take_along_dim(reshape(x, {1}), reshape(indices, {1}), 0), {});
  Shape xs = x.shape(), is = indices.shape();
  xs[static_cast<size_t>(d)] = is[static_cast<size_t>(d)] = 1;
  Shape common = broadcast_shapes(xs, is, "take_along_dim");
  Shape x_to = common, i_to = common;
  x_to[static_cast<size_t>(d)] = x.size(d), i_to[static_cast<size_t>(d)] = indices.size(d);
  return gather(expand(x, x_to), d, contiguous(expand(indices, i_to)));
}

// vector_norm: (sum |x|^p)^(1/p) over dims; p = inf / -inf the largest / smallest |x|, p = 0 the
// count of nonzeros. d/ds s^(1/p) = y^(1-p) / p is taken as 0 where y = 0 (PyTorch's subgradient:
// the norm of a zero vector has gradient 0, not NaN).
Tensor vector_norm(const Tensor& x, double ord, const Dims& dims, bool keepdim) {
  TG_CHECK(is_floating(x.dtype()), TypeError, "vector_norm: expected a floating-point tensor, got ", dtype_name(x.dtype()),
           " of shape ", shape_str(x.shape()));
  if (any_storage_only({&x})) return to_dtype(vector_norm(widened(x), ord, dims, keepdim), x.dtype());
  if (ord == INFINITY) return amax(abs(x), dims, keepdim);
  if (ord == -INFINITY) return amin(abs(x), dims, keepdim);
  if (ord == 0) {
    GradModeGuard no_grad(false);
    return to_dtype(sum(ne(x, wrap_scalar(0.0, x)), dims, keepdim), x.dtype());
  }
  if (ord == 1) return sum(abs(x), dims, keepdim);
  const Tensor s = ord == 2 ? sum(x * x, dims, keepdim) : sum(pow(abs(x), wrap_scalar(ord, x)), dims, keepdim);
  Tensor y;
  {
    GradModeGuard no_grad(false);
    y = ord == 2 ? sqrt(s) : pow(s, wrap_scalar(1.0 / ord, s));
  }
  if (should_record({&s}))
    record("NormBackward", {s}, {y}, {y}, [ord](const BackwardContext& c, const TensorList& g) {
      const Tensor y = c.saved(0);
      const Tensor slope = ord == 2 ? 0.5 / y : pow(y, wrap_scalar(1.0 - ord, y)) / ord;
      return TensorList{where(eq(y, wrap_scalar(0.0, y)), zeros_like(g[0]), g[0] * slope)};
    });
  return y;
}

}  // namespace tg
