// FlashAttention-style fused attention on the device: the same arguments and results as the
// CPU kernel (kernels/attention_args.h), device pointers. Forward streams K/V tiles through
// shared memory with an online softmax and writes out and lse (N, L, float32); backward
// recomputes the scores tile by tile from lse. Float32 and BFloat16, head dims up to 128.
#pragma once
#include "core/dtype.h"
#include "kernels/attention_args.h"

namespace tg::cuda {

void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v, void* out,
                       void* lse, int device);
void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                        const void* out, const void* lse, const void* grad_out, void* dq, void* dk, void* dv,
                        int device);

}  // namespace tg::cuda
