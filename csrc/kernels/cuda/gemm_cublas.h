// gemm() through cuBLAS (gemm_cublas.cu).
#pragma once
#include "kernels/cuda/gemm.h"

namespace tg::cuda {

// C (+)= A @ B for float32 (tf32 when allow_tf32()) and bfloat16 on g.device's stream. False, with
// nothing queued, where cuBLAS cannot take the operands (neither stride 1, sizes past int32,
// K == 0) or the build has no cuBLAS: gemm() then runs its own kernels.
bool cublas_gemm(DType dtype, const GemmArgs& g);

}  // namespace tg::cuda
