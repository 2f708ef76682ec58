// Reductions of a contiguous (outer, r, inner) buffer over its middle axis.
// inner == 1 reduces contiguous rows (a dot-product-like loop); inner > 1 adds whole rows of
// length `inner` into the output, which vectorises over the inner axis.
#include <limits>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

// float32 sums accumulate in float64 so that long rows and columns keep their precision.
template <class T> using SumAcc = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
void sum_kernel(int64_t outer, int64_t r, int64_t inner, const T* in, T* out) {
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(r, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = in + o * r;
        SumAcc<T> acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < r; ++j) acc += row[j];
        out[o] = static_cast<T>(acc);
      }
    });
    return;
  }
  // Columns are summed kCols at a time into an accumulator of SumAcc<T> (on the stack), row after
  // row: the adds still vectorise along the row, and float32 columns round once, like rows.
  constexpr int64_t kCols = 256;
  parallel_for(outer * inner, kParallelGrain, [&](int64_t b, int64_t e) {
    SumAcc<T> acc[kCols];
    // Split the flat (outer, inner) output range into per-outer pieces.
    for (int64_t pos = b; pos < e;) {
      int64_t o = pos / inner, i0 = pos % inner, i1 = std::min(inner, i0 + (e - pos));
      for (int64_t c0 = i0; c0 < i1; c0 += kCols) {
        const int64_t n = std::min(kCols, i1 - c0);
        for (int64_t k = 0; k < n; ++k) acc[k] = 0;
        const T* row = in + o * r * inner + c0;
        int64_t j = 0;
        for (; j + 4 <= r; j += 4, row += 4 * inner) {  // four rows per pass over acc: fewer loads and stores of it
          const T *r1 = row + inner, *r2 = r1 + inner, *r3 = r2 + inner;
#pragma omp simd
          for (int64_t k = 0; k < n; ++k)
            acc[k] += (SumAcc<T>(row[k]) + SumAcc<T>(r1[k])) + (SumAcc<T>(r2[k]) + SumAcc<T>(r3[k]));
        }
        for (; j < r; ++j, row += inner) {
#pragma omp simd
          for (int64_t k = 0; k < n; ++k) acc[k] += row[k];
        }
        for (int64_t k = 0; k < n; ++k) out[o * inner + c0 + k] = static_cast<T>(acc[k]);
      }
      pos += i1 - i0;
    }
  });
}

template <class T, bool is_max>
bool better(T a, T b) {  // is a strictly better than the current best b? NaN beats everything.
  if (a != a) return b == b;
  return is_max ? a > b : a < b;
}

template <class T, bool is_max, bool want_index>
void extreme_kernel(int64_t outer, int64_t r, int64_t inner, const T* in, void* out_raw) {
  parallel_for(outer * inner, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(r, 1)), [&](int64_t b, int64_t e) {
    for (int64_t pos = b; pos < e; ++pos) {
      int64_t o = pos / inner, i = pos % inner;
      const T* base = in + o * r * inner + i;
      T best = base[0];
      int64_t best_j = 0;
      for (int64_t j = 1; j < r; ++j) {
        T v = base[j * inner];
        if (better<T, is_max>(v, best)) {
          best = v;
          best_j = j;
        }
      }
      if constexpr (want_index) static_cast<int64_t*>(out_raw)[pos] = best_j;
      else static_cast<T*>(out_raw)[pos] = best;
    }
  });
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) {
  TG_DISPATCH_ALL(dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) throw TypeError("sum: bool input must be converted first");
        else sum_kernel<T>(outer, r, inner, x, static_cast<T*>(out));
        break;
      case ReduceOp::Max: extreme_kernel<T, true, false>(outer, r, inner, x, out); break;
      case ReduceOp::Min: extreme_kernel<T, false, false>(outer, r, inner, x, out); break;
      case ReduceOp::ArgMax: extreme_kernel<T, true, true>(outer, r, inner, x, out); break;
      case ReduceOp::ArgMin: extreme_kernel<T, false, true>(outer, r, inner, x, out); break;
    }
  });
}

}  // namespace tg::cpu
