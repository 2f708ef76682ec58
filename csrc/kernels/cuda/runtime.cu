// CUDA build: device queries. CUDA errors become RuntimeError naming the call.
#include <cuda_runtime.h>

#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

namespace {
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw RuntimeError(str(what, ": CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)));
}
}  // namespace

bool built() { return true; }

int device_count() {
  int n = 0;
  // No driver or no GPU is "zero devices", not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool is_available() { return device_count() > 0; }

void synchronize() {
  TG_CHECK(is_available(), RuntimeError, "cuda.synchronize: no CUDA device is available");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

}  // namespace tg::cuda
