// Fused attention backward on Hopper, bfloat16: warpgroup MMA (wgmma) fed by the TMA. The math,
// masks, dropout stream and results are those of attention.cu's header (dV = P~^T dO,
// dS = P (dP~ - D), dK = scale dS^T Q, dQ = scale dS K); what changes from attention_tc.cu's
// backward is who moves the data and how big the products are.
//
// One CTA per (128-key block, problem n), three warpgroups (384 threads):
//   producer  warp 0 of warpgroup 0. K and V of the block arrive once (TMA, mbarrier kv_full);
//             then per query tile of 64, into a ring of Stages: Q and dO by TMA, lse (base 2) and
//             D by the warp's lanes. Stage s is `full` when all 32 lanes arrived and the copy
//             engine's bytes landed, `empty` when the 8 consumer warps are done with it.
//   consumers warpgroups 1 and 2, 64 keys each. Per query tile:
//     S^T  = K Q^T,  dP^T = V dO^T      wgmma m64n64k16 x D / 16 each; A = K (V) rows, B = Q (dO),
//                                       both k-major in shared memory
//     P~^T, dS^T in registers           attention_common.cuh's probabilities_and_score_grads, on
//                                       the wgmma accumulators (the mma.sync layout per warp)
//     dV += P~^T dO,  dK += dS^T Q      wgmma m64nDk16 x 4, A from registers (the accumulators,
//                                       converted to bfloat16 in place), B = dO (Q) n-major
//     dS^T -> shared memory             as the m-major A of dQ = dS K (buffer it % 2)
//     dQ (64 x D) = dS K                after a named barrier says the other half of dS^T is in:
//                                       D = 128, each warpgroup 64 of the columns; D = 64, the
//                                       tiles alternate, warpgroup it % 2 taking them all.
//                                       A = dS (m-major), B = K (n-major: the same shared copy
//                                       the first product read k-major); float atomics into dq_acc
//   dK, dV stay in registers (D / 2 floats each a thread) until the block's last query tile.
// Shared-memory layouts are the TMA's 128-byte swizzle (hopper_instructions.cuh,
// matrix_descriptor): a 64-column box of R rows is R rows of 128 bytes in 8-row groups of 1024.
//   K, V: D / 64 boxes of 128 keys (16 KB apart). Read k-major (rows = keys, k = head dim):
//         start + box + 8192 per warpgroup + 32 per k16 step; read n-major for dQ (k = keys,
//         n = head dim): start + 2048 per k16 step, LBO 16 KB to the next 64 columns.
//   Q, dO: D / 64 boxes of 64 queries (8 KB apart), read the same two ways.
//   dS^T: key r, query q at (r / 8) 1024 + (r % 8) 128 + 2q, swizzled: the m-major layout of a
//         64-query A (k = keys, 2048 per k16 step).
// Why this is faster than attention_tc.cu's backward (FlashAttention-3, Shah et al. 2024, goes
// further): the operands of every product are read by the tensor cores straight from shared
// memory (no ldmatrix, no fragment registers), the products are 4 to 8 times larger per
// instruction, and the copies need no threads.
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
using attention::Params;

template <int D> struct BwdLayout {
  static constexpr int kKeys = 128, kQueries = 64, kBoxes = D / 64;
  static constexpr int kStages = D == 64 ? 3 : 2;
  static constexpr int kKvBoxBytes = kKeys * 128;        // 128 keys x 64 columns
  static constexpr int kKvBytes = kBoxes * kKvBoxBytes;  // K (and V)
  static constexpr int kTileBoxBytes = kQueries * 128;   // 64 queries x 64 columns
  static constexpr int kTileBytes = kBoxes * kTileBoxBytes;  // Q (and dO) of a query tile
  static constexpr int kDsBytes = kKeys * kQueries * 2;      // dS^T of a tile
  static constexpr int kConsumerWarps = 8, kThreads = 384;
  // K, V, two dS^T buffers, Stages x (Q, dO), Stages x (lse, D), the mbarriers (full and empty
  // per stage, kv_full), and room to align the start to 1024 bytes (the swizzle's period).
  static constexpr int kSmemBytes =
      2 * kKvBytes + 2 * kDsBytes + kStages * (2 * kTileBytes + 2 * kQueries * 4) + 8 * (2 * kStages + 1) + 1024;
};

template <int D>
__global__ void __launch_bounds__(384, 1)
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
    setmaxnreg_dec<24>();
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
        lse_of(s)[r] = in ? lse[n * p.L + q0 + r] * attention::kLog2e : -INFINITY;  // rows past L: P = 0
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

  setmaxnreg_inc<240>();
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
  float dk_acc[D / 2], dv_acc[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dk_acc[i] = dv_acc[i] = 0.f;
  mbarrier_wait(kv_full, 0);

  for (int it = 0; it < q_tiles; ++it) {
    const int s = it % kStages;
    const int64_t q0 = q_begin + int64_t(it) * kQueries;
    mbarrier_wait(&full[s], (it / kStages) & 1);
    const uint8_t* const qs = q_of(s);
    const uint8_t* const dos = do_of(s);

    // S^T = K Q^T and dP^T = V dO^T (64 keys x 64 queries), k over the head dim.
    float st[8][4], dpt[8][4];
    float(&st_acc)[32] = reinterpret_cast<float(&)[32]>(st);
    float(&dpt_acc)[32] = reinterpret_cast<float(&)[32]>(dpt);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int at = (kk / 4) * Lay::kKvBoxBytes + (kk % 4) * 32, q_at = (kk / 4) * Lay::kTileBoxBytes + (kk % 4) * 32;
      Wgmma<64>::ss<0, 0>(st_acc, matrix_descriptor(k_rows + at, 16, 1024), matrix_descriptor(qs + q_at, 16, 1024),
                          kk > 0);
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int at = (kk / 4) * Lay::kKvBoxBytes + (kk % 4) * 32, q_at = (kk / 4) * Lay::kTileBoxBytes + (kk % 4) * 32;
      Wgmma<64>::ss<0, 0>(dpt_acc, matrix_descriptor(v_rows + at, 16, 1024), matrix_descriptor(dos + q_at, 16, 1024),
                          kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators(st_acc);
    fence_accumulators(dpt_acc);

    const bool interior =
        !p.mask && warp_j0 + 16 <= p.S && q0 + kQueries <= p.L && (!p.causal || warp_j0 + 15 <= q0);
    attention::probabilities_and_score_grads(p, n, q0, key, interior, lse_of(s), d_of(s), t, st, dpt);

    // P~^T and dS^T as register A operands: k step kk (queries 16kk..) is accumulator tiles 2kk, 2kk + 1.
    uint32_t pa[4][4], da[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      pa[kk][0] = pack_bf16x2(st[2 * kk][0], st[2 * kk][1]), pa[kk][1] = pack_bf16x2(st[2 * kk][2], st[2 * kk][3]);
      pa[kk][2] = pack_bf16x2(st[2 * kk + 1][0], st[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16x2(st[2 * kk + 1][2], st[2 * kk + 1][3]);
      da[kk][0] = pack_bf16x2(dpt[2 * kk][0], dpt[2 * kk][1]), da[kk][1] = pack_bf16x2(dpt[2 * kk][2], dpt[2 * kk][3]);
      da[kk][2] = pack_bf16x2(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]);
      da[kk][3] = pack_bf16x2(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3]);
    }
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
    for (int kk = 0; kk < 4; ++kk) Wgmma<D>::template rs<1>(dv_acc, pa[kk], matrix_descriptor(dos + kk * 2048, Lay::kTileBoxBytes, 1024));
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) Wgmma<D>::template rs<1>(dk_acc, da[kk], matrix_descriptor(qs + kk * 2048, Lay::kTileBoxBytes, 1024));
    wgmma_commit();
    if (kDqColumnHalves || it % 2 == wg) {
      // dQ (64 queries x its columns) += dS K over the CTA's 128 keys, once both halves of dS^T are in.
      named_barrier_sync(1, 256);
      const int col0 = kDqColumnHalves ? 64 * wg : 0;
      float dq[kDqCols / 2];
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < Lay::kKeys / 16; ++kk)
        Wgmma<kDqCols>::template ss<1, 1>(dq, matrix_descriptor(dsb + kk * 2048, 8192, 1024),
                                          matrix_descriptor(ks + (col0 / 64) * Lay::kKvBoxBytes + kk * 2048,
                                                            Lay::kKvBoxBytes, 1024),
                                          kk > 0);
      wgmma_commit();
      wgmma_wait<0>();
      fence_accumulators(dq);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t i = q0 + 16 * warp + g + 8 * h;
        if (i >= p.L) continue;
#pragma unroll
        for (int j = 0; j < kDqCols / 8; ++j)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int col = col0 + 8 * j + 2 * t + c;
            if (col < p.E) atomicAdd(&dq_acc[(n * p.L + i) * p.E + col], p.scale * dq[4 * j + 2 * h + c]);
          }
      }
    } else {
      named_barrier_arrive(1, 256);
      wgmma_wait<0>();
    }
    fence_accumulators(dv_acc);
    fence_accumulators(dk_acc);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) fence_operands(pa[kk]), fence_operands(da[kk]);
    if (lane == 0) mbarrier_arrive(&empty[s]);  // this warp is done with the stage's Q and dO
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t j = key[h];
    if (j >= p.S) continue;
#pragma unroll
    for (int jt = 0; jt < D / 8; ++jt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = 8 * jt + 2 * t + c;
        if (col < p.E) dk[(n * p.S + j) * p.E + col] = __float2bfloat16(p.scale * dk_acc[4 * jt + 2 * h + c]);
        if (col < p.Ev) dv[(n * p.S + j) * p.Ev + col] = __float2bfloat16(dv_acc[4 * jt + 2 * h + c]);
      }
  }
}

}  // namespace

bool attention_backward_wgmma(const Params<bf16>& p, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                              const float* lse, const float* drow, float* dq_acc, bf16* dk, bf16* dv, int device,
                              cudaStream_t stream) {
  const int D = attention::padded_head_dim(p.E, p.Ev);
  bool aligned = p.E % 8 == 0 && p.Ev % 8 == 0;
  for (const void* base : {static_cast<const void*>(q), static_cast<const void*>(k), static_cast<const void*>(v),
                           static_cast<const void*>(dout)})
    aligned = aligned && aligned_to(base, 16);
  if (D < 64 || !aligned || !is_sm90(device)) return false;
  const int64_t blocks = p.N * ceil_div(p.S, 128);
  TG_CHECK(blocks < (int64_t(1) << 31) && p.L < (int64_t(1) << 31) && p.S < (int64_t(1) << 31), ValueError,
           "scaled_dot_product_attention: too many keys");
  if (blocks == 0) return true;
  constexpr const char* kWho = "attention backward (wgmma)";
  const CUtensorMap map_q = bf16_tensor_map(q, p.E, p.L, p.E, p.N, p.L * p.E, 64, kWho);
  const CUtensorMap map_do = bf16_tensor_map(dout, p.Ev, p.L, p.Ev, p.N, p.L * p.Ev, 64, kWho);
  const CUtensorMap map_k = bf16_tensor_map(k, p.E, p.S, p.E, p.N, p.S * p.E, 128, kWho);
  const CUtensorMap map_v = bf16_tensor_map(v, p.Ev, p.S, p.Ev, p.N, p.S * p.Ev, 128, kWho);
  attention::with_head_dim(D, [&](auto dim) {
    constexpr int kD = decltype(dim)::value;
    if constexpr (kD >= 64) {
      auto kernel = attention_backward_kernel<kD>;
      allow_dynamic_smem(kernel, BwdLayout<kD>::kSmemBytes, device, "attention backward (wgmma): cudaFuncSetAttribute");
      launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(BwdLayout<kD>::kThreads),
                    BwdLayout<kD>::kSmemBytes, stream, map_q, map_k, map_v, map_do, p, lse, drow, dq_acc, dk, dv);
    }
  });
  check(cudaGetLastError(), "attention backward (wgmma) kernel launch");
  return true;
}

}  // namespace tg::cuda::sm90
