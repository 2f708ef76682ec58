// CUDA build: device queries. CUDA errors become RuntimeError naming the call.
#include <cuda_runtime.h>

#include <mutex>

#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

void check(int err, const char* what) {
  if (err == cudaSuccess) return;
  const auto e = static_cast<cudaError_t>(err);
  throw RuntimeError(str(what, ": CUDA error ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

bool built() { return true; }

int device_count() {
  // The visible devices are fixed for the life of the process (CUDA reads CUDA_VISIBLE_DEVICES once),
  // so the driver is asked once: stream() checks the index on every launch. No driver or no GPU is
  // "zero devices", not an error.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

bool is_available() { return device_count() > 0; }

void synchronize() {
  TG_CHECK(is_available(), RuntimeError, "cuda.synchronize: no CUDA device is available");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void* stream(int device) {
  constexpr int kMaxDevices = 64;
  static cudaStream_t streams[kMaxDevices] = {};
  static std::once_flag created[kMaxDevices];
  TG_CHECK(device >= 0 && device < device_count() && device < kMaxDevices, RuntimeError, "cuda: device ", device,
           " does not exist (", device_count(), " visible)");
  std::call_once(created[device], [device] {
    int previous = 0;
    check(cudaGetDevice(&previous), "cudaGetDevice");
    check(cudaSetDevice(device), "cudaSetDevice");
    // Non-blocking: tapegrad's work does not serialise against the legacy default stream.
    check(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cudaSetDevice(previous), "cudaSetDevice");
  });
  return streams[device];
}

}  // namespace tg::cuda
