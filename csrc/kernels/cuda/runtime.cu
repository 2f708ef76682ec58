// CUDA build: device queries. CUDA errors become RuntimeError naming the call.
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

void check(int err, const char* what) {
  if (err == cudaSuccess) return;
  const auto e = static_cast<cudaError_t>(err);
  throw RuntimeError(str(what, ": CUDA error ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

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

namespace {

constexpr int kMaxDevices = 64;

// Per device: the kernels' view of the index error report and the host's (the same mapped bytes).
IndexErrorSlot slots[kMaxDevices] = {};
IndexErrorReport* host_reports[kMaxDevices] = {};
std::once_flag slot_made[kMaxDevices];

// Called with the device idle: raises what its kernels reported, after clearing the report (the
// claim is reset on the stream, ahead of any later kernel).
void raise_reported(int device) {
  IndexErrorReport* r = host_reports[device];
  if (r == nullptr || r->op == nullptr) return;
  const IndexErrorReport found = *r;
  r->op = nullptr;
  DeviceScope scope(device);  // synchronize() reads every device's report from one current device
  check(cudaMemsetAsync(slots[device].claimed, 0, sizeof(int), scope.stream()), "index error report (cudaMemsetAsync)");
  const char* where = " (found on the GPU, reported at the first synchronisation after the op)";
  if (found.dim < 0)
    throw IndexError(str(found.op, ": target ", found.index, " is out of range for ", found.size, " classes", where));
  throw IndexError(str(found.op, ": index ", found.index, " is out of range for dim ", found.dim, " with size ",
                       found.size, where));
}

}  // namespace

void wait_for(int device, const char* what) {
  check_may_wait(what);
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream(device))), what);
  raise_reported(device);
}

void synchronize() {
  TG_CHECK(is_available(), RuntimeError, "cuda.synchronize: no CUDA device is available");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  for (int d = 0; d < device_count() && d < kMaxDevices; ++d) raise_reported(d);
}

IndexErrorSlot index_error_slot(int device) {
  stream(device);  // checks the index
  std::call_once(slot_made[device], [device] {
    DeviceScope scope(device);
    void *host = nullptr, *mapped = nullptr, *claimed = nullptr;
    check(cudaHostAlloc(&host, sizeof(IndexErrorReport), cudaHostAllocMapped | cudaHostAllocPortable),
          "index error report (cudaHostAlloc)");
    std::memset(host, 0, sizeof(IndexErrorReport));
    check(cudaHostGetDevicePointer(&mapped, host, 0), "index error report (cudaHostGetDevicePointer)");
    check(cudaMalloc(&claimed, sizeof(int)), "index error report (cudaMalloc)");
    check(cudaMemsetAsync(claimed, 0, sizeof(int), scope.stream()), "index error report (cudaMemsetAsync)");
    check(cudaStreamSynchronize(scope.stream()), "index error report (cudaStreamSynchronize)");
    slots[device] = {static_cast<int*>(claimed), static_cast<IndexErrorReport*>(mapped)};
    host_reports[device] = static_cast<IndexErrorReport*>(host);
  });
  return slots[device];
}

void* stream(int device) {
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
