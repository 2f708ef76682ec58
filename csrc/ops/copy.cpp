// Copies: into a tensor's memory (write_into, the kernel side of every in-place write), a new
// contiguous tensor, another dtype, another device. Each records the identity (or the move back)
// as its backward.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/memory.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

void write_into(const Tensor& dst, const Tensor& src, const char* op) {
  check_same_device(op, {&dst, &src});
  // A stride-0 dim of size > 1 (an expanded view) makes many elements one memory location: a
  // write into it has no single answer (PyTorch refuses it too).
  for (int64_t d = 0; d < dst.dim(); ++d)
    TG_CHECK(dst.strides()[d] != 0 || dst.shape()[d] <= 1, RuntimeError, op, ": the tensor written to (shape ",
             shape_str(dst.shape()), ", strides ", shape_str(dst.strides()), ") has several elements at one memory "
             "location (an expanded view); clone() it first");
  Shape target = broadcast_shapes(dst.shape(), src.shape(), op);
  TG_CHECK(target == dst.shape(), ShapeError, op, ": cannot write a tensor of shape ", shape_str(src.shape()),
           " into one of shape ", shape_str(dst.shape()));
  Shape ss = broadcast_strides(src.shape(), src.strides(), dst.shape());
  backend(dst.device()).copy(dst.shape(), operand(dst), operand(src, ss));
}

// clone: a contiguous copy; dx = dy
Tensor clone(const Tensor& x) {
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  write_into(y, x, "clone");
  if (should_record({&x}))
    record("CloneBackward", {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{g[0]}; });
  return y;
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

Tensor detach(const Tensor& x) { return alias_of(x); }

// to_dtype: a converting copy; dx = dy converted back (by the engine, to x's dtype)
Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor y = empty(x.shape(), dtype, x.device());
  write_into(y, x, "to");
  if (is_floating(dtype) && should_record({&x}))
    record("ToDtypeBackward", {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{g[0]}; });
  return y;
}

// to_device: y = x on `device`; dx = dy moved back. A strided x is made contiguous on its own
// device first, so the transfer is one flat copy of numel * itemsize bytes.
Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  Tensor src;
  {
    GradModeGuard no_grad(false);
    src = contiguous(detach(x));
  }
  Tensor y = empty(x.shape(), x.dtype(), device);
  copy_bytes(y.raw_data(), device, src.raw_data(), x.device(), static_cast<size_t>(x.numel() * itemsize(x.dtype())));
  y.impl()->is_wrapped_number = x.is_wrapped_number();
  if (should_record({&x})) {
    const Device from = x.device();
    record("ToDeviceBackward", {x}, {y}, {}, [from](const BackwardContext&, const TensorList& g) {
      return TensorList{to_device(g[0], from)};
    });
  }
  return y;
}

}  // namespace tg
