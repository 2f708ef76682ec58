// bfloat16: the top 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits). It has
// float32's range with 8 significant bits (about 2-3 decimal digits). tapegrad stores it and
// converts; arithmetic happens in float32 (issue 4). HD: usable by CPU and CUDA kernels alike.
#pragma once
#include <cstdint>

#include "core/float_bits.h"

namespace tg {

struct bfloat16 {
  uint16_t bits;

  bfloat16() = default;
  // float -> bfloat16, rounded to nearest, ties to even. Adding 0x7FFF plus the lowest kept bit
  // to the float's bits, then dropping the low 16, rounds the discarded half-ulp correctly: below
  // 0x8000 never carries, above always does, and exactly 0x8000 carries only when the kept part
  // is odd. A carry out of the mantissa steps the exponent, so the largest floats round to inf.
  // NaN keeps its sign and top payload bits, with the quiet bit set so that it cannot turn into inf.
  // (A double is converted through float, as PyTorch's c10::BFloat16 does.)
  HD explicit bfloat16(float f) : bits(from_float_bits(float_to_bits(f))) {}
  // bfloat16 -> float is exact: the 16 dropped bits are zero.
  HD operator float() const { return bits_to_float(static_cast<uint32_t>(bits) << 16); }

  HD static bfloat16 from_bits(uint16_t b) {
    bfloat16 h;
    h.bits = b;
    return h;
  }

 private:
  HD static uint16_t from_float_bits(uint32_t u) {
    const bool is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    if (is_nan) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 is stored in 16 bits");

}  // namespace tg
