// The Hopper attention kernels (attention_wgmma.cu, sm_90a only). attention.cu calls them for
// bfloat16 where they apply, in place of attention_tc.cu's.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/attention_common.cuh"

namespace tg::cuda::sm90 {

// The arguments and results of attention::forward_tc and backward_tc (attention_common.cuh). Each
// runs on `stream` and returns true, or returns false without doing anything where the kernel does
// not apply: a device other than compute capability 9.0, a padded head dim below 64, E or Ev not a
// multiple of 8, or q, k, v (dout) not 16-byte aligned (what the TMA can read).
bool attention_forward_wgmma(const attention::Params<__nv_bfloat16>& p, const __nv_bfloat16* q,
                             const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out, float* lse,
                             int device, cudaStream_t stream);
bool attention_backward_wgmma(const attention::Params<__nv_bfloat16>& p, const __nv_bfloat16* q,
                              const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* dout,
                              const float* lse, const float* drow, float* dq_acc, __nv_bfloat16* dk,
                              __nv_bfloat16* dv, int device, cudaStream_t stream);

}  // namespace tg::cuda::sm90
