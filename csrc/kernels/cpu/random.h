// Dropout's keep decisions, shared by the dropout kernel and fused attention.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/philox.h"

namespace tg::cpu {

// The float32 keep factors of whole blocks of 64 stream elements (16 Philox calls side by side in
// AVX-512 lanes) from element `first` (a multiple of 4) on; returns how many it wrote (a multiple
// of 64, 0 on a CPU without AVX-512). The same numbers as the scalar loop below, bit for bit.
int64_t keep_scales_wide(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, double p, float keep_scale,
                         float* z);

// z[j] = keep_scale when dropout_uniform(seed, offset, first + j) >= p, else 0 (kernels/philox.h:
// elements first .. first + n - 1 of the stream). Whole groups of four share one Philox call; the
// ragged ends call it per element. Plain integer arithmetic: vectorises in the AVX2 clone.
template <class T>
TG_SIMD_CLONES void keep_scales(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, double p, T keep_scale,
                                T* z) {
  const uint64_t end = first + static_cast<uint64_t>(n);
  T* at = z - first;  // indexed by stream element
  uint64_t e = first;
  for (; e < end && e % 4 != 0; ++e) at[e] = dropout_uniform(seed, offset, e) >= p ? keep_scale : T(0);
  if constexpr (std::is_same_v<T, float>) e += keep_scales_wide(seed, offset, e, static_cast<int64_t>(end - e), p, keep_scale, at + e);
  for (; e + 4 <= end; e += 4) {
    const Philox4 r = philox(seed, offset + e / 4);
    for (int k = 0; k < 4; ++k) at[e + k] = philox_uniform_float(r.x[k]) >= p ? keep_scale : T(0);
  }
  for (; e < end; ++e) at[e] = dropout_uniform(seed, offset, e) >= p ? keep_scale : T(0);
}

}  // namespace tg::cpu
