// The CPU backend object and the lookup core/ uses to reach a device's memory (host memory
// itself: memory.cpp).
#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace tg {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

DeviceMemory& device_memory(Device device) { return backend(device); }

}  // namespace tg
