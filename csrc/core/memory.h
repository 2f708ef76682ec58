// Device memory as core/ sees it. Declared here and implemented by each device's backend
// (kernels/backend.h: every Backend is a DeviceMemory), so core/ never includes kernels/.
#pragma once
#include <cstddef>

#include "core/device.h"

namespace tg {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // A block of at least `nbytes` (nullptr for 0), 64-byte aligned. Raises MemoryError
  // (CudaOutOfMemoryError on a GPU) when the device has no memory left.
  virtual void* allocate(size_t nbytes) = 0;
  // Gives a block back. Never throws: it runs in destructors.
  virtual void release(void* ptr) noexcept = 0;
  // Copies nbytes between contiguous buffers on `dst_device` and `src_device`, one of which is
  // this backend's device and the other may be the host. A copy to the host waits for it (the
  // host is about to read the bytes); every other copy is only queued.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) = 0;
};

DeviceMemory& device_memory(Device device);  // the backend of `device` (kernels/cpu/backend.cpp)

// A copy between any two devices: made by the GPU's backend when one side is a GPU.
inline void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  device_memory(dst_device.is_cpu() ? src_device : dst_device).copy_bytes(dst, dst_device, src, src_device, nbytes);
}

}  // namespace tg
