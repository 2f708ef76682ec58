// How the GEMM kernels of gemm.cu see their operands (included by gemm.cu and the kernel headers
// it includes; one translation unit).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/gemm_tiles.cuh"

namespace tg::cuda {

namespace {

using bf16 = __nv_bfloat16;

// One operand as the kernels see it: element (o, k) of batch b at p[b * batch + o * outer + k * inner],
// o the row of A (m) or the column of B (n).
template <class T> struct Operand {
  const T* p;
  int64_t batch, outer, inner;
};

using Output = GemmOutput;

}  // namespace
}  // namespace tg::cuda
