// Copies: converting strided copies on the device (the elementwise engine), fills, and byte
// transfers between host and device.
#include <cstring>

#include "kernels/cuda/elementwise.cuh"

namespace tg::cuda {

namespace {

template <class Out, class In>
struct CastFn {
  __device__ __forceinline__ Out operator()(In x) const { return static_cast<Out>(x); }
};

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = value;
}

}  // namespace

void CudaBackend::copy(const Shape& shape, Operand out, Operand in) {
  TG_DISPATCH_STORAGE(out.dtype, "copy", [&](auto out_tag) {
    TG_DISPATCH_STORAGE(in.dtype, "copy", [&](auto in_tag) {
      using Out = decltype(out_tag);
      using In = decltype(in_tag);
      elementwise<Out, In>("copy", device, shape, CastFn<Out, In>{}, out, {in});
    });
  });
}

void CudaBackend::fill(void* out, int64_t n, DType dtype, double value) {
  if (n == 0) return;
  TG_DISPATCH_STORAGE(dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    launch("fill", device, blocks_for(n), kThreads, fill_kernel<T>, static_cast<T*>(out), n, static_cast<T>(value));
  });
}

void copy_bytes(void* dst, int dst_device, const void* src, int src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device < 0 && src_device < 0) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  if (dst_device < 0) {  // device -> host: the host reads the bytes next, so wait for them
    check_may_wait("copy to host");  // before the copy is queued: the caller frees `dst` on a raise
    DeviceScope scope(src_device);
    check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, scope.stream()), "copy to host (cudaMemcpyAsync)");
    wait_for(src_device, "copy to host");
    return;
  }
  if (src_device < 0) {  // host -> device: pageable memory is staged before this returns
    DeviceScope scope(dst_device);
    check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, scope.stream()), "copy to device (cudaMemcpyAsync)");
    return;
  }
  if (src_device == dst_device) {
    DeviceScope scope(dst_device);
    check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, scope.stream()), "device copy (cudaMemcpyAsync)");
    return;
  }
  // Between two GPUs: the source's queued writes must land before the destination's stream reads,
  // and the copy must finish before this returns: the source block may be released next, and the
  // allocator hands it out again in the order of the source's stream only, which this copy is
  // not on.
  wait_for(src_device, "copy between GPUs");
  DeviceScope scope(dst_device);
  check(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, scope.stream()), "peer copy (cudaMemcpyPeerAsync)");
  wait_for(dst_device, "copy between GPUs");
}

}  // namespace tg::cuda
