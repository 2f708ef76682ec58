// Strided iteration over N operands that share one (broadcast) shape. Dims that are contiguous
// in every operand are merged first, so a contiguous or scalar-broadcast case becomes one flat
// inner loop that the compiler vectorises. Large ranges are split over OpenMP threads.
#pragma once
#include <array>
#include <limits>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/shape.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tg::cpu {

constexpr int64_t kParallelGrain = 32768;  // elements below which threads cost more than they give

constexpr int kMaxLoopDims = 16;

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
    const int64_t n = numel();
    if (n == 0) return;
    if (n < kParallelGrain) {
      run_range(base, 0, n, inner);
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
      F local = inner;
      if (b < e) run_range(base, b, e, local);
    }
  }
};

// Row reductions with independent partial results, so the loop is not one long dependency chain
// (and the max widens into vector instructions). A NaN is skipped by the max; callers see it
// again when they use the row (exp(NaN - m) is NaN), so rows with NaN still come out NaN.
template <class T>
T row_max(const T* x, int64_t n) {
  constexpr int K = 8;
  T m[K];
  for (int k = 0; k < K; ++k) m[k] = -std::numeric_limits<T>::infinity();
  int64_t j = 0;
  for (; j + K <= n; j += K)
    for (int k = 0; k < K; ++k) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
  for (; j < n; ++j) m[0] = x[j] > m[0] ? x[j] : m[0];
  T best = m[0];
  for (int k = 1; k < K; ++k) best = m[k] > best ? m[k] : best;
  return best;
}

// Sum in double (float rows keep their precision), four partial sums.
template <class T>
double row_sum(const T* x, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int k = 0; k < 4; ++k) s[k] += x[j + k];
  for (; j < n; ++j) s[0] += x[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Run fn(begin, end) over [0, n) split across threads when n * cost_per_item is large.
template <class F>
void parallel_for(int64_t n, int64_t grain, F fn) {
  if (n <= grain) {
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

}  // namespace tg::cpu

