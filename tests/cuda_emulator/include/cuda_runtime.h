// A stand-in for <cuda_runtime.h> that lets CUDA kernels compile as ordinary C++ and run on the
// CPU, one host thread per CUDA thread (see ../warp_emulator.h). Only what tapegrad's kernels
// use is here. The device-only keywords vanish; threadIdx / blockIdx are per-thread variables
// set by the launcher; __syncthreads and the warp shuffles are barriers among those threads.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using cudaStream_t = void*;
using cudaError_t = int;
constexpr int cudaSuccess = 0;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
inline int cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
inline int cudaSetDevice(int) { return cudaSuccess; }
inline int cudaGetLastError() { return cudaSuccess; }
template <class K> int cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }

namespace emu {

constexpr int kWarpSize = 32;

// One CTA's shared state: its block barrier and, per warp, a barrier and exchange slots.
struct Warp {
  std::barrier<> bar{kWarpSize};
  uint64_t slot[kWarpSize][6];  // what each lane hands the others (shuffle values, fragments, addresses)
};
struct Block {
  explicit Block(int threads) : bar(threads) {}
  std::barrier<> bar;
  Warp warps[32];
};

inline thread_local dim3 thread_idx, block_idx;
inline thread_local Block* block = nullptr;
inline dim3 grid_dim, block_dim;
inline std::mutex atomic_mutex;

inline int lane() { return static_cast<int>(thread_idx.x) % kWarpSize; }
inline Warp& warp() { return block->warps[thread_idx.x / kWarpSize]; }

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define gridDim (::emu::grid_dim)
#define blockDim (::emu::block_dim)

inline void __syncthreads() { emu::block->bar.arrive_and_wait(); }

template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  emu::Warp& w = emu::warp();
  std::memcpy(&w.slot[emu::lane()][0], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T r;
  std::memcpy(&r, &w.slot[emu::lane() ^ lane_mask][0], sizeof(T));
  w.bar.arrive_and_wait();
  return r;
}

inline float atomicAdd(float* p, float v) {
  std::lock_guard<std::mutex> lock(emu::atomic_mutex);
  const float old = *p;
  *p = old + v;
  return old;
}

using std::max;
using std::min;
