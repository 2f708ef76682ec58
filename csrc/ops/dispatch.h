// Small helpers shared by the op files: device checks and kernel operands. Each op's forward
// picks its kernel with `if (device.is_cpu()) cpu::x(...); else cuda::x(device.index, ...);`
// (one compare on the CPU path; the cuda:: functions raise in a CPU-only build).
#pragma once
#include "core/tensor.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/cuda.h"

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

inline cpu::Operand operand(const Tensor& t) { return {static_cast<char*>(t.raw_data()), t.strides().data(), t.dtype()}; }
// The operand read with `strides` (broadcast strides held by the caller).
inline cpu::Operand operand(const Tensor& t, const Shape& strides) {
  return {static_cast<char*>(t.raw_data()), strides.data(), t.dtype()};
}

}  // namespace tg
