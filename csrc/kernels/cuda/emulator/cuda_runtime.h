// The CUDA runtime, emulated on the CPU: what tapegrad's .cu files use of <cuda_runtime.h>, so
// that they compile as ordinary C++ (-DTG_WARP_EMULATOR, this directory first on the include
// path) and run without a GPU. It serves two builds: the kernel checks of
// tests/test_cuda_emulated.py, and TAPEGRAD_CUDA=EMULATE, a whole tapegrad whose "cuda" device is
// this emulator (CI runs the CUDA test suite on it).
//
// The model: one device whose memory is host memory (capped, so out-of-memory is testable);
// streams run their work at once, in order (so every wait is already satisfied); a kernel runs
// CTA after CTA, each CTA as one host thread per CUDA thread. The device-only keywords vanish,
// threadIdx / blockIdx are per-thread variables, `__shared__` variables are `static` (one CTA at a
// time uses them), __syncthreads and the warp-level operations are barriers among the threads.
// warp_emulator.h adds the sm_80 instructions (ldmatrix, mma.sync, cp.async).
#pragma once
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one CTA runs at a time: a static local is that CTA's shared copy
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

// ---- the runtime API ---------------------------------------------------------------------------
enum cudaError_t : int { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
                         cudaErrorInvalidDevice = 101 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
using cudaStream_t = struct emulated_stream*;
constexpr unsigned cudaStreamNonBlocking = 1;

namespace emu {
// Device memory: host memory, at most this much at a time (tg.cuda.OutOfMemoryError is testable).
constexpr size_t kDeviceBytes = size_t(4) << 30;
inline std::mutex memory_mutex;
inline size_t memory_in_use = 0;
inline thread_local cudaError_t last_error = cudaSuccess;
}  // namespace emu

inline cudaError_t cudaGetDeviceCount(int* n) { return *n = 1, cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static int token;
  return *s = reinterpret_cast<cudaStream_t>(&token), cudaSuccess;
}
inline cudaError_t cudaGetLastError() { return std::exchange(emu::last_error, cudaSuccess); }
inline const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : e == cudaSuccess ? "cudaSuccess" : "cudaError";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory (emulated device)" : "emulated CUDA error";
}
template <class K> cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }

// Blocks carry their size in a 64-byte header, so that cudaFree can count what it returns.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::mutex> lock(emu::memory_mutex);
  if (bytes > emu::kDeviceBytes - emu::memory_in_use) return *p = nullptr, cudaErrorMemoryAllocation;
  char* block = static_cast<char*>(std::aligned_alloc(256, (bytes + 64 + 255) / 256 * 256 + 256));
  if (!block) return *p = nullptr, cudaErrorMemoryAllocation;
  std::memcpy(block + 192, &bytes, sizeof bytes);
  emu::memory_in_use += bytes;
  return *p = block + 256, cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  char* block = static_cast<char*>(p) - 256;
  size_t bytes;
  std::memcpy(&bytes, block + 192, sizeof bytes);
  {
    std::lock_guard<std::mutex> lock(emu::memory_mutex);
    emu::memory_in_use -= bytes;
  }
  std::free(block);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t = nullptr) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyPeerAsync(void* dst, int, const void* src, int, size_t bytes, cudaStream_t = nullptr) {
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}

// ---- running kernels ----------------------------------------------------------------------------
namespace emu {

constexpr int kWarpSize = 32;

// A reusable barrier for `count` threads (C++17: no std::barrier).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned long generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      all_arrived_.notify_all();
      return;
    }
    all_arrived_.wait(lock, [&] { return generation != generation_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int count_, arrived_ = 0;
  unsigned long generation_ = 0;
};

// One CTA's shared state: its block barrier and, per warp, a barrier and exchange slots.
struct Warp {
  Barrier bar{kWarpSize};
  uint64_t slot[kWarpSize][6];  // what each lane hands the others (shuffle values, fragments, addresses)
};
struct Block {
  explicit Block(int threads) : bar(threads) {}
  Barrier bar;
  Warp warps[32];
};

inline thread_local dim3 thread_idx, block_idx;
inline thread_local int linear_tid = 0;  // x + y bx + z bx by: warps are runs of 32 of these
inline thread_local Block* block = nullptr;
inline dim3 grid_dim, block_dim;
inline std::mutex atomic_mutex;
alignas(16) inline unsigned char dynamic_smem[256 * 1024];
inline std::mutex launch_mutex;  // one kernel at a time (the statics above are the device's)

inline int lane() { return linear_tid % kWarpSize; }
inline Warp& warp() { return block->warps[linear_tid / kWarpSize]; }

// Runs body() on every thread of every CTA of `grid`, one CTA after another. An exception in a
// kernel thread (a host-side check inside device code) is reported as a launch error.
template <class Body>
void run_kernel(dim3 grid, dim3 threads_per_block, size_t smem_bytes, Body body) {
  std::lock_guard<std::mutex> lock(launch_mutex);
  const unsigned bx = threads_per_block.x, by = threads_per_block.y;
  const int threads = static_cast<int>(bx * by * threads_per_block.z);
  if (smem_bytes > sizeof dynamic_smem || threads > 1024 || threads < 1) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  grid_dim = grid, block_dim = threads_per_block;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block cta(threads);
        std::vector<std::thread> pool;
        pool.reserve(threads);
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

template <class T>
T atomicAdd(T* p, T v) {
  std::lock_guard<std::mutex> lock(emu::atomic_mutex);
  const T old = *p;
  *p = old + v;
  return old;
}

using std::max;
using std::min;
