// What the two device attention implementations share (attention_simt.cuh: on the CUDA cores;
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

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// The tensor-core forwards' online-softmax step, for one warp's rows row[0] (g) and row[1]
// (g + 8) over a tile of 8 NT keys from j0, held as accumulators in the mma.sync layout (n8 tile
// nt, element e: row row[e / 2], key j0 + 8 nt + 2t + e % 2; the 4 lanes of a quad share a row),
// in two parts (a kernel may run the first while the previous tile's P V is still computing):
//   softmax_tile   s in: Q K^T (unscaled)   out: P~ = exp(scale S + mask - m') Z / (1 - p),
//                  base-2 exponents
//                  m, l: the rows' running max (base 2) and sum of P (before dropout, as on the
//                  CPU), updated; row_factor(h, alpha) is told each row's exp(m - m'), what its
//                  output accumulators must be scaled by
//   rescale_row    o: row h's output accumulators, times alpha
// An interior tile (no mask, every key < S, causal: every key at or before the first row) skips
// score_of's checks and folds the scale into the base-2 conversion.
template <class T, int NT, class RowFactor>
__device__ __forceinline__ void softmax_tile(const Params<T>& p, int64_t n, const int64_t (&row)[2], int64_t j0,
                                             bool interior, int t, float (&s)[NT][4], float (&m)[2], float (&l)[2],
                                             RowFactor row_factor) {
  const float scale_log2 = p.scale * kLog2e;
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // rows g and g + 8
    float row_max = -INFINITY;
    if (interior) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) row_max = fmaxf(row_max, s[nt][2 * h + c] *= scale_log2);
    } else {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          float& x = s[nt][2 * h + c];
          x = score_of(p, n, row[h], j0 + 8 * nt + 2 * t + c, x) * kLog2e;
          row_max = fmaxf(row_max, x);
        }
    }
    const float m_new = fmaxf(m[h], quad_max(row_max));
    const float m_use = m_new == -INFINITY ? 0.f : m_new;  // nothing visible yet: every p is 0
    const float alpha = exp2f(m[h] - m_use);
    float row_sum = 0.f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float& x = s[nt][2 * h + c];
        x = exp2f(x - m_use);
        row_sum += x;
      }
    l[h] = l[h] * alpha + quad_sum(row_sum);
    m[h] = m_new;
    row_factor(h, alpha);
    if (p.dropout_p > 0 && row[h] < p.L) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t j = j0 + 8 * nt + 2 * t + c;
          if (j < p.S) s[nt][2 * h + c] *= dropout_factor(p, n, row[h], j);
        }
    }
  }
}

template <int DT>
__device__ __forceinline__ void rescale_row(float (&o)[DT][4], int h, float alpha) {
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][2 * h] *= alpha, o[dt][2 * h + 1] *= alpha;
}

// Both parts at once, each row rescaled as soon as its factor is known.
template <class T, int NT, int DT>
__device__ __forceinline__ void online_softmax_step(const Params<T>& p, int64_t n, const int64_t (&row)[2],
                                                    int64_t j0, bool interior, int t, float (&s)[NT][4],
                                                    float (&m)[2], float (&l)[2], float (&o)[DT][4]) {
  softmax_tile(p, n, row, j0, interior, t, s, m, l, [&](int h, float alpha) { rescale_row(o, h, alpha); });
}

// The tensor-core backwards' middle step, for one warp's 16 keys and a tile of 64 queries held
// as accumulators in the mma.sync layout (n8 tile nt, element e: key key[e / 2], query
// q0 + 8 nt + 2t + e % 2; t = lane % 4), in two parts (a kernel may run the first while dP^T is
// still being computed):
//   probabilities      st in: S^T = K Q^T (unscaled)   out: P^T = exp(scale S + mask - lse), 0
//                      where hidden
//   score_grads        dpt in: dP~^T = V dO^T          out: dS^T = P (dP~ Z / (1 - p) - D)
//                      st becomes P~^T = P Z / (1 - p)
// lse_s holds the tile's 64 lse in base 2 (-inf past L), d_s its D_i = dO_i . O_i. An interior
// block (no mask, every key < S and query < L, causal: every key at or before the first query)
// skips the per-element checks.
template <class T>
__device__ __forceinline__ void probabilities(const Params<T>& p, int64_t n, int64_t q0, const int64_t (&key)[2],
                                              bool interior, const float* lse_s, int t, float (&st)[8][4]) {
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
}
template <class T>
__device__ __forceinline__ void score_grads(const Params<T>& p, int64_t n, int64_t q0, const int64_t (&key)[2],
                                            const float* d_s, int t, float (&st)[8][4], float (&dpt)[8][4]) {
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

// ---- the tensor-core kernels' stores, from accumulators in the mma.sync layout (n8 tile dt,
// element e: row [e / 2], column 8 dt + 2t + e % 2) ----

// Forward: out rows row[h] = O / l (a row that attends nothing: O = 0, lse = -inf, as the CPU),
// and lse = m ln 2 + ln l (m in base 2), rows past L skipped.
template <class T, int DT>
__device__ __forceinline__ void store_output_rows(const Params<T>& p, int64_t n, const int64_t (&row)[2], int t,
                                                  const float (&o)[DT][4], const float (&m)[2], const float (&l)[2],
                                                  T* out, float* lse) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row[h];
    if (i >= p.L) continue;
    const bool empty = l[h] == 0.f;
    const float inv = empty ? 0.f : 1.f / l[h];
    T* dst = out + (n * p.L + i) * p.Ev;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = 8 * dt + 2 * t + c;
        if (col < p.Ev) dst[col] = from_float<T>(o[dt][2 * h + c] * inv);
      }
    if (t == 0) lse[n * p.L + i] = empty ? -INFINITY : m[h] * kLn2 + logf(l[h]);
  }
}

// Backward: dq_acc rows row[h], columns col0.. += scale dq (float atomics; other key blocks add
// theirs), rows past L and columns past E skipped.
template <class T, int DT>
__device__ __forceinline__ void add_query_rows(const Params<T>& p, int64_t n, const int64_t (&row)[2], int col0, int t,
                                               const float (&dq)[DT][4], float* dq_acc) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row[h];
    if (i >= p.L) continue;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = col0 + 8 * dt + 2 * t + c;
        if (col < p.E) atomicAdd(&dq_acc[(n * p.L + i) * p.E + col], p.scale * dq[dt][2 * h + c]);
      }
  }
}

// Backward: dk = scale dK and dv = dV for keys key[h], keys past S and columns past E / Ev skipped.
template <class T, int DT>
__device__ __forceinline__ void store_key_rows(const Params<T>& p, int64_t n, const int64_t (&key)[2], int t,
                                               const float (&dk_acc)[DT][4], const float (&dv_acc)[DT][4], T* dk,
                                               T* dv) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t j = key[h];
    if (j >= p.S) continue;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = 8 * dt + 2 * t + c;
        if (col < p.E) dk[(n * p.S + j) * p.E + col] = from_float<T>(p.scale * dk_acc[dt][2 * h + c]);
        if (col < p.Ev) dv[(n * p.S + j) * p.Ev + col] = from_float<T>(dv_acc[dt][2 * h + c]);
      }
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
