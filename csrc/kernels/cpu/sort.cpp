// The stable sorting permutation of contiguous rows (sort, argsort, topk, kthvalue, median, mode
// and unique are built on it in ops/sort.cpp).
//
// Each row is copied into (value, position) pairs, which std::stable_sort orders by value alone:
// equal values keep their positions' order, and the pairs sit side by side in memory (an
// argsort through an index array would read the values in random order). NaN is larger than
// every number, as in PyTorch, so it goes last ascending and first descending.
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  return false;
}

template <class T>
void argsort_rows_of(int64_t rows, int64_t n, const T* in, int64_t* index, bool descending) {
  using Pair = std::pair<T, int64_t>;
  auto ascending_before = [](const Pair& a, const Pair& b) { return a.first < b.first || (is_nan(b.first) && !is_nan(a.first)); };
  auto descending_before = [](const Pair& a, const Pair& b) { return a.first > b.first || (is_nan(a.first) && !is_nan(b.first)); };
  parallel_for(rows, grain_for(n * 16), [&](int64_t b, int64_t e) {
    std::vector<Pair> pairs(static_cast<size_t>(n));
    for (int64_t r = b; r < e; ++r) {
      const T* x = in + r * n;
      for (int64_t j = 0; j < n; ++j) pairs[static_cast<size_t>(j)] = {x[j], j};
      if (descending) std::stable_sort(pairs.begin(), pairs.end(), descending_before);
      else std::stable_sort(pairs.begin(), pairs.end(), ascending_before);
      for (int64_t j = 0; j < n; ++j) index[r * n + j] = pairs[static_cast<size_t>(j)].second;
    }
  });
}

}  // namespace

void CpuBackend::argsort_rows(DType dtype, int64_t rows, int64_t n, const void* in, int64_t* index, bool descending) {
  TG_DISPATCH_ALL(dtype, "sort", [&](auto tag) {
    using T = decltype(tag);
    argsort_rows_of(rows, n, static_cast<const T*>(in), index, descending);
  });
}

}  // namespace tg::cpu
