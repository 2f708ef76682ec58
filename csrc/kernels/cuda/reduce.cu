// Reductions of a contiguous (outer, r, inner) buffer over its middle axis, the twin of
// kernels/cpu/reduce.cpp.
//   inner == 1: one block per row of r contiguous elements; each thread folds a strided part of
//               the row, then the block combines with warp shuffles.
//   inner > 1:  one thread per output (o, i), walking r rows of stride `inner` (neighbouring
//               threads read neighbouring addresses, so the loads coalesce).
// Max/min carry (value, index) pairs: NaN beats every number, ties go to the lower index -- the
// first extremum, as the CPU's sequential scan finds.
#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T>
struct Candidate {
  T v;
  int64_t i;  // -1: no element yet
};

template <bool is_max, class T>
__device__ __forceinline__ Candidate<T> better_of(Candidate<T> a, Candidate<T> b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) return (an && (!bn || a.i < b.i)) ? a : b;
  if (a.v == b.v) return a.i < b.i ? a : b;
  return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
}

template <class T>
__device__ __forceinline__ T shuffle_xor(T v, int delta) {
  if constexpr (std::is_same_v<T, bool>) return __shfl_xor_sync(0xffffffffu, int(v), delta) != 0;  // no bool shuffle
  else return __shfl_xor_sync(0xffffffffu, v, delta);
}

template <bool is_max, class T>
__device__ __forceinline__ Candidate<T> warp_best(Candidate<T> c) {
  for (int delta = 16; delta > 0; delta >>= 1) {
    Candidate<T> o{shuffle_xor(c.v, delta), shuffle_xor(c.i, delta)};
    c = better_of<is_max>(c, o);
  }
  return c;
}

template <class T>
__global__ void sum_rows(const T* in, T* out, int64_t outer, int64_t r) {
  __shared__ Acc<T> scratch[32];
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = in + o * r;
    Acc<T> acc = 0;
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) acc += row[j];
    acc = block_reduce(acc, SumOp{}, Acc<T>(0), scratch);
    if (threadIdx.x == 0) out[o] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void sum_columns(const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = p / inner, i = p % inner;
    const T* base = in + o * r * inner + i;
    Acc<T> acc = 0;
    for (int64_t j = 0; j < r; ++j) acc += base[j * inner];
    out[p] = static_cast<T>(acc);
  }
}

template <bool is_max, bool want_index, class T>
__global__ void extreme_rows(const T* in, void* out, int64_t outer, int64_t r) {
  __shared__ T values[32];
  __shared__ int64_t indices[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = in + o * r;
    Candidate<T> best{T(0), -1};
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) best = better_of<is_max>(best, Candidate<T>{row[j], j});
    best = warp_best<is_max>(best);
    __syncthreads();
    if (lane == 0) {
      values[warp] = best.v;
      indices[warp] = best.i;
    }
    __syncthreads();
    if (warp == 0) {
      Candidate<T> c = lane < n_warps ? Candidate<T>{values[lane], indices[lane]} : Candidate<T>{T(0), -1};
      c = warp_best<is_max>(c);
      if (lane == 0) {
        if constexpr (want_index) static_cast<int64_t*>(out)[o] = c.i;
        else static_cast<T*>(out)[o] = c.v;
      }
    }
  }
}

template <bool is_max, bool want_index, class T>
__global__ void extreme_columns(const T* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = p / inner, i = p % inner;
    const T* base = in + o * r * inner + i;
    Candidate<T> best{base[0], 0};
    for (int64_t j = 1; j < r; ++j) best = better_of<is_max>(best, Candidate<T>{base[j * inner], j});
    if constexpr (want_index) static_cast<int64_t*>(out)[p] = best.i;
    else static_cast<T*>(out)[p] = best.v;
  }
}

unsigned row_blocks(int64_t outer) { return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(outer, 1), 1 << 20)); }

template <bool is_max, bool want_index, class T>
void extreme(int device, int64_t outer, int64_t r, int64_t inner, const T* in, void* out) {
  if (inner == 1)
    launch("reduce (max/min rows)", device, row_blocks(outer), kThreads, extreme_rows<is_max, want_index, T>, in, out, outer, r);
  else
    launch("reduce (max/min columns)", device, blocks_for(outer * inner), kThreads, extreme_columns<is_max, want_index, T>,
           in, out, outer, r, inner);
}

}  // namespace

void reduce(int device, ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) {
  if (outer * inner == 0) return;
  TG_DISPATCH_ALL(dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) {
          throw TypeError("sum: bool input must be converted first");
        } else if (inner == 1) {
          launch("reduce (sum rows)", device, row_blocks(outer), kThreads, sum_rows<T>, x, static_cast<T*>(out), outer, r);
        } else {
          launch("reduce (sum columns)", device, blocks_for(outer * inner), kThreads, sum_columns<T>, x,
                 static_cast<T*>(out), outer, r, inner);
        }
        break;
      case ReduceOp::Max: extreme<true, false>(device, outer, r, inner, x, out); break;
      case ReduceOp::Min: extreme<false, false>(device, outer, r, inner, x, out); break;
      case ReduceOp::ArgMax: extreme<true, true>(device, outer, r, inner, x, out); break;
      case ReduceOp::ArgMin: extreme<false, true>(device, outer, r, inner, x, out); break;
    }
  });
}

}  // namespace tg::cuda
