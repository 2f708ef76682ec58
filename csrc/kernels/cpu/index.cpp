// Gather/scatter kernels over (outer, n, inner) contiguous buffers.
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

// The host reads the index and raises at the first bad one.
int64_t CpuBackend::check_indices(const int64_t* in, int64_t* out, int64_t n, const IndexRule& rule) {
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = in[i];
    if (rule.has_ignored && v == rule.ignored) {
      out[i] = -1;
      continue;
    }
    const bool ok = v < rule.size && (v >= 0 || (rule.wrap_negative && v >= -rule.size));
    if (!ok && rule.dim < 0)
      throw IndexError(str(rule.op, ": target ", v, " is out of range for ", rule.size, " classes"));
    TG_CHECK(ok, IndexError, rule.op, ": index ", v, " is out of range for dim ", rule.dim, " with size ", rule.size);
    out[i] = v < 0 ? v + rule.size : v;
    ++kept;
  }
  return kept;
}

void CpuBackend::index_select(DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in, const int64_t* index,
                              int64_t n_index, void* out) {
  const int64_t isz = itemsize(dtype), row = inner * isz;
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  parallel_for(outer * n_index, grain_for(inner), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t o = t / n_index, j = t % n_index;
      std::memcpy(dst + t * row, src + (o * n_in + index[j]) * row, row);
    }
  });
}

void CpuBackend::index_add(DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
                           int64_t n_index, const void* src) {
  TG_DISPATCH_NUMERIC(dtype, "index_add", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
    // Threads split the inner axis: two indices may name the same row, so rows are not split.
    parallel_for(inner, grain_for(outer * n_index), [&](int64_t ib, int64_t ie) {
      for (int64_t b = 0; b < outer; ++b)
        for (int64_t j = 0; j < n_index; ++j) {
          T* d = o + (b * n_out + index[j]) * inner;
          const T* x = s + (b * n_index + j) * inner;
          for (int64_t i = ib; i < ie; ++i) d[i] += x[i];
        }
    });
  });
}

void CpuBackend::gather(DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
                        const int64_t* index, void* out) {
  TG_DISPATCH_STORAGE(dtype, "gather", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    parallel_for(outer * n_index * inner, kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t i = t % inner, o = t / (inner * n_index);
        y[t] = x[(o * n_in + index[t]) * inner + i];
      }
    });
  });
}

void CpuBackend::scatter_add(DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                             const int64_t* index, const void* src) {
  TG_DISPATCH_NUMERIC(dtype, "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    T* y = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
    for (int64_t t = 0; t < outer * n_index * inner; ++t) {
      int64_t i = t % inner, o = t / (inner * n_index);
      y[(o * n_out + index[t]) * inner + i] += s[t];
    }
  });
}

}  // namespace tg::cpu

namespace tg::cpu {

void CpuBackend::put(DType dtype, void* out, const int64_t* positions, const void* values, int64_t n) {
  const int64_t isz = itemsize(dtype);
  char* o = static_cast<char*>(out);
  const char* v = static_cast<const char*>(values);
  for (int64_t i = 0; i < n; ++i) std::memcpy(o + positions[i] * isz, v + i * isz, isz);
}

}  // namespace tg::cpu
