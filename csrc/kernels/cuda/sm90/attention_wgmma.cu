// Fused attention on Hopper, bfloat16: warpgroup MMA (wgmma) fed by the TMA. The math, masks,
// dropout stream and results are those of attention.cu's header (forward: online softmax, O and
// lse; backward: dV = P~^T dO, dS = P (dP~ - D), dK = scale dS^T Q, dQ = scale dS K); what
// changes from attention_tc.cu is who moves the data and how big the products are. Both kernels
// are three warpgroups (384 threads): warpgroup 0 produces (one thread issues the TMA copies; the
// others give their registers to the consumers), warpgroups 1 and 2 consume, 64 rows each.
//
// Forward: one CTA per (128-query block, problem n). Q arrives once; K and V tiles of 128 keys
// stream through a ring of Stages, each with its own mbarrier (k_full, v_full), so the scores
// start before V lands, and `empty` when the 8 consumer warps are done with the stage. Per tile
// and consumer warpgroup (64 queries):
//     S = Q K^T                          wgmma m64n128k16 x D / 16; Q and K k-major in shared memory
//     online softmax                     attention_common.cuh's softmax_tile and rescale_row on
//                                        the accumulators (the mma.sync layout per warp)
//     O += P~ V                          wgmma m64nDk16 x 8, A = P~ from registers (the
//                                        accumulators converted to bfloat16 in place), V n-major
//   pipelined by one tile: tile j + 1's S is issued before tile j's P~ V, and its softmax runs
//   while P~ V is on the tensor cores; only O's rescale waits for it.
//
// Backward: one CTA per (128-key block, problem n).
//   producer  warp 0 of warpgroup 0. K and V of the block arrive once (TMA, mbarrier kv_full);
//             then per query tile of 64, into a ring of Stages: Q and dO by TMA, lse (base 2) and
//             D by the warp's lanes. Stage s is `full` when all 32 lanes arrived and the copy
//             engine's bytes landed, `empty` when the 8 consumer warps are done with it.
//   consumers warpgroups 1 and 2, 64 keys each. Per query tile:
//     S^T  = K Q^T,  dP^T = V dO^T      wgmma m64n64k16 x D / 16 each; A = K (V) rows, B = Q (dO),
//                                       both k-major in shared memory
//     P~^T, dS^T in registers           attention_common.cuh's probabilities (while dP^T is still
//                                       computing) and score_grads, on the wgmma accumulators
//                                       (the mma.sync layout per warp)
//     dV += P~^T dO,  dK += dS^T Q      wgmma m64nDk16 x 4, A from registers (the accumulators,
//                                       converted to bfloat16 in place), B = dO (Q) n-major
//     dS^T -> shared memory             as the m-major A of dQ = dS K (buffer it % 2)
//     dQ (64 x D) = dS K                after a named barrier (one per dS^T buffer) says the other half is in:
//                                       D = 128, each warpgroup 64 of the columns; D = 64, the
//                                       tiles alternate, warpgroup it % 2 taking them all.
//                                       A = dS (m-major), B = K (n-major: the same shared copy
//                                       the first product read k-major); float atomics into dq_acc
//   dK, dV stay in registers (D / 2 floats each a thread) until the block's last query tile.
// Shared-memory layouts are the TMA's 128-byte swizzle (hopper_instructions.cuh,
// matrix_descriptor): a 64-column box of R rows is R rows of 128 bytes in 8-row groups of 1024.
// The backward's (the forward's Q, K and V boxes are read as its K, V and dO):
//   K, V: D / 64 boxes of 128 keys (16 KB apart). Read k-major (rows = keys, k = head dim):
//         start + box + 8192 per warpgroup + 32 per k16 step; read n-major for dQ (k = keys,
//         n = head dim): start + 2048 per k16 step, LBO 16 KB to the next 64 columns.
//   Q, dO: D / 64 boxes of 64 queries (8 KB apart), read the same two ways.
//   dS^T: key r, query q at (r / 8) 1024 + (r % 8) 128 + 2q, swizzled: the m-major layout of a
//         64-query A (k = keys, 2048 per k16 step).
// Why these should beat attention_tc.cu: the tensor cores read every shared operand straight
// from shared memory (no ldmatrix, no fragment registers), one instruction does 4 to 8 times the
// work of an mma.sync, and the copies take no threads. The forward overlaps a tile's softmax with the
// previous tile's P V as FlashAttention-3 (Shah et al., 2024) does; FlashAttention-3 also
// schedules the two warpgroups' softmaxes against each other's products explicitly, and the
// backward's tiles against each other, which these kernels leave to the warpgroups' natural
// interleaving.
#include "kernels/cuda/sm90/attention_wgmma.h"

#include <cuda.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/sm90/hopper_instructions.cuh"
#include "kernels/cuda/sm90/tensor_maps.h"

namespace tg::cuda::sm90 {

namespace {

using bf16 = __nv_bfloat16;
using namespace attention;
using Registers = RegisterSplit<24, 240>;  // both kernels: the producer keeps 24, the consumers take 240

// Accumulators kept as n8 tiles (float[DT][4], attention_common.cuh's layout) are, flat, the
// wgmma's d registers in order.
template <int DT> __device__ __forceinline__ float (&flat(float (&acc)[DT][4]))[4 * DT] {
  return reinterpret_cast<float(&)[4 * DT]>(acc);
}
// Tiles 2kk and 2kk + 1 of a wgmma accumulator (16 columns) as the rs A operand of k step kk.
template <int DT> __device__ __forceinline__ void a_operand(uint32_t (&a)[4], const float (&acc)[DT][4], int kk) {
  a[0] = pack_bf16x2(acc[2 * kk][0], acc[2 * kk][1]), a[1] = pack_bf16x2(acc[2 * kk][2], acc[2 * kk][3]);
  a[2] = pack_bf16x2(acc[2 * kk + 1][0], acc[2 * kk + 1][1]), a[3] = pack_bf16x2(acc[2 * kk + 1][2], acc[2 * kk + 1][3]);
}

// acc (64 x N) = A B^T over the head dim D, both operands k-major in 64-column boxes: A's 64 rows
// at `a` (its boxes a_box bytes apart), B's N rows at `b` (b_box apart). Issued, not waited for.
template <int D, int N>
__device__ __forceinline__ void product_over_head_dim(float (&acc)[N / 2], const uint8_t* a, int a_box,
                                                      const uint8_t* b, int b_box) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const int step = (kk % 4) * 32;  // a k16 step along the 128-byte rows
    Wgmma<N>::template ss<0, 0>(acc, matrix_descriptor(a + (kk / 4) * a_box + step, 16, 1024),
                                matrix_descriptor(b + (kk / 4) * b_box + step, 16, 1024), kk > 0);
  }
}

// ============================== forward ==============================

template <int D> struct FwdLayout {
  static constexpr int kQueries = 128, kKeys = 128, kBoxes = D / 64;
  static constexpr int kStages = D == 64 ? 3 : 2;
  static constexpr int kQBoxBytes = kQueries * 128;      // 128 queries x 64 columns
  static constexpr int kKvBoxBytes = kKeys * 128;        // 128 keys x 64 columns
  static constexpr int kKvBytes = kBoxes * kKvBoxBytes;  // a K (or V) tile
  static constexpr int kConsumerWarps = 8, kThreads = Registers::kThreads;
  // Q, Stages x (K, V), the mbarriers (q_full; k_full, v_full and empty per stage), alignment room.
  static constexpr int kSmemBytes = kBoxes * kQBoxBytes + kStages * 2 * kKvBytes + 8 * (3 * kStages + 1) + 1024;
};

template <int D>
__global__ void __launch_bounds__(Registers::kThreads, 1)
    attention_forward_kernel(const __grid_constant__ CUtensorMap map_q, const __grid_constant__ CUtensorMap map_k,
                             const __grid_constant__ CUtensorMap map_v, const Params<bf16> p, bf16* out, float* lse) {
  using Lay = FwdLayout<D>;
  constexpr int kStages = Lay::kStages, kKeys = Lay::kKeys;
  TG_DYNAMIC_SMEM(uint8_t, smem_raw);
  uint8_t* const qs = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  uint8_t* const kv = qs + Lay::kBoxes * Lay::kQBoxBytes;
  uint64_t* const q_full = reinterpret_cast<uint64_t*>(kv + kStages * 2 * Lay::kKvBytes);
  uint64_t* const k_full = q_full + 1;
  uint64_t* const v_full = k_full + kStages;
  uint64_t* const empty = v_full + kStages;
  auto k_of = [&](int s) { return kv + s * 2 * Lay::kKvBytes; };
  auto v_of = [&](int s) { return k_of(s) + Lay::kKvBytes; };

  const int64_t q_blocks = ceil_div(p.L, Lay::kQueries);
  const int64_t n = blockIdx.x / q_blocks;
  const int64_t q0 = (q_blocks - 1 - blockIdx.x % q_blocks) * Lay::kQueries;  // causal: the longest first
  const int64_t kv_end = p.causal ? min(p.S, q0 + Lay::kQueries) : p.S;
  const int kv_tiles = static_cast<int>(ceil_div(kv_end, kKeys));
  const int warpgroup = threadIdx.x / 128, lane = threadIdx.x % 32;

  if (threadIdx.x == 0) {
    mbarrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&k_full[s], 1);
      mbarrier_init(&v_full[s], 1);
      mbarrier_init(&empty[s], Lay::kConsumerWarps);
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    Registers::producer();
    if (threadIdx.x != 0) return;
    mbarrier_expect_bytes(q_full, Lay::kBoxes * Lay::kQBoxBytes);
    for (int b = 0; b < Lay::kBoxes; ++b)
      tma_load(qs + b * Lay::kQBoxBytes, &map_q, q_full, 64 * b, static_cast<int>(q0), static_cast<int>(n));
    for (int it = 0; it < kv_tiles; ++it) {
      const int s = it % kStages, j0 = it * kKeys;
      mbarrier_wait(&empty[s], ((it / kStages) & 1) ^ 1);
      mbarrier_expect_bytes(&k_full[s], Lay::kKvBytes);  // K and V apart: S = Q K^T starts before V lands
      for (int b = 0; b < Lay::kBoxes; ++b)
        tma_load(k_of(s) + b * Lay::kKvBoxBytes, &map_k, &k_full[s], 64 * b, j0, static_cast<int>(n));
      mbarrier_expect_bytes(&v_full[s], Lay::kKvBytes);
      for (int b = 0; b < Lay::kBoxes; ++b)
        tma_load(v_of(s) + b * Lay::kKvBoxBytes, &map_v, &v_full[s], 64 * b, j0, static_cast<int>(n));
    }
    return;
  }

  Registers::consumers();
  const int wg = warpgroup - 1, warp = (threadIdx.x / 32) % 4, g = lane / 4, t = lane % 4;
  const int64_t q0_wg = q0 + 64 * wg;  // this warpgroup's 64 queries
  const int64_t row[2] = {q0_wg + 16 * warp + g, q0_wg + 16 * warp + g + 8};
  const uint8_t* const q_rows = qs + wg * 64 * 128;
  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (base 2) and sum per row
  mbarrier_wait(q_full, 0);

  // Tile it's S = Q K^T (64 queries x 128 keys, k over the head dim, both k-major) into sc.
  auto issue_scores = [&](int it, float (&sc)[16][4]) {
    mbarrier_wait(&k_full[it % kStages], (it / kStages) & 1);
    wgmma_fence();
    product_over_head_dim<D, kKeys>(flat(sc), q_rows, Lay::kQBoxBytes, k_of(it % kStages), Lay::kKvBoxBytes);
    wgmma_commit();
  };
  // Tile it's softmax on its finished scores: P~ in sc, m and l updated, alpha for o.
  auto softmax_of = [&](int it, float (&sc)[16][4], float (&alpha)[2]) {
    fence_accumulators(flat(sc));
    const int64_t j0 = int64_t(it) * kKeys;
    const bool interior = !p.mask && j0 + kKeys <= p.S && (!p.causal || j0 + kKeys - 1 <= q0_wg);
    softmax_tile(p, n, row, j0, interior, t, sc, m, l, [&](int h, float a) { alpha[h] = a; });
  };

  // O += P~ V for tile it (k = its 128 keys, V read n-major), then, once it is done, the stage
  // goes back to the producer.
  auto issue_output = [&](int it, uint32_t (&pf)[8][4]) {
    mbarrier_wait(&v_full[it % kStages], (it / kStages) & 1);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
      Wgmma<D>::template rs<1>(flat(o), pf[kk],
                               matrix_descriptor(v_of(it % kStages) + kk * 2048, Lay::kKvBoxBytes, 1024));
    wgmma_commit();
  };
  auto finish_output = [&](int it, uint32_t (&pf)[8][4]) {
    wgmma_wait<0>();
    fence_accumulators(flat(o));
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) fence_operands(pf[kk]);
    if (lane == 0) mbarrier_arrive(&empty[it % kStages]);  // this warp is done with the stage's K and V
  };

  // Software pipelined by a tile: while the tensor cores run tile it's O += P~ V, the warpgroup
  // already has tile it + 1's scores and runs its softmax (FlashAttention-3's overlap within a
  // warpgroup); o is rescaled for tile it + 1 only once P~_it V has landed in it. The last tile
  // is peeled off, so every wait retires the same groups on every path.
  if (kv_tiles > 0) {  // (no keys: nothing to wait for; the rows are written as empty)
    float sc[16][4], alpha[2];
    uint32_t pf[8][4];
    issue_scores(0, sc);
    wgmma_wait<0>();
    softmax_of(0, sc, alpha);  // o is still 0: no rescale
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) a_operand(pf[kk], sc, kk);
    for (int it = 0; it + 1 < kv_tiles; ++it) {
      issue_scores(it + 1, sc);  // sc is free: tile it's P~ is in pf
      issue_output(it, pf);
      wgmma_wait<1>();  // the scores (committed first) are in; P~ V may still run
      softmax_of(it + 1, sc, alpha);
      finish_output(it, pf);
      rescale_row(o, 0, alpha[0]), rescale_row(o, 1, alpha[1]);
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) a_operand(pf[kk], sc, kk);
    }
    issue_output(kv_tiles - 1, pf);
    finish_output(kv_tiles - 1, pf);
  }
  store_output_rows(p, n, row, t, o, m, l, out, lse);
}

// ============================== backward ==============================

template <int D> struct BwdLayout {
  static constexpr int kKeys = 128, kQueries = 64, kBoxes = D / 64;
  static constexpr int kStages = D == 64 ? 3 : 2;
  static constexpr int kKvBoxBytes = kKeys * 128;        // 128 keys x 64 columns
  static constexpr int kKvBytes = kBoxes * kKvBoxBytes;  // K (and V)
  static constexpr int kTileBoxBytes = kQueries * 128;   // 64 queries x 64 columns
  static constexpr int kTileBytes = kBoxes * kTileBoxBytes;  // Q (and dO) of a query tile
  static constexpr int kDsBytes = kKeys * kQueries * 2;      // dS^T of a tile
  static constexpr int kConsumerWarps = 8, kThreads = Registers::kThreads;
  // K, V, two dS^T buffers, Stages x (Q, dO), Stages x (lse, D), the mbarriers (full and empty
  // per stage, kv_full), and room to align the start to 1024 bytes (the swizzle's period).
  static constexpr int kSmemBytes =
      2 * kKvBytes + 2 * kDsBytes + kStages * (2 * kTileBytes + 2 * kQueries * 4) + 8 * (2 * kStages + 1) + 1024;
};

template <int D>
__global__ void __launch_bounds__(Registers::kThreads, 1)
    attention_backward_kernel(const __grid_constant__ CUtensorMap map_q, const __grid_constant__ CUtensorMap map_k,
                              const __grid_constant__ CUtensorMap map_v, const __grid_constant__ CUtensorMap map_do,
                              const Params<bf16> p, const float* lse, const float* drow, float* dq_acc, bf16* dk,
                              bf16* dv) {
  using Lay = BwdLayout<D>;
  constexpr int kStages = Lay::kStages, kQueries = Lay::kQueries;
  TG_DYNAMIC_SMEM(uint8_t, smem_raw);
  uint8_t* const ks = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  uint8_t* const vs = ks + Lay::kKvBytes;
  uint8_t* const ds = vs + Lay::kKvBytes;  // two buffers
  uint8_t* const tiles = ds + 2 * Lay::kDsBytes;
  float* const rows = reinterpret_cast<float*>(tiles + kStages * 2 * Lay::kTileBytes);
  uint64_t* const full = reinterpret_cast<uint64_t*>(rows + kStages * 2 * kQueries);
  uint64_t* const empty = full + kStages;
  uint64_t* const kv_full = empty + kStages;
  auto q_of = [&](int s) { return tiles + s * 2 * Lay::kTileBytes; };
  auto do_of = [&](int s) { return q_of(s) + Lay::kTileBytes; };
  auto lse_of = [&](int s) { return rows + s * 2 * kQueries; };
  auto d_of = [&](int s) { return lse_of(s) + kQueries; };

  const int64_t key_blocks = ceil_div(p.S, Lay::kKeys);
  const int64_t n = blockIdx.x / key_blocks, j0 = (blockIdx.x % key_blocks) * Lay::kKeys;
  const int64_t q_begin = p.causal ? j0 : 0;  // causal: rows i < j0 see none of these keys (j0 % 64 == 0)
  const int q_tiles = q_begin < p.L ? static_cast<int>(ceil_div(p.L - q_begin, kQueries)) : 0;
  const int warpgroup = threadIdx.x / 128, lane = threadIdx.x % 32;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 32);                    // the producer warp's lanes (and the bytes)
      mbarrier_init(&empty[s], Lay::kConsumerWarps);  // lane 0 of each consumer warp
    }
    mbarrier_init(kv_full, 1);
    fence_mbarrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    Registers::producer();
    if (threadIdx.x >= 32) return;
    if (lane == 0) {
      mbarrier_expect_bytes(kv_full, 2 * Lay::kKvBytes);
      for (int b = 0; b < Lay::kBoxes; ++b) {
        tma_load(ks + b * Lay::kKvBoxBytes, &map_k, kv_full, 64 * b, static_cast<int>(j0), static_cast<int>(n));
        tma_load(vs + b * Lay::kKvBoxBytes, &map_v, kv_full, 64 * b, static_cast<int>(j0), static_cast<int>(n));
      }
    }
    for (int it = 0; it < q_tiles; ++it) {
      const int s = it % kStages;
      const int64_t q0 = q_begin + int64_t(it) * kQueries;
      mbarrier_wait(&empty[s], ((it / kStages) & 1) ^ 1);
      for (int r = lane; r < kQueries; r += 32) {
        const bool in = q0 + r < p.L;
        lse_of(s)[r] = in ? lse[n * p.L + q0 + r] * kLog2e : -INFINITY;  // rows past L: P = 0
        d_of(s)[r] = in ? drow[n * p.L + q0 + r] : 0.f;
      }
      if (lane == 0) {  // its arrival announces the bytes; the copies follow
        mbarrier_expect_bytes(&full[s], 2 * Lay::kTileBytes);
        for (int b = 0; b < Lay::kBoxes; ++b) {
          tma_load(q_of(s) + b * Lay::kTileBoxBytes, &map_q, &full[s], 64 * b, static_cast<int>(q0), static_cast<int>(n));
          tma_load(do_of(s) + b * Lay::kTileBoxBytes, &map_do, &full[s], 64 * b, static_cast<int>(q0),
                   static_cast<int>(n));
        }
      } else {
        mbarrier_arrive(&full[s]);
      }
    }
    return;
  }

  Registers::consumers();
  const int wg = warpgroup - 1, warp = (threadIdx.x / 32) % 4, g = lane / 4, t = lane % 4;
  const int64_t warp_j0 = j0 + 64 * wg + 16 * warp;  // this warp's 16 keys
  const int64_t key[2] = {warp_j0 + g, warp_j0 + g + 8};
  const uint8_t* const k_rows = ks + wg * 64 * 128;  // this warpgroup's 64 keys in box 0
  const uint8_t* const v_rows = vs + wg * 64 * 128;
  // dQ of a tile: at D = 128 each warpgroup takes 64 of its columns (one box of K); at D = 64 the
  // tiles alternate, warpgroup it % 2 taking all of them (a 32-column half would start K's
  // n-major reads in the middle of a swizzle row).
  constexpr bool kDqColumnHalves = D == 128;
  constexpr int kDqCols = kDqColumnHalves ? D / 2 : D;
  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
  mbarrier_wait(kv_full, 0);

  for (int it = 0; it < q_tiles; ++it) {
    const int s = it % kStages;
    const int64_t q0 = q_begin + int64_t(it) * kQueries;
    mbarrier_wait(&full[s], (it / kStages) & 1);
    const uint8_t* const qs = q_of(s);
    const uint8_t* const dos = do_of(s);

    // S^T = K Q^T and dP^T = V dO^T (64 keys x 64 queries), k over the head dim.
    float st[8][4], dpt[8][4];
    wgmma_fence();
    product_over_head_dim<D, kQueries>(flat(st), k_rows, Lay::kKvBoxBytes, qs, Lay::kTileBoxBytes);
    wgmma_commit();
    product_over_head_dim<D, kQueries>(flat(dpt), v_rows, Lay::kKvBoxBytes, dos, Lay::kTileBoxBytes);
    wgmma_commit();
    // P^T while dP^T is still on the tensor cores.
    wgmma_wait<1>();
    fence_accumulators(flat(st));
    const bool interior =
        !p.mask && warp_j0 + 16 <= p.S && q0 + kQueries <= p.L && (!p.causal || warp_j0 + 15 <= q0);
    probabilities(p, n, q0, key, interior, lse_of(s), t, st);
    wgmma_wait<0>();
    fence_accumulators(flat(dpt));
    score_grads(p, n, q0, key, d_of(s), t, st, dpt);

    // P~^T and dS^T as register A operands: k step kk (queries 16kk..) is accumulator tiles 2kk, 2kk + 1.
    uint32_t pa[4][4], da[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) a_operand(pa[kk], st, kk), a_operand(da[kk], dpt, kk);
    // dS^T to shared memory for dQ: this thread's keys r (of the CTA's 128), queries 8nt + 2t, +1.
    uint8_t* const dsb = ds + (it % 2) * Lay::kDsBytes;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t r = 64 * wg + 16 * warp + g + 8 * h, at = (r / 8) * 1024 + (r % 8) * 128 + (8 * nt + 2 * t) * 2;
        *reinterpret_cast<uint32_t*>(dsb + (at ^ (((at >> 7) & 7) << 4))) = da[nt / 2][(nt % 2) * 2 + h];
      }
    fence_async_shared();

    // dV += P~^T dO, dK += dS^T Q: k = the tile's 64 queries, B read n-major.
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) Wgmma<D>::template rs<1>(flat(dv_acc), pa[kk], matrix_descriptor(dos + kk * 2048, Lay::kTileBoxBytes, 1024));
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) Wgmma<D>::template rs<1>(flat(dk_acc), da[kk], matrix_descriptor(qs + kk * 2048, Lay::kTileBoxBytes, 1024));
    wgmma_commit();
    // One named barrier per dS^T buffer. At D = 64 the warpgroup that only arrives goes on without
    // waiting; with a single id its next tile's bar.sync could complete against its own earlier
    // arrival (a barrier counts arrivals, not whose or which tile's) and read the other half of
    // dS^T before it is written. With two, its next use of this id comes after a bar.sync on the
    // other, which needs the partner done with this tile.
    const int ds_barrier = 1 + it % 2;
    if (kDqColumnHalves || it % 2 == wg) {
      // dQ (64 queries x its columns) += dS K over the CTA's 128 keys, once both halves of dS^T are in.
      named_barrier_sync(ds_barrier, 256);
      const int col0 = kDqColumnHalves ? 64 * wg : 0;
      float dq[kDqCols / 8][4];
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < Lay::kKeys / 16; ++kk)
        Wgmma<kDqCols>::template ss<1, 1>(flat(dq), matrix_descriptor(dsb + kk * 2048, 8192, 1024),
                                          matrix_descriptor(ks + (col0 / 64) * Lay::kKvBoxBytes + kk * 2048,
                                                            Lay::kKvBoxBytes, 1024),
                                          kk > 0);
      wgmma_commit();
      wgmma_wait<0>();
      fence_accumulators(flat(dq));
      const int64_t rows[2] = {q0 + 16 * warp + g, q0 + 16 * warp + g + 8};
      add_query_rows(p, n, rows, col0, t, dq, dq_acc);
    } else {
      named_barrier_arrive(ds_barrier, 256);
      wgmma_wait<0>();
    }
    fence_accumulators(flat(dv_acc));
    fence_accumulators(flat(dk_acc));
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) fence_operands(pa[kk]), fence_operands(da[kk]);
    if (lane == 0) mbarrier_arrive(&empty[s]);  // this warp is done with the stage's Q and dO
  }

  store_key_rows(p, n, key, t, dk_acc, dv_acc, dk, dv);
}

// What both launchers check: compute capability 9.0, a padded head dim of 64 or 128, and operands
// the TMA can read (E, Ev multiples of 8; 16-byte aligned bases).
bool applies(const Params<bf16>& p, std::initializer_list<const void*> bases, int device) {
  bool readable = p.E % 8 == 0 && p.Ev % 8 == 0;
  for (const void* base : bases) readable = readable && aligned_to(base, 16);
  return padded_head_dim(p.E, p.Ev) >= 64 && readable && p.L < (int64_t(1) << 31) && p.S < (int64_t(1) << 31) &&
         is_sm90(device);
}

// One of q, k, v, dout (N problems of rows x width, row-major) for the TMA, in boxes of 64
// columns x box_rows.
CUtensorMap problem_map(const Params<bf16>& p, const bf16* x, int64_t width, int64_t rows, int box_rows,
                        const char* who) {
  return bf16_tensor_map(x, width, rows, width, p.N, rows * width, box_rows, who);
}

// Starts kernel_of(dim), the kernel for the padded head dim (64 or 128), on `blocks` CTAs with
// Layout<D>'s threads and shared memory; `what` names it in errors.
template <template <int> class Layout, class KernelOf, class... Args>
void launch_for_head_dim(const Params<bf16>& p, int64_t blocks, int device, cudaStream_t stream, const char* what,
                         KernelOf kernel_of, const Args&... args) {
  with_head_dim(padded_head_dim(p.E, p.Ev), [&](auto dim) {
    constexpr int kD = decltype(dim)::value;
    if constexpr (kD >= 64) {
      auto kernel = kernel_of(dim);
      allow_dynamic_smem(kernel, Layout<kD>::kSmemBytes, device, what);
      launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(Layout<kD>::kThreads), Layout<kD>::kSmemBytes,
                    stream, args...);
    }
  });
  check(cudaGetLastError(), what);
}

}  // namespace

bool attention_forward_wgmma(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse,
                             int device, cudaStream_t stream) {
  if (!applies(p, {q, k, v}, device)) return false;
  const int64_t blocks = p.N * ceil_div(p.L, 128);
  TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many rows");
  if (blocks == 0) return true;
  constexpr const char* kWho = "attention forward (wgmma)";
  launch_for_head_dim<FwdLayout>(
      p, blocks, device, stream, kWho, [](auto dim) { return attention_forward_kernel<decltype(dim)::value>; },
      problem_map(p, q, p.E, p.L, 128, kWho), problem_map(p, k, p.E, p.S, 128, kWho),
      problem_map(p, v, p.Ev, p.S, 128, kWho), p, out, lse);
  return true;
}

bool attention_backward_wgmma(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                              const float* lse, const float* drow, float* dq_acc, bf16* dk, bf16* dv, int device,
                              cudaStream_t stream) {
  if (!applies(p, {q, k, v, dout}, device)) return false;
  const int64_t blocks = p.N * ceil_div(p.S, 128);
  TG_CHECK(blocks < (int64_t(1) << 31), ValueError, "scaled_dot_product_attention: too many keys");
  if (blocks == 0) return true;
  constexpr const char* kWho = "attention backward (wgmma)";
  launch_for_head_dim<BwdLayout>(
      p, blocks, device, stream, kWho, [](auto dim) { return attention_backward_kernel<decltype(dim)::value>; },
      problem_map(p, q, p.E, p.L, 64, kWho), problem_map(p, k, p.E, p.S, 128, kWho),
      problem_map(p, v, p.Ev, p.S, 128, kWho), problem_map(p, dout, p.Ev, p.L, 64, kWho), p, lse, drow, dq_acc, dk,
      dv);
  return true;
}

}  // namespace tg::cuda::sm90
