// The Hopper-only GEMM (gemm_wgmma.cu, built for sm_90a alone when the build targets sm_90).
// gemm.cu calls it for bfloat16 where it applies; it is the own backend's fastest kernel there.
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/cuda/gemm.h"

namespace tg::cuda::sm90 {

// Tile configurations, indexed by `config` below (gemm_with_config's OwnKernel::Wgmma).
std::vector<std::string> wgmma_config_names();
// The configuration gemm() uses for this product.
int wgmma_config_for(const GemmArgs& g);
// Runs C (+)= A @ B in bfloat16 on `stream` and returns true, or returns false without doing
// anything where the kernel cannot: a device other than compute capability 9.0, or operands the
// tensor memory accelerator cannot read (no stride-1 dimension, a pointer not 16-byte aligned, a
// leading or batch stride not a multiple of 8 elements).
bool wgmma_gemm(const GemmArgs& g, int config, cudaStream_t stream);

}  // namespace tg::cuda::sm90
