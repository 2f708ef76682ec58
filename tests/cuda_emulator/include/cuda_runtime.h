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
#include <stdexcept>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one CTA runs at a time: a static local is the CTA's shared copy
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
using cudaStream_t = void*;
using cudaError_t = int;
constexpr int cudaSuccess = 0;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
inline int cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
inline int cudaSetDevice(int) { return cudaSuccess; }
inline int cudaGetLastError() { return cudaSuccess; }
inline int cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
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
inline thread_local int linear_tid = 0;  // x + y bx + z bx by: warps are runs of 32 of these
inline thread_local Block* block = nullptr;
inline dim3 grid_dim, block_dim;
inline std::mutex atomic_mutex;
alignas(16) inline unsigned char dynamic_smem[256 * 1024];

inline int lane() { return linear_tid % kWarpSize; }
inline Warp& warp() { return block->warps[linear_tid / kWarpSize]; }

// Runs body() on every thread of every CTA of `grid`, one CTA after another (so a CTA's
// `static` shared arrays and the dynamic buffer are its own while it runs).
template <class Body>
void run_kernel(dim3 grid, dim3 threads_per_block, size_t smem_bytes, Body body) {
  if (smem_bytes > sizeof dynamic_smem) throw std::runtime_error("emulator: too much dynamic shared memory");
  grid_dim = grid, block_dim = threads_per_block;
  const unsigned bx = threads_per_block.x, by = threads_per_block.y;
  const int threads = static_cast<int>(bx * by * threads_per_block.z);
  if (threads > 1024) throw std::runtime_error("emulator: more than 1024 threads per block");
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block cta(threads);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
          pool.emplace_back([&, t] {
            thread_idx = dim3(t % bx, (t / bx) % by, t / (bx * by));
            linear_tid = t;
            block_idx = dim3(x, y, z);
            block = &cta;
            body();
          });
        for (std::thread& th : pool) th.join();
      }
}

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
