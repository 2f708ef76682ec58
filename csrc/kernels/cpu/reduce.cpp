// Reductions of a contiguous (outer, r, inner) buffer over its middle axis.
//
//   inner == 1: contiguous rows of length r. Each row reduces in vector lanes (float32 sums in
//               float64 lanes: loops.h's row_sum); a few long rows (a sum over everything) are
//               cut into fixed chunks so that every thread works, and the chunks' partial sums
//               are added in order, so the result does not depend on the thread count.
//   inner  > 1: a middle dim. Whole rows of length `inner` are combined into kColumns
//               accumulators at a time, which vectorises along the inner axis.
//
// The row and column loops are SIMD-cloned (loops.h): AVX-512, AVX2 or the baseline, chosen for
// the CPU at load time. Memory-bound at large sizes: one read of the input.
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

// float32 sums accumulate in float64 so that long rows and columns keep their precision;
// integers stay exact in their own type.
template <class T> using SumAcc = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
TG_ALWAYS_INLINE SumAcc<T> sum_of(const T* x, int64_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<SumAcc<T>>(row_sum(x, n));
  } else {
    T acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += x[j];
    return acc;
  }
}

template <class T>
TG_SIMD_CLONES void sum_rows(const T* in, T* out, int64_t r, int64_t b, int64_t e) {
  for (int64_t o = b; o < e; ++o) out[o] = static_cast<T>(sum_of(in + o * r, r));
}

constexpr int64_t kChunk = int64_t(1) << 15;  // elements per partial sum of a long row

// Partial sums [b, e) of rows cut into chunks of kChunk: piece t is chunk t % chunks of row
// t / chunks.
template <class T>
TG_SIMD_CLONES void sum_chunks(const T* in, SumAcc<T>* partial, int64_t r, int64_t chunks, int64_t b, int64_t e) {
  for (int64_t t = b; t < e; ++t) {
    const int64_t o = t / chunks, start = (t % chunks) * kChunk;
    partial[t] = sum_of(in + o * r + start, std::min(kChunk, r - start));
  }
}

constexpr int64_t kColumns = 256;  // accumulators of a middle-dim reduction, on the stack

// out[o, c0 + k] = sum_j in[o, j, c0 + k] for k < n. Four rows per pass over the accumulators
// (fewer loads and stores of them); float32 columns round once, like rows.
template <class T>
TG_SIMD_CLONES void sum_columns(const T* in, T* out, int64_t r, int64_t inner, int64_t o, int64_t c0, int64_t n) {
  SumAcc<T> acc[kColumns];
  for (int64_t k = 0; k < n; ++k) acc[k] = 0;
  const T* row = in + o * r * inner + c0;
  int64_t j = 0;
  for (; j + 4 <= r; j += 4, row += 4 * inner) {
    const T *r1 = row + inner, *r2 = r1 + inner, *r3 = r2 + inner;
    for (int64_t k = 0; k < n; ++k)
      acc[k] += (SumAcc<T>(row[k]) + SumAcc<T>(r1[k])) + (SumAcc<T>(r2[k]) + SumAcc<T>(r3[k]));
  }
  for (; j < r; ++j, row += inner)
    for (int64_t k = 0; k < n; ++k) acc[k] += row[k];
  for (int64_t k = 0; k < n; ++k) out[o * inner + c0 + k] = static_cast<T>(acc[k]);
}

// Splits the flat (outer, inner) output range [b, e) into column blocks of one outer index.
template <class F>
void for_column_blocks(int64_t inner, int64_t b, int64_t e, F block) {
  for (int64_t pos = b; pos < e;) {
    const int64_t o = pos / inner, i0 = pos % inner, i1 = std::min(inner, i0 + (e - pos));
    for (int64_t c0 = i0; c0 < i1; c0 += kColumns) block(o, c0, std::min(kColumns, i1 - c0));
    pos += i1 - i0;
  }
}

template <class T>
void sum_kernel(int64_t outer, int64_t r, int64_t inner, const T* in, T* out) {
  if (inner > 1) {  // the grain counts outputs, each of r inputs: a middle-dim sum is threaded too
    parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
      for_column_blocks(inner, b, e, [&](int64_t o, int64_t c0, int64_t n) { sum_columns(in, out, r, inner, o, c0, n); });
    });
    return;
  }
  if (r >= 2 * kChunk && outer < 16) {  // few long rows: threads share each row
    const int64_t chunks = (r + kChunk - 1) / kChunk;
    std::vector<SumAcc<T>> partial(static_cast<size_t>(outer * chunks));
    parallel_for(outer * chunks, 1, [&](int64_t b, int64_t e) { sum_chunks(in, partial.data(), r, chunks, b, e); });
    for (int64_t o = 0; o < outer; ++o) {
      SumAcc<T> total = 0;
      for (int64_t c = 0; c < chunks; ++c) total += partial[o * chunks + c];
      out[o] = static_cast<T>(total);
    }
    return;
  }
  parallel_for(outer, grain_for(r), [&](int64_t b, int64_t e) { sum_rows(in, out, r, b, e); });
}

// ---- max / min / argmax / argmin: the first extreme element; NaN beats everything ----------

template <class T, bool is_max>
TG_ALWAYS_INLINE bool better(T a, T b) {  // is a strictly better than the current best b?
  const bool beats = is_max ? a > b : a < b;  // false when either is NaN
  // Bitwise, not short-circuit: no branch, so the column loops vectorise into compares and selects.
  if constexpr (std::is_floating_point_v<T>) return beats | ((a != a) & (b == b));
  return beats;
}

// The extreme of a row in vector lanes: a max (min) that skips NaN, and whether a NaN was seen.
template <class T, bool is_max>
TG_ALWAYS_INLINE T row_extreme(const T* x, int64_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    // Start from -inf (+inf), not lowest(): a row of -inf has -inf as its max, and argmax's
    // search for the first element equal to the extreme must find one.
    T m = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    int nan = 0;  // an int, not a bool: GCC vectorises an int or-reduction, not a bool one
    if constexpr (is_max) {
#pragma omp simd reduction(max : m) reduction(| : nan)
      for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m, nan |= x[j] != x[j];
    } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
      for (int64_t j = 0; j < n; ++j) m = x[j] < m ? x[j] : m, nan |= x[j] != x[j];
    }
    return nan ? std::numeric_limits<T>::quiet_NaN() : m;
  } else {
    T m = x[0];
    for (int64_t j = 1; j < n; ++j) m = better<T, is_max>(x[j], m) ? x[j] : m;
    return m;
  }
}

// The first j in [0, n) with x[j] == best (the first NaN when best is NaN); best is in the row.
template <class T>
TG_ALWAYS_INLINE int64_t first_index_of(const T* x, T best) {
  int64_t j = 0;
  if (best != best) {
    while (x[j] == x[j]) ++j;
  } else {
    while (x[j] != best) ++j;
  }
  return j;
}

// Rows: the extreme value in one vector pass, then (for an index) the first element equal to it.
template <class T, bool is_max, bool want_index>
TG_SIMD_CLONES void extreme_rows(const T* in, void* out, int64_t r, int64_t b, int64_t e) {
  for (int64_t o = b; o < e; ++o) {
    const T* x = in + o * r;
    const T best = row_extreme<T, is_max>(x, r);
    if constexpr (want_index) static_cast<int64_t*>(out)[o] = first_index_of(x, best);
    else static_cast<T*>(out)[o] = best;
  }
}

// Pieces [b, e) of rows cut into chunks of kChunk (piece t: chunk t % chunks of row t / chunks).
template <class T, bool is_max>
TG_SIMD_CLONES void extreme_chunks(const T* in, T* partial, int64_t r, int64_t chunks, int64_t b, int64_t e) {
  for (int64_t t = b; t < e; ++t) {
    const int64_t o = t / chunks, start = (t % chunks) * kChunk;
    partial[t] = row_extreme<T, is_max>(in + o * r + start, std::min(kChunk, r - start));
  }
}

// A middle dim: per column the best so far (and, for an index, where), updated row after row with
// selects that vectorise.
//   values: four rows per pass, a max (min) that skips NaN, and per column whether a NaN was seen
//           (as row_extreme): the extreme value does not depend on which equal element it is;
//   index:  row by row, the first strictly better element, NaN beating everything (better).
template <class T, bool is_max, bool want_index>
TG_SIMD_CLONES void extreme_columns(const T* in, void* out, int64_t r, int64_t inner, int64_t o, int64_t c0, int64_t n) {
  T best[kColumns];
  const T* base = in + o * r * inner + c0;
  for (int64_t k = 0; k < n; ++k) best[k] = base[k];
  if constexpr (want_index) {
    int64_t where[kColumns];
    for (int64_t k = 0; k < n; ++k) where[k] = 0;
    for (int64_t j = 1; j < r; ++j) {
      const T* row = base + j * inner;
      for (int64_t k = 0; k < n; ++k) {
        const bool take = better<T, is_max>(row[k], best[k]);
        best[k] = take ? row[k] : best[k];
        where[k] = take ? j : where[k];
      }
    }
    for (int64_t k = 0; k < n; ++k) static_cast<int64_t*>(out)[o * inner + c0 + k] = where[k];
  } else {
    auto pick = [](T a, T b) { return (is_max ? b > a : b < a) ? b : a; };  // skips a NaN b
    int nan[kColumns];  // an int, not a bool: GCC vectorises int selects and ors
    for (int64_t k = 0; k < n; ++k) nan[k] = base[k] != base[k];
    int64_t j = 1;
    for (; j + 4 <= r; j += 4) {
      const T *x0 = base + j * inner, *x1 = x0 + inner, *x2 = x1 + inner, *x3 = x2 + inner;
      for (int64_t k = 0; k < n; ++k) {
        best[k] = pick(best[k], pick(pick(x0[k], x1[k]), pick(x2[k], x3[k])));
        nan[k] |= (x0[k] != x0[k]) | (x1[k] != x1[k]) | (x2[k] != x2[k]) | (x3[k] != x3[k]);
      }
    }
    for (; j < r; ++j) {
      const T* row = base + j * inner;
      for (int64_t k = 0; k < n; ++k) best[k] = pick(best[k], row[k]), nan[k] |= row[k] != row[k];
    }
    for (int64_t k = 0; k < n; ++k)
      static_cast<T*>(out)[o * inner + c0 + k] = nan[k] ? std::numeric_limits<T>::quiet_NaN() : best[k];
  }
}

template <class T, bool is_max, bool want_index>
void extreme_kernel(int64_t outer, int64_t r, int64_t inner, const T* in, void* out) {
  if (inner == 1 && r >= 2 * kChunk && outer < 16) {  // few long rows: threads share each row
    const int64_t chunks = (r + kChunk - 1) / kChunk;
    std::unique_ptr<T[]> partial(new T[static_cast<size_t>(outer * chunks)]);  // T may be bool
    parallel_for(outer * chunks, 1,
                 [&](int64_t b, int64_t e) { extreme_chunks<T, is_max>(in, partial.get(), r, chunks, b, e); });
    for (int64_t o = 0; o < outer; ++o) {
      const T* part = partial.get() + o * chunks;
      int64_t c = 0;  // the first chunk holding the extreme
      for (int64_t k = 1; k < chunks; ++k)
        if (better<T, is_max>(part[k], part[c])) c = k;
      if constexpr (want_index) static_cast<int64_t*>(out)[o] = c * kChunk + first_index_of(in + o * r + c * kChunk, part[c]);
      else static_cast<T*>(out)[o] = part[c];
    }
    return;
  }
  if (inner == 1) {
    parallel_for(outer, grain_for(r),
                 [&](int64_t b, int64_t e) { extreme_rows<T, is_max, want_index>(in, out, r, b, e); });
    return;
  }
  parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
    for_column_blocks(inner, b, e, [&](int64_t o, int64_t c0, int64_t n) {
      extreme_columns<T, is_max, want_index>(in, out, r, inner, o, c0, n);
    });
  });
}

// ---- prod: rows in one accumulator, middle dims in column blocks (float32 in float64, as sums) ----
template <class T>
void product_kernel(int64_t outer, int64_t r, int64_t inner, const T* in, T* out) {
  parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
    for_column_blocks(inner, b, e, [&](int64_t o, int64_t c0, int64_t cols) {
      SumAcc<T> acc[kColumns];
      for (int64_t k = 0; k < cols; ++k) acc[k] = 1;
      for (int64_t j = 0; j < r; ++j) {
        const T* row = in + (o * r + j) * inner + c0;
        for (int64_t k = 0; k < cols; ++k) acc[k] *= row[k];
      }
      for (int64_t k = 0; k < cols; ++k) out[o * inner + c0 + k] = static_cast<T>(acc[k]);
    });
  });
}

// ---- running reductions (scans): lines of `inner` columns advance together (a vector step per j);
// threads split the outer index, or the columns when there is one outer block ----------------------

// out[o, j, c] = combine over k <= j of in[o, k, c], accumulated in Acc from `identity`.
template <class T, class Acc, class Combine>
void running(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, Acc identity, Combine combine) {
  parallel_for(outer * inner, grain_for(n), [&](int64_t b, int64_t e) {
    for_column_blocks(inner, b, e, [&](int64_t o, int64_t c0, int64_t cols) {
      Acc acc[kColumns];
      for (int64_t k = 0; k < cols; ++k) acc[k] = identity;
      for (int64_t j = 0; j < n; ++j) {
        const T* row = x + (o * n + j) * inner + c0;
        T* dst = y + (o * n + j) * inner + c0;
        for (int64_t k = 0; k < cols; ++k) acc[k] = combine(acc[k], Acc(row[k])), dst[k] = static_cast<T>(acc[k]);
      }
    });
  });
}

// index[o, j, c] = the k <= j of the running max (min): a later equal element takes over, and so
// does every NaN (PyTorch's cummax / cummin).
template <class T, bool is_max>
void running_extreme_index(int64_t outer, int64_t n, int64_t inner, const T* x, int64_t* index) {
  parallel_for(outer * inner, grain_for(n), [&](int64_t b, int64_t e) {
    for_column_blocks(inner, b, e, [&](int64_t o, int64_t c0, int64_t cols) {
      T best[kColumns];
      int64_t where[kColumns];
      for (int64_t k = 0; k < cols; ++k) best[k] = x[o * n * inner + c0 + k], where[k] = 0;
      for (int64_t j = 0; j < n; ++j) {
        const T* row = x + (o * n + j) * inner + c0;
        int64_t* dst = index + (o * n + j) * inner + c0;
        for (int64_t k = 0; k < cols; ++k) {
          bool take = is_max ? row[k] >= best[k] : row[k] <= best[k];
          if constexpr (std::is_floating_point_v<T>) take |= row[k] != row[k];
          best[k] = take ? row[k] : best[k];
          where[k] = take ? j : where[k];
          dst[k] = where[k];
        }
      }
    });
  });
}

// log(exp(a) + exp(b)) without overflow; equal arguments (both infinite among them) give a + log 2.
template <class T>
TG_ALWAYS_INLINE T log_add_exp(T a, T b) {
  if (a == b) return a + T(0.69314718055994530942);
  const T hi = a > b ? a : b, gap = a > b ? b - a : a - b;  // gap <= 0, or NaN
  return hi + std::log1p(std::exp(gap));
}

}  // namespace

void CpuBackend::scan(ScanOp op, DType dtype, int64_t outer, int64_t n, int64_t inner, const void* in, void* out,
                      int64_t* index) {
  TG_DISPATCH_NUMERIC(dtype, "scan", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    switch (op) {
      case ScanOp::Sum: running(outer, n, inner, x, y, SumAcc<T>(0), [](auto a, auto b) { return a + b; }); break;
      case ScanOp::Prod: running(outer, n, inner, x, y, SumAcc<T>(1), [](auto a, auto b) { return a * b; }); break;
      case ScanOp::LogSumExp:
        if constexpr (!std::is_floating_point_v<T>) throw TypeError("logcumsumexp: expected a floating-point tensor");
        else running(outer, n, inner, x, y, SumAcc<T>(-INFINITY), [](auto a, auto b) { return log_add_exp(a, b); });
        break;
      case ScanOp::Max: running_extreme_index<T, true>(outer, n, inner, x, index); break;
      case ScanOp::Min: running_extreme_index<T, false>(outer, n, inner, x, index); break;
    }
  });
}

void CpuBackend::reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) {
  TG_DISPATCH_ALL(dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) throw TypeError("sum: bool input must be converted first");
        else sum_kernel<T>(outer, r, inner, x, static_cast<T*>(out));
        break;
      case ReduceOp::Prod:
        if constexpr (std::is_same_v<T, bool>) throw TypeError("prod: bool input must be converted first");
        else product_kernel<T>(outer, r, inner, x, static_cast<T*>(out));
        break;
      case ReduceOp::Max: extreme_kernel<T, true, false>(outer, r, inner, x, out); break;
      case ReduceOp::Min: extreme_kernel<T, false, false>(outer, r, inner, x, out); break;
      case ReduceOp::ArgMax: extreme_kernel<T, true, true>(outer, r, inner, x, out); break;
      case ReduceOp::ArgMin: extreme_kernel<T, false, true>(outer, r, inner, x, out); break;
    }
  });
}

}  // namespace tg::cpu
