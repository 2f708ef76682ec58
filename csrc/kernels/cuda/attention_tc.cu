// Fused attention on the tensor cores, float32 accumulators, FlashAttention-2 style (Dao, 2023):
// bfloat16 (mma.sync m16n8k16) and, under allow_tf32, float32 as tf32 (m16n8k8; TcOps below says
// what the element type changes). The math, the masks, the dropout stream and the results (out,
// and lse as N x L floats) are those of the CUDA-core kernels (attention_simt.cuh); attention.cu's
// header gives the formulas. Only the products run on tensor cores, with P and dS rounded to the
// element type (or tf32) on their way into the second product, as FlashAttention does.
//
// A forward CTA is 4 warps; a tile is 64 rows (queries or keys), 16 per warp; D is the head dim
// padded to 32, 64 or 128 (zero columns add nothing to a product). Fragment layouts:
// device_utils.cuh. An accumulator element e (0..3) of n8 tile nt sits at row g + 8 (e / 2),
// column 8 nt + 2 t + e % 2 (g = lane / 4, t = lane % 4), so a row's 64 scores live in the 4 lanes
// of a quad, and the accumulators of one k step's n8 tiles are, converted, the A fragment of that
// k step (TcOps::acc_to_a):
// S's registers feed P V without a trip through shared memory.
//
// Forward, one CTA per (64-query tile, problem n); Q's fragments are loaded once:
//   per 64-key tile:  S = Q K^T              A = Q, B = K tile stored [key][e] (n-major)
//                     online softmax of S    running max m and sum l per row, O rescaled by exp(m - m')
//                     O += P~ V              A = P~ from S's registers, B = V stored [key][e] (k-major)
//   V's copy overlaps S = Q K^T; the next K tile's copy overlaps P~ V.
// (Two K / V stages, tile j + 1 landing during tile j, measured slower on an H100: 147 registers
// at D = 64 leave 3 CTAs per multiprocessor instead of 4.)
// Backward, one CTA per (key tile, n), looping over the query tiles (with two stages where the
// shared memory allows, the next tile's Q, dO, lse and D are copied during this tile's products).
// A key tile is 128 keys, 8 warps (64 and 4 where the shared memory is short): every query tile
// loaded serves them all, which halves the copies and the dQ atomics per key of 64-key tiles.
//   S^T = K Q^T, dP^T = V dO^T               16 keys x 64 queries per warp (A: K, V rows; B: Q, dO)
//   P~^T, dS^T in registers                  P = exp(S - lse); dS = P (dP Z / (1 - p) - D)
//   dV += P~^T dO,  dK += dS^T Q             A from the registers, B = dO, Q stored [query][e] (k-major)
//   dQ += dS K                               dS^T through shared memory ([key][query]: A k-major),
//                                            warp w takes queries 16 (w % 4).. and, of 8 warps, half
//                                            the columns; atomics into float32 dq_acc
#include <cstdlib>
#include <cstring>

#include "kernels/config.h"
#include "kernels/cuda/attention_common.cuh"

namespace tg::cuda::attention {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kWarps = 4, kTcThreads = 32 * kWarps, kTile = 64;
// Scores are kept in base 2 (kLog2e, attention_common.cuh): the softmax's non-mma instructions,
// not the tensor cores, bound these kernels at D = 64.

// What the element type changes. bfloat16: mma m16n8k16, two elements a register, the fragment
// loaders of device_utils.cuh. float32 as tf32 (behind allow_tf32): m16n8k8, one element a
// register, rounded to tf32 on the way in. A tf32 k step of 8 holds k = t and t + 4 in a thread's
// A registers where an accumulator tile holds columns 2t and 2t + 1; so the products whose A comes
// from accumulators (P V, P^T dO, dS^T Q), and with them every product of operands stored k-major
// (scalar loads, dS K too), run through each k step in the order 0, 2, 4, 6, 1, 3, 5, 7: position
// t is k = 2t, position t + 4 is k = 2t + 1. A sum does not care in which order its terms come.
template <class T> struct TcOps;

template <> struct TcOps<bf16> {
  static constexpr int kK = 16;   // k per mma
  static constexpr int kPad = 8;  // elements of padding per shared row: rows an odd multiple of 16 bytes
  // A: rows o..o+15, k..k+kK of a tile stored [row][k] (a_rows) or [k][row] (a_cols).
  __device__ static void a_rows(uint32_t (&a)[4], const bf16* s, int pitch, int o, int k, int lane) {
    a_frag_m_major(a, s, pitch, o, k, lane);
  }
  __device__ static void a_cols(uint32_t (&a)[4], const bf16* s, int pitch, int o, int k, int lane) {
    a_frag_k_major(a, s, pitch, o, k, lane);
  }
  // B of two n8 tiles (columns n..n+15), k..k+kK of a tile stored [n][k] (b_rows) or [k][n] (b_cols).
  __device__ static void b_rows(uint32_t (&b)[4], const bf16* s, int pitch, int n, int k, int lane) {
    b_frags_n_major(b, s, pitch, n, k, lane);
  }
  __device__ static void b_cols(uint32_t (&b)[4], const bf16* s, int pitch, int n, int k, int lane) {
    b_frags_k_major(b, s, pitch, n, k, lane);
  }
  // The accumulator tiles c[0], c[1] (columns 0-7, 8-15 of a k step) as an A fragment.
  __device__ static void acc_to_a(uint32_t (&a)[4], const float (*c)[4]) {
    a[0] = pack_bf16x2(c[0][0], c[0][1]);  // row g,     k 2t, 2t+1
    a[1] = pack_bf16x2(c[0][2], c[0][3]);  // row g + 8
    a[2] = pack_bf16x2(c[1][0], c[1][1]);  // row g,     k 8 + 2t, 9 + 2t
    a[3] = pack_bf16x2(c[1][2], c[1][3]);  // row g + 8
  }
  __device__ static void mma(float (&acc)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_16x8(acc, a, b0, b1, bf16{});
  }
  __device__ static void store2(bf16* dst, float x, float y) { *reinterpret_cast<uint32_t*>(dst) = pack_bf16x2(x, y); }
};

template <> struct TcOps<float> {
  static constexpr int kK = 8, kPad = 4;
  __device__ static void round(uint32_t (&r)[4]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) r[i] = to_tf32(__uint_as_float(r[i]));
  }
  __device__ static void a_rows(uint32_t (&a)[4], const float* s, int pitch, int o, int k, int lane) {
    a_frag_m_major(a, s, pitch, o, k, lane);
    round(a);
  }
  __device__ static void a_cols(uint32_t (&a)[4], const float* s, int pitch, int o, int k, int lane) {
    const float* r = s + (k + 2 * (lane % 4)) * pitch + o + lane / 4;  // position t: k 2t; t + 4: 2t + 1
    a[0] = to_tf32(r[0]), a[1] = to_tf32(r[8]), a[2] = to_tf32(r[pitch]), a[3] = to_tf32(r[pitch + 8]);
  }
  __device__ static void b_rows(uint32_t (&b)[4], const float* s, int pitch, int n, int k, int lane) {
    b_frags_n_major(b, s, pitch, n, k, lane);
    round(b);
  }
  __device__ static void b_cols(uint32_t (&b)[4], const float* s, int pitch, int n, int k, int lane) {
    const float* r = s + (k + 2 * (lane % 4)) * pitch + n + lane / 4;
    b[0] = to_tf32(r[0]), b[1] = to_tf32(r[pitch]), b[2] = to_tf32(r[8]), b[3] = to_tf32(r[pitch + 8]);
  }
  // One accumulator tile c[0] (a k step of 8 columns): column 2t at position t, 2t + 1 at t + 4.
  __device__ static void acc_to_a(uint32_t (&a)[4], const float (*c)[4]) {
    a[0] = to_tf32(c[0][0]), a[1] = to_tf32(c[0][2]), a[2] = to_tf32(c[0][1]), a[3] = to_tf32(c[0][3]);
  }
  __device__ static void mma(float (&acc)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_16x8(acc, a, b0, b1, float{});
  }
  __device__ static void store2(float* dst, float x, float y) { *reinterpret_cast<float2*>(dst) = make_float2(x, y); }
};

template <class T, int D> struct TcTiles {
  static constexpr int kPitch = D + TcOps<T>::kPad;  // elements per shared row: ldmatrix and scalar loads conflict-free
  static constexpr int kTileElems = kTile * kPitch;
  static constexpr int kKSteps = D / TcOps<T>::kK;   // k steps over the head dim
  static constexpr int kDTiles = D / 8;              // n8 accumulator tiles over the head dim
  static constexpr int kDsPitch = kTile + TcOps<T>::kPad;  // dS^T [key][query]
  static constexpr int kFwdSmemBytes = 3 * kTileElems * int(sizeof(T));  // Q, K, V
  // Backward with key tiles of 16 x KeyWarps rows: K, V and dS^T, then per query stage Q, dO,
  // lse and D.
  static constexpr int kBwdStageBytes = 2 * kTileElems * int(sizeof(T)) + 2 * kTile * 4;
  static constexpr int bwd_smem_bytes(int key_warps, int stages) {
    return 16 * key_warps * (2 * kPitch + kDsPitch) * int(sizeof(T)) + stages * kBwdStageBytes;
  }
};

// Rows [0, Rows) x D of `src` (row stride ld; rows_valid rows and cols columns real) into
// s[r * pitch + c], zeros elsewhere, by `Threads` threads. vec (cols and ld whole 16-byte chunks,
// src 16-byte aligned): 16-byte cp.async chunks, each all in or all out; else element by element.
template <class T, int D, int Threads = kTcThreads, int Rows = kTile>
__device__ __forceinline__ void load_tile(T* s, const T* src, int64_t ld, int64_t rows_valid, int64_t cols, bool vec,
                                          int tid) {
  constexpr int kPitch = TcTiles<T, D>::kPitch, kChunk = 16 / int(sizeof(T));
  if (vec) {
#pragma unroll 4
    for (int c = tid; c < Rows * D / kChunk; c += Threads) {
      const int r = c / (D / kChunk), col = (c % (D / kChunk)) * kChunk;
      const bool in = r < rows_valid && col < cols;
      cp_async_16(s + r * kPitch + col, in ? src + r * ld + col : src, in);
    }
  } else {
    for (int x = tid; x < Rows * D; x += Threads) {
      const int r = x / D, c = x % D;
      s[r * kPitch + c] = r < rows_valid && c < cols ? src[r * ld + c] : from_float<T>(0.f);
    }
  }
}

// acc (16 x 64, n8 tiles) += A (16 x D) * B^T, B's 64 rows stored [row][e] at `b`; a_frag(kk, f)
// gives A's fragment of k-step kk (held in registers, or read from shared memory just in time).
template <class T, int D, class AFrag>
__device__ __forceinline__ void product_64(float (&acc)[8][4], AFrag&& a_frag, const T* b, int lane) {
  using Ops = TcOps<T>;
#pragma unroll
  for (int kk = 0; kk < TcTiles<T, D>::kKSteps; ++kk) {
    uint32_t a[4];
    a_frag(kk, a);
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      uint32_t f[4];
      Ops::b_rows(f, b, TcTiles<T, D>::kPitch, 16 * jj, Ops::kK * kk, lane);
      Ops::mma(acc[2 * jj], a, f[0], f[1]);
      Ops::mma(acc[2 * jj + 1], a, f[2], f[3]);
    }
  }
}

// acc (16 x Cols) += A (16 x kK, k-step kk) * B[kK kk.., col0 .. col0 + Cols), B stored [row][e] at `b`.
template <class T, int D, int Cols = D>
__device__ __forceinline__ void product_d(float (&acc)[Cols / 8][4], const uint32_t (&a)[4], const T* b, int kk,
                                          int lane, int col0 = 0) {
  using Ops = TcOps<T>;
#pragma unroll
  for (int dd = 0; dd < Cols / 16; ++dd) {
    uint32_t f[4];
    Ops::b_cols(f, b, TcTiles<T, D>::kPitch, col0 + 16 * dd, Ops::kK * kk, lane);
    Ops::mma(acc[2 * dd], a, f[0], f[1]);
    Ops::mma(acc[2 * dd + 1], a, f[2], f[3]);
  }
}

// ============================== forward ==============================

template <class T, int D>
__global__ void __launch_bounds__(kTcThreads) forward_kernel(Params<T> p, const T* q, const T* k, const T* v, T* out,
                                                             float* lse, bool vec) {
  using Tl = TcTiles<T, D>;
  using Ops = TcOps<T>;
  constexpr int kSteps = kTile / Ops::kK;  // k steps of P V (over the tile's 64 keys)
  TG_DYNAMIC_SMEM(unsigned char, smem_raw);
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* ks = qs + Tl::kTileElems;
  T* vs = ks + Tl::kTileElems;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int64_t q_tiles = ceil_div(p.L, kTile);
  const int64_t n = blockIdx.x / q_tiles;
  const int64_t q0 = (q_tiles - 1 - blockIdx.x % q_tiles) * kTile;  // causal: the longest tiles first
  const int64_t kv_end = p.causal ? min(p.S, q0 + kTile) : p.S;
  const int64_t row[2] = {q0 + 16 * warp + g, q0 + 16 * warp + g + 8};

  load_tile<T, D>(qs, q + (n * p.L + q0) * p.E, p.E, p.L - q0, p.E, vec, tid);
  if (kv_end > 0) load_tile<T, D>(ks, k + n * p.S * p.E, p.E, p.S, p.E, vec, tid);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[Tl::kKSteps][4];
#pragma unroll
  for (int kk = 0; kk < Tl::kKSteps; ++kk) Ops::a_rows(qf[kk], qs, Tl::kPitch, 16 * warp, Ops::kK * kk, lane);

  float o[Tl::kDTiles][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (base 2) and sum per row
  for (int64_t j0 = 0; j0 < kv_end; j0 += kTile) {
    load_tile<T, D>(vs, v + (n * p.S + j0) * p.Ev, p.Ev, p.S - j0, p.Ev, vec, tid);
    cp_async_commit();

    float s[8][4] = {};
    product_64<T, D>(
        s, [&](int kk, uint32_t(&f)[4]) { f[0] = qf[kk][0], f[1] = qf[kk][1], f[2] = qf[kk][2], f[3] = qf[kk][3]; },
        ks, lane);

    // Every score of an interior tile is visible: no mask, every key < S, and (causal) every key
    // at or before the tile's first query. Only the edges pay for score_of's checks.
    const bool interior = !p.mask && j0 + kTile <= p.S && (!p.causal || j0 + kTile - 1 <= q0);
    online_softmax_step(p, n, row, j0, interior, t, s, m, l, o);
    uint32_t pf[kSteps][4];
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) Ops::acc_to_a(pf[kk], &s[kk * Ops::kK / 8]);

    cp_async_wait<0>();
    __syncthreads();  // V has landed, and every warp is done reading K
    if (j0 + kTile < kv_end)
      load_tile<T, D>(ks, k + (n * p.S + j0 + kTile) * p.E, p.E, p.S - j0 - kTile, p.E, vec, tid);
    cp_async_commit();
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) product_d<T, D>(o, pf[kk], vs, kk, lane);
    cp_async_wait<0>();
    __syncthreads();  // the next K has landed, and every warp is done reading V
  }

  store_output_rows(p, n, row, t, o, m, l, out, lse);
}

// ============================== backward ==============================

// KeyWarps warps, 16 keys each: a CTA owns 16 KeyWarps keys, and every query tile it loads serves
// them all. dQ of a query tile (64 x D) is split among the warps as 4 row groups of 16 queries by
// KeyWarps / 4 column groups.
template <class T, int D, int kStages, int KeyWarps>
__global__ void __launch_bounds__(32 * KeyWarps) backward_kernel(Params<T> p, const T* q, const T* k, const T* v,
                                                                 const T* dout, const float* lse, const float* drow,
                                                                 float* dq_acc, T* dk, T* dv, bool vec) {
  using Tl = TcTiles<T, D>;
  using Ops = TcOps<T>;
  constexpr int kSteps = kTile / Ops::kK;  // k steps of P^T dO and dS^T Q (over the tile's 64 queries)
  constexpr int kThreads = 32 * KeyWarps, kKeys = 16 * KeyWarps;
  constexpr int kDqCols = D / (KeyWarps / 4);
  static_assert(KeyWarps % 4 == 0 && kDqCols % 16 == 0, "whole 16-column dQ slices");
  TG_DYNAMIC_SMEM(unsigned char, smem_raw);
  T* ks = reinterpret_cast<T*>(smem_raw);
  T* vs = ks + kKeys * Tl::kPitch;
  T* dst = vs + kKeys * Tl::kPitch;  // dS^T [key][query]
  unsigned char* stages = reinterpret_cast<unsigned char*>(dst + kKeys * Tl::kDsPitch);
  // Stage st: Q and dO of a query tile, its lse (base 2) and D.
  auto qs_of = [&](int st) { return reinterpret_cast<T*>(stages + st * Tl::kBwdStageBytes); };
  auto dos_of = [&](int st) { return qs_of(st) + Tl::kTileElems; };
  auto lse_of = [&](int st) { return reinterpret_cast<float*>(dos_of(st) + Tl::kTileElems); };
  auto d_of = [&](int st) { return lse_of(st) + kTile; };

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int64_t kv_tiles = ceil_div(p.S, kKeys);
  const int64_t n = blockIdx.x / kv_tiles, j0 = (blockIdx.x % kv_tiles) * kKeys;
  const int64_t warp_j0 = j0 + 16 * warp;  // this warp's keys
  const int64_t key[2] = {warp_j0 + g, warp_j0 + g + 8};

  // Starts the copy of query tile q0 into stage st (Q, dO asynchronously; lse and D directly).
  auto load_query_tile = [&](int64_t q0, int st) {
    load_tile<T, D, kThreads>(qs_of(st), q + (n * p.L + q0) * p.E, p.E, p.L - q0, p.E, vec, tid);
    load_tile<T, D, kThreads>(dos_of(st), dout + (n * p.L + q0) * p.Ev, p.Ev, p.L - q0, p.Ev, vec, tid);
    cp_async_commit();
    for (int r = tid; r < kTile; r += kThreads) {
      const bool in = q0 + r < p.L;
      lse_of(st)[r] = in ? lse[n * p.L + q0 + r] * kLog2e : -INFINITY;  // base 2; rows past L: P = 0
      d_of(st)[r] = in ? drow[n * p.L + q0 + r] : 0.f;
    }
  };

  load_tile<T, D, kThreads, kKeys>(ks, k + (n * p.S + j0) * p.E, p.E, p.S - j0, p.E, vec, tid);
  load_tile<T, D, kThreads, kKeys>(vs, v + (n * p.S + j0) * p.Ev, p.Ev, p.S - j0, p.Ev, vec, tid);
  cp_async_commit();

  float dk_acc[Tl::kDTiles][4] = {}, dv_acc[Tl::kDTiles][4] = {};
  const int64_t q_begin = p.causal ? j0 : 0;  // causal: rows i < j0 see none of these keys (j0 % 64 == 0)
  if (q_begin < p.L) load_query_tile(q_begin, 0);
  int st = 0;
  for (int64_t q0 = q_begin; q0 < p.L; q0 += kTile, st = (st + 1) % kStages) {
    cp_async_wait<0>();
    __syncthreads();  // this tile has landed, and every warp is done with the previous one (its stage, dS^T)
    if (kStages == 2 && q0 + kTile < p.L) load_query_tile(q0 + kTile, st ^ 1);
    const T* qs = qs_of(st);
    const T* dos = dos_of(st);
    const float* lse_s = lse_of(st);
    const float* d_s = d_of(st);

    // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys and the tile's 64 queries. The K and V
    // fragments are read per k step, not held across the loop (64 registers at D = 128).
    float st[8][4] = {}, dpt[8][4] = {};
    product_64<T, D>(
        st, [&](int kk, uint32_t(&f)[4]) { Ops::a_rows(f, ks, Tl::kPitch, 16 * warp, Ops::kK * kk, lane); }, qs, lane);
    product_64<T, D>(
        dpt, [&](int kk, uint32_t(&f)[4]) { Ops::a_rows(f, vs, Tl::kPitch, 16 * warp, Ops::kK * kk, lane); }, dos, lane);
    // st <- P~^T, dpt <- dS^T. An interior block of this warp skips the checks.
    const bool interior =
        !p.mask && warp_j0 + 16 <= p.S && q0 + kTile <= p.L && (!p.causal || warp_j0 + 15 <= q0);
    probabilities(p, n, q0, key, interior, lse_s, t, st);
    score_grads(p, n, q0, key, d_s, t, st, dpt);
    // dV += P~^T dO and dK += dS^T Q (k = the tile's queries); dS^T to shared memory for dQ.
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
      uint32_t pa[4], da[4];
      Ops::acc_to_a(pa, &st[kk * Ops::kK / 8]);
      Ops::acc_to_a(da, &dpt[kk * Ops::kK / 8]);
      product_d<T, D>(dv_acc, pa, dos, kk, lane);
      product_d<T, D>(dk_acc, da, qs, kk, lane);
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        Ops::store2(&dst[(16 * warp + g + 8 * h) * Tl::kDsPitch + 8 * nt + 2 * t], dpt[nt][2 * h], dpt[nt][2 * h + 1]);
    __syncthreads();

    // dQ (queries dq_row.. of the tile, columns dq_col..) += dS K over the CTA's keys:
    // A = dS stored [key][query], B = K stored [key][e].
    const int dq_row = 16 * (warp % 4), dq_col = (warp / 4) * kDqCols;
    float dq[kDqCols / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKeys / Ops::kK; ++kk) {
      uint32_t a[4];
      Ops::a_cols(a, dst, Tl::kDsPitch, dq_row, Ops::kK * kk, lane);
      product_d<T, D, kDqCols>(dq, a, ks, kk, lane, dq_col);
    }
    const int64_t dq_rows[2] = {q0 + dq_row + g, q0 + dq_row + g + 8};
    add_query_rows(p, n, dq_rows, dq_col, t, dq, dq_acc);
    if (kStages == 1 && q0 + kTile < p.L) {
      __syncthreads();  // every warp is done with this tile before the next one overwrites it
      load_query_tile(q0 + kTile, 0);
    }
  }
  cp_async_wait<0>();  // when no query tile sees these keys, the K / V copies are still in flight

  store_key_rows(p, n, key, t, dk_acc, dv_acc, dk, dv);
}

// 16-byte copies need rows of whole chunks and aligned bases.
template <class T> bool vector_loads(const Params<T>& p, std::initializer_list<const void*> bases) {
  constexpr int chunk = 16 / int(sizeof(T));
  bool ok = p.E % chunk == 0 && p.Ev % chunk == 0;
  for (const void* b : bases) ok = ok && aligned_to(b, 16);
  return ok;
}

// Key tiles of 128 (8 warps) where a CTA may have the shared memory (bfloat16 on sm_80 and
// sm_90; float32 up to D = 64), else 64 (4 warps); two query stages where they fit too.
// TAPEGRAD_CUDA_ATTENTION_KEY_TILE=64 and TAPEGRAD_CUDA_ATTENTION_STAGES=1 force the smaller choices
// (to time and test them).
struct BwdShape {
  int key_warps, stages;
};
template <class T, int D> BwdShape backward_shape(int device) {
  const int smem = device_limits(device).smem_per_block;
  const bool wide = !kernel_config().cuda_attention_key_tile_64 && smem >= TcTiles<T, D>::bwd_smem_bytes(8, 1);
  const int key_warps = wide ? 8 : 4;
  const bool two = !kernel_config().cuda_attention_one_stage && smem >= TcTiles<T, D>::bwd_smem_bytes(key_warps, 2);
  return {key_warps, two ? 2 : 1};
}

}  // namespace

template <class T>
bool tc_fits(const Params<T>& p, int device) {
  const int smem = device_limits(device).smem_per_block;
  bool fits = false;
  with_head_dim(padded_head_dim(p.E, p.Ev), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    fits = smem >= TcTiles<T, D>::kFwdSmemBytes && smem >= TcTiles<T, D>::bwd_smem_bytes(4, 1);
  });
  return fits;
}

template <class T>
void forward_tc(const Params<T>& p, const T* q, const T* k, const T* v, T* out, float* lse, int device,
                cudaStream_t s) {
  const bool vec = vector_loads(p, {q, k, v});
  with_head_dim(padded_head_dim(p.E, p.Ev), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    const int64_t blocks = p.N * ceil_div(p.L, kTile);
    TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many rows");
    constexpr int bytes = TcTiles<T, D>::kFwdSmemBytes;
    auto kernel = forward_kernel<T, D>;
    allow_dynamic_smem(kernel, bytes, device, "attention forward (tensor cores): cudaFuncSetAttribute");
    launch_kernel(kernel, static_cast<unsigned>(blocks), kTcThreads, bytes, s, p, q, k, v, out, lse, vec);
  });
  check(cudaGetLastError(), "attention forward (tensor cores) kernel launch");
}

template <class T>
void backward_tc(const Params<T>& p, const T* q, const T* k, const T* v, const T* dout, const float* lse,
                 const float* drow, float* dq_acc, T* dk, T* dv, int device, cudaStream_t s) {
  const bool vec = vector_loads(p, {q, k, v, dout});
  with_head_dim(padded_head_dim(p.E, p.Ev), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    const BwdShape shape = backward_shape<T, D>(device);
    auto kernel = shape.key_warps == 8 ? (shape.stages == 2 ? backward_kernel<T, D, 2, 8> : backward_kernel<T, D, 1, 8>)
                                       : (shape.stages == 2 ? backward_kernel<T, D, 2, 4> : backward_kernel<T, D, 1, 4>);
    const int bytes = TcTiles<T, D>::bwd_smem_bytes(shape.key_warps, shape.stages);
    const int64_t blocks = p.N * ceil_div(p.S, 16 * shape.key_warps);
    TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many keys");
    if (blocks == 0) return;
    allow_dynamic_smem(kernel, bytes, device, "attention backward (tensor cores): cudaFuncSetAttribute");
    launch_kernel(kernel, static_cast<unsigned>(blocks), 32 * shape.key_warps, bytes, s, p, q, k, v, dout, lse, drow,
                  dq_acc, dk, dv, vec);
  });
  check(cudaGetLastError(), "attention backward (tensor cores) kernel launch");
}

#define TG_ATTENTION_TC(T)                                                                                           \
  template bool tc_fits<T>(const Params<T>&, int);                                                                   \
  template void forward_tc<T>(const Params<T>&, const T*, const T*, const T*, T*, float*, int, cudaStream_t);       \
  template void backward_tc<T>(const Params<T>&, const T*, const T*, const T*, const T*, const float*, const float*, \
                               float*, T*, T*, int, cudaStream_t);
TG_ATTENTION_TC(__nv_bfloat16)
TG_ATTENTION_TC(float)
#undef TG_ATTENTION_TC

}  // namespace tg::cuda::attention
