// Shape ops. Most are views: a new (shape, strides, offset) over the same storage, no copy.
// Their backward maps the gradient back through the inverse view (reshape, permute), the
// adjoint of expand (sum_to), or a scatter into zeros (indexing, narrow, split).
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

Tensor view_of(const Tensor& x, Shape shape, Shape strides, int64_t offset) {
  check_same_device("view", {&x});
  Tensor y = make_view(x, std::move(shape), std::move(strides), offset);
  y.impl()->view_base = x.impl()->view_base ? x.impl()->view_base : x.impl();
  y.impl()->view_version = y.storage().version;
  return y;
}

// Strides that let `shape` view the same memory as (old_shape, old_strides), if any exist:
// dims of the old layout that are contiguous with each other form chunks; each chunk must be
// split or merged exactly into new dims (PyTorch's rule).
std::optional<Shape> strides_for_view(const Shape& old_shape, const Shape& old_strides, const Shape& shape) {
  if (old_shape.empty() || numel_of(old_shape) == 0) return contiguous_strides(shape);
  Shape out(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_stride = old_strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Shape infer_shape(const Tensor& x, Shape shape, const char* op) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TG_CHECK(infer < 0, ShapeError, op, ": only one dimension can be -1, got shape ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      TG_CHECK(shape[i] >= 0, ShapeError, op, ": invalid shape ", shape_str(shape));
      known = checked_mul(known, shape[i], op);
    }
  }
  if (infer >= 0) {
    TG_CHECK(known != 0 && x.numel() % known == 0, ShapeError, op, ": cannot reshape a tensor of shape ",
             shape_str(x.shape()), " into shape ", shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  check_shape(shape, op);
  TG_CHECK(numel_of(shape) == x.numel(), ShapeError, op, ": cannot reshape a tensor of shape ", shape_str(x.shape()),
           " (", x.numel(), " elements) into shape ", shape_str(shape));
  return shape;
}

// Every view op whose backward is "reshape the gradient back" (view, reshape, (un)squeeze).
Tensor reshape_view(const Tensor& x, Shape shape, Shape strides) {
  Tensor y = view_of(x, std::move(shape), std::move(strides), x.offset());
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("ReshapeBackward", {x}, {y}, {}, [in_shape](const BackwardContext&, const TensorList& g) {
      return TensorList{reshape(g[0], in_shape)};
    });
  }
  return y;
}

}  // namespace

Tensor view(const Tensor& x, Shape shape) {
  shape = infer_shape(x, std::move(shape), "view");
  auto strides = strides_for_view(x.shape(), x.strides(), shape);
  TG_CHECK(strides.has_value(), RuntimeError, "view: a tensor of shape ", shape_str(x.shape()),
           " with these strides cannot be viewed as ", shape_str(shape), "; use reshape (it copies when it must)");
  return reshape_view(x, shape, *strides);
}

Tensor reshape(const Tensor& x, Shape shape) {
  shape = infer_shape(x, std::move(shape), "reshape");
  if (shape == x.shape()) return reshape_view(x, shape, x.strides());
  if (auto strides = strides_for_view(x.shape(), x.strides(), shape)) return reshape_view(x, shape, *strides);
  return reshape_view(contiguous(x), shape, contiguous_strides(shape));
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return reshape(x, {1});
  start = wrap_dim(start, x.dim(), "flatten");
  end = wrap_dim(end, x.dim(), "flatten");
  TG_CHECK(start <= end, ShapeError, "flatten: start_dim ", start, " comes after end_dim ", end);
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  int64_t n = 1;
  for (int64_t d = start; d <= end; ++d) n *= x.shape()[d];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + end + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, const Dims& dims) {
  uint64_t mask = reduce_mask(dims, x.dim(), "squeeze");
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if ((mask >> d & 1) && x.shape()[d] == 1) continue;
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  return reshape_view(x, shape, strides);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  int64_t stride = dim < x.dim() ? x.strides()[dim] * x.shape()[dim] : 1;
  shape.insert(shape.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return reshape_view(x, shape, strides);
}

// permute: y[i_p0, i_p1, ...] = x[i_0, i_1, ...]; dx = permute(dy, inverse)
Tensor permute(const Tensor& x, const Dims& dims) {
  TG_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), ShapeError, "permute: got ", dims.size(),
           " dims for a tensor of shape ", shape_str(x.shape()));
  Shape shape(dims.size()), strides(dims.size());
  Dims inverse(dims.size());
  uint64_t seen = 0;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    TG_CHECK(!(seen >> d & 1), ShapeError, "permute: dim ", dims[i], " repeats in the permutation");
    seen |= 1ull << d;
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  Tensor y = view_of(x, shape, strides, x.offset());
  if (should_record({&x}))
    record("PermuteBackward", {x}, {y}, {}, [inverse](const BackwardContext&, const TensorList& g) {
      return TensorList{permute(g[0], inverse)};
    });
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  if (x.dim() == 0) return x;
  Dims order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[wrap_dim(d0, x.dim(), "transpose")], order[wrap_dim(d1, x.dim(), "transpose")]);
  return permute(x, order);
}

// expand: stride 0 on stretched dims; dx = sum_to(dy, x.shape)
Tensor expand(const Tensor& x, const Shape& shape_in) {
  TG_CHECK(static_cast<int64_t>(shape_in.size()) >= x.dim(), ShapeError, "expand: cannot expand shape ",
           shape_str(x.shape()), " to ", shape_str(shape_in), " (fewer dims)");
  Shape shape = shape_in, strides(shape.size(), 0);
  const int64_t lead = static_cast<int64_t>(shape.size()) - x.dim();
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < lead) {
      TG_CHECK(shape[d] >= 0, ShapeError, "expand: invalid size -1 for a new leading dim in ", shape_str(shape_in));
      continue;
    }
    int64_t have = x.shape()[d - lead];
    if (shape[d] == -1) shape[d] = have;
    TG_CHECK(have == shape[d] || have == 1, ShapeError, "expand: cannot expand shape ", shape_str(x.shape()), " to ",
             shape_str(shape_in));
    strides[d] = have == shape[d] ? x.strides()[d - lead] : 0;
  }
  if (shape == x.shape()) return x;
  check_shape(shape, "expand");
  Tensor y = view_of(x, shape, strides, x.offset());
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("ExpandBackward", {x}, {y}, {}, [in_shape](const BackwardContext&, const TensorList& g) {
      return TensorList{sum_to(g[0], in_shape)};
    });
  }
  return y;
}

// ---- basic indexing -----------------------------------------------------------------------------

namespace {

struct ViewGeometry {
  Shape shape, strides;
  int64_t offset;
};

ViewGeometry index_geometry(const Shape& in_shape, const Shape& in_strides, int64_t offset,
                            const std::vector<IndexItem>& items) {
  int64_t consumed = 0, ellipses = 0;
  for (const IndexItem& it : items) {
    if (it.kind == IndexItem::Int || it.kind == IndexItem::Slice) ++consumed;
    if (it.kind == IndexItem::Ellipsis) ++ellipses;
  }
  const int64_t nd = static_cast<int64_t>(in_shape.size());
  TG_CHECK(ellipses <= 1, IndexError, "index: an index can only have a single ellipsis ('...')");
  TG_CHECK(consumed <= nd, IndexError, "index: too many indices for a tensor of shape ", shape_str(in_shape), ": ",
           consumed, " were given");
  ViewGeometry g{{}, {}, offset};
  int64_t d = 0;
  for (const IndexItem& it : items) {
    switch (it.kind) {
      case IndexItem::Int: {
        int64_t size = in_shape[d], i = it.index;
        TG_CHECK(i >= -size && i < size, IndexError, "index: index ", i, " is out of bounds for dim ", d, " with size ",
                 size, " (tensor of shape ", shape_str(in_shape), ")");
        if (i < 0) i += size;
        g.offset += i * in_strides[d];
        ++d;
        break;
      }
      case IndexItem::Slice: {
        TG_CHECK(it.step > 0, ValueError, "index: slice step must be positive, got ", it.step);
        int64_t size = in_shape[d];
        auto clampi = [size](std::optional<int64_t> v, int64_t dflt) {
          if (!v) return dflt;
          int64_t x = *v < 0 ? *v + size : *v;
          return std::min(std::max<int64_t>(x, 0), size);
        };
        int64_t start = clampi(it.start, 0), stop = clampi(it.stop, size);
        int64_t len = stop > start ? (stop - start + it.step - 1) / it.step : 0;
        g.shape.push_back(len);
        g.strides.push_back(in_strides[d] * it.step);
        if (len > 0) g.offset += start * in_strides[d];
        ++d;
        break;
      }
      case IndexItem::NewAxis:
        g.shape.push_back(1);
        g.strides.push_back(0);
        break;
      case IndexItem::Ellipsis:
        for (int64_t k = 0; k < nd - consumed; ++k, ++d) {
          g.shape.push_back(in_shape[d]);
          g.strides.push_back(in_strides[d]);
        }
        break;
    }
  }
  for (; d < nd; ++d) {
    g.shape.push_back(in_shape[d]);
    g.strides.push_back(in_strides[d]);
  }
  return g;
}

}  // namespace

// y = x[items] (a view); dx = zeros with dy written at the viewed positions
Tensor basic_index(const Tensor& x, const std::vector<IndexItem>& items) {
  ViewGeometry g = index_geometry(x.shape(), x.strides(), x.offset(), items);
  Tensor y = view_of(x, g.shape, g.strides, g.offset);
  if (should_record({&x})) {
    Shape in_shape = x.shape();
    record("IndexBackward", {x}, {y}, {}, [in_shape, items](const BackwardContext&, const TensorList& gr) {
      return TensorList{view_scatter(gr[0], in_shape, items)};
    });
  }
  return y;
}

// z = zeros(base_shape); z[items] = g; dg = dz[items]
Tensor view_scatter(const Tensor& g, const Shape& base_shape, const std::vector<IndexItem>& items) {
  Tensor z = zeros(base_shape, g.dtype(), g.device());
  ViewGeometry geo = index_geometry(z.shape(), z.strides(), 0, items);
  write_into(make_view(z, geo.shape, geo.strides, geo.offset), g, "index backward");
  if (should_record({&g}))
    record("ViewScatterBackward", {g}, {z}, {}, [items](const BackwardContext&, const TensorList& gr) {
      return TensorList{basic_index(gr[0], items)};
    });
  return z;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  TG_CHECK(x.dim() > 0, IndexError, "narrow: cannot narrow a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "narrow");
  int64_t size = x.shape()[dim];
  if (start < 0) start += size;
  TG_CHECK(start >= 0 && length >= 0 && start <= size && length <= size - start, IndexError, "narrow: start ", start,
           " and length ", length, " are out of bounds for dim ", dim, " of size ", size);
  std::vector<IndexItem> items(dim, IndexItem{IndexItem::Slice});
  IndexItem s{IndexItem::Slice};
  s.start = start;
  s.stop = start + length;
  items.push_back(s);
  return basic_index(x, items);
}

}  // namespace tg
