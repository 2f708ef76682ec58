// Joining and splitting along a dim: cat and stack copy into one new tensor (dx_i = dy narrowed
// to x_i's range); split and chunk are views (narrow).
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

// cat: y = [x_0; x_1; ...] along dim; dx_i = dy narrowed to x_i's range
Tensor cat(const TensorList& xs_in, int64_t dim) {
  TG_CHECK(!xs_in.empty(), ValueError, "cat: expected a non-empty list of tensors");
  TensorList xs;
  for (const Tensor& x : xs_in)
    if (!(x.dim() == 1 && x.numel() == 0 && xs_in.size() > 1)) xs.push_back(x);  // legacy: skip empty 1-d
  if (xs.empty()) xs.push_back(xs_in[0]);
  const Tensor& first = xs[0];
  TG_CHECK(first.dim() > 0, ShapeError, "cat: zero-dimensional tensors cannot be concatenated; use stack");
  dim = wrap_dim(dim, first.dim(), "cat");
  DType dtype = first.dtype();
  Shape shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    check_same_device("cat", {&first, &x});
    dtype = promote(dtype, x.dtype());
    bool ok = x.dim() == first.dim();
    for (int64_t d = 0; ok && d < x.dim(); ++d) ok = d == dim || x.shape()[d] == shape[d];
    TG_CHECK(ok, ShapeError, "cat: tensor 0 has shape ", shape_str(first.shape()), " but tensor ", i, " has shape ",
             shape_str(x.shape()), "; sizes must match except in dim ", dim);
    total = checked_add(total, x.shape()[dim], "cat");
  }
  shape[dim] = total;
  Tensor y = empty(shape, dtype, first.device());
  std::vector<int64_t> sizes;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    int64_t n = x.shape()[dim];
    sizes.push_back(n);
    Tensor part = make_view(y, x.shape(), y.strides(), y.offset() + off * y.strides()[dim]);
    write_into(part, x, "cat");
    off += n;
  }
  // Recorded against every input: a skipped empty 1-d input still gets its (empty) gradient.
  std::vector<int64_t> all_sizes;  // -1: skipped
  for (const Tensor& x : xs_in)
    all_sizes.push_back(xs.size() < xs_in.size() && x.dim() == 1 && x.numel() == 0 ? -1 : x.shape()[dim]);
  if (xs.size() == xs_in.size()) all_sizes = sizes;
  if (should_record(xs_in))
    record("CatBackward", xs_in, {y}, {}, [all_sizes, dim](const BackwardContext& c, const TensorList& g) {
      TensorList out;
      int64_t start = 0;
      for (size_t i = 0; i < all_sizes.size(); ++i) {
        if (!c.needs_grad(i)) out.push_back(Tensor());
        else if (all_sizes[i] < 0) out.push_back(zeros({0}, g[0].dtype(), g[0].device()));
        else out.push_back(narrow(g[0], dim, start, all_sizes[i]));
        start += std::max<int64_t>(all_sizes[i], 0);
      }
      return out;
    });
  return y;
}

Tensor stack(const TensorList& xs, int64_t dim) {
  TG_CHECK(!xs.empty(), ValueError, "stack: expected a non-empty list of tensors");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  TensorList parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    TG_CHECK(xs[i].shape() == xs[0].shape(), ShapeError, "stack: every tensor must have the same shape, but tensor 0 has ",
             shape_str(xs[0].shape()), " and tensor ", i, " has ", shape_str(xs[i].shape()));
    parts.push_back(unsqueeze(xs[i], dim));
  }
  return cat(parts, dim);
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  TG_CHECK(x.dim() > 0, ShapeError, "split: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    TG_CHECK(s >= 0, ValueError, "split: sizes must be non-negative");
    total = checked_add(total, s, "split");
  }
  TG_CHECK(total == x.shape()[dim], ShapeError, "split: sizes add up to ", total, " but dim ", dim, " has size ",
           x.shape()[dim], " (tensor of shape ", shape_str(x.shape()), ")");
  TensorList out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, dim, start, s));
    start += s;
  }
  return out;
}

TensorList split(const Tensor& x, int64_t size, int64_t dim) {
  TG_CHECK(size > 0, ValueError, "split: split_size must be positive, got ", size);
  TG_CHECK(x.dim() > 0, ShapeError, "split: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t left = x.shape()[dim]; left > 0; left -= size) sizes.push_back(std::min(size, left));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  TG_CHECK(chunks > 0, ValueError, "chunk: number of chunks must be positive, got ", chunks);
  TG_CHECK(x.dim() > 0, ShapeError, "chunk: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "chunk");
  int64_t n = x.shape()[dim];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

}  // namespace tg
