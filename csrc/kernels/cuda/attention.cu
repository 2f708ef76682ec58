// Fused attention on the device, FlashAttention-2 style (Dao, 2023); the CPU kernel
// (kernels/cpu/attention.cpp) is the spec:
//
//   forward:  S = scale q k^T + mask (causal: -inf for j > i);  P = softmax_rows(S)
//             P~ = P * Z / (1 - p) (dropout);  O = P~ v;  lse_i = log sum_j exp(S_ij)
//   backward: dV = P~^T dO;  dP = (dO v^T) * Z / (1 - p);  D_i = sum_j P_ij dP_ij = sum_c dO_ic O_ic
//             dS = P * (dP - D);  dQ = scale dS k;  dK = scale dS^T q
//
// Forward: one CTA per (64-row query tile, problem n). Q stays in shared memory; K and V tiles
// of 64 keys stream through one shared buffer. Each row keeps its running max m and sum l in
// registers: a new tile with max m' rescales the row's O and l by exp(m - m') (online softmax),
// so the (L x S) matrix is never stored. A row that attends nothing (all -inf) ends with l = 0
// and writes O = 0, lse = -inf, as the CPU kernel does.
// Backward: one CTA per (key tile, n), looping over query tiles. P is recomputed from lse; dK
// and dV accumulate in registers over the loop; dQ receives each key tile's share through float
// atomics (into dq itself for float32, into a float32 workspace for bfloat16). D comes from a
// small row kernel first.
// Thread layout (256 threads): thread (rg = tid / 16, cg = tid % 16) owns rows rg * R ..
// rg * R + R - 1 of a tile and the columns cg, cg + 16, ...: the 16 lanes sharing rows are one
// half-warp, so row reductions are four xor-shuffles, and lanes with consecutive cg read
// consecutive shared-memory words.
// Dropout uses the CPU's Philox stream: element (n, i, j) draws counter offset + (n L + i) S + j.
// All arithmetic is float32 (bfloat16 is converted on load): plain FMA on CUDA cores. This is
// the float32 path; bfloat16, and float32 under allow_tf32(), run on the tensor cores
// (attention_tc.cu; on Hopper, behind TAPEGRAD_CUDA_ATTENTION=wgmma, sm90/attention_wgmma.cu)
// unless TAPEGRAD_CUDA_ATTENTION=simt asks for these kernels (a reference to compare against).
#include <cstdlib>
#include <cstring>

#include "kernels/config.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/gemm.h"
#ifdef TAPEGRAD_WITH_SM90
#include "kernels/cuda/sm90/attention_wgmma.h"
#endif

namespace tg::cuda {

namespace {

using namespace attention;

using bf16 = __nv_bfloat16;
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

// ============================== dispatch ==============================

// TAPEGRAD_CUDA_ATTENTION (read once) picks other kernels than the default, to time and test them
// against each other: "simt" the CUDA-core kernels of this file for every type; "wgmma" the Hopper
// kernels (sm90/attention_wgmma.cu) for bfloat16 where they apply. They are opt-in until they have
// been checked and timed on a Hopper GPU (they pass the emulator's tests: tests/test_cuda_emulated.py).
enum class Kernels { Default, Simt, Wgmma };
Kernels chosen_kernels() {
  static const Kernels chosen = [] {
    if (kernel_config().cuda_attention_simt) return Kernels::Simt;
    if (kernel_config().cuda_attention_wgmma) return Kernels::Wgmma;
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

// bfloat16 on Hopper when TAPEGRAD_CUDA_ATTENTION=wgmma: the wgmma kernels, which say whether they
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
  return chosen_kernels() == Kernels::Wgmma && sm90::attention_forward_wgmma(p, q, k, v, out, lse, device, s);
}
bool hopper_backward(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                     const float* lse, const float* drow, float* dq_acc, bf16* dk, bf16* dv, int device,
                     cudaStream_t s) {
  return chosen_kernels() == Kernels::Wgmma &&
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
