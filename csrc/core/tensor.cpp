#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "autograd/node.h"
#include "core/memory.h"

namespace tg {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->nbytes = nbytes;
  s->device = device;
  if (device.is_cpu() && nbytes <= kInlineBytes) {
    s->data = s->inline_bytes;
    return s;
  }
  DeviceMemory& memory = device_memory(device);  // the device's backend; a GPU's caching allocator
  s->data = memory.allocate(nbytes);
  if (s->data) {
    s->release = [](void* data, void* context) { static_cast<DeviceMemory*>(context)->release(data); };
    s->release_context = &memory;
  }
  return s;
}

const Shape& Tensor::shape() const { return impl_->shape; }
const Shape& Tensor::strides() const { return impl_->strides; }
int64_t Tensor::offset() const { return impl_->offset; }
int64_t Tensor::dim() const { return static_cast<int64_t>(impl_->shape.size()); }
int64_t Tensor::size(int64_t d) const {
  TG_CHECK(dim() > 0, IndexError, "size: dim ", d, " of a 0-d tensor (it has no dims)");
  return impl_->shape[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::numel() const { return numel_of(impl_->shape); }
DType Tensor::dtype() const { return impl_->dtype; }
Device Tensor::device() const { return impl_->storage->device; }
Storage& Tensor::storage() const { return *impl_->storage; }
bool Tensor::is_wrapped_number() const { return impl_->is_wrapped_number; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * itemsize(impl_->dtype);
}

template <class T>
T Tensor::item() const {
  TG_CHECK(numel() == 1, ShapeError, "item: only a one-element tensor can be converted to a Python scalar, got shape ",
           shape_str(shape()));
  return TG_DISPATCH_STORAGE(dtype(), "item", [&](auto tag) -> T {
    using S = decltype(tag);
    if (device().is_cpu()) return static_cast<T>(*data<S>());
    S value;  // one element copied to the host (this waits for the work that computes it)
    copy_bytes(&value, Device{}, raw_data(), device(), sizeof(S));
    return static_cast<T>(value);
  });
}
template bool Tensor::item<bool>() const;
template int64_t Tensor::item<int64_t>() const;
template double Tensor::item<double>() const;
template float Tensor::item<float>() const;

bool Tensor::requires_grad() const { return impl_->requires_grad || impl_->grad_fn != nullptr; }
bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return impl_->grad_fn; }
Tensor Tensor::grad() const { return impl_->grad; }
void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    TG_CHECK(g.shape() == shape(), ShapeError, "grad: assigned grad has shape ", shape_str(g.shape()),
             " but the tensor has shape ", shape_str(shape()));
    TG_CHECK(g.dtype() == dtype(), TypeError, "grad: assigned grad has dtype ", dtype_name(g.dtype()),
             " but the tensor has dtype ", dtype_name(dtype()));
  }
  impl_->grad = g;
}
void Tensor::set_requires_grad(bool r) const {
  TG_CHECK(is_leaf() || r, RuntimeError,
           "requires_grad_: can only change requires_grad of leaf tensors; use detach() on a non-leaf");
  TG_CHECK(!r || is_floating(dtype()), RuntimeError, "requires_grad_: only floating-point tensors can require "
           "gradients, got dtype ", dtype_name(dtype()));
  impl_->requires_grad = r;
}
void Tensor::bump_version() const { ++impl_->storage->version; }

Tensor from_blob(void* data, Shape shape, Shape strides, DType dtype, Device device, void (*release)(void*, void*),
                 void* context) {
  auto storage = std::make_shared<Storage>();
  storage->data = data;
  int64_t extent = 1;  // elements from the first to one past the last
  for (size_t d = 0; d < shape.size(); ++d) extent += (shape[d] - 1) * strides[d];
  storage->nbytes = static_cast<size_t>(numel_of(shape) == 0 ? 0 : extent * itemsize(dtype));
  storage->device = device;
  storage->release = release;
  storage->release_context = context;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "empty");
  auto impl = std::make_shared<TensorImpl>();
  int64_t n = numel_of(shape);
  TG_CHECK(n < (int64_t(1) << 48), MemoryError, "empty: cannot allocate a tensor of shape ", shape_str(shape));
  impl->storage = Storage::allocate(static_cast<size_t>(n) * itemsize(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  check_shape(shape, "view");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor alias_of(const Tensor& t) { return make_view(t, t.shape(), t.strides(), t.offset()); }

}  // namespace tg
