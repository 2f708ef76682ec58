// Host side of the Hopper kernels: is this device one they run on, and the tensor maps that tell
// the TMA how to read an operand.
#pragma once
#include <cuda.h>

#include <cstdint>

namespace tg::cuda::sm90 {

// Compute capability 9.0 exactly (sm_90a code runs nowhere else). Asked once per device.
bool is_sm90(int device);

// A bfloat16 tensor as 3-d for the copy engine: dims (contiguous, rows, batch) with a row stride of
// `ld` and a batch stride of `batch_stride` elements, copied in boxes of 64 x box_rows x 1,
// written with the 128-byte swizzle (kernels/cuda/sm90/hopper_instructions.cuh, matrix
// descriptors). The TMA fills what a box has past the tensor's edges with zeros. The base must be
// 16-byte aligned and ld, batch_stride multiples of 8; `who` names the caller in errors.
CUtensorMap bf16_tensor_map(const void* base, int64_t contiguous, int64_t rows, int64_t ld, int64_t batch,
                            int64_t batch_stride, int box_rows, const char* who);

}  // namespace tg::cuda::sm90
