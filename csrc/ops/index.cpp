// Gathers and scatters by integer index tensors. Indices are checked before any kernel reads
// them: an out-of-range index raises IndexError naming the op, the index and the size (for an
// index on the GPU, at the next synchronisation: checked_index).
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

void outer_inner(const Shape& shape, int64_t dim, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t d = 0; d < dim; ++d) *outer *= shape[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) *inner *= shape[d];
}

}  // namespace

// A contiguous int64 copy of `index` on `device` with negative entries wrapped, after a bounds
// check by the backend where the index lives. An index on the host is checked there and raises
// IndexError at once. An index already on the GPU is checked by the GPU (Backend::check_indices):
// copying it to the host would make the host wait for every queued kernel; a bad one raises
// IndexError at the next synchronisation instead, and the op reads index 0 in its place. The
// index may live on either device (as in PyTorch's advanced indexing).
Tensor checked_index(const Tensor& index, int64_t size, const char* op, int64_t dim, Device device) {
  TG_CHECK(is_integer(index.dtype()), TypeError, op, ": index must be an integer tensor, got ", dtype_name(index.dtype()));
  TG_CHECK(size > 0 || index.numel() == 0, IndexError, op, ": index is out of range for dim ", dim, " with size 0");
  GradModeGuard no_grad(false);
  Tensor in = contiguous(detach(to_dtype(index, DType::Int64))), out = empty(index.shape(), DType::Int64, index.device());
  backend(index.device()).check_indices(in.data<int64_t>(), out.data<int64_t>(), in.numel(),
                                        IndexRule{size, true, false, 0, 0, op, dim});
  return to_device(out, device);
}

// index_select: y = x with dim `dim` replaced by x[..., index[j], ...]; dx = index_add(0, dim, index, dy)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  TG_CHECK(index.dim() <= 1, ShapeError, "index_select: index must be 0-d or 1-d, got shape ", shape_str(index.shape()));
  TG_CHECK(x.dim() > 0, IndexError, "index_select: cannot index a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "index_select");
  Tensor idx = checked_index(index, x.shape()[dim], "index_select", dim, x.device());
  Tensor xc;
  {
    GradModeGuard no_grad(false);
    xc = contiguous(x);
  }
  Shape shape = x.shape();
  shape[dim] = idx.numel();
  Tensor y = empty(shape, x.dtype(), x.device());
  int64_t outer, inner;
  outer_inner(x.shape(), dim, &outer, &inner);
  backend(x.device()).index_select(x.dtype(), outer, x.shape()[dim], inner, xc.raw_data(), idx.data<int64_t>(),
                                   idx.numel(), y.raw_data());
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("IndexSelectBackward", {x}, {y}, {idx}, [in_shape, dim](const BackwardContext& c, const TensorList& g) {
      return TensorList{index_add(zeros(in_shape, g[0].dtype(), g[0].device()), dim, c.saved(0), g[0])};
    });
  }
  return y;
}

// index_add: y = base; y[..., index[j], ...] += src[..., j, ...]; dbase = dy, dsrc = index_select(dy)
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  TG_CHECK(base.dim() > 0, ShapeError, "index_add: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, base.dim(), "index_add");
  TG_CHECK(index.dim() <= 1, ShapeError, "index_add: index must be 0-d or 1-d, got shape ", shape_str(index.shape()));
  Shape expect = base.shape();
  expect[dim] = index.numel();
  TG_CHECK(src.shape() == expect, ShapeError, "index_add: source of shape ", shape_str(src.shape()),
           " does not match the expected shape ", shape_str(expect));
  check_same_device("index_add", {&base, &src});
  if (any_storage_only({&base}))  // bfloat16: accumulated in float32, rounded once
    return to_dtype(index_add(widened(base), dim, index, widened(src)), base.dtype());
  Tensor idx = checked_index(index, base.shape()[dim], "index_add", dim, base.device());
  Tensor y = clone(detach(base));
  Tensor sc = contiguous(detach(to_dtype(src, base.dtype())));
  int64_t outer, inner;
  outer_inner(base.shape(), dim, &outer, &inner);
  backend(base.device()).index_add(base.dtype(), outer, base.shape()[dim], inner, y.raw_data(), idx.data<int64_t>(),
                                   idx.numel(), sc.raw_data());
  if (should_record({&base, &src}))
    record("IndexAddBackward", {base, src}, {y}, {idx}, [dim](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0], c.needs_grad(1) ? index_select(g[0], dim, c.saved(0)) : Tensor()};
    });
  return y;
}

// gather: y[..., j, ...] = x[..., index[..., j, ...], ...] along dim; dx = scatter_add(0, dim, index, dy)
// Outside `dim` the index may be smaller than x (as in PyTorch): it reads the leading part of
// those dims, so x is first narrowed to the index's size there (a view; its backward pads dx).
Tensor gather(const Tensor& x_in, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x_in.dim(), "gather");
  TG_CHECK(index.dim() == x_in.dim(), ShapeError, "gather: index of shape ", shape_str(index.shape()),
           " must have as many dims as the input of shape ", shape_str(x_in.shape()));
  if (x_in.dim() == 0) return reshape(gather(reshape(x_in, {1}), 0, reshape(index, {1})), {});  // a 1-element line
  Tensor x = x_in;
  for (int64_t d = 0; d < x_in.dim(); ++d) {
    TG_CHECK(d == dim || index.shape()[d] <= x_in.shape()[d], ShapeError, "gather: index of shape ",
             shape_str(index.shape()), " is larger than the input of shape ", shape_str(x_in.shape()),
             " in dim ", d, " (outside dim ", dim, " the index may not be larger)");
    if (d != dim && index.shape()[d] < x.shape()[d]) x = narrow(x, d, 0, index.shape()[d]);
  }
  Tensor idx = checked_index(index, x.shape()[dim], "gather", dim, x.device());
  Tensor xc = contiguous(detach(x));
  Tensor y = empty(index.shape(), x.dtype(), x.device());
  int64_t outer, inner;
  outer_inner(x.shape(), dim, &outer, &inner);
  backend(x.device()).gather(x.dtype(), outer, x.shape()[dim], index.shape()[dim], inner, xc.raw_data(),
                             idx.data<int64_t>(), y.raw_data());
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("GatherBackward", {x}, {y}, {idx}, [in_shape, dim](const BackwardContext& c, const TensorList& g) {
      return TensorList{scatter_add(zeros(in_shape, g[0].dtype(), g[0].device()), dim, c.saved(0), g[0])};
    });
  }
  return y;
}

// scatter_add: y = base; y[..., index[..., j, ...], ...] += src[..., j, ...]; dsrc = gather(dy)
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, base.dim(), "scatter_add");
  TG_CHECK(index.shape() == src.shape() && index.dim() == base.dim(), ShapeError, "scatter_add: index of shape ",
           shape_str(index.shape()), " and source of shape ", shape_str(src.shape()), " must match, with the dims of ",
           shape_str(base.shape()));
  if (base.dim() == 0)  // a 1-element line
    return reshape(scatter_add(reshape(base, {1}), 0, reshape(index, {1}), reshape(src, {1})), {});
  for (int64_t d = 0; d < base.dim(); ++d)
    TG_CHECK(d == dim || index.shape()[d] == base.shape()[d], ShapeError, "scatter_add: index of shape ",
             shape_str(index.shape()), " must match the tensor of shape ", shape_str(base.shape()), " outside dim ", dim);
  check_same_device("scatter_add", {&base, &src});
  if (any_storage_only({&base}))  // bfloat16: accumulated in float32, rounded once
    return to_dtype(scatter_add(widened(base), dim, index, widened(src)), base.dtype());
  Tensor idx = checked_index(index, base.shape()[dim], "scatter_add", dim, base.device());
  Tensor y = clone(detach(base));
  Tensor sc = contiguous(detach(to_dtype(src, base.dtype())));
  int64_t outer, inner;
  outer_inner(base.shape(), dim, &outer, &inner);
  backend(base.device()).scatter_add(base.dtype(), outer, base.shape()[dim], index.shape()[dim], inner, y.raw_data(),
                                     idx.data<int64_t>(), sc.raw_data());
  if (should_record({&base, &src}))
    record("ScatterAddBackward", {base, src}, {y}, {idx}, [dim](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0], c.needs_grad(1) ? gather(g[0], dim, c.saved(0)) : Tensor()};
    });
  return y;
}

// nonzero: the (n, ndim) coordinates of the true (non-zero) elements, in row-major order.
Tensor nonzero(const Tensor& mask) {
  // The output's size depends on the data: the host counts (one copy of a device mask).
  Tensor m = to_device(contiguous(detach(to_dtype(detach(mask), DType::Bool))), Device{});
  const bool* p = m.data<bool>();
  const int64_t n = m.numel(), nd = m.dim();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += p[i];
  Tensor out = empty({count, nd}, DType::Int64);
  int64_t* o = out.data<int64_t>();
  Shape strides = contiguous_strides(m.shape());
  for (int64_t i = 0; i < n; ++i) {
    if (!p[i]) continue;
    int64_t rem = i;
    for (int64_t d = 0; d < nd; ++d) {
      *o++ = rem / strides[d];
      rem %= strides[d];
    }
  }
  return to_device(out, mask.device());
}

// Advanced indexing, NumPy's rules: the index tensors broadcast to one shape B; the indexed dims
// are replaced by B, in place if they are adjacent, else at the front. Built from differentiable
// pieces: move the indexed dims first, flatten them, index_select the flat positions.
Tensor advanced_index(const Tensor& x, const std::vector<std::optional<Tensor>>& indices) {
  TG_CHECK(static_cast<int64_t>(indices.size()) <= x.dim(), IndexError, "index: too many indices for a tensor of shape ",
           shape_str(x.shape()));
  Dims indexed, rest;
  Shape bshape;
  for (size_t d = 0; d < indices.size(); ++d) {
    if (!indices[d]) continue;
    const Tensor& t = *indices[d];
    TG_CHECK(is_integer(t.dtype()), IndexError, "index: tensors used as indices must be integers or bool, got ",
             dtype_name(t.dtype()));
    bshape = indexed.empty() ? t.shape() : broadcast_shapes(bshape, t.shape(), "index");
    indexed.push_back(static_cast<int64_t>(d));
  }
  TG_CHECK(!indexed.empty(), ValueError, "index: no index tensor given");
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d >= static_cast<int64_t>(indices.size()) || !indices[d]) rest.push_back(d);
  bool adjacent = indexed.back() - indexed.front() + 1 == static_cast<int64_t>(indexed.size());
  // Flat position within the indexed dims: sum_k idx_k * prod(sizes after k).
  Tensor flat;
  {
    GradModeGuard no_grad(false);
    int64_t mul_after = 1;
    for (int64_t k = static_cast<int64_t>(indexed.size()) - 1; k >= 0; --k) {
      int64_t d = indexed[k], size = x.shape()[d];
      Tensor idx = checked_index(*indices[d], size, "index", d, x.device());
      Tensor term = expand(idx * static_cast<double>(mul_after), bshape);
      flat = flat.defined() ? add(flat, term) : term;
      mul_after *= size;
    }
    flat = reshape(contiguous(flat), {-1});
  }
  Dims order = indexed;
  order.insert(order.end(), rest.begin(), rest.end());
  Tensor moved = permute(x, order);
  int64_t n_indexed = 1;  // explicit, not -1: a -1 next to a size-0 dim is ambiguous
  for (int64_t d : indexed) n_indexed *= x.shape()[d];
  Shape flat_shape = {n_indexed};
  for (int64_t d : rest) flat_shape.push_back(x.shape()[d]);
  Tensor picked = index_select(reshape(moved, flat_shape), 0, flat);
  Shape out_shape = bshape;
  for (int64_t d : rest) out_shape.push_back(x.shape()[d]);
  Tensor out = reshape(picked, out_shape);
  if (adjacent && indexed.front() > 0) {
    // Move the broadcast dims back to where the first indexed dim was.
    const int64_t nb = static_cast<int64_t>(bshape.size()), lead = indexed.front();
    Dims back;
    for (int64_t i = 0; i < lead; ++i) back.push_back(nb + i);
    for (int64_t i = 0; i < nb; ++i) back.push_back(i);
    for (int64_t i = nb + lead; i < out.dim(); ++i) back.push_back(i);
    out = permute(out, back);
  }
  return out;
}

// index_put: y = x; y[indices] = values. The positions written are found by indexing a tensor of
// flat positions (arange) the same way, so every rule of advanced indexing holds here too.
//   dx = dy with the written positions zeroed;  dvalues = dy[indices]
Tensor index_put(const Tensor& x, const std::vector<std::optional<Tensor>>& indices, const Tensor& values) {
  check_same_device("index_put", {&x, &values});
  Tensor pos;
  {
    GradModeGuard no_grad(false);
    pos = contiguous(advanced_index(reshape(arange(0, static_cast<double>(x.numel()), 1, DType::Int64, x.device()), x.shape()), indices));
  }
  Tensor vals = contiguous(detach(to_dtype(expand(detach(values), pos.shape()), x.dtype())));
  if (vals.device() != x.device()) vals = to_device(vals, x.device());  // a wrapped number (checked above)
  Tensor y = clone(detach(x));
  backend(x.device()).put(x.dtype(), y.raw_data(), pos.data<int64_t>(), vals.raw_data(), pos.numel());
  if (should_record({&x, &values}))
    record("IndexPutBackward", {x, values}, {y}, {}, [indices](const BackwardContext& c, const TensorList& g) {
      Tensor gx, gv;
      if (c.needs_grad(0)) gx = index_put(g[0], indices, zeros({}, g[0].dtype(), g[0].device()));
      if (c.needs_grad(1)) gv = advanced_index(g[0], indices);
      return TensorList{gx, gv};
    });
  return y;
}

}  // namespace tg
