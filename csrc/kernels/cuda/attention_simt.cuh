// The fused-attention kernels on the CUDA cores: FMA in float32 (bfloat16 converted on load).
// They run float32 (without allow_tf32) and, under TAPEGRAD_CUDA_ATTENTION=simt, every type: the
// reference the tensor-core kernels are compared with. attention.cu gives the math and picks the
// kernels; its backward computes D and zeroes dq_acc before launching attention_backward_kernel.
//
// Forward: one CTA per (64-row query tile, problem n). Q stays in shared memory; K and V tiles
// of 64 keys stream through one shared buffer. Each row keeps its running max m and sum l in
// registers: a new tile with max m' rescales the row's O and l by exp(m - m') (online softmax),
// so the (L x S) matrix is never stored.
// Backward: one CTA per (key tile, n), looping over query tiles. P is recomputed from lse; dK
// and dV accumulate in registers over the loop; dQ receives each key tile's share through float
// atomics into dq_acc.
// Thread layout (256 threads): thread (rg = tid / 16, cg = tid % 16) owns rows rg * R ..
// rg * R + R - 1 of a tile and the columns cg, cg + 16, ...: the 16 lanes sharing rows are one
// half-warp, so row reductions are four xor-shuffles, and lanes with consecutive cg read
// consecutive shared-memory words.
#pragma once
#include "kernels/cuda/attention_common.cuh"

namespace tg::cuda {

namespace {

using namespace attention;

constexpr int kThreads = 256;

__device__ __forceinline__ float half_warp_max(float x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float half_warp_sum(float x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// rows x width block of src (row pitch src_ld, first `cols` columns real) into s[r * pitch + c],
// zero past `rows_valid` / `cols`.
template <class T>
__device__ __forceinline__ void load_rows(float* s, int pitch, int rows, int width, const T* src, int64_t src_ld,
                                          int64_t rows_valid, int64_t cols, int tid) {
  for (int idx = tid; idx < rows * width; idx += kThreads) {
    const int r = idx / width, c = idx % width;
    s[r * pitch + c] = r < rows_valid && c < cols ? to_float(src[r * src_ld + c]) : 0.f;
  }
}
// The same block transposed: s[c * pitch + r].
template <class T>
__device__ __forceinline__ void load_rows_transposed(float* s, int pitch, int rows, int width, const T* src,
                                                     int64_t src_ld, int64_t rows_valid, int64_t cols, int tid) {
  for (int idx = tid; idx < rows * width; idx += kThreads) {
    const int r = idx / width, c = idx % width;
    s[c * pitch + r] = r < rows_valid && c < cols ? to_float(src[r * src_ld + c]) : 0.f;
  }
}

// ============================== forward ==============================

template <int D> struct FwdTiles {
  static constexpr int kQ = 64, kKV = 64;
  static constexpr int kRows = kQ / 16;      // query rows per thread (4)
  static constexpr int kCols = kKV / 16;     // score columns per thread (4)
  static constexpr int kOutCols = D / 16;    // output columns per thread
  static constexpr int kQPitch = kQ + 4;     // Qt[e][i]: float4 of a thread's 4 rows
  static constexpr int kKPitch = kKV + 1;    // Kt[e][j]: odd pitch, conflict-free transposed stores
  static constexpr int kPPitch = kQ + 4;     // Pt[j][i]
  static constexpr int kKVFloats = D * kKPitch > kKV * D ? D * kKPitch : kKV * D;
  static constexpr int kSmemBytes = (D * kQPitch + kKVFloats + kKV * kPPitch) * 4;
};

template <class T, int D>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(Params<T> p, const T* q, const T* k, const T* v,
                                                                     T* out, float* lse) {
  using Tl = FwdTiles<D>;
  TG_DYNAMIC_SMEM(float, smem);
  float* qt = smem;                         // [D][kQPitch], q^T of the tile
  float* kv = qt + D * Tl::kQPitch;         // K^T [D][kKPitch], then V [kKV][D]
  float* pt = kv + Tl::kKVFloats;           // [kKV][kPPitch], P~^T of the tile

  const int tid = threadIdx.x, rg = tid / 16, cg = tid % 16;
  const int64_t q_tiles = ceil_div(p.L, Tl::kQ);
  const int64_t n = blockIdx.x / q_tiles;
  const int64_t q0 = (q_tiles - 1 - blockIdx.x % q_tiles) * Tl::kQ;  // causal: the longest tiles first
  const int64_t kv_end = p.causal ? min(p.S, q0 + Tl::kQ) : p.S;

  load_rows_transposed(qt, Tl::kQPitch, Tl::kQ, D, q + (n * p.L + q0) * p.E, p.E, p.L - q0, p.E, tid);

  float o[Tl::kRows][Tl::kOutCols] = {};
  float m[Tl::kRows], l[Tl::kRows];
#pragma unroll
  for (int a = 0; a < Tl::kRows; ++a) m[a] = -INFINITY, l[a] = 0.f;

  for (int64_t j0 = 0; j0 < kv_end; j0 += Tl::kKV) {
    __syncthreads();  // the previous tile's V and P~ are no longer read
    load_rows_transposed(kv, Tl::kKPitch, Tl::kKV, D, k + (n * p.S + j0) * p.E, p.E, p.S - j0, p.E, tid);
    __syncthreads();

    float s[Tl::kRows][Tl::kCols] = {};
#pragma unroll 8
    for (int e = 0; e < D; ++e) {
      const float4 qa = *reinterpret_cast<const float4*>(&qt[e * Tl::kQPitch + rg * Tl::kRows]);
      const float qv[4] = {qa.x, qa.y, qa.z, qa.w};
#pragma unroll
      for (int b = 0; b < Tl::kCols; ++b) {
        const float kb = kv[e * Tl::kKPitch + cg + 16 * b];
#pragma unroll
        for (int a = 0; a < Tl::kRows; ++a) s[a][b] = fmaf(qv[a], kb, s[a][b]);
      }
    }
    __syncthreads();  // K^T fully read: the buffer takes V, loaded while the softmax runs
    load_rows(kv, D, Tl::kKV, D, v + (n * p.S + j0) * p.Ev, p.Ev, p.S - j0, p.Ev, tid);

#pragma unroll
    for (int a = 0; a < Tl::kRows; ++a) {
      const int64_t i = q0 + rg * Tl::kRows + a;
      float row_max = -INFINITY;
#pragma unroll
      for (int b = 0; b < Tl::kCols; ++b) {
        s[a][b] = score_of(p, n, i, j0 + cg + 16 * b, s[a][b]);
        row_max = fmaxf(row_max, s[a][b]);
      }
      const float m_new = fmaxf(m[a], half_warp_max(row_max));
      // Nothing visible yet: keep O = l = 0 and let every p be 0 (exp(-inf - -inf) is NaN).
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = expf(m[a] - m_use);
      float row_sum = 0.f;
#pragma unroll
      for (int b = 0; b < Tl::kCols; ++b) {
        s[a][b] = expf(s[a][b] - m_use);
        row_sum += s[a][b];
      }
      l[a] = l[a] * alpha + half_warp_sum(row_sum);
      m[a] = m_new;
#pragma unroll
      for (int c = 0; c < Tl::kOutCols; ++c) o[a][c] *= alpha;
      if (p.dropout_p > 0 && i < p.L) {
#pragma unroll
        for (int b = 0; b < Tl::kCols; ++b) {
          const int64_t j = j0 + cg + 16 * b;
          if (j < p.S) s[a][b] *= dropout_factor(p, n, i, j);
        }
      }
    }
#pragma unroll
    for (int b = 0; b < Tl::kCols; ++b)
      *reinterpret_cast<float4*>(&pt[(cg + 16 * b) * Tl::kPPitch + rg * Tl::kRows]) =
          make_float4(s[0][b], s[1][b], s[2][b], s[3][b]);
    __syncthreads();  // V and P~^T in place

    const int64_t kv_valid = min(static_cast<int64_t>(Tl::kKV), kv_end - j0);
    for (int j = 0; j < kv_valid; ++j) {
      const float4 pa = *reinterpret_cast<const float4*>(&pt[j * Tl::kPPitch + rg * Tl::kRows]);
      const float pv[4] = {pa.x, pa.y, pa.z, pa.w};
#pragma unroll
      for (int c = 0; c < Tl::kOutCols; ++c) {
        const float vj = kv[j * D + cg + 16 * c];
#pragma unroll
        for (int a = 0; a < Tl::kRows; ++a) o[a][c] = fmaf(pv[a], vj, o[a][c]);
      }
    }
  }

#pragma unroll
  for (int a = 0; a < Tl::kRows; ++a) {
    const int64_t i = q0 + rg * Tl::kRows + a;
    if (i >= p.L) continue;
    const bool empty = l[a] == 0.f;
    const float inv = empty ? 0.f : 1.f / l[a];
    T* dst = out + (n * p.L + i) * p.Ev;
#pragma unroll
    for (int c = 0; c < Tl::kOutCols; ++c)
      if (cg + 16 * c < p.Ev) dst[cg + 16 * c] = from_float<T>(o[a][c] * inv);
    if (cg == 0) lse[n * p.L + i] = empty ? -INFINITY : m[a] + logf(l[a]);
  }
}

// ============================== backward ==============================

template <int D> struct BwdTiles {
  // Shared memory stays under 99 KB (sm_86 / sm_89) for every head dim.
  static constexpr int kKV = D <= 64 ? 64 : 32, kQ = D <= 32 ? 64 : 32;
  static constexpr int kRows = kKV / 16;     // key rows per thread (dK, dV, S^T)
  static constexpr int kCols = kQ / 16;      // query columns per thread (S^T)
  static constexpr int kQRows = kQ / 16;     // query rows per thread (dQ)
  static constexpr int kOutCols = D / 16;    // head-dim columns per thread
  static constexpr int kPitch = D + 1;       // row-major q, dO, k, v tiles: odd pitch
  static constexpr int kPPitch = kKV + 1;    // P~[i][j] and dS[i][j]
  static constexpr int kSmemFloats = 2 * kKV * kPitch + 2 * kQ * kPitch + 2 * kQ * kPPitch + 2 * kQ;
  static constexpr int kSmemBytes = kSmemFloats * 4;
};

template <class T, int D>
__global__ void __launch_bounds__(kThreads) attention_backward_kernel(Params<T> p, const T* q, const T* k, const T* v,
                                                                      const T* dout, const float* lse,
                                                                      const float* drow, float* dq_acc, T* dk, T* dv) {
  using Tl = BwdTiles<D>;
  TG_DYNAMIC_SMEM(float, smem);
  float* ks = smem;                          // [kKV][kPitch]
  float* vs = ks + Tl::kKV * Tl::kPitch;     // [kKV][kPitch]
  float* qs = vs + Tl::kKV * Tl::kPitch;     // [kQ][kPitch]
  float* dos = qs + Tl::kQ * Tl::kPitch;     // [kQ][kPitch]
  float* ps = dos + Tl::kQ * Tl::kPitch;     // [kQ][kPPitch]  P~
  float* dss = ps + Tl::kQ * Tl::kPPitch;    // [kQ][kPPitch]  dS
  float* lse_s = dss + Tl::kQ * Tl::kPPitch; // [kQ]
  float* d_s = lse_s + Tl::kQ;               // [kQ]

  const int tid = threadIdx.x, rg = tid / 16, cg = tid % 16;
  const int64_t kv_tiles = ceil_div(p.S, Tl::kKV);
  const int64_t n = blockIdx.x / kv_tiles, j0 = (blockIdx.x % kv_tiles) * Tl::kKV;

  load_rows(ks, Tl::kPitch, Tl::kKV, D, k + (n * p.S + j0) * p.E, p.E, p.S - j0, p.E, tid);
  load_rows(vs, Tl::kPitch, Tl::kKV, D, v + (n * p.S + j0) * p.Ev, p.Ev, p.S - j0, p.Ev, tid);

  float dk_acc[Tl::kRows][Tl::kOutCols] = {}, dv_acc[Tl::kRows][Tl::kOutCols] = {};
  // Causal: rows i < j0 see none of these keys.
  const int64_t q_begin = p.causal ? (j0 / Tl::kQ) * Tl::kQ : 0;
  for (int64_t q0 = q_begin; q0 < p.L; q0 += Tl::kQ) {
    __syncthreads();  // the previous query tile is no longer read
    load_rows(qs, Tl::kPitch, Tl::kQ, D, q + (n * p.L + q0) * p.E, p.E, p.L - q0, p.E, tid);
    load_rows(dos, Tl::kPitch, Tl::kQ, D, dout + (n * p.L + q0) * p.Ev, p.Ev, p.L - q0, p.Ev, tid);
    for (int r = tid; r < Tl::kQ; r += kThreads) {
      const bool in = q0 + r < p.L;
      lse_s[r] = in ? lse[n * p.L + q0 + r] : -INFINITY;
      d_s[r] = in ? drow[n * p.L + q0 + r] : 0.f;
    }
    __syncthreads();

    // S^T and (dO v^T)^T for key rows j = rg * kRows + a, query columns i = cg + 16 b.
    float st[Tl::kRows][Tl::kCols] = {}, dpt[Tl::kRows][Tl::kCols] = {};
#pragma unroll 4
    for (int e = 0; e < D; ++e) {
      float qe[Tl::kCols], doe[Tl::kCols];
#pragma unroll
      for (int b = 0; b < Tl::kCols; ++b) {
        qe[b] = qs[(cg + 16 * b) * Tl::kPitch + e];
        doe[b] = dos[(cg + 16 * b) * Tl::kPitch + e];
      }
#pragma unroll
      for (int a = 0; a < Tl::kRows; ++a) {
        const float ke = ks[(rg * Tl::kRows + a) * Tl::kPitch + e], ve = vs[(rg * Tl::kRows + a) * Tl::kPitch + e];
#pragma unroll
        for (int b = 0; b < Tl::kCols; ++b) {
          st[a][b] = fmaf(ke, qe[b], st[a][b]);
          dpt[a][b] = fmaf(ve, doe[b], dpt[a][b]);
        }
      }
    }
#pragma unroll
    for (int a = 0; a < Tl::kRows; ++a)
#pragma unroll
      for (int b = 0; b < Tl::kCols; ++b) {
        const int il = cg + 16 * b, jl = rg * Tl::kRows + a;
        const int64_t i = q0 + il, j = j0 + jl;
        const float row_lse = lse_s[il];
        float prob = 0.f, ds = 0.f;
        if (row_lse != -INFINITY && j < p.S) {  // rows past L carry lse = -inf
          prob = expf(score_of(p, n, i, j, st[a][b]) - row_lse);
          const float z = p.dropout_p > 0 ? dropout_factor(p, n, i, j) : 1.f;
          ds = prob * (dpt[a][b] * z - d_s[il]);
          prob *= z;
        }
        ps[il * Tl::kPPitch + jl] = prob;
        dss[il * Tl::kPPitch + jl] = ds;
      }
    __syncthreads();

    // dV += P~^T dO, dK += dS^T q (scale applied at the end), key rows j, columns c = cg + 16 c'.
    for (int i = 0; i < Tl::kQ; ++i) {
      float pj[Tl::kRows], dsj[Tl::kRows];
#pragma unroll
      for (int a = 0; a < Tl::kRows; ++a) {
        pj[a] = ps[i * Tl::kPPitch + rg * Tl::kRows + a];
        dsj[a] = dss[i * Tl::kPPitch + rg * Tl::kRows + a];
      }
#pragma unroll
      for (int c = 0; c < Tl::kOutCols; ++c) {
        const float doc = dos[i * Tl::kPitch + cg + 16 * c], qc = qs[i * Tl::kPitch + cg + 16 * c];
#pragma unroll
        for (int a = 0; a < Tl::kRows; ++a) {
          dv_acc[a][c] = fmaf(pj[a], doc, dv_acc[a][c]);
          dk_acc[a][c] = fmaf(dsj[a], qc, dk_acc[a][c]);
        }
      }
    }

    // dQ += scale dS k for query rows i = rg * kQRows + a, columns e = cg + 16 c.
    float dq_part[Tl::kQRows][Tl::kOutCols] = {};
    for (int j = 0; j < Tl::kKV; ++j) {
#pragma unroll
      for (int c = 0; c < Tl::kOutCols; ++c) {
        const float kj = ks[j * Tl::kPitch + cg + 16 * c];
#pragma unroll
        for (int a = 0; a < Tl::kQRows; ++a)
          dq_part[a][c] = fmaf(dss[(rg * Tl::kQRows + a) * Tl::kPPitch + j], kj, dq_part[a][c]);
      }
    }
#pragma unroll
    for (int a = 0; a < Tl::kQRows; ++a) {
      const int64_t i = q0 + rg * Tl::kQRows + a;
      if (i >= p.L) continue;
#pragma unroll
      for (int c = 0; c < Tl::kOutCols; ++c)
        if (cg + 16 * c < p.E) atomicAdd(&dq_acc[(n * p.L + i) * p.E + cg + 16 * c], p.scale * dq_part[a][c]);
    }
  }

#pragma unroll
  for (int a = 0; a < Tl::kRows; ++a) {
    const int64_t j = j0 + rg * Tl::kRows + a;
    if (j >= p.S) continue;
#pragma unroll
    for (int c = 0; c < Tl::kOutCols; ++c) {
      const int col = cg + 16 * c;
      if (col < p.E) dk[(n * p.S + j) * p.E + col] = from_float<T>(p.scale * dk_acc[a][c]);
      if (col < p.Ev) dv[(n * p.S + j) * p.Ev + col] = from_float<T>(dv_acc[a][c]);
    }
  }
}

}  // namespace
}  // namespace tg::cuda
