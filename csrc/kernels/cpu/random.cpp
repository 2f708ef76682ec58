// Counter-based random numbers (kernels/philox.h). Element i of a call is a pure function of (seed, offset + i), so any
// thread -- or a CUDA thread later -- computes the same number for the same element.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/random.h"
#include "kernels/philox.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TG_PHILOX_AVX512 1
#endif

namespace tg::cpu {

namespace {
#ifdef TG_PHILOX_AVX512
#define TG_AVX512 __attribute__((target("avx512f")))
// The 64-bit products m * c of the 16 lanes of c, split: returns the high words, *lo the low.
// vpmuludq multiplies the even 32-bit lanes; the odd ones are shifted down to be multiplied too.
TG_AVX512 inline __m512i mul_hi_lo(__m512i c, __m512i m, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(c, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// Philox4x32-10 (kernels/philox.h) of counters `counter` .. `counter` + 15, lane j holding counter
// + j, then transposed so that out[v] holds the outputs of counters 4v .. 4v+3 in stream order:
// element 4j + r of the block is output r of counter j.
TG_AVX512 inline void philox_x16(uint64_t seed, uint64_t counter, __m512i out[4]) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i base = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter)));
  __m512i c0 = _mm512_add_epi32(base, lane);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, base);  // the low word wrapped
  const __m512i high = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32)));
  __m512i c1 = _mm512_mask_add_epi32(high, carry, high, _mm512_set1_epi32(1));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i lo0, lo1;
    const __m512i hi0 = mul_hi_lo(c0, m0, &lo0), hi1 = mul_hi_lo(c2, m1, &lo1);
    // 0x96: a ^ b ^ c in one instruction
    c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32(static_cast<int>(k0)), 0x96);
    c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32(static_cast<int>(k1)), 0x96);
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // 4 x 16 transpose: within each 128-bit block b, r_i gets the four outputs of counter 4b + i ...
  const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
  const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
  const __m512i r0 = _mm512_unpacklo_epi64(t0, t2), r1 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i r2 = _mm512_unpacklo_epi64(t1, t3), r3 = _mm512_unpackhi_epi64(t1, t3);
  // ... then out[v] gathers block v of r0, r1, r2, r3 (counters 4v .. 4v+3).
  const __m512i u0 = _mm512_shuffle_i32x4(r0, r1, _MM_SHUFFLE(2, 0, 2, 0)), u1 = _mm512_shuffle_i32x4(r2, r3, _MM_SHUFFLE(2, 0, 2, 0));
  const __m512i u2 = _mm512_shuffle_i32x4(r0, r1, _MM_SHUFFLE(3, 1, 3, 1)), u3 = _mm512_shuffle_i32x4(r2, r3, _MM_SHUFFLE(3, 1, 3, 1));
  out[0] = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
  out[1] = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(2, 0, 2, 0));
  out[2] = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
  out[3] = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(3, 1, 3, 1));
}

// u >= p with u = (bits >> 8) / 2^24 exact, so u >= p <=> (bits >> 8) >= ceil(p 2^24): one unsigned
// integer compare per element, no conversion.
TG_AVX512 int64_t keep_scales_avx512(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, double p,
                                     float keep_scale, float* z) {
  const double scaled = std::ceil(p * 16777216.0);
  const uint32_t threshold = scaled <= 0 ? 0u : scaled >= 16777216.0 ? 16777216u : static_cast<uint32_t>(scaled);
  const __m512i limit = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512 keep = _mm512_set1_ps(keep_scale);
  int64_t done = 0;
  for (; done + 64 <= n; done += 64) {
    __m512i bits[4];
    philox_x16(seed, offset + (first + static_cast<uint64_t>(done)) / 4, bits);
    for (int v = 0; v < 4; ++v) {
      const __mmask16 kept = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(bits[v], 8), limit);
      _mm512_storeu_ps(z + done + 16 * v, _mm512_maskz_mov_ps(kept, keep));
    }
  }
  return done;
}
#undef TG_AVX512
#endif

template <class T>
TG_SIMD_CLONES void multiply(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
}  // namespace

int64_t keep_scales_wide(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, double p, float keep_scale,
                         float* z) {
#ifdef TG_PHILOX_AVX512
  static const bool avx512 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
  if (avx512) return keep_scales_avx512(seed, offset, first, n, p, keep_scale, z);
#endif
  return 0;
}

void CpuBackend::random(RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) {
  TG_DISPATCH_FLOAT(dtype, "random", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out);
    parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        Philox4 r = philox(seed, offset + static_cast<uint64_t>(i));
        double u1, u2;
        if constexpr (std::is_same_v<T, float>) {
          u1 = philox_uniform_float(r.x[0]);
          u2 = philox_uniform_float(r.x[1]);
        } else {
          u1 = philox_uniform_double(r.x[0], r.x[1]);
          u2 = philox_uniform_double(r.x[2], r.x[3]);
        }
        if (kind == RandomKind::Uniform) {
          o[i] = static_cast<T>(u1);
        } else {  // Box-Muller; 1 - u1 lies in (0, 1], so the log is finite
          o[i] = static_cast<T>(std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2));
        }
      }
    });
  });
}

void CpuBackend::random_int(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
  const uint64_t range = static_cast<uint64_t>(high - low);
  parallel_for(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Philox4 r = philox(seed, offset + static_cast<uint64_t>(i));
      uint64_t v = (uint64_t(r.x[0]) << 32) | r.x[1];
      out[i] = low + static_cast<int64_t>(v % range);
    }
  });
}

void CpuBackend::dropout(DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed, uint64_t offset) {
  TG_DISPATCH_FLOAT(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    T* o = static_cast<T*>(out);
    T* m = static_cast<T*>(scale);
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      keep_scales(seed, offset, static_cast<uint64_t>(b), e - b, p, keep, m + b);
      multiply(xs + b, m + b, o + b, e - b);
    });
  });
}

}  // namespace tg::cpu
