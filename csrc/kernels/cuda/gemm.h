// Device GEMM: tapegrad's own tiled kernels, or cuBLAS when the build found it. Row-major and
// batched, with the stride convention of GemmArgs (kernels/backend.h).
// Pointers are device pointers on `args.device`; the work is queued on that device's stream
// (runtime.h) and the call returns without waiting. Float32 (TF32 tensor cores when
// allow_tf32() is set), BFloat16 (tensor-core mma, float32 accumulation, bfloat16 out), and
// Float64 / Int64 (a plain tiled kernel, exact-type accumulation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/backend.h"

namespace tg::cuda {

using tg::GemmArgs;  // kernels/backend.h

enum class GemmBackend : uint8_t { Own, Cublas };

void gemm(DType dtype, const GemmArgs& args);

// Which implementation gemm() runs. Default: cuBLAS when the build has it, else Own;
// the environment variable TAPEGRAD_CUDA_MATMUL=own|cublas sets the start value.
bool cublas_built();
GemmBackend gemm_backend();
void set_gemm_backend(GemmBackend backend);  // Cublas without cublas_built() raises RuntimeError

// Float32 matmul (and attention) on TF32 tensor cores, like torch.backends.cuda.matmul.allow_tf32.
// Off by default.
bool allow_tf32();
void set_allow_tf32(bool allow);

// ---- for benchmarks and tests: the own kernels' tile configurations ----------------------------
// gemm() picks a configuration of each own kernel by the device and the product
// (gemm_config_for); these run any, to time them (benchmarks/cuda/gemm_check.cu) and to check
// them (tests/test_cuda_emulated.py).
enum class OwnKernel : uint8_t {
  Mma,    // tensor cores through mma.sync: bfloat16, and float32 as tf32 (sm_80 and up)
  Simt,   // float32 FMA
  Wgmma,  // bfloat16 through wgmma and the TMA (sm_90 only; no configurations in builds without it)
};
std::vector<std::string> gemm_config_names(OwnKernel kernel);  // indexed by `config` below
int gemm_config_for(DType dtype, OwnKernel kernel, const GemmArgs& args);
// What gemm() does on the own backend, with `kernel` in tile configuration `config`. Mma runs
// Float32 as tf32 whatever allow_tf32() says, and raises ValueError where it cannot read the
// operands (neither stride 1, misaligned, K == 0) instead of falling back, as Wgmma does there and
// on devices other than sm_90 (it takes BFloat16 only); Simt takes Float32 and BFloat16.
void gemm_with_config(DType dtype, OwnKernel kernel, int config, const GemmArgs& args);

}  // namespace tg::cuda
