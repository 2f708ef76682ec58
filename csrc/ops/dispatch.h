// Small helpers shared by the op files: device checks and kernel operands. Each op's forward
// calls the kernel of its device through `backend(device).x(...)` (kernels/backend.h).
#pragma once
#include "autograd/grad_mode.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "ops/ops.h"

namespace tg {

// All tensors of an op must live on one device. Wrapped Python numbers are exempt (the op moves
// them). A 0-d tensor is not: unlike PyTorch, tapegrad raises for a 0-d CPU tensor next to a
// CUDA tensor, so that no op copies device-to-host or host-to-device behind the caller's back.
inline void check_same_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined() || t->is_wrapped_number()) continue;
    if (!first) first = t;
    else TG_CHECK(t->device() == first->device(), RuntimeError, op, ": expected all tensors on one device, got ",
                  first->device().str(), " and ", t->device().str(), " (move them with .to(device) first)");
  }
}

inline Operand operand(const Tensor& t) { return {static_cast<char*>(t.raw_data()), t.strides().data(), t.dtype()}; }
// The operand read with `strides` (broadcast strides held by the caller).
inline Operand operand(const Tensor& t, const Shape& strides) {
  return {static_cast<char*>(t.raw_data()), strides.data(), t.dtype()};
}

// ---- storage dtypes: bfloat16 / float16 compute in float32, the small integers in int64 ------------
// An op meets a storage dtype in one of two ways; both round (or wrap) its result back once.
//  * Ops that record their own node (elementwise, reductions, matmul) hand their kernels
//    `compute_copy` operands (no history): the node and what it saves keep the storage dtype.
//  * Fused ops (row kernels, attention, lstm, dropout, index_add) run again on `widened` inputs
//    and convert the result back with to_dtype: both casts are recorded, so gradients reach the
//    inputs in their own dtype.

inline bool any_storage_only(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->defined() && is_storage_only(t->dtype())) return true;
  return false;
}

// t converted to `dtype` without autograd history (t itself when it has that dtype).
inline Tensor cast_untracked(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  GradModeGuard no_grad(false);
  return to_dtype(t, dtype);
}
inline Tensor compute_copy(const Tensor& t) { return cast_untracked(t, compute_dtype(t.dtype())); }

// t in its compute dtype, differentiably (undefined stays undefined).
inline Tensor widened(const Tensor& t) { return t.defined() ? to_dtype(t, compute_dtype(t.dtype())) : t; }

// A contiguous int64 copy of `index` on `device`, negative entries wrapped, checked against `size`
// (IndexError naming op and dim; for an index on the GPU at the next synchronisation). index.cpp.
Tensor checked_index(const Tensor& index, int64_t size, const char* op, int64_t dim, Device device);

}  // namespace tg
