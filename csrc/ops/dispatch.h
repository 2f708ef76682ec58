// Small helpers shared by the op files: device checks and kernel operands.
#pragma once
#include "core/tensor.h"
#include "kernels/cpu/cpu.h"

namespace tg {

// All tensors of an op must live on one device; CUDA tensors need the CUDA build.
inline void check_same_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined() || t->is_wrapped_number()) continue;
    if (!first) first = t;
    else TG_CHECK(t->device() == first->device(), RuntimeError, op, ": expected all tensors on one device, got ",
                  first->device().str(), " and ", t->device().str());
  }
  TG_CHECK(!first || first->device().is_cpu(), RuntimeError, op, ": no ", first->device().str(),
           " kernel in this build (tapegrad was built without CUDA)");
}

inline cpu::Operand operand(const Tensor& t) { return {static_cast<char*>(t.raw_data()), t.strides().data(), t.dtype()}; }
// The operand read with `strides` (broadcast strides held by the caller).
inline cpu::Operand operand(const Tensor& t, const Shape& strides) {
  return {static_cast<char*>(t.raw_data()), strides.data(), t.dtype()};
}

}  // namespace tg
