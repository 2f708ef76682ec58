// float16 (IEEE half): 1 sign, 5 exponent, 10 mantissa bits; normal numbers from 2^-14 to 65504,
// subnormals down to 2^-24. tapegrad stores it and converts; arithmetic happens in float32 (as
// bfloat16: core/bfloat16.h). HD: usable by CPU and CUDA kernels alike, no intrinsics.
#pragma once
#include <cstdint>

#include "core/float_bits.h"

namespace tg {

struct float16 {
  uint16_t bits;

  float16() = default;
  // float -> half, rounded to nearest, ties to even (NumPy's and the hardware's conversion).
  HD explicit float16(float f) : bits(from_float_bits(float_to_bits(f))) {}
  // half -> float is exact.
  HD operator float() const { return bits_to_float(to_float_bits(bits)); }

  HD static float16 from_bits(uint16_t b) {
    float16 h;
    h.bits = b;
    return h;
  }

 private:
  HD static uint16_t from_float_bits(uint32_t u) {
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((a >> 13) & 0x3FFu);  // NaN stays NaN (quiet)
    if (a >= 0x477FF000u) return sign | 0x7C00u;  // at or past 65520: rounds to inf
    if (a >= 0x38800000u) {                          // a normal half: rebias the exponent (127 -> 15), round 13 bits off
      const uint32_t v = a - 0x38000000u;
      return sign | static_cast<uint16_t>((v + 0xFFFu + ((v >> 13) & 1u)) >> 13);
    }
    if (a <= 0x33000000u) return sign;  // at most 2^-25 (half the smallest subnormal, a tie to even 0)
    // A subnormal half h 2^-24: the float's 24-bit significand m 2^(e - 150) shifted right by 126 - e,
    // rounded to nearest even (a carry into 0x400 is the smallest normal, correctly encoded).
    const uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, shift = 126 - e;
    uint32_t h = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1u))) ++h;
    return sign | static_cast<uint16_t>(h);
  }
  HD static uint32_t to_float_bits(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    if (exponent == 31) return sign | 0x7F800000u | (mantissa << 13);        // inf, NaN
    if (exponent != 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal
    if (mantissa == 0) return sign;                                          // +-0
    // subnormal: normalise the mantissa into float's implicit-1 form
    uint32_t e = 113, m = mantissa;
    while (!(m & 0x400u)) m <<= 1, --e;
    return sign | (e << 23) | ((m & 0x3FFu) << 13);
  }
};
static_assert(sizeof(float16) == 2, "float16 is stored in 16 bits");

}  // namespace tg
