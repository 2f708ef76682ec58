// The row kernels of the nn functions on the device (nn.cu), over contiguous (rows, cols) buffers
// of float32 or float64 on `device`: kernels/backend.h's row entry points (CudaBackend forwards to
// these in backend.cu), callable without a backend object so that the check-and-bench program
// benchmarks/cuda/rows_check.cu links nn.cu alone. The work is queued on the device's stream.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/layer_norm_args.h"

namespace tg::cuda {

// Softmax (or log-softmax) of each row, max-subtracted.
void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log, int device);
// y = xhat * weight + bias, xhat = (x - mean) * rstd; mean and rstd per row saved.
void layer_norm_rows(const LayerNormArgs& a, void* y, int device);
// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy * weight; dweight, dbias over the rows.
void layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight, void* dbias, int device);
// lse_i = log sum_j exp(x_ij), loss_i = lse_i - x_i,t_i (0 for ignored rows, t_i = -1).
void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                        void* lse, int device);
// d_ij = scale_i (exp(x_ij - lse_i) - [j == t_i]); ignored rows get 0.
void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                 const void* lse, const void* row_scale, void* dlogits, int device);

}  // namespace tg::cuda
