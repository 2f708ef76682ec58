// Fused attention on the device, FlashAttention-2 style (Dao, 2023); the CPU kernel
// (kernels/cpu/attention.cpp) is the spec:
//
//   forward:  S = scale q k^T + mask (causal: -inf for j > i);  P = softmax_rows(S)
//             P~ = P * Z / (1 - p) (dropout);  O = P~ v;  lse_i = log sum_j exp(S_ij)
//   backward: dV = P~^T dO;  dP = (dO v^T) * Z / (1 - p);  D_i = sum_j P_ij dP_ij = sum_c dO_ic O_ic
//             dS = P * (dP - D);  dQ = scale dS k;  dK = scale dS^T q
//
// The (L x S) matrices are never stored: the forward keeps a running max and sum per row (online
// softmax), the backward recomputes P from lse. A row that attends nothing (all -inf) writes
// O = 0, lse = -inf, as the CPU kernel does. Dropout uses the CPU's Philox stream: element
// (n, i, j) draws counter offset + (n L + i) S + j. Accumulation is float32 throughout.
//
// Three kernel families, picked here per call:
//   attention_simt.cuh        the CUDA cores: float32, and every type under TAPEGRAD_CUDA_ATTENTION=simt
//   attention_tc.cu           the tensor cores (mma.sync): bfloat16, and float32 under allow_tf32()
//   sm90/attention_wgmma.cu   Hopper (wgmma, TMA): bfloat16 where they apply (TAPEGRAD_CUDA_ATTENTION=mma: not)
// Every backward shares what this file does around its kernel: D from a small row kernel first,
// dQ accumulated by float atomics (into dq itself for float32, into a float32 workspace for
// bfloat16, converted at the end).
#include <cstdlib>
#include <cstring>

#include "kernels/config.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_simt.cuh"
#include "kernels/cuda/gemm.h"
#ifdef TAPEGRAD_WITH_SM90
#include "kernels/cuda/sm90/attention_wgmma.h"
#endif

namespace tg::cuda {

namespace {

using namespace attention;

using bf16 = __nv_bfloat16;

// ============================== what every backward shares ==============================

// D_i = sum_c dO_ic O_ic, one warp per row; rows past the end get nothing.
template <class T>
__global__ void attention_row_dot(int64_t rows, int64_t width, const T* dout, const T* out, float* d) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float acc = 0.f;
  for (int64_t c = lane; c < width; c += 32) acc += to_float(dout[row * width + c]) * to_float(out[row * width + c]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) d[row] = acc;
}

template <class T>
__global__ void float_to(int64_t count, const float* src, T* dst) {
  for (int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; x < count;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[x] = from_float<T>(src[x]);
}

// ============================== dispatch ==============================

// TAPEGRAD_CUDA_ATTENTION (read once) picks other kernels than the default, to time and test them
// against each other: "simt" the CUDA-core kernels (attention_simt.cuh) for every type; "mma" keeps
// bfloat16 on the mma.sync kernels (attention_tc.cu) on Hopper too. By default bfloat16 on an sm_90
// device takes the wgmma kernels (sm90/attention_wgmma.cu) where they apply: on an H200 (2026-12-04)
// they passed attention_check --check and the tests under compute-sanitizer, and ran fwd+bwd
// 21-31% faster than mma.sync (B8 H16, T1024 / T4096, D64 / D128: 1.02 -> 0.80, 13.8 -> 10.1,
// 1.75 -> 1.29, 23.7 -> 16.4 ms).
enum class Kernels { Default, Simt, Mma };
Kernels chosen_kernels() {
  static const Kernels chosen = [] {
    if (kernel_config().cuda_attention_simt) return Kernels::Simt;
    if (kernel_config().cuda_attention_mma) return Kernels::Mma;
    return Kernels::Default;
  }();
  return chosen;
}

// On the tensor cores: bfloat16, and float32 as tf32 when allow_tf32() is set and its tiles fit the
// device; neither when TAPEGRAD_CUDA_ATTENTION=simt.
template <class T> bool on_tensor_cores(const Params<T>& p, int device) {
  if (chosen_kernels() == Kernels::Simt) return false;
  if constexpr (std::is_same_v<T, bf16>) return true;
  else return allow_tf32() && tc_fits(p, device);
}

// bfloat16 on Hopper unless TAPEGRAD_CUDA_ATTENTION=mma: the wgmma kernels, which say whether they
// ran (they apply from head dim 64, to operands the TMA can read). Other types, and builds
// without them: no.
template <class T>
bool hopper_forward(const Params<T>&, const T*, const T*, const T*, T*, float*, int, cudaStream_t) {
  return false;
}
template <class T>
bool hopper_backward(const Params<T>&, const T*, const T*, const T*, const T*, const float*, const float*, float*, T*,
                     T*, int, cudaStream_t) {
  return false;
}
#ifdef TAPEGRAD_WITH_SM90
bool hopper_forward(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse,
                    int device, cudaStream_t s) {
  return chosen_kernels() == Kernels::Default && sm90::attention_forward_wgmma(p, q, k, v, out, lse, device, s);
}
bool hopper_backward(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                     const float* lse, const float* drow, float* dq_acc, bf16* dk, bf16* dv, int device,
                     cudaStream_t s) {
  return chosen_kernels() == Kernels::Default &&
         sm90::attention_backward_wgmma(p, q, k, v, dout, lse, drow, dq_acc, dk, dv, device, s);
}
#endif

template <class T>
void forward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, T* out, float* lse, int device,
                   cudaStream_t s) {
  const Params<T> p = params_of<T>(a);
  if (hopper_forward(p, q, k, v, out, lse, device, s)) return;
  if (on_tensor_cores(p, device)) return forward_tc(p, q, k, v, out, lse, device, s);
  with_head_dim(padded_head_dim(a.E, a.Ev), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    const int64_t blocks = a.N * ceil_div(a.L, FwdTiles<D>::kQ);
    TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many rows");
    auto kernel = attention_forward_kernel<T, D>;
    allow_dynamic_smem(kernel, FwdTiles<D>::kSmemBytes, device, "attention forward: cudaFuncSetAttribute");
    launch_kernel(kernel, static_cast<unsigned>(blocks), kThreads, FwdTiles<D>::kSmemBytes, s, p, q, k, v, out, lse);
  });
  check(cudaGetLastError(), "attention forward kernel launch");
}

template <class T>
void backward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, const T* out, const float* lse,
                    const T* dout, T* dq, T* dk, T* dv, int device, cudaStream_t s) {
  const Params<T> p = params_of<T>(a);
  const int64_t rows = a.N * a.L, dq_count = rows * a.E;
  // Workspace: D (N L floats), and for bfloat16 a float32 dQ to accumulate into.
  constexpr bool float_dq = std::is_same_v<T, float>;
  // From the caching allocator: counted in its statistics, OutOfMemoryError when short, and
  // released on every path out of this function.
  const ScratchBlock ws(std::max<int64_t>(1, rows + (float_dq ? 0 : dq_count)) * sizeof(float), device);
  float* drow = static_cast<float*>(ws.get());
  float* dq_acc = float_dq ? reinterpret_cast<float*>(dq) : drow + rows;
  check(cudaMemsetAsync(dq_acc, 0, dq_count * sizeof(float), s), "attention backward: zero dq");
  if (rows > 0)
    launch_kernel(attention_row_dot<T>, static_cast<unsigned>(ceil_div(rows, kThreads / 32)), kThreads, 0, s, rows,
                  a.Ev, dout, out, drow);
  auto on_cuda_cores = [&] {
    with_head_dim(padded_head_dim(a.E, a.Ev), [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      const int64_t blocks = a.N * ceil_div(a.S, BwdTiles<D>::kKV);
      TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many keys");
      if (blocks == 0) return;
      auto kernel = attention_backward_kernel<T, D>;
      allow_dynamic_smem(kernel, BwdTiles<D>::kSmemBytes, device, "attention backward: cudaFuncSetAttribute");
      launch_kernel(kernel, static_cast<unsigned>(blocks), kThreads, BwdTiles<D>::kSmemBytes, s, p, q, k, v, dout, lse,
                    drow, dq_acc, dk, dv);
    });
  };
  if (!hopper_backward(p, q, k, v, dout, lse, drow, dq_acc, dk, dv, device, s)) {
    if (on_tensor_cores(p, device)) backward_tc(p, q, k, v, dout, lse, drow, dq_acc, dk, dv, device, s);
    else on_cuda_cores();
  }
  if constexpr (!float_dq) {
    if (dq_count > 0)
      launch_kernel(float_to<T>, static_cast<unsigned>(std::min<int64_t>(ceil_div(dq_count, kThreads), 4096)), kThreads,
                    0, s, dq_count, dq_acc, dq);
  }
  check(cudaGetLastError(), "attention backward kernel launch");
}

void check_args(DType dtype, const AttentionArgs& a) {
  TG_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16, TypeError,
           "scaled_dot_product_attention on CUDA: float32 or bfloat16 expected, got ", dtype_name(dtype));
  TG_CHECK(a.N >= 0 && a.L >= 0 && a.S >= 0 && a.E >= 1 && a.Ev >= 1, ValueError,
           "scaled_dot_product_attention: bad sizes");
  TG_CHECK(a.dropout_p >= 0 && a.dropout_p < 1, ValueError, "scaled_dot_product_attention: dropout_p must be in [0, 1)");
  padded_head_dim(a.E, a.Ev);
}

}  // namespace

void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v, void* out,
                       void* lse, int device) {
  check_args(dtype, a);
  if (a.N == 0 || a.L == 0) return;
  DeviceScope scope(device);
  const cudaStream_t s = scope.stream();
  if (dtype == DType::Float32)
    forward_typed<float>(a, static_cast<const float*>(q), static_cast<const float*>(k), static_cast<const float*>(v),
                         static_cast<float*>(out), static_cast<float*>(lse), device, s);
  else
    forward_typed<bf16>(a, static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v),
                        static_cast<bf16*>(out), static_cast<float*>(lse), device, s);
}

void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                        const void* out, const void* lse, const void* grad_out, void* dq, void* dk, void* dv,
                        int device) {
  check_args(dtype, a);
  if (a.N == 0 || (a.L == 0 && a.S == 0)) return;
  DeviceScope scope(device);
  const cudaStream_t s = scope.stream();
  if (dtype == DType::Float32)
    backward_typed<float>(a, static_cast<const float*>(q), static_cast<const float*>(k), static_cast<const float*>(v),
                          static_cast<const float*>(out), static_cast<const float*>(lse),
                          static_cast<const float*>(grad_out), static_cast<float*>(dq), static_cast<float*>(dk),
                          static_cast<float*>(dv), device, s);
  else
    backward_typed<bf16>(a, static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v),
                         static_cast<const bf16*>(out), static_cast<const float*>(lse),
                         static_cast<const bf16*>(grad_out), static_cast<bf16*>(dq), static_cast<bf16*>(dk),
                         static_cast<bf16*>(dv), device, s);
}

}  // namespace tg::cuda
