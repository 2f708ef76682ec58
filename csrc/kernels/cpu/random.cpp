// Counter-based random numbers (kernels/philox.h). Element i of a call is a pure function of (seed, offset + i), so any
// thread -- or a CUDA thread later -- computes the same number for the same element.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/random.h"
#include "kernels/philox.h"

namespace tg::cpu {

namespace {
template <class T>
TG_SIMD_CLONES void multiply(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
}  // namespace

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
