// Strided iteration over N operands that share one (broadcast) shape. Dims that are contiguous
// in every operand are merged first, so a contiguous or scalar-broadcast case becomes one flat
// inner loop that the compiler vectorises. Large ranges are split over OpenMP threads.
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/shape.h"
#include "kernels/functors.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tg::cpu {

// Hot contiguous loops are compiled three times, for baseline x86-64, x86-64-v3 (AVX2 + FMA) and
// x86-64-v4 (AVX-512), and the loader binds the best one for the CPU it runs on (GCC function
// multiversioning), so a build that runs anywhere still uses 16-wide vectors where it can. (The
// GEMM picks its micro-kernel itself, gemm.cpp: its tile shape differs per instruction set.)
// Mark a function with it only when its loop is inside it (an OpenMP region or a lambda it
// calls is not cloned).
// (Not under ThreadSanitizer: the clones' IFUNC resolvers run before its runtime is set up.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    !defined(__SANITIZE_THREAD__)
#define TG_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TG_SIMD_CLONES
#endif

constexpr int64_t kParallelGrain = 32768;  // elements below which threads cost more than they give

// The grain of a loop whose items each cost `work` (the elements of a row, a task's flops): enough
// items that a thread's share costs at least `budget`.
constexpr int64_t grain_for(int64_t work, int64_t budget = kParallelGrain) {
  return std::max<int64_t>(1, budget / std::max<int64_t>(work, 1));
}

// Threads a parallel_for started here would get: one inside a parallel region (nested regions
// run on the thread that meets them), else OpenMP's team size.
inline int64_t available_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

constexpr int kMaxLoopDims = 16;

// Run fn(begin, end) over [0, n) split across threads when n * cost_per_item is large.
// Inside a parallel region (attention's per-head products) or with one thread, fn runs here:
// opening a nested region of one thread still costs libgomp a team start per call.
template <class F>
void parallel_for(int64_t n, int64_t grain, F fn) {
  if (n <= grain || available_threads() == 1) {
    if (n > 0) fn(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
#ifdef _OPENMP
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    int64_t nt = 1, t = 0;
#endif
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }
}

template <int N>
struct StridedLoop {
  // Fixed-size arrays: building a loop allocates nothing, which matters for tiny tensors.
  int nd = 0;
  std::array<int64_t, kMaxLoopDims> shape;                          // coalesced, innermost last
  std::array<std::array<int64_t, kMaxLoopDims>, N> byte_strides;    // per operand

  StridedLoop(const Shape& s, const std::array<const int64_t*, N>& strides, const std::array<int64_t, N>& itemsizes) {
    // Drop size-1 dims, then merge neighbours that are contiguous for every operand.
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;
      if (nd > 0) {
        bool mergeable = true;
        for (int k = 0; k < N; ++k)
          if (byte_strides[k][nd - 1] != strides[k][d] * itemsizes[k] * s[d]) mergeable = false;
        if (mergeable) {
          shape[nd - 1] *= s[d];
          for (int k = 0; k < N; ++k) byte_strides[k][nd - 1] = strides[k][d] * itemsizes[k];
          continue;
        }
      }
      if (nd == kMaxLoopDims) throw ValueError("elementwise: more than 16 dims that cannot be merged");
      shape[nd] = s[d];
      for (int k = 0; k < N; ++k) byte_strides[k][nd] = strides[k][d] * itemsizes[k];
      ++nd;
    }
    if (nd == 0) {
      shape[0] = 1;
      for (int k = 0; k < N; ++k) byte_strides[k][0] = 0;
      nd = 1;
    }
  }

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) n *= shape[d];
    return n;
  }

  // inner(ptrs, inner_strides, n) is called on runs of the innermost dim covering [begin, end).
  template <class F>
  void run_range(std::array<char*, N> base, int64_t begin, int64_t end, F& inner) const {
    const int64_t inner_n = shape[nd - 1];
    std::array<int64_t, N> inner_strides;
    for (int k = 0; k < N; ++k) inner_strides[k] = byte_strides[k][nd - 1];
    if (nd == 1) {  // the common case: one flat run
      std::array<char*, N> p;
      for (int k = 0; k < N; ++k) p[k] = base[k] + begin * inner_strides[k];
      inner(p, inner_strides, end - begin);
      return;
    }
    std::array<int64_t, kMaxLoopDims> idx{};
    int64_t rem = begin;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    int64_t pos = begin;
    while (pos < end) {
      std::array<char*, N> p;
      for (int k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int64_t d = 0; d < nd; ++d) off += idx[d] * byte_strides[k][d];
        p[k] = base[k] + off;
      }
      int64_t n = std::min(inner_n - idx[nd - 1], end - pos);
      inner(p, inner_strides, n);
      pos += n;
      idx[nd - 1] += n;
      for (int64_t d = nd - 1; d > 0 && idx[d] >= shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  }

  template <class F>
  void run(std::array<char*, N> base, F inner) const {
    parallel_for(numel(), kParallelGrain - 1, [&](int64_t begin, int64_t end) {
      F local = inner;  // each thread its own copy of the functor
      run_range(base, begin, end, local);
    });
  }
};

// Row reductions with independent partial results, so the loop is not one long dependency chain
// and widens into vector instructions. Always inlined: they run inside SIMD-cloned row kernels
// (TG_SIMD_CLONES), which GCC only inlines into when forced.
#if defined(__GNUC__)
#define TG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TG_ALWAYS_INLINE inline
#endif

// Written with GCC/Clang vector extensions: SLP vectorisation of scalar partials is fragile
// (the partials get split into scalar registers first), a vector type is not. A 64-byte vector
// is one AVX-512 register in the x86-64-v4 clone, two AVX registers in the v3 one and four SSE
// registers in the baseline.
template <class T> struct Vec64 { typedef T type __attribute__((vector_size(64))); };
using Double8 = Vec64<double>::type;
constexpr int64_t kDoubleLanes = 8;

template <class T>
TG_ALWAYS_INLINE Double8 load_double8(const T* p) {
  Double8 v;
  for (int k = 0; k < kDoubleLanes; ++k) v[k] = static_cast<double>(p[k]);
  return v;
}
TG_ALWAYS_INLINE double horizontal_sum(Double8 a, Double8 b) {
  a += b;
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// A NaN is skipped by the max (x > m is false); callers see it again when they use the row
// (exp(NaN - m) is NaN), so rows with NaN still come out NaN.
template <class T>
TG_ALWAYS_INLINE T row_max(const T* x, int64_t n) {
  using V = typename Vec64<T>::type;
  constexpr int W = sizeof(V) / sizeof(T);
  const T lowest = -std::numeric_limits<T>::infinity();
  V m0, m1;
  for (int k = 0; k < W; ++k) m0[k] = m1[k] = lowest;
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    V a, b;
    std::memcpy(&a, x + j, sizeof a);
    std::memcpy(&b, x + j + W, sizeof b);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  m0 = m1 > m0 ? m1 : m0;
  T best = lowest;
  for (int k = 0; k < W; ++k) best = m0[k] > best ? m0[k] : best;
  for (; j < n; ++j) best = x[j] > best ? x[j] : best;
  return best;
}

// Sums accumulate in double (float rows keep their precision), two vectors of eight partials.
//   row_sum = sum_j x_j,  row_dot = sum_j x_j y_j,  row_sq_dev = sum_j (x_j - c)^2
// One loop serves the three: lanes(j) is the terms of elements j .. j + 7 as a vector, term(j)
// the one term of element j (the tail).
template <class Lanes, class Term>
TG_ALWAYS_INLINE double row_accumulate(int64_t n, Lanes lanes, Term term) {
  Double8 s0 = {}, s1 = {};
  int64_t j = 0;
  for (; j + 2 * kDoubleLanes <= n; j += 2 * kDoubleLanes) {
    s0 += lanes(j);
    s1 += lanes(j + kDoubleLanes);
  }
  double t = horizontal_sum(s0, s1);
  for (; j < n; ++j) t += term(j);
  return t;
}
template <class T>
TG_ALWAYS_INLINE double row_sum(const T* x, int64_t n) {
  return row_accumulate(
      n, [&](int64_t j) { return load_double8(x + j); }, [&](int64_t j) { return static_cast<double>(x[j]); });
}
template <class T>
TG_ALWAYS_INLINE double row_dot(const T* x, const T* y, int64_t n) {
  return row_accumulate(
      n, [&](int64_t j) { return load_double8(x + j) * load_double8(y + j); },
      [&](int64_t j) { return static_cast<double>(x[j]) * y[j]; });
}
template <class T>
TG_ALWAYS_INLINE double row_sq_dev(const T* x, int64_t n, double c) {
  return row_accumulate(
      n,
      [&](int64_t j) {
        const Double8 d = load_double8(x + j) - c;
        return d * d;
      },
      [&](int64_t j) { return (x[j] - c) * (x[j] - c); });
}

// out_j = exp(x_j - m), returning sum_j term(out_j, j): one pass for the exps and their sum
// (exps_and_sum: the exps themselves; attention's backward: exps times dP). The sum runs in
// full-width T lanes over blocks of 256 and the blocks' sums add up in double, so long rows keep
// their precision: a lane adds 16 (AVX-512) to 64 (SSE) terms, so at most 64 ulp of their
// magnitude and in practice a few (float32 softmax of 1e5 columns: 1.2e-6 relative to float64).
// Smaller blocks cost a horizontal sum every few vectors (64: 15 % slower rows).
template <class T, class Term>
TG_ALWAYS_INLINE double exps_and_sum_of(const T* x, T m, T* out, int64_t n, Term term) {
  constexpr int64_t kBlock = 256;
  double s = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(n, j0 + kBlock);
    T block = 0;
#pragma omp simd reduction(+ : block)
    for (int64_t j = j0; j < j1; ++j) {
      const T e = fn::exp_nonpositive(x[j] - m);
      out[j] = e;
      block += term(e, j);
    }
    s += block;
  }
  return s;
}
template <class T>
TG_ALWAYS_INLINE double exps_and_sum(const T* x, T m, T* out, int64_t n) {
  return exps_and_sum_of(x, m, out, n, [](T e, int64_t) { return e; });
}

}  // namespace tg::cpu
