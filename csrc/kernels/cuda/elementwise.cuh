// The one elementwise engine of the CUDA backend: out = f(in_0, ..., in_k) over a broadcast shape.
// Three paths, chosen on the host:
//   contiguous  every operand dense and 4-element aligned: each thread loads 4 elements of every
//               operand with one vector load (16 bytes for float32) and stores 4 results;
//   flat        after merging dims, one dim with any strides (scalar broadcast, a step slice);
//   strided     up to 16 dims; offsets from StridedOffsets (div/mod per dim).
#pragma once
#include <utility>

#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

template <class Out, class... In>
struct Operands {
  static constexpr int N = 1 + sizeof...(In);
  char* ptr[N];
};

template <class F, class Out, class... In, size_t... I>
__device__ __forceinline__ void apply_at(const F& f, char* const* p, const int64_t* off, std::index_sequence<I...>) {
  *reinterpret_cast<Out*>(p[0] + off[0]) = f(*reinterpret_cast<const In*>(p[I + 1] + off[I + 1])...);
}

template <class F, class Out, class... In>
__device__ __forceinline__ void apply_loaded(const F& f, char* out, int64_t v, const Vec<In>&... ins) {
  Vec<Out> r;
#pragma unroll
  for (int j = 0; j < kVec; ++j) r.v[j] = f(ins.v[j]...);
  reinterpret_cast<Vec<Out>*>(out)[v] = r;
}

// Vector v of every operand: one vector load per input, kVec applications, one vector store.
template <class F, class Out, class... In, size_t... I>
__device__ __forceinline__ void apply_vec(const F& f, char* const* p, int64_t v, std::index_sequence<I...>) {
  apply_loaded<F, Out, In...>(f, p[0], v, reinterpret_cast<const Vec<In>*>(p[I + 1])[v]...);
}

template <class F, class Out, class... In>
__global__ void elementwise_contiguous(F f, Operands<Out, In...> ops, int64_t n) {
  constexpr int N = 1 + sizeof...(In);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t n_vec = n / kVec;
  for (int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < n_vec; v += stride)
    apply_vec<F, Out, In...>(f, ops.ptr, v, std::index_sequence_for<In...>{});
  // The tail (n % kVec elements), one element per thread.
  const int64_t tail = n_vec * kVec + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tail < n) {
    int64_t off[N];
    off[0] = tail * int64_t(sizeof(Out));
    int k = 1;
    ((off[k] = tail * int64_t(sizeof(In)), ++k), ...);
    apply_at<F, Out, In...>(f, ops.ptr, off, std::index_sequence_for<In...>{});
  }
}

template <class F, class Out, class... In>
__global__ void elementwise_flat(F f, Operands<Out, In...> ops, StridedOffsets<1 + sizeof...(In)> geo, int64_t n) {
  constexpr int N = 1 + sizeof...(In);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    for (int k = 0; k < N; ++k) off[k] = i * geo.strides[k][0];
    apply_at<F, Out, In...>(f, ops.ptr, off, std::index_sequence_for<In...>{});
  }
}

template <class F, class Out, class... In>
__global__ void elementwise_strided(F f, Operands<Out, In...> ops, StridedOffsets<1 + sizeof...(In)> geo, int64_t n) {
  constexpr int N = 1 + sizeof...(In);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    geo.at(i, off);
    apply_at<F, Out, In...>(f, ops.ptr, off, std::index_sequence_for<In...>{});
  }
}

// Runs out = f(ins...) over `shape`; operand k is read as type (Out, In...)[k] through its strides.
template <class Out, class... In, class F>
void elementwise(const char* name, int device, const Shape& shape, F f, Operand out, const std::array<Operand, sizeof...(In)>& ins) {
  constexpr int N = 1 + sizeof...(In);
  std::array<const int64_t*, N> strides;
  std::array<int64_t, N> sizes{int64_t(sizeof(Out)), int64_t(sizeof(In))...};
  Operands<Out, In...> ops;
  strides[0] = out.strides;
  ops.ptr[0] = out.data;
  for (int k = 1; k < N; ++k) {
    strides[k] = ins[k - 1].strides;
    ops.ptr[k] = ins[k - 1].data;
  }
  const cpu::StridedLoop<N> loop(shape, strides, sizes);
  const int64_t n = loop.numel();
  if (n == 0) return;
  const StridedOffsets<N> geo = strided_offsets(loop);
  if (loop.nd == 1) {
    bool dense = true;
    for (int k = 0; k < N; ++k)
      dense = dense && geo.strides[k][0] == sizes[k] && reinterpret_cast<uintptr_t>(ops.ptr[k]) % (sizes[k] * kVec) == 0;
    if (dense) {
      launch(name, device, blocks_for(n, kVec), kThreads, elementwise_contiguous<F, Out, In...>, f, ops, n);
      return;
    }
    launch(name, device, blocks_for(n), kThreads, elementwise_flat<F, Out, In...>, f, ops, geo, n);
    return;
  }
  launch(name, device, blocks_for(n), kThreads, elementwise_strided<F, Out, In...>, f, ops, geo, n);
}

}  // namespace tg::cuda
