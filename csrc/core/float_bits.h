// The bits of a float32 and back, for the 16-bit float types (bfloat16.h, float16.h), which
// round and widen by manipulating them. HD: usable by CPU and CUDA kernels alike.
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace tg {

HD uint32_t float_to_bits(float f) {
  union {
    float f;
    uint32_t u;
  } v{f};
  return v.u;
}

HD float bits_to_float(uint32_t u) {
  union {
    uint32_t u;
    float f;
  } v{u};
  return v.f;
}

}  // namespace tg
