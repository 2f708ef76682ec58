// The CPU backend object, host memory, and the lookup core/ uses to reach a device's memory.
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace tg {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

DeviceMemory& device_memory(Device device) { return backend(device); }

namespace cpu {

void* CpuBackend::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  // 64-byte alignment: a cache line, and whole AVX-512 vectors for the kernels.
  const size_t rounded = ((nbytes + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw MemoryError(str("allocate: out of memory allocating ", nbytes, " bytes"));
  return p;
}

void CpuBackend::release(void* ptr) noexcept { std::free(ptr); }
                         
                         // Host to host (a copy that involves a GPU is made by that GPU's backend: core/memory.h).
                         void CpuBackend::copy_bytes(void* dst, Device, const void* src, Device, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}

}  // namespace cpu
}  // namespace tg
