// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): four
// 32-bit outputs that are a pure function of (key, counter). Shared by the CPU and CUDA kernels,
// so a seed gives the same numbers on both.
#pragma once
#include <cstdint>

#include "kernels/functors.h"

namespace tg {

struct Philox4 {
  uint32_t x[4];
};

HD Philox4 philox(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// A float uniform in [0, 1) from 24 bits of one output.
HD float philox_uniform_float(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

// A double uniform in [0, 1) from 53 bits of two outputs.
HD double philox_uniform_double(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((uint64_t(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

// Dropout's uniforms use all four outputs of a Philox call (dropout draws the most numbers of
// any op): element e of a call whose counters start at `offset` reads output e % 4 of counter
// offset + e / 4, so a call over n elements reserves dropout_counters(n) counters.
HD int64_t dropout_counters(int64_t n) { return (n + 3) / 4; }
HD float dropout_uniform(uint64_t seed, uint64_t offset, uint64_t e) {
  return philox_uniform_float(philox(seed, offset + e / 4).x[e % 4]);
}

}  // namespace tg
