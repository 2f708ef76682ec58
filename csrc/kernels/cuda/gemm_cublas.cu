// The cuBLAS backend of gemm(): cublasGemmStridedBatchedEx on tapegrad's stream, row-major as
// C^T = B^T A^T. Built only when CMake found cuBLAS (TAPEGRAD_WITH_CUBLAS).
#include <algorithm>
#include <mutex>

#ifdef TAPEGRAD_WITH_CUBLAS
#include <cublas_v2.h>
#endif

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_cublas.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

bool cublas_built() {
#ifdef TAPEGRAD_WITH_CUBLAS
  return true;
#else
  return false;
#endif
}

#ifdef TAPEGRAD_WITH_CUBLAS
namespace {


void check_cublas(cublasStatus_t st, const char* what) {
  TG_CHECK(st == CUBLAS_STATUS_SUCCESS, RuntimeError, what, ": cuBLAS error ", static_cast<int>(st));
}

// One handle per device, bound to tapegrad's stream, with a workspace taken from the caching
// allocator (so it shows in memory_allocated(), as PyTorch's does) and never from cuBLAS itself.
// Calls are serialised per device: the workspace is shared.
struct CublasDevice {
  std::mutex mu;
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
};

CublasDevice& cublas_device(int device) {
  constexpr int kMaxDevices = 64;
  constexpr size_t kWorkspaceBytes = size_t(32) << 20;
  static CublasDevice devices[kMaxDevices];
  static std::once_flag created[kMaxDevices];
  TG_CHECK(device >= 0 && device < kMaxDevices, RuntimeError, "gemm: bad device ", device);
  std::call_once(created[device], [device] {
    CublasDevice& d = devices[device];
    check_cublas(cublasCreate(&d.handle), "cublasCreate");
    check_cublas(cublasSetStream(d.handle, stream_of(device)), "cublasSetStream");
    d.workspace = allocate(kWorkspaceBytes, device);  // held for the process's life
    check_cublas(cublasSetWorkspace(d.handle, d.workspace, kWorkspaceBytes), "cublasSetWorkspace");
  });
  return devices[device];
}

// Column-major view of a row-major operand whose element (r, c) sits at r * rs + c * cs: the
// stored matrix and its op. `rows` x `cols` is what the product needs (op applied).
struct ColMajor {
  cublasOperation_t op;
  int64_t ld;
  bool ok;
};
ColMajor col_major(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // Column-major X(r, c) = X[r + c * ld]: with rs == 1 the operand is X itself (ld = cs);
  // with cs == 1 it is the transpose of a (cols x rows) matrix with ld = rs.
  if (rs == 1 && (cols <= 1 || cs >= rows)) return {CUBLAS_OP_N, std::max<int64_t>({cs, rows, 1}), true};
  if (cs == 1 && (rows <= 1 || rs >= cols)) return {CUBLAS_OP_T, std::max<int64_t>({rs, cols, 1}), true};
  return {CUBLAS_OP_N, 0, false};
}

}  // namespace

bool cublas_gemm(DType dtype, const GemmArgs& g) {
  // C^T (N x M, column-major, ld = ldc) = B^T (N x K) @ A^T (K x M).
  //   first operand:  (j, k) -> B[k * b_row + j * b_col]
  //   second operand: (k, i) -> A[i * a_row + k * a_col]
  const ColMajor x = col_major(g.N, g.K, g.b_col, g.b_row), y = col_major(g.K, g.M, g.a_col, g.a_row);
  constexpr int64_t kIntMax = 2147483647;
  if (!x.ok || !y.ok || g.ldc < std::max<int64_t>(g.N, 1) || g.M > kIntMax || g.N > kIntMax || g.K > kIntMax ||
      x.ld > kIntMax || y.ld > kIntMax || g.ldc > kIntMax || g.batch > kIntMax || g.K == 0)
    return false;
  CublasDevice& d = cublas_device(g.device);
  std::lock_guard<std::mutex> lock(d.mu);
  const cudaDataType_t t = dtype == DType::Float32 ? CUDA_R_32F : CUDA_R_16BF;
  const cublasComputeType_t compute =
      dtype == DType::Float32 && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = g.accumulate ? 1.f : 0.f;
  check_cublas(cublasGemmStridedBatchedEx(d.handle, x.op, y.op, static_cast<int>(g.N), static_cast<int>(g.M),
                                          static_cast<int>(g.K), &alpha, g.B, t, static_cast<int>(x.ld), g.b_batch,
                                          g.A, t, static_cast<int>(y.ld), g.a_batch, &beta, g.C, t,
                                          static_cast<int>(g.ldc), g.c_batch, static_cast<int>(g.batch), compute,
                                          CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
  return true;
}
#else
bool cublas_gemm(DType, const GemmArgs&) { return false; }
#endif

}  // namespace tg::cuda
