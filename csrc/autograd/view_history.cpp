// The history of views under in-place writes. An op that writes into a view of another tensor
// (ops/inplace.cpp) calls rebase_view_history; the engine calls refresh_view_history for a view
// whose memory was written through another view since its history was made (autograd/node.cpp).
#include "autograd/view_history.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

namespace tg {

// v is a view of a contiguous base b, at geometry geo (shape, strides, offset counted in b's
// elements). A recorded write v <- r (r the write's out-of-place result) changes b as well:
//   b' = b with b'[geo] = r          db = dg_b' with the region zeroed;  dr = dg_b'[geo]
//   v' = b'[geo]                     db' = zeros with dv' written at geo
// b's history becomes the first node (PyTorch's CopySlices), v's the second; other views of b
// made before the write keep their old history (PyTorch regenerates theirs).
namespace {

// Where a view lies in its base: shape, strides and offset counted in the base's elements.
struct ViewGeometry {
  Shape shape, strides;
  int64_t offset;
};

Tensor strided_region(const Tensor& x, const ViewGeometry& geo) { return make_view(x, geo.shape, geo.strides, geo.offset); }

// y = x[geo] for a contiguous x; dx = zeros with dy written at geo
Tensor strided_view(const Tensor& x, const ViewGeometry& geo);

// z = zeros(shape) with z[geo] = g; dg = dz[geo]
Tensor strided_scatter(const Tensor& g, const Shape& shape, const ViewGeometry& geo) {
  Tensor z = zeros(shape, g.dtype(), g.device());
  write_into(strided_region(z, geo), g, "view backward");
  if (should_record({&g}))
    record("StridedScatterBackward", {g}, {z}, {}, [geo](const BackwardContext&, const TensorList& gr) {
      return TensorList{contiguous(strided_view(contiguous(gr[0]), geo))};
    });
  return z;
}

// Records y as the view of x at geo: dx = zeros with dy written at geo.
void record_as_view_of(const Tensor& x, const Tensor& y, const ViewGeometry& geo) {
  const Shape shape = x.shape();
  record("AsStridedBackward", {x}, {y}, {}, [geo, shape](const BackwardContext&, const TensorList& gr) {
    return TensorList{strided_scatter(gr[0], shape, geo)};
  });
}

Tensor strided_view(const Tensor& x, const ViewGeometry& geo) {
  Tensor y = strided_region(x, geo);
  if (should_record({&x})) record_as_view_of(x, y, geo);
  return y;
}

// Where `view` lies in its base, counted in the base's elements (the base is contiguous).
ViewGeometry geometry_in_base(const Tensor& view, const Tensor& base) {
  return {view.shape(), view.strides(), view.offset() - base.offset()};
}

}  // namespace

// A view made before a write through another view of its tensor: its history becomes
// "view of the tensor as it is now" (the viewed tensor's history includes the write).
void refresh_view_history(const Tensor& view) {
  const Tensor base(view.impl()->view_base);
  view.impl()->view_version = view.storage().version;
  if (!base.is_contiguous() || !base.requires_grad()) return;  // keeps its old history (documented limit)
  record_as_view_of(base, view, geometry_in_base(view, base));
}

void rebase_view_history(const Tensor& view, const Tensor& result, const char* op) {
  const Tensor base(view.impl()->view_base);  // not a leaf that requires grad: inplace.cpp checked
  TG_CHECK(base.is_contiguous(), NotImplementedError, op, ": in-place write into a view of a non-contiguous tensor of "
           "shape ", shape_str(base.shape()), " with autograd history; write into a contiguous() copy instead");
  const ViewGeometry geo = geometry_in_base(view, base);
  Tensor old_base = alias_of(base);  // b as it was: its history up to now
  old_base.impl()->grad_fn = base.grad_fn();
  old_base.impl()->output_nr = base.impl()->output_nr;
  old_base.impl()->requires_grad = base.impl()->requires_grad;
  const Shape base_shape = base.shape();
  record("CopySlices", {old_base, result}, {base}, {},
         [geo, base_shape](const BackwardContext& c, const TensorList& g) {
           Tensor db, dr;
           if (c.needs_grad(0)) {  // the region was overwritten: no gradient flows to b's old values there
             Tensor keep = ones(base_shape, g[0].dtype(), g[0].device());
             write_into(strided_region(keep, geo), zeros({}, g[0].dtype(), g[0].device()), "view backward");
             db = g[0] * keep;
           }
           if (c.needs_grad(1)) dr = contiguous(strided_view(contiguous(g[0]), geo));
           return TensorList{db, dr};
         });
  refresh_view_history(view);  // v' = b'[geo]
}

}  // namespace tg
