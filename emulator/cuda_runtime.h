// The CUDA runtime, emulated on the CPU: what tapegrad's .cu files use of <cuda_runtime.h>, so
// that they compile as ordinary C++ (-DTG_WARP_EMULATOR, this directory first on the include
// path) and run without a GPU. It serves two builds: the kernel checks of
// tests/test_cuda_emulated.py, and TAPEGRAD_CUDA=EMULATE, a whole tapegrad whose "cuda" device is
// this emulator (CI runs the CUDA test suite on it).
//
// The model: one device whose memory is host memory (capped, so out-of-memory is testable);
// streams run their work at once, in order (so every wait is already satisfied); a kernel runs
// CTA after CTA, each CTA's threads as fibers on the calling thread. The device-only keywords vanish,
// threadIdx / blockIdx are per-thread variables, `__shared__` variables are `static` (one CTA at a
// time uses them), __syncthreads and the warp-level operations are barriers among the threads.
// warp_emulator.h adds the sm_80 instructions (ldmatrix, mma.sync, cp.async), hopper_emulator.h
// the sm_90a ones (mbarriers, TMA copies, wgmma); cuda.h the driver's tensor maps.
#pragma once
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <memory>
#include <vector>

#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one CTA runs at a time: a static local is that CTA's shared copy
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__

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
                         cudaErrorInvalidDevice = 101, cudaErrorSymbolNotFound = 500 };
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
// The emulated device reports an H100's limits, so the host code picks the tiles it would there:
// compute capability 9.0 (the Hopper kernels run, on hopper_emulator.h), 227 KB of shared memory
// per CTA, 132 multiprocessors. TAPEGRAD_EMULATED_SM=80 makes it an sm_80 device instead (the
// same limits), to run the paths a pre-Hopper GPU takes.
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin, cudaDevAttrMultiProcessorCount,
                      cudaDevAttrComputeCapabilityMajor, cudaDevAttrComputeCapabilityMinor };
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  const char* sm = std::getenv("TAPEGRAD_EMULATED_SM");
  const int arch = sm && *sm ? std::atoi(sm) : 90;
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = arch / 10; break;
    case cudaDevAttrComputeCapabilityMinor: *value = arch % 10; break;
  }
  return cudaSuccess;
}

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
// Mapped pinned memory: plain host memory, the device's view the same address (as with UVA).
constexpr unsigned cudaHostAllocPortable = 1, cudaHostAllocMapped = 2;
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaHostGetDevicePointer(void** device_view, void* host, unsigned) {
  return *device_view = host, cudaSuccess;
}

// ---- running kernels ----------------------------------------------------------------------------
// A CTA's threads are fibers (ucontext) on the calling thread: each runs until it finishes or
// waits at a barrier, then the next runnable one resumes. Kernels without barriers run thread
// after thread. A fiber polling for something (an mbarrier's phase) yields; every event that can
// release a waiter (a barrier arrival, an mbarrier arrival or copy, a fiber's end) counts as
// progress. A pass in which no fiber can move, or every fiber that ran only yielded and nothing
// progressed, means the kernel deadlocked (a barrier some threads never reach, a phase that never
// completes), which is reported as a launch error.
namespace emu {

constexpr int kWarpSize = 32;

struct Fiber;
inline Fiber* current = nullptr;
inline unsigned long progress = 0;

// A barrier for `count` fibers: the last arrival opens the next generation.
struct Barrier {
  explicit Barrier(int n = 0) : count(n) {}
  int count, arrived = 0;
  unsigned long generation = 0;
  void arrive();  // counts this fiber in and goes on
  void arrive_and_wait();
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
  Barrier named[16];  // bar.sync / bar.arrive with an id: the thread count comes with each use
  // Copies in flight (TMA), each with the mbarrier it completes: they land when a thread waits on
  // that mbarrier, so reading their bytes before the wait sees the old ones, as it may on a GPU.
  std::vector<std::pair<const void*, std::function<void()>>> copies_in_flight;
};

// The running fiber's coordinates (set by the scheduler at every switch) and the launch's.
inline dim3 thread_idx, block_idx, grid_dim, block_dim;
inline int linear_tid = 0;  // x + y bx + z bx by: warps are runs of 32 of these
inline Block* block = nullptr;
inline std::mutex atomic_mutex;
// 1024-byte aligned: the offsets __cvta_generic_to_shared gives keep the alignment the 128-byte
// swizzle is computed from.
alignas(1024) inline unsigned char dynamic_smem[256 * 1024];
inline std::recursive_mutex launch_mutex;  // one kernel at a time (the statics above are the device's)

inline int lane() { return linear_tid % kWarpSize; }
inline Warp& warp() { return block->warps[linear_tid / kWarpSize]; }

struct Fiber {
  ucontext_t context;
  int tid = 0;
  bool done = false, yielded = false;
  const unsigned long* waiting_on = nullptr;  // a barrier's generation, or null when runnable
  unsigned long waiting_for = 0;
  // Asynchronous work this thread has issued (wgmma), in order, and where each committed group
  // ends: run when a wait retires the group, so results appear no earlier than on a GPU.
  std::vector<std::function<void()>> async_ops;
  std::vector<size_t> async_group_ends;
};

inline ucontext_t scheduler_context;
inline void (*fiber_body)(void*) = nullptr;
inline void* fiber_arg = nullptr;

inline void Barrier::arrive() {
  ++progress;
  if (++arrived == count) arrived = 0, ++generation;
}

inline void Barrier::arrive_and_wait() {
  ++progress;
  if (++arrived == count) {  // the last one in: everyone goes on
    arrived = 0;
    ++generation;
    return;
  }
  current->waiting_on = &generation;
  current->waiting_for = generation;
  swapcontext(&current->context, &scheduler_context);
}

// Lets the other fibers run; this one goes on at the next pass.
inline void yield() {
  current->yielded = true;
  swapcontext(&current->context, &scheduler_context);
}

inline void fiber_entry() {
  fiber_body(fiber_arg);
  ++progress;
  current->done = true;
  swapcontext(&current->context, &scheduler_context);
}

// The fibers' stacks, one per thread of the largest block so far, shared by every kernel: a
// function-local static of run_kernel would be one set per kernel type (a template), 64 MiB each,
// and a test run launching hundreds of kernel types ran out of memory. Left uninitialised, so a
// stack costs only the pages a fiber touches.
constexpr size_t kStackBytes = 256 * 1024;
inline std::vector<std::unique_ptr<char[]>>& fiber_stacks() {
  static std::vector<std::unique_ptr<char[]>> stacks;
  return stacks;
}

// Runs body() on every thread of every CTA of `grid`, one CTA after another.
template <class Body>
void run_kernel(dim3 grid, dim3 threads_per_block, size_t smem_bytes, Body body) {
  std::vector<std::unique_ptr<char[]>>& stacks = fiber_stacks();
  std::lock_guard<std::recursive_mutex> lock(launch_mutex);
  const unsigned bx = threads_per_block.x, by = threads_per_block.y;
  const int threads = static_cast<int>(bx * by * threads_per_block.z);
  if (smem_bytes > sizeof dynamic_smem || threads > 1024 || threads < 1) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  while (stacks.size() < static_cast<size_t>(threads)) stacks.emplace_back(new char[kStackBytes]);
  grid_dim = grid, block_dim = threads_per_block;
  fiber_body = [](void* b) { (*static_cast<Body*>(b))(); };
  fiber_arg = &body;
  std::vector<Fiber> fibers(threads);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block cta(threads);
        block = &cta;
        block_idx = dim3(x, y, z);
        for (int t = 0; t < threads; ++t) {
          Fiber& f = fibers[t];
          f = Fiber{};
          f.tid = t;
          getcontext(&f.context);
          f.context.uc_stack.ss_sp = stacks[t].get();
          f.context.uc_stack.ss_size = kStackBytes;
          f.context.uc_link = nullptr;
          makecontext(&f.context, fiber_entry, 0);
        }
        for (int finished = 0; finished < threads;) {
          bool moved = false;
          const unsigned long before = progress;
          for (Fiber& f : fibers) {
            if (f.done || (f.waiting_on && *f.waiting_on == f.waiting_for)) continue;
            f.waiting_on = nullptr;
            f.yielded = false;
            current = &f;
            linear_tid = f.tid;
            thread_idx = dim3(f.tid % bx, (f.tid / bx) % by, f.tid / (bx * by));
            swapcontext(&scheduler_context, &f.context);
            moved = moved || !f.yielded;
            if (f.done) ++finished;
          }
          moved = moved || progress != before;
          if (!moved) {  // every live fiber waits at a barrier that cannot open
            last_error = cudaErrorInvalidValue;
            return;
          }
        }
      }
}

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define gridDim (::emu::grid_dim)
#define blockDim (::emu::block_dim)

inline void __syncthreads() { emu::block->bar.arrive_and_wait(); }

// Shared addresses are offsets into the dynamic shared memory (all the Hopper kernels use).
inline size_t __cvta_generic_to_shared(const void* p) {
  const auto offset = static_cast<const unsigned char*>(p) - emu::dynamic_smem;
  if (offset < 0 || offset >= static_cast<std::ptrdiff_t>(sizeof emu::dynamic_smem)) {
    std::fprintf(stderr, "emulator: __cvta_generic_to_shared of an address outside dynamic shared memory\n");
    std::abort();
  }
  return static_cast<size_t>(offset);
}

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

template <class T>
T atomicCAS(T* p, T compare, T value) {
  std::lock_guard<std::mutex> lock(emu::atomic_mutex);
  const T old = *p;
  if (old == compare) *p = value;
  return old;
}
inline void __threadfence_system() {}

using std::max;
using std::min;
