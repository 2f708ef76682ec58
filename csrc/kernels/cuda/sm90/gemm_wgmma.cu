// Hopper GEMM in bfloat16: warpgroup MMA (wgmma) fed by the tensor memory accelerator (TMA).
// Built for sm_90a only (wgmma and setmaxnreg exist nowhere else); gemm.cu calls it on devices of
// compute capability 9.0. The instructions are hopper_instructions.cuh's wrappers, which the
// emulator also provides: tests/test_cuda_emulated.py runs this kernel without a GPU.
//
//   C_b[m0 : m0 + 128, n0 : n0 + BlockN] (+)= A_b[m0 : m0 + 128, :] @ B_b[:, n0 : n0 + BlockN]
//   float32 accumulation in registers, bfloat16 out.
//
// A CTA is three warpgroups (384 threads) and stays resident, taking tiles in turn (a persistent
// grid of one CTA per multiprocessor), so the loads of its next tile overlap the stores of this one.
//   producer  warpgroup 0: one thread issues the TMA copies of the next k tiles (64 deep) of A and
//             B into a ring of Stages shared-memory stages. Each stage has two mbarriers: `full`
//             (the copy engine has written all its bytes) and `empty` (both consumers have
//             finished reading it).
//   consumers warpgroups 1 and 2, 64 rows of C each: per stage four wgmma.m64nNk16 (k = 16
//             each) read both operands from shared memory through matrix descriptors; the
//             accumulators (N / 2 floats a thread) stay in registers for the whole k loop.
//             A stage is released once the wgmma group after it has been issued and it has
//             completed, so the tensor cores always have the next group queued.
// The producer gives up registers (setmaxnreg.dec to 40), the consumers take them (inc to 232).
//
// Shared-memory layout. Every TMA box is 64 elements (128 bytes) wide in its contiguous
// dimension and written with the 128-byte swizzle: 16-byte chunk c of row r lands at chunk
// c ^ (r % 8) of its 1024-byte group of 8 rows (no bank conflicts for the tensor cores), which
// the descriptor's swizzle mode undoes. In the descriptor's terms (16-byte units, PTX ISA "matrix
// descriptor"):
//   k-major operand (A as (m, k) with k contiguous; B as (n, k)): one box of 64 k x R rows.
//       Rows are 128 bytes; 8-row groups SBO = 1024 bytes apart; a k16 step moves the start 32
//       bytes along the row (the hardware applies the swizzle to the final address).
//   mn-major operand (A with m contiguous; B with n contiguous, the plain row-major B): R / 64
//       boxes of 64 k rows x 64 m/n. Within a box, 8 k rows of 128 bytes make a group, groups
//       SBO = 1024 bytes apart; the next 64 m/n columns are the next box, LBO = 8192 bytes on;
//       a k16 step moves the start 16 rows = 2048 bytes. The wgmma's transpose bit says which.
// Bounds need no code: the TMA fills the parts of a box past the tensor's edge with zeros (they
// add nothing to the sums), and the epilogue stores only the rows and columns inside C.
#include "kernels/cuda/sm90/gemm_wgmma.h"

#include <cuda.h>
#include <cuda_bf16.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_tiles.cuh"
#include "kernels/cuda/sm90/hopper_instructions.cuh"
#include "kernels/cuda/sm90/tensor_maps.h"

namespace tg::cuda::sm90 {

namespace {

using bf16 = __nv_bfloat16;
using Registers = RegisterSplit<40, 232>;  // the producer keeps 40, the consumers take 232

template <int BlockN, int Stages> struct WgmmaConfig {
  static constexpr int kBlockM = 128, kBlockN = BlockN, kBlockK = 64, kStages = Stages;
  static constexpr int kConsumers = 2, kThreads = Registers::kThreads;
  static constexpr int kABytes = kBlockM * kBlockK * 2, kBBytes = kBlockN * kBlockK * 2;
  static constexpr int kStageBytes = kABytes + kBBytes;
  // Stages, the 2 x Stages mbarriers, and room to align the stages to 1024 bytes (the swizzle's
  // period; dynamic shared memory is only 16-byte aligned).
  static constexpr int kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;
  static constexpr int kAccum = kBlockN / 2;  // floats per consumer thread: 64 x BlockN / 128
  static_assert(kBlockN % 64 == 0 && kBlockN <= 256, "whole 64-column boxes, one wgmma wide");
  static std::string name() {
    return "128x" + std::to_string(kBlockN) + " k64 s" + std::to_string(kStages) + " (wgmma, 2 consumers)";
  }
};

// The survivors of a sweep on an H100 at 4096^3 (see the note at wgmma_config_for).
using WgmmaConfigs = std::tuple<WgmmaConfig<256, 4>, WgmmaConfig<128, 6>>;
constexpr int kConfigCount = std::tuple_size_v<WgmmaConfigs>;

// ---- the kernel ----

struct Problem {
  int M, N, K;
  int tiles_m, tiles_n, batch;
  bool a_batched, b_batched;  // else the one matrix serves every batch item (stride 0)
  GemmOutput c;
  bool accumulate;
};

// AK / BK: A (resp. B) is k-contiguous; otherwise m- (resp. n-) contiguous.
template <class Cfg, bool AK, bool BK>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                      const Problem p) {
  constexpr int kStages = Cfg::kStages, kBlockK = Cfg::kBlockK;
  TG_DYNAMIC_SMEM(uint8_t, smem_raw);
  uint8_t* smem = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kStages * Cfg::kStageBytes);
  uint64_t* empty = full + kStages;
  auto stage_a = [&](int s) { return smem + s * Cfg::kStageBytes; };
  auto stage_b = [&](int s) { return smem + s * Cfg::kStageBytes + Cfg::kABytes; };

  const int warpgroup = threadIdx.x / 128, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);                        // the producer's arrive (plus the bytes)
      mbarrier_init(&empty[s], Cfg::kConsumers * 4);     // one arrive per consumer warp
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  const int64_t tiles = int64_t(p.tiles_m) * p.tiles_n, work = tiles * p.batch;
  const int k_tiles = (p.K + kBlockK - 1) / kBlockK;

  if (warpgroup == 0) {
    Registers::producer();
    if (threadIdx.x != 0) return;
    int it = 0;  // k tiles issued so far, over all work items: stage it % S, pass it / S
    for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
      const int bi = static_cast<int>(w / tiles);
      int64_t tm, tn;
      tile_coords(w % tiles, p.tiles_m, p.tiles_n, tm, tn);
      const int m0 = static_cast<int>(tm) * Cfg::kBlockM, n0 = static_cast<int>(tn) * Cfg::kBlockN;
      const int za = p.a_batched ? bi : 0, zb = p.b_batched ? bi : 0;
      for (int kt = 0; kt < k_tiles; ++kt, ++it) {
        const int s = it % kStages, k0 = kt * kBlockK;
        mbarrier_wait(&empty[s], ((it / kStages) & 1) ^ 1);
        mbarrier_expect_bytes(&full[s], Cfg::kStageBytes);
        if constexpr (AK) {
          tma_load(stage_a(s), &map_a, &full[s], k0, m0, za);
        } else {
#pragma unroll
          for (int h = 0; h < Cfg::kBlockM / 64; ++h) tma_load(stage_a(s) + h * 8192, &map_a, &full[s], m0 + 64 * h, k0, za);
        }
        if constexpr (BK) {
          tma_load(stage_b(s), &map_b, &full[s], k0, n0, zb);
        } else {
#pragma unroll
          for (int h = 0; h < Cfg::kBlockN / 64; ++h) tma_load(stage_b(s) + h * 8192, &map_b, &full[s], n0 + 64 * h, k0, zb);
        }
      }
    }
    return;
  }

  Registers::consumers();
  const int consumer = warpgroup - 1, warp_in_group = (threadIdx.x / 32) % 4;
  int it = 0;
  for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
    const int bi = static_cast<int>(w / tiles);
    int64_t tm, tn;
    tile_coords(w % tiles, p.tiles_m, p.tiles_n, tm, tn);
    float acc[Cfg::kAccum];
#pragma unroll
    for (int i = 0; i < Cfg::kAccum; ++i) acc[i] = 0.f;

    for (int kt = 0; kt < k_tiles; ++kt, ++it) {
      const int s = it % kStages;
      mbarrier_wait(&full[s], (it / kStages) & 1);
      fence_accumulators(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBlockK / 16; ++kk) {
        // This consumer's 64 rows of A: rows 64c.. of the k-major box, or the c-th mn-major box.
        const uint64_t da = AK ? matrix_descriptor(stage_a(s) + consumer * 64 * 128 + kk * 32, 16, 1024)
                               : matrix_descriptor(stage_a(s) + consumer * 8192 + kk * 2048, 8192, 1024);
        const uint64_t db = BK ? matrix_descriptor(stage_b(s) + kk * 32, 16, 1024)
                               : matrix_descriptor(stage_b(s) + kk * 2048, 8192, 1024);
        Wgmma<Cfg::kBlockN>::template ss<AK ? 0 : 1, BK ? 0 : 1>(acc, da, db);
      }
      wgmma_commit();
      // The group before this one has finished reading its stage: hand that stage back.
      wgmma_wait<1>();
      fence_accumulators(acc);
      if (kt > 0 && lane == 0) mbarrier_arrive(&empty[(it + kStages - 1) % kStages]);
    }
    wgmma_wait<0>();
    fence_accumulators(acc);
    if (k_tiles > 0 && lane == 0) mbarrier_arrive(&empty[(it + kStages - 1) % kStages]);

    // Accumulator layout of wgmma m64nN: warp w of the group holds rows 16w.. 16w + 15, as
    // N / 8 mma tiles of 16 x 8 (acc[4j .. 4j + 3] the tile at columns 8j..).
    bf16* c_base = static_cast<bf16*>(p.c.p) + bi * p.c.batch;
    const bool pair_store = p.c.ld % 2 == 0 && reinterpret_cast<uintptr_t>(c_base) % 4 == 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = tm * Cfg::kBlockM + consumer * 64 + warp_in_group * 16 + lane / 4 + 8 * h;
      if (row >= p.M) continue;
#pragma unroll
      for (int j = 0; j < Cfg::kBlockN / 8; ++j) {
        const int64_t col = tn * Cfg::kBlockN + 8 * j + 2 * (lane % 4);
        store_two(c_base + row * p.c.ld + col, col, p.N, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1], pair_store,
                  p.accumulate);
      }
    }
  }
}

// ---- host side ----

// An operand the copy engine can read: a stride-1 dimension (k_major says which), the pointer
// 16-byte aligned, the other strides multiples of 8 elements (16 bytes).
bool tma_readable(const void* p, int64_t inner, int64_t outer, int64_t batch_stride, bool& k_major) {
  k_major = inner == 1;
  if (!k_major && outer != 1) return false;
  const int64_t ld = k_major ? outer : inner;
  return aligned_to(p, 16) && ld % 8 == 0 && ld > 0 && batch_stride % 8 == 0;
}

template <class Cfg, bool AK, bool BK>
void launch(const GemmArgs& g, cudaStream_t stream) {
  const bool a_batched = g.batch > 1 && g.a_batch != 0, b_batched = g.batch > 1 && g.b_batch != 0;
  constexpr const char* kWho = "gemm (wgmma)";
  const int64_t a_items = a_batched ? g.batch : 1, b_items = b_batched ? g.batch : 1;
  const CUtensorMap map_a = AK ? bf16_tensor_map(g.A, g.K, g.M, g.a_row, a_items, g.a_batch, Cfg::kBlockM, kWho)
                               : bf16_tensor_map(g.A, g.M, g.K, g.a_col, a_items, g.a_batch, 64, kWho);
  const CUtensorMap map_b = BK ? bf16_tensor_map(g.B, g.K, g.N, g.b_col, b_items, g.b_batch, Cfg::kBlockN, kWho)
                               : bf16_tensor_map(g.B, g.N, g.K, g.b_row, b_items, g.b_batch, 64, kWho);
  Problem p;
  p.M = static_cast<int>(g.M), p.N = static_cast<int>(g.N), p.K = static_cast<int>(g.K);
  p.tiles_m = static_cast<int>(ceil_div(g.M, Cfg::kBlockM)), p.tiles_n = static_cast<int>(ceil_div(g.N, Cfg::kBlockN));
  p.batch = static_cast<int>(g.batch), p.a_batched = a_batched, p.b_batched = b_batched;
  p.c = GemmOutput{g.C, g.c_batch, g.ldc};
  p.accumulate = g.accumulate;
  const int64_t work = int64_t(p.tiles_m) * p.tiles_n * p.batch;
  const int grid = static_cast<int>(std::min<int64_t>(work, device_limits(g.device).multiprocessors));
  auto kernel = wgmma_gemm_kernel<Cfg, AK, BK>;
  allow_dynamic_smem(kernel, Cfg::kSmemBytes, g.device, "gemm (wgmma): cudaFuncSetAttribute");
  launch_kernel(kernel, dim3(grid), dim3(Cfg::kThreads), Cfg::kSmemBytes, stream, map_a, map_b, p);
}

template <int I = 0, class F> void visit_config(int index, F&& f) {
  if constexpr (I < kConfigCount) {
    if (index == I) return f(std::tuple_element_t<I, WgmmaConfigs>{});
    visit_config<I + 1>(index, f);
  }
}

}  // namespace

std::vector<std::string> wgmma_config_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kConfigCount; ++i) visit_config(i, [&](auto cfg) { names.push_back(decltype(cfg)::name()); });
  return names;
}

// 128 x 256 tiles while they still give every multiprocessor one; 128 x 128 for smaller products.
int wgmma_config_for(const GemmArgs& g) {
  const int64_t wide_tiles = g.batch * ceil_div(g.M, 128) * ceil_div(g.N, 256);
  return wide_tiles >= device_limits(g.device).multiprocessors ? 0 : 1;
}

bool wgmma_gemm(const GemmArgs& g, int config, cudaStream_t stream) {
  constexpr int64_t kIntMax = 2147483647;
  if (g.K <= 0 || g.M > kIntMax || g.N > kIntMax || g.K > kIntMax || g.batch > kIntMax) return false;
  // A as (m, k): inner a_col, outer a_row. B as (n, k): inner b_row, outer b_col.
  bool ak = false, bk = false;
  const int64_t a_batch = g.batch > 1 ? g.a_batch : 0, b_batch = g.batch > 1 ? g.b_batch : 0;
  if (!tma_readable(g.A, g.a_col, g.a_row, a_batch, ak) || !tma_readable(g.B, g.b_row, g.b_col, b_batch, bk))
    return false;
  if (!is_sm90(g.device)) return false;
  visit_config(config, [&](auto cfg) {
    using C = decltype(cfg);
    if (ak && bk) launch<C, true, true>(g, stream);
    else if (ak) launch<C, true, false>(g, stream);
    else if (bk) launch<C, false, true>(g, stream);
    else launch<C, false, false>(g, stream);
  });
  return true;
}

}  // namespace tg::cuda::sm90
