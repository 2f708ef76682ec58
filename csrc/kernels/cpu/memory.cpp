// Host memory for tensors, with a cache of large blocks.
//
// Why a cache: glibc serves a large request (above its mmap threshold, 128 KiB to 32 MiB) with
// fresh pages and gives them back to the kernel when the block is freed (munmap, or trimming the
// heap's top). The next tensor of that size then takes one page fault per 4 KiB page on its first
// write: for a (4096, 1024) float32 temporary, 4,096 faults, several milliseconds, more than the
// arithmetic. A training step frees and re-allocates the same sizes every step, so large blocks
// are kept here and handed out again.
//
// Size classes: a block of at least kCachedFrom bytes is rounded up to a multiple of 1/16 of the
// power of two below it (at most 6.25% more) and reused only for a request of exactly its class.
// At most kCacheLimit bytes are kept; a block that does not fit goes back to the system.
// Smaller blocks go straight to malloc, which recycles them well and takes no lock here.
#include <cstdlib>
#include <cstring>
#include <mutex>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace tg::cpu {

namespace {

constexpr size_t kAlignment = 64;  // a cache line, and whole AVX-512 vectors for the kernels
constexpr size_t kCachedFrom = size_t(128) << 10;
constexpr size_t kCacheLimit = size_t(1) << 30;

size_t size_class(size_t nbytes) {
  if (nbytes < kCachedFrom) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t power = kCachedFrom;
  while (power * 2 <= nbytes) power *= 2;
  const size_t step = power / 16;
  return (nbytes + step - 1) / step * step;
}

class BlockCache {
 public:
  void* take(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) {
      sizes_of_live_.reserve(sizes_of_live_.size() + 1);  // the insert below cannot throw
      void* p = std::aligned_alloc(kAlignment, size);
      if (!p) {  // give the cache back to the system and try once more
        release_all_locked();
        p = std::aligned_alloc(kAlignment, size);
      }
      if (p) sizes_of_live_.emplace(p, size);
      return p;
    }
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    sizes_of_live_.emplace(p, size);
    return p;
  }

  // Returns false when `p` is not a cached-size block (the caller frees it).
  bool give_back(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_of_live_.find(p);
    if (it == sizes_of_live_.end()) return false;
    const size_t size = it->second;
    sizes_of_live_.erase(it);
    if (cached_ + size <= kCacheLimit) {
      try {
        free_[size].push_back(p);
        cached_ += size;
        return true;
      } catch (...) {  // no memory for the list entry: free the block instead
      }
    }
    std::free(p);
    return true;
  }

  void release_all() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    release_all_locked();
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  void release_all_locked() noexcept {
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      blocks.clear();
    }
    cached_ = 0;
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // class -> blocks ready for reuse
  std::unordered_map<void*, size_t> sizes_of_live_;      // cached-size blocks in use -> class
  size_t cached_ = 0;
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive static destructors
  return *cache;
}

// A block whose usable size is below kCachedFrom was never a cached one: it is freed without
// taking the cache's lock (the common case: most tensors are small).
bool surely_small(void* ptr) noexcept {
#if defined(__GLIBC__)
  return malloc_usable_size(ptr) < kCachedFrom;
#else
  (void)ptr;
  return false;
#endif
}

}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t size = size_class(nbytes);
  void* p = size >= kCachedFrom ? block_cache().take(size) : std::aligned_alloc(kAlignment, size);
  if (!p) throw MemoryError(str("allocate: out of memory allocating ", nbytes, " bytes"));
  return p;
}

void CpuBackend::release(void* ptr) noexcept {
  if (!ptr) return;
  if (surely_small(ptr) || !block_cache().give_back(ptr)) std::free(ptr);
}

// Host to host (a copy that involves a GPU is made by that GPU's backend: core/memory.h).
void CpuBackend::copy_bytes(void* dst, Device, const void* src, Device, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}

size_t cached_host_bytes() { return block_cache().cached_bytes(); }
void empty_host_cache() { block_cache().release_all(); }

}  // namespace tg::cpu
