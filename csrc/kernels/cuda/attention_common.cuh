// What the two device attention implementations share (attention.cu: on the CUDA cores;
// attention_tc.cu: on the tensor cores): the kernel parameters, the score of one (i, j)
// with its mask, the dropout factor, and the head-dim dispatch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "kernels/attention_args.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/philox.h"

namespace tg::cuda::attention {

template <class T> struct Params {
  int64_t N, L, S, E, Ev;
  float scale;
  const T* mask;
  const int64_t* mask_offsets;
  int64_t mask_row, mask_col;
  bool causal;
  double dropout_p;
  float keep_scale;  // 1 / (1 - p), rounded to float as the CPU kernel does
  uint64_t seed, offset;
};

template <class T> Params<T> params_of(const AttentionArgs& a) {
  Params<T> p;
  p.N = a.N, p.L = a.L, p.S = a.S, p.E = a.E, p.Ev = a.Ev;
  p.scale = static_cast<float>(a.scale);
  p.mask = static_cast<const T*>(a.mask);
  p.mask_offsets = a.mask_offsets;
  p.mask_row = a.mask_row, p.mask_col = a.mask_col;
  p.causal = a.causal;
  p.dropout_p = a.dropout_p;
  p.keep_scale = static_cast<float>(1.0 / (1.0 - a.dropout_p));
  p.seed = a.seed, p.offset = a.offset;
  return p;
}

// scale * dot + mask, or -inf where the element is hidden (causal, or past the key range).
template <class T>
__device__ __forceinline__ float score_of(const Params<T>& p, int64_t n, int64_t i, int64_t j, float dot) {
  if (j >= p.S || (p.causal && j > i)) return -INFINITY;
  float s = dot * p.scale;
  if (p.mask && i < p.L) s += to_float(p.mask[p.mask_offsets[n] + i * p.mask_row + j * p.mask_col]);
  return s;
}

// Z_ij / (1 - p): keep_scale when the Philox uniform of (n, i, j) is >= p, else 0.
template <class T>
__device__ __forceinline__ float dropout_factor(const Params<T>& p, int64_t n, int64_t i, int64_t j) {
  const float u = dropout_uniform(p.seed, p.offset, static_cast<uint64_t>((n * p.L + i) * p.S + j));
  return static_cast<double>(u) >= p.dropout_p ? p.keep_scale : 0.f;
}

// Scores in base 2 (s log2 e), so each exp is one ex2 (exp2f), and on tiles that need no masking
// the scale folds into the same multiply.
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

// The tensor-core backwards' middle step, for one warp's 16 keys and a tile of 64 queries held
// as accumulators in the mma.sync layout (n8 tile nt, element e: key key[e / 2], query
// q0 + 8 nt + 2t + e % 2; t = lane % 4):
//   st   in: S^T = K Q^T (unscaled)     out: P~^T = P Z / (1 - p)
//   dpt  in: dP~^T = V dO^T             out: dS^T = P (dP~ Z / (1 - p) - D)
// with P = exp(scale S + mask - lse), 0 where hidden. lse_s holds the tile's 64 lse in base 2
// (-inf past L), d_s its D_i = dO_i . O_i. An interior block (no mask, every key < S and query
// < L, causal: every key at or before the first query) skips the per-element checks.
template <class T>
__device__ __forceinline__ void probabilities_and_score_grads(const Params<T>& p, int64_t n, int64_t q0,
                                                              const int64_t (&key)[2], bool interior,
                                                              const float* lse_s, const float* d_s, int t,
                                                              float (&st)[8][4], float (&dpt)[8][4]) {
  if (interior) {
    const float scale_log2 = p.scale * kLog2e;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = exp2f(st[nt][e] * scale_log2 - lse_s[8 * nt + 2 * t + e % 2]);
  } else {
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int il = 8 * nt + 2 * t + e % 2;
        const int64_t j = key[e / 2];
        const bool seen = lse_s[il] != -INFINITY && j < p.S;
        st[nt][e] = seen ? exp2f(score_of(p, n, q0 + il, j, st[nt][e]) * kLog2e - lse_s[il]) : 0.f;
      }
  }
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int il = 8 * nt + 2 * t + e % 2;
      const float z = p.dropout_p > 0 ? dropout_factor(p, n, q0 + il, key[e / 2]) : 1.f;
      dpt[nt][e] = st[nt][e] * (dpt[nt][e] * z - d_s[il]);  // 0 where P is 0
      st[nt][e] *= z;
    }
}

// The padded head dim the kernels are compiled for: 32, 64 or 128.
inline int padded_head_dim(int64_t E, int64_t Ev) {
  const int64_t e = std::max(E, Ev);
  TG_CHECK(e <= 128, ValueError, "scaled_dot_product_attention on CUDA: head dims up to 128 (got E ", E, ", Ev ", Ev,
           ")");
  return e <= 32 ? 32 : e <= 64 ? 64 : 128;
}

template <class F> void with_head_dim(int d, F&& f) {
  if (d == 32) f(std::integral_constant<int, 32>{});
  else if (d == 64) f(std::integral_constant<int, 64>{});
  else f(std::integral_constant<int, 128>{});
}

// ---- attention_tc.cu: on the tensor cores, bfloat16 and (behind allow_tf32) float32 as tf32 ----
// Launchers; the caller checked the arguments. Forward writes out and lse (N L floats). Backward
// reads drow (D_i, N L floats), adds dQ into the float32 dq_acc (N L E, zeroed by the caller) and
// writes dk, dv. tc_fits: the device gives a CTA the shared memory of T's tiles at this head dim
// (float32's are twice bfloat16's: D = 128 needs sm_80 or sm_90).
template <class T> bool tc_fits(const Params<T>& p, int device);
template <class T>
void forward_tc(const Params<T>& p, const T* q, const T* k, const T* v, T* out, float* lse, int device, cudaStream_t s);
template <class T>
void backward_tc(const Params<T>& p, const T* q, const T* k, const T* v, const T* dout, const float* lse,
                 const float* drow, float* dq_acc, T* dk, T* dv, int device, cudaStream_t s);

}  // namespace tg::cuda::attention
