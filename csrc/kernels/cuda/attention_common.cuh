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
