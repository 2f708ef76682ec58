// Every environment switch of the kernels, read in one place, once (at first use). They choose
// between implementations, to time and test them against each other; none changes a result
// beyond rounding.
#pragma once
#include <cstdlib>
#include <cstring>

namespace tg {

struct KernelConfig {
  // TAPEGRAD_GEMM=portable: the portable CPU GEMM micro-kernel instead of AVX-512 / AVX2.
  bool cpu_gemm_portable = false;
  // TAPEGRAD_CUDA_MATMUL=own|cublas: the CUDA GEMM at start (default: cuBLAS when built).
  bool cuda_matmul_own = false, cuda_matmul_cublas = false;
  // TAPEGRAD_CUDA_ATTENTION=simt|mma: the CUDA-core attention kernels for every type, or bfloat16
  // on the mma.sync kernels on Hopper too (the default there: the wgmma ones, sm90/, where they apply).
  bool cuda_attention_simt = false, cuda_attention_mma = false;
  // TAPEGRAD_CUDA_ATTENTION_KEY_TILE=64, TAPEGRAD_CUDA_ATTENTION_STAGES=1: the tensor-core
  // attention backward's smaller key tile and its single query stage.
  bool cuda_attention_key_tile_64 = false, cuda_attention_one_stage = false;
};

inline const KernelConfig& kernel_config() {
  static const KernelConfig config = [] {
    auto is = [](const char* name, const char* value) {
      const char* v = std::getenv(name);
      return v != nullptr && std::strcmp(v, value) == 0;
    };
    KernelConfig c;
    c.cpu_gemm_portable = is("TAPEGRAD_GEMM", "portable");
    c.cuda_matmul_own = is("TAPEGRAD_CUDA_MATMUL", "own");
    c.cuda_matmul_cublas = is("TAPEGRAD_CUDA_MATMUL", "cublas");
    c.cuda_attention_simt = is("TAPEGRAD_CUDA_ATTENTION", "simt");
    c.cuda_attention_mma = is("TAPEGRAD_CUDA_ATTENTION", "mma");
    c.cuda_attention_key_tile_64 = is("TAPEGRAD_CUDA_ATTENTION_KEY_TILE", "64");
    c.cuda_attention_one_stage = is("TAPEGRAD_CUDA_ATTENTION_STAGES", "1");
    return c;
  }();
  return config;
}

}  // namespace tg
