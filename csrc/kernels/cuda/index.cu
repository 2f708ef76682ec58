// Gathers and scatters over (outer, n, inner) contiguous buffers, the twin of
// kernels/cpu/index.cpp: one thread per element moved. Scatters add with atomicAdd, since two
// indices may name the same destination (so float sums may differ from the CPU in the last bits).
// And the device-side check of device-resident indices before any of them reads one.
#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>)  // two's complement: the unsigned add is the signed one
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  else
    atomicAdd(p, v);
}

#define TG_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// out[i] = in[i] read by `rule` (cuda.h); the first out-of-range index since the host last waited
// is written to the report (runtime.h), fenced so the host sees it once the stream is idle.
__global__ void check_indices_kernel(const int64_t* in, int64_t* out, int64_t n, IndexRule rule, IndexErrorSlot slot) {
  TG_GRID_LOOP(i, n) {
    const int64_t v = in[i];
    const int64_t w = rule.wrap_negative && v < 0 ? v + rule.size : v;
    if (rule.has_ignored && v == rule.ignored) {
      out[i] = -1;
    } else if (w >= 0 && w < rule.size) {
      out[i] = w;
    } else {
      out[i] = rule.fallback;
      if (atomicCAS(slot.claimed, 0, 1) == 0) {
        slot.report->index = v, slot.report->size = rule.size, slot.report->dim = rule.dim;
        __threadfence_system();
        slot.report->op = rule.op;  // last: a report the host sees is whole
        __threadfence_system();
      }
    }
  }
}

// out (outer, n_index, inner)[o, j, i] = in (outer, n_in, inner)[o, index[j], i]
template <class T>
__global__ void index_select_kernel(const T* in, const int64_t* index, T* out, int64_t n_in, int64_t n_index,
                                    int64_t inner, int64_t total) {
  TG_GRID_LOOP(t, total) {
    const int64_t i = t % inner, j = (t / inner) % n_index, o = t / (inner * n_index);
    out[t] = in[(o * n_in + index[j]) * inner + i];
  }
}

// out (outer, n_out, inner)[o, index[j], i] += src (outer, n_index, inner)[o, j, i]
template <class T>
__global__ void index_add_kernel(T* out, const int64_t* index, const T* src, int64_t n_out, int64_t n_index,
                                 int64_t inner, int64_t total) {
  TG_GRID_LOOP(t, total) {
    const int64_t i = t % inner, j = (t / inner) % n_index, o = t / (inner * n_index);
    atomic_add(out + (o * n_out + index[j]) * inner + i, src[t]);
  }
}

// out[o, j, i] = in[o, index[o, j, i], i]
template <class T>
__global__ void gather_kernel(const T* in, const int64_t* index, T* out, int64_t n_in, int64_t n_index, int64_t inner,
                              int64_t total) {
  TG_GRID_LOOP(t, total) {
    const int64_t i = t % inner, o = t / (inner * n_index);
    out[t] = in[(o * n_in + index[t]) * inner + i];
  }
}

// out[o, index[o, j, i], i] += src[o, j, i]
template <class T>
__global__ void scatter_add_kernel(T* out, const int64_t* index, const T* src, int64_t n_out, int64_t n_index,
                                   int64_t inner, int64_t total) {
  TG_GRID_LOOP(t, total) {
    const int64_t i = t % inner, o = t / (inner * n_index);
    atomic_add(out + (o * n_out + index[t]) * inner + i, src[t]);
  }
}

template <class T>
__global__ void put_kernel(T* out, const int64_t* positions, const T* values, int64_t n) {
  TG_GRID_LOOP(t, n) out[positions[t]] = values[t];
}

#undef TG_GRID_LOOP

}  // namespace

// Checked on the device, so nothing waits; how many rows were kept is not known on the host (-1).
int64_t CudaBackend::check_indices(const int64_t* in, int64_t* out, int64_t n, const IndexRule& rule) {
  if (n == 0) return -1;
  launch("check_indices", device, blocks_for(n), kThreads, check_indices_kernel, in, out, n, rule,
         index_error_slot(device));
  return -1;
}

void CudaBackend::index_select(DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in,
                               const int64_t* index, int64_t n_index, void* out) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  TG_DISPATCH_STORAGE(dtype, "index_select", [&](auto tag) {
    using T = decltype(tag);
    launch("index_select", device, blocks_for(total), kThreads, index_select_kernel<T>, static_cast<const T*>(in), index,
           static_cast<T*>(out), n_in, n_index, inner, total);
  });
}

void CudaBackend::index_add(DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
                            int64_t n_index, const void* src) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  TG_DISPATCH_NUMERIC(dtype, "index_add", [&](auto tag) {
    using T = decltype(tag);
    launch("index_add", device, blocks_for(total), kThreads, index_add_kernel<T>, static_cast<T*>(out), index,
           static_cast<const T*>(src), n_out, n_index, inner, total);
  });
}

void CudaBackend::gather(DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
                         const int64_t* index, void* out) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  TG_DISPATCH_STORAGE(dtype, "gather", [&](auto tag) {
    using T = decltype(tag);
    launch("gather", device, blocks_for(total), kThreads, gather_kernel<T>, static_cast<const T*>(in), index,
           static_cast<T*>(out), n_in, n_index, inner, total);
  });
}

void CudaBackend::scatter_add(DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                              const int64_t* index, const void* src) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  TG_DISPATCH_NUMERIC(dtype, "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    launch("scatter_add", device, blocks_for(total), kThreads, scatter_add_kernel<T>, static_cast<T*>(out), index,
           static_cast<const T*>(src), n_out, n_index, inner, total);
  });
}

void CudaBackend::put(DType dtype, void* out, const int64_t* positions, const void* values, int64_t n) {
  if (n == 0) return;
  TG_DISPATCH_STORAGE(dtype, "put", [&](auto tag) {
    using T = decltype(tag);
    launch("put", device, blocks_for(n), kThreads, put_kernel<T>, static_cast<T*>(out), positions,
           static_cast<const T*>(values), n);
  });
}

}  // namespace tg::cuda
