// What every CUDA kernel file shares: the device's stream, the post-launch check, grid sizes,
// strided offsets of broadcast operands, warp/block reductions, and accumulation types.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "kernels/cpu/loops.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

// Every launch is followed by this: a bad configuration or a fault of an earlier kernel becomes
// a RuntimeError naming the kernel.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

constexpr int kThreads = 256;

// Blocks for n work items at `per_thread` items each, capped (kernels loop with a grid stride).
inline unsigned blocks_for(int64_t n, int per_thread = 1) {
  const int64_t b = (n + int64_t(kThreads) * per_thread - 1) / (int64_t(kThreads) * per_thread);
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

// Launches kernel(args...) on `device`'s stream, blocks x threads, and checks it.
template <class... KArgs, class... Args>
void launch(const char* name, int device, dim3 blocks, dim3 threads, void (*kernel)(KArgs...), Args&&... args) {
  DeviceScope scope(device);
  launch_kernel(kernel, blocks, threads, 0, scope.stream(), std::forward<Args>(args)...);
  check_launch(name);
}

// kVec elements moved by one vector load or store (16 bytes of float32): the memory-bound kernels
// reach the copy bandwidth only with wide accesses.
constexpr int kVec = 4;

template <class T>
struct alignas(sizeof(T) * kVec) Vec {
  T v[kVec];
};

// Sums accumulate float32 in float64, as the CPU's reduce does (a float32 running sum of a long
// row loses digits; the kernels are memory-bound, so the wider adds cost nothing); other types in
// themselves.
template <class T> using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// ---- strided offsets ------------------------------------------------------------------------
// Byte offsets of N operands that share one broadcast shape, for a linear element index. Built on
// the host from cpu::StridedLoop (which merges dims contiguous in every operand) and passed to the
// kernel by value: up to 16 dims, no device allocation.
template <int N>
struct StridedOffsets {
  int nd;
  int64_t shape[cpu::kMaxLoopDims];
  int64_t strides[N][cpu::kMaxLoopDims];  // bytes

  __device__ __forceinline__ void at(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t i = linear % shape[d];
      linear /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

template <int N>
StridedOffsets<N> strided_offsets(const cpu::StridedLoop<N>& loop) {
  StridedOffsets<N> s{};
  s.nd = loop.nd;
  for (int d = 0; d < loop.nd; ++d) {
    s.shape[d] = loop.shape[d];
    for (int k = 0; k < N; ++k) s.strides[k][d] = loop.byte_strides[k][d];
  }
  return s;
}

// ---- reductions across a warp and a block ---------------------------------------------------------
template <class T, class Combine>
__device__ __forceinline__ T warp_reduce(T v, Combine combine) {
  for (int delta = 16; delta > 0; delta >>= 1) v = combine(v, __shfl_xor_sync(0xffffffffu, v, delta));
  return v;
}

// Reduces one value per thread of the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. `scratch` holds 32 values in shared memory.
template <class T, class Combine>
__device__ __forceinline__ T block_reduce(T v, Combine combine, T identity, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_reduce(v, combine);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : identity;
  return warp_reduce(v, combine);
}

struct SumOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// NaN wins, so a row with a NaN reduces to NaN (as the CPU's max over the exp'd row gives).
struct MaxOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return (a != a || a > b) ? a : b; }
};

template <class T> __device__ __forceinline__ T neg_infinity() { return -std::numeric_limits<T>::infinity(); }

}  // namespace tg::cuda
