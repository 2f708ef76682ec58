// The CUDA backends (one per GPU), their memory, the entry points whose drivers other programs
// call too (gemm.h, attention.h, rows.h: the check-and-bench programs of benchmarks/cuda/), and the
// GPU runtime tg.cuda sees.
#include <memory>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/rows.h"
#include "kernels/cuda/runtime.h"

namespace tg {

Backend& cuda_backend(int index) {
  constexpr int kMaxDevices = 64;  // as runtime.cu
  static const std::vector<std::unique_ptr<cuda::CudaBackend>> backends = [] {
    std::vector<std::unique_ptr<cuda::CudaBackend>> all;
    for (int d = 0; d < kMaxDevices; ++d) all.push_back(std::make_unique<cuda::CudaBackend>(d));
    return all;
  }();
  TG_CHECK(index >= 0 && index < cuda::device_count() && index < kMaxDevices, RuntimeError, "cuda: device ", index,
           " does not exist (", cuda::device_count(), " visible)");
  return *backends[index];
}

namespace cuda {

void* CudaBackend::allocate(size_t nbytes) { return cuda::allocate(nbytes, device); }
void CudaBackend::release(void* ptr) noexcept { cuda::release(ptr, nullptr); }

void CudaBackend::copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  cuda::copy_bytes(dst, dst_device.is_cpu() ? -1 : dst_device.index, src, src_device.is_cpu() ? -1 : src_device.index,
                   nbytes);
}

void CudaBackend::gemm(DType dtype, const GemmArgs& args) {
  GemmArgs on_this_gpu = args;
  on_this_gpu.device = device;
  if (args.bias) {
    // The bias rows are written into C first and the product is added to them: cuBLAS and the own
    // kernels all accumulate, so none needs an epilogue of its own.
    TG_CHECK(!args.accumulate, ValueError, "gemm: a bias is added only to a product that does not accumulate");
    const int64_t c_strides[3] = {args.c_batch, args.ldc, 1}, bias_strides[3] = {0, 0, 1};
    copy(Shape{args.batch, args.M, args.N}, Operand{static_cast<char*>(args.C), c_strides, dtype},
         Operand{static_cast<char*>(const_cast<void*>(args.bias)), bias_strides, dtype});
    on_this_gpu.bias = nullptr;
    on_this_gpu.accumulate = true;
  }
  cuda::gemm(dtype, on_this_gpu);
}

void CudaBackend::softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) {
  cuda::softmax_rows(dtype, rows, cols, in, out, log, device);
}

void CudaBackend::layer_norm_rows(const LayerNormArgs& a, void* y) { cuda::layer_norm_rows(a, y, device); }

void CudaBackend::layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight,
                                           void* dbias) {
  cuda::layer_norm_backward_rows(a, dy, dx, dweight, dbias, device);
}

void CudaBackend::cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                     void* loss, void* lse) {
  cuda::cross_entropy_rows(dtype, rows, C, logits, targets, loss, lse, device);
}

void CudaBackend::cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits,
                                              const int64_t* targets, const void* lse, const void* row_scale,
                                              void* dlogits) {
  cuda::cross_entropy_backward_rows(dtype, rows, C, logits, targets, lse, row_scale, dlogits, device);
}

void CudaBackend::attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                    void* out, void* lse) {
  cuda::attention_forward(dtype, a, q, k, v, out, lse, device);
}

void CudaBackend::attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                     const void* out, const void* lse, const void* grad_out, void* dq, void* dk,
                                     void* dv) {
  cuda::attention_backward(dtype, a, q, k, v, out, lse, grad_out, dq, dk, dv, device);
}

namespace {

class CudaRuntime final : public GpuRuntime {
 public:
  int device_count() override { return cuda::device_count(); }
  void synchronize() override { cuda::synchronize(); }
  size_t memory_allocated(int device) override { return cuda::memory_allocated(device); }
  size_t max_memory_allocated(int device) override { return cuda::max_memory_allocated(device); }
  void reset_peak_memory_stats(int device) override { cuda::reset_peak_memory_stats(device); }
  size_t memory_reserved(int device) override { return cuda::memory_reserved(device); }
  void empty_cache() override { cuda::empty_cache(); }
  bool cublas_built() override { return cuda::cublas_built(); }
  bool uses_cublas() override { return gemm_backend() == GemmBackend::Cublas; }
  void set_uses_cublas(bool use) override { set_gemm_backend(use ? GemmBackend::Cublas : GemmBackend::Own); }
  bool allow_tf32() override { return cuda::allow_tf32(); }
  void set_allow_tf32(bool allow) override { cuda::set_allow_tf32(allow); }
};

}  // namespace
}  // namespace cuda

GpuRuntime* gpu_runtime() {
  static cuda::CudaRuntime runtime;
  return &runtime;
}

}  // namespace tg
