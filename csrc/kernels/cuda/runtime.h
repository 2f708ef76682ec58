// The CUDA runtime as the CUDA backend's files see it (runtime.cu, allocator.cu, copy.cu). The rest
// of tapegrad reaches it through kernels/backend.h (CudaBackend, GpuRuntime); only the sync debug
// mode (sync_debug.cpp) is linked into every build.
#pragma once
#include <cstddef>

namespace tg::cuda {

bool is_available();   // built with CUDA and at least one usable GPU
int device_count();
void synchronize();

// The one stream all of tapegrad's work on `device` is queued on (a cudaStream_t, typed void*
// so that host-only files can include this header). Created on first use.
void* stream(int device);
// Raises RuntimeError naming `what` and the CUDA error when `err` (a cudaError_t) is not success.
void check(int err, const char* what);

// ---- host waits and what kernels found (runtime.cu) --------------------------------------------
// Every wait of the host for a device goes through wait_for(): synchronize(), copies to the host,
// copies between GPUs. In sync debug mode "error" (set_sync_debug_mode(1)) a wait raises
// RuntimeError naming `what` instead, so a test can prove a piece of work never waits.
void wait_for(int device, const char* what);
void check_may_wait(const char* what);  // the mode check alone, before queueing a copy to the host
void set_sync_debug_mode(int mode);  // 0: waits are allowed (the default), 1: waits raise
int sync_debug_mode();

// A kernel cannot raise. One that finds an index out of range records it in its device's report
// (the first one since the last wait wins) and leaves the element alone; wait_for() reads the
// report once the device is idle and raises IndexError with it. So an op on device-resident indices
// does not wait for them, a bad one still raises (at the next synchronisation, naming the op, the
// index and the size), and the device stays usable afterwards.
struct IndexErrorReport {
  const char* op;            // the op's name (a host string literal); nullptr: nothing reported
  int64_t index, size, dim;  // dim < 0: a class target (cross_entropy), else the indexed dim
};
// What a kernel is handed: `claimed` (device memory) elects the first reporter, which writes
// `report` (host memory mapped into the device) and fences it.
struct IndexErrorSlot {
  int* claimed;
  IndexErrorReport* report;
};
IndexErrorSlot index_error_slot(int device);

// ---- caching allocator (allocator.cu) ----------------------------------------------------------
// A block of at least `nbytes` on `device`, reused from the cache when one of its size class is
// free. Raises CudaOutOfMemoryError when the driver has no memory even after empty_cache().
// nbytes == 0 gives nullptr.
void* allocate(size_t nbytes, int device);
// Returns a block to its free list; the signature of Storage::release (context unused). Never
// throws: it runs in destructors.
void release(void* ptr, void* context);
size_t memory_allocated(int device);      // bytes of blocks handed out and not yet released
size_t max_memory_allocated(int device);  // peak of memory_allocated since the last reset
void reset_peak_memory_stats(int device);
size_t memory_reserved(int device);       // handed out + cached
void empty_cache();                       // every cached (free) block goes back to the driver

// A block for the span of one call: released when the scope ends, even by an exception. Safe as
// soon as the launches that use it are queued: the allocator hands a block out again in stream
// order (allocator.cu).
class ScratchBlock {
 public:
  ScratchBlock(size_t nbytes, int device) : ptr_(allocate(nbytes, device)) {}
  ~ScratchBlock() { release(ptr_, nullptr); }
  ScratchBlock(const ScratchBlock&) = delete;
  ScratchBlock& operator=(const ScratchBlock&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_;
};

// ---- transfers (copy.cu) -----------------------------------------------------------------------
// Copies nbytes between contiguous buffers; a device index < 0 means host memory. A copy to the
// host waits for it (the host is about to read the bytes); every other copy is only queued.
void copy_bytes(void* dst, int dst_device, const void* src, int src_device, size_t nbytes);

}  // namespace tg::cuda
