// The tensor: a view (shape, strides, offset, dtype) over a shared, reference-counted Storage,
// plus the autograd fields. `Tensor` is a cheap handle; copies alias the same TensorImpl.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace tg {

struct Node;
struct TensorImpl;

// One allocation, shared by every view of it. `version` counts in-place writes so that the
// autograd engine can tell when a tensor it saved for backward was modified afterwards.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  uint64_t version = 0;
  // How `data` is released: free(), a NumPy array's reference, ... (null: nothing to release,
  // the bytes live in inline_bytes).
  void (*release)(void* data, void* context) = nullptr;
  void* release_context = nullptr;
  // Small tensors (scalars, a few elements) keep their bytes here: no second allocation.
  static constexpr size_t kInlineBytes = 64;
  alignas(64) unsigned char inline_bytes[kInlineBytes];

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (release) release(data, release_context);
  }
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* get() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  Storage& storage() const;
  bool is_contiguous() const;
  bool is_wrapped_number() const;

  void* raw_data() const;  // address of element 0 of this view
  template <class T> T* data() const { return static_cast<T*>(raw_data()); }
  template <class T> T item() const;  // value of a one-element tensor, converted to T

  // autograd
  bool requires_grad() const;  // a leaf that asked for it, or any result with a grad_fn
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void set_requires_grad(bool r) const;
  void bump_version() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

// A hook on a tensor's gradient (Tensor.register_hook): returns a replacement gradient, or an
// undefined tensor to keep it. Each carries the id its handle removes it by.
using GradHook = std::function<Tensor(const Tensor&)>;
using HookId = int64_t;
HookId next_hook_id();

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;
  DType dtype = DType::Float32;
  bool requires_grad = false;      // set on leaves by the user
  bool is_wrapped_number = false;  // a Python scalar turned into a 0-d tensor: does not upcast
  std::shared_ptr<Node> grad_fn;   // null for leaves
  uint32_t output_nr = 0;          // which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;
  Tensor grad;
  // For a view made by a shape op (not detach): the tensor that owns the memory it views (the
  // root, for a view of a view). An in-place write into the view rewrites that tensor's history
  // too (rebase_view_history in autograd/view_history.cpp). Kept alive by the view, as PyTorch's _base.
  std::shared_ptr<TensorImpl> view_base;
  uint64_t view_version = 0;  // the storage version the view's history was made for
  // A leaf's hooks: on each gradient before it is added into .grad, and (with the leaf) after.
  std::vector<std::pair<HookId, GradHook>> grad_hooks;
  std::vector<std::pair<HookId, std::function<void(const Tensor&)>>> post_accumulate_hooks;
};

// ---- construction -------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = {});
// A tensor over memory tapegrad does not own (a NumPy array, a DLPack producer's buffer): strides in
// elements, non-negative; release(data, context) runs when the last view of it is gone.
Tensor from_blob(void* data, Shape shape, Shape strides, DType dtype, Device device, void (*release)(void*, void*),
                 void* context);
// A new TensorImpl over `base`'s storage (no autograd history).
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);
// An alias of `t` with the same layout and no autograd history (what detach() returns).
Tensor alias_of(const Tensor& t);

}  // namespace tg
