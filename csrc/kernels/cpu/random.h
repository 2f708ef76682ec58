// Dropout's keep decisions, shared by the dropout kernel and fused attention.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/philox.h"

namespace tg::cpu {

// z_j = keep_scale when the uniform of Philox counter (counter + j) is >= p, else 0. U picks the
// uniform's precision (float: 24 bits of one output; double: 53 bits of two), as the CUDA twin.
// Philox is plain integer arithmetic: this loop vectorises (vpmuludq) in the AVX2 clone.
template <class U, class T>
TG_SIMD_CLONES void keep_scales(uint64_t seed, uint64_t counter, int64_t n, double p, T keep_scale, T* z) {
  for (int64_t j = 0; j < n; ++j) {
    const Philox4 r = philox(seed, counter + static_cast<uint64_t>(j));
    const U u = std::is_same_v<U, float> ? philox_uniform_float(r.x[0]) : philox_uniform_double(r.x[0], r.x[1]);
    z[j] = u >= p ? keep_scale : T(0);
  }
}

}  // namespace tg::cpu
