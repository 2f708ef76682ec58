// The machine's arithmetic limit, measured: float32 fused multiply-adds per second on every
// thread, with the vector width the GEMM micro-kernel uses on this CPU (gemm_isa()). The
// benchmarks divide a kernel's FLOP/s by it ("fraction of peak").
//
// Each thread runs kChains independent chains acc = acc * a + b (two FLOPs per lane): enough
// chains in flight to cover the FMA latency on every FMA pipe, so the loop is bound by the FMA
// throughput alone. a < 1 keeps the values bounded (they converge to b / (1 - a)).
#include <chrono>
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

constexpr int kChains = 16;

// GCC takes a vector size only as a constant, so one specialisation per width.
template <int Bytes> struct FloatVector;
template <> struct FloatVector<16> { typedef float type __attribute__((vector_size(16))); };
template <> struct FloatVector<32> { typedef float type __attribute__((vector_size(32))); };
template <> struct FloatVector<64> { typedef float type __attribute__((vector_size(64))); };

template <int Bytes>
TG_ALWAYS_INLINE float fma_chains(int64_t iterations) {
  using V = typename FloatVector<Bytes>::type;
  V acc[kChains];
  V a, b;
  for (int k = 0; k < kChains; ++k)
    for (int l = 0; l < Bytes / 4; ++l) acc[k][l] = float(k + l) * 1e-3f;
  for (int l = 0; l < Bytes / 4; ++l) a[l] = 0.999999f, b[l] = 1e-7f;
  for (int64_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kChains; ++k) acc[k] = acc[k] * a + b;
    __asm__ volatile("" : "+x"(a));  // a is opaque to the optimiser: the chains cannot be folded
  }
  float s = 0;
  for (int k = 0; k < kChains; ++k)
    for (int l = 0; l < Bytes / 4; ++l) s += acc[k][l];
  return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f,fma"))) float fma_avx512(int64_t n) { return fma_chains<64>(n); }
__attribute__((target("avx2,fma"))) float fma_avx2(int64_t n) { return fma_chains<32>(n); }
#endif
float fma_portable(int64_t n) { return fma_chains<16>(n); }

}  // namespace

double peak_fma_flops(double seconds) {
  float (*loop)(int64_t) = fma_portable;
  int lanes = 4;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (std::strcmp(gemm_isa(), "avx512") == 0) loop = fma_avx512, lanes = 16;
  if (std::strcmp(gemm_isa(), "avx2") == 0) loop = fma_avx2, lanes = 8;
#endif
  using clock = std::chrono::steady_clock;
  int64_t iterations = 1 << 16;
  for (;;) {  // grow the work until one run lasts `seconds`
    int threads = 1;
    float total = 0;
    const auto t0 = clock::now();
#pragma omp parallel reduction(+ : total)
    {
      total += loop(iterations);
#ifdef _OPENMP
#pragma omp master
      threads = omp_get_num_threads();
#endif
    }
    __asm__ volatile("" : : "x"(total));  // the result is used: the loops cannot be dropped
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt >= seconds || iterations >= (int64_t(1) << 40))
      return 2.0 * lanes * kChains * static_cast<double>(iterations) * threads / dt;
    iterations *= 2;
  }
}

}  // namespace tg::cpu
