// The bits of a float32 and back, for the 16-bit float types (bfloat16.h, float16.h), which
// round and widen by manipulating them, and for exp's 2^n (functors.h). HD: usable by CPU and
// CUDA kernels alike.
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace tg {

// The bits of one type read as another of the same size (C++20's std::bit_cast).
template <class To, class From>
HD To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From), "bits_as: the two types must have the same size");
  union {
    From from;
    To to;
  } v{x};
  return v.to;
}

HD uint32_t float_to_bits(float f) { return bits_as<uint32_t>(f); }
HD float bits_to_float(uint32_t u) { return bits_as<float>(u); }

}  // namespace tg
