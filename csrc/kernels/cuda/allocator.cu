// Caching device allocator: cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds, so a training loop that frees and re-allocates the same shapes every step keeps
// its blocks here instead.
//
// Size classes: requests up to 1 MiB round up to a multiple of 512 B, larger ones to a multiple
// of 2 MiB. A block is only reused for a request of exactly its class (no splitting), which keeps
// the bookkeeping to one free list per (device, class).
//
// Reuse is safe without events: every kernel and copy of tapegrad on a device is queued on that
// device's single stream (runtime.h), so work queued after a block is handed out again runs after
// all work that used the block before it was freed (stream order).
#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;

size_t size_class(size_t nbytes) {
  const size_t r = nbytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (nbytes + r - 1) / r * r;
}

struct Block {
  size_t size;
  int device;
};

struct DeviceStats {
  size_t allocated = 0, peak = 0, cached = 0;
};

class Allocator {
 public:
  void* allocate(size_t nbytes, int device) {
    if (nbytes == 0) return nullptr;
    const int n_devices = device_count();
    TG_CHECK(n_devices > 0, RuntimeError, "cuda: no CUDA device is available (tapegrad was built with CUDA, but no GPU "
             "or driver was found)");
    TG_CHECK(device >= 0 && device < n_devices, RuntimeError, "cuda: device ", device, " does not exist (", n_devices,
             " visible)");
    TG_CHECK(nbytes <= (size_t(1) << 62), CudaOutOfMemoryError, "cuda: cannot allocate ", nbytes, " bytes");
    const size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<size_t>(device) >= stats_.size()) {
      stats_.resize(n_devices);
      free_lists_.resize(n_devices);
    }
    void* ptr = nullptr;
    auto& list = free_lists_[device][size];
    if (!list.empty()) {
      ptr = list.back();
      list.pop_back();
      stats_[device].cached -= size;
    } else {
      ptr = malloc_from_driver(size, device, nbytes);
    }
    live_[ptr] = Block{size, device};
    DeviceStats& s = stats_[device];
    s.allocated += size;
    if (s.allocated > s.peak) s.peak = s.allocated;
    return ptr;
  }

  void release(void* ptr) noexcept {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor
    const Block b = it->second;
    live_.erase(it);
    stats_[b.device].allocated -= b.size;
    stats_[b.device].cached += b.size;
    try {
      free_lists_[b.device][b.size].push_back(ptr);
    } catch (...) {  // no host memory for the list entry: give the block back instead
      cudaFree(ptr);
      stats_[b.device].cached -= b.size;
    }
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    empty_cache_locked(-1);
  }

  DeviceStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return device >= 0 && static_cast<size_t>(device) < stats_.size() ? stats_[device] : DeviceStats{};
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (device >= 0 && static_cast<size_t>(device) < stats_.size()) stats_[device].peak = stats_[device].allocated;
  }

 private:
  // One retry after the cache went back to the driver; then a CudaOutOfMemoryError.
  void* malloc_from_driver(size_t size, int device, size_t requested) {
    int previous = 0;
    check(cudaGetDevice(&previous), "cudaGetDevice");
    if (previous != device) check(cudaSetDevice(device), "cudaSetDevice");
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // out-of-memory is not sticky: clear it so later calls do not see it
      empty_cache_locked(device);
      err = cudaMalloc(&ptr, size);
    }
    if (previous != device) cudaSetDevice(previous);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      const DeviceStats& s = stats_[device];
      throw CudaOutOfMemoryError(str("cuda: out of memory allocating ", requested, " bytes on cuda:", device, " (",
                                     s.allocated, " bytes allocated by tapegrad, ", s.cached, " cached)"));
    }
    check(err, "cudaMalloc");
    return ptr;
  }

  // device < 0: every device. Blocks still queued for use are safe: cudaFree waits for the device.
  // Each block is freed with its own device current (as it was allocated); errors are ignored.
  void empty_cache_locked(int device) {
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    for (size_t d = 0; d < free_lists_.size(); ++d) {
      if (device >= 0 && static_cast<int>(d) != device) continue;
      if (stats_[d].cached == 0) continue;
      cudaSetDevice(static_cast<int>(d));
      for (auto& [size, list] : free_lists_[d]) {
        for (void* p : list) cudaFree(p);
        stats_[d].cached -= size * list.size();
        list.clear();
      }
    }
    if (previous >= 0) cudaSetDevice(previous);
    cudaGetLastError();
  }

  std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  std::vector<std::unordered_map<size_t, std::vector<void*>>> free_lists_;  // [device][size class]
  std::vector<DeviceStats> stats_;
};

// Never destroyed: storages released during interpreter shutdown still find it.
Allocator& allocator() {
  static Allocator* a = new Allocator();
  return *a;
}

}  // namespace

void* allocate(size_t nbytes, int device) { return allocator().allocate(nbytes, device); }
void release(void* ptr, void*) { allocator().release(ptr); }
size_t memory_allocated(int device) { return allocator().stats(device).allocated; }
size_t max_memory_allocated(int device) { return allocator().stats(device).peak; }
void reset_peak_memory_stats(int device) { allocator().reset_peak(device); }
size_t memory_reserved(int device) {
  const DeviceStats s = allocator().stats(device);
  return s.allocated + s.cached;
}
void empty_cache() { allocator().empty_cache(); }

}  // namespace tg::cuda
