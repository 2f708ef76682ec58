// Arguments of the layer-norm row kernels, shared by the CPU kernel and its CUDA twin.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace tg {

// A layer norm over the rows of a contiguous (rows, cols) x, every buffer of `dtype`:
//   xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased var), per row;
//   y = xhat * weight + bias, per column (weight, bias: (cols) or null for 1 and 0).
// The forward writes mean and rstd (rows); the backward reads them.
struct LayerNormArgs {
  DType dtype;
  int64_t rows, cols;
  const void* x;
  const void* weight;
  const void* bias;
  void* mean;
  void* rstd;
  double eps;
};

}  // namespace tg
