// The Hopper attention backward (attention_wgmma.cu, sm_90a only). attention.cu calls it for
// bfloat16 where it applies, in place of attention_tc.cu's backward.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/attention_common.cuh"

namespace tg::cuda::sm90 {

// The arguments and results of attention::backward_tc (attention_common.cuh). Runs on `stream`
// and returns true, or returns false without doing anything where the kernel does not apply: a
// device other than compute capability 9.0, a padded head dim below 64, E or Ev not a multiple
// of 8, or q, k, v, dout not 16-byte aligned (what the TMA can read).
bool attention_backward_wgmma(const attention::Params<__nv_bfloat16>& p, const __nv_bfloat16* q,
                              const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* dout,
                              const float* lse, const float* drow, float* dq_acc, __nv_bfloat16* dk,
                              __nv_bfloat16* dv, int device, cudaStream_t stream);

}  // namespace tg::cuda::sm90
