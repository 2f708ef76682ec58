// mma_gemm: the tensor-core GEMM kernel through mma.sync, bfloat16 and tf32 (gemm.cu's header
// comment describes it; gemm.cu picks its configuration and launches it).
#pragma once
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_operand.cuh"

namespace tg::cuda {

namespace {

// ============================== tensor-core kernel ==============================

// A tile configuration of mma_gemm: a BlockM x BlockN block of C per CTA; KBytes of k per
// pipeline stage (64: 32 bfloat16 or 16 float), Stages stages, Stages - 1 of them loading while
// one is multiplied; WarpsM x WarpsN warps, each a (BlockM / WarpsM) x (BlockN / WarpsN) tile of
// C as 16 x 8 mma tiles; MinBlocks the CTAs per SM the registers are budgeted for.
// Per k step a wm x wn warp tile reads (wm + wn) x 32 bytes of fragments for 32 wm wn flops
// (bfloat16; half that for tf32): a 64 x 64 tile reads a third less per flop than a 64 x 32 one,
// and with mma.sync on sm_90 the shared-memory bandwidth (ldmatrix reads plus cp.async writes)
// is what runs out first.
template <int BlockM, int BlockN, int KBytes, int Stages, int WarpsM, int WarpsN, int MinBlocks = 1>
struct MmaConfig {
  static constexpr int kBlockM = BlockM, kBlockN = BlockN, kKBytes = KBytes, kStages = Stages;
  static constexpr int kWarpsM = WarpsM, kWarpsN = WarpsN, kMinBlocks = MinBlocks;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kWarpM = kBlockM / kWarpsM, kWarpN = kBlockN / kWarpsN;
  static constexpr int kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;  // mma tiles per warp
  static constexpr int kSteps = kKBytes / 32;                        // k steps (8 words deep) per stage
  static_assert(kWarpM % 16 == 0 && kWarpN % 16 == 0, "warp tiles of whole 16 x 16 fragments");
  static_assert(kKBytes % 64 == 0, "an even number of k steps per stage (the fragment double buffer)");
  static_assert(kStages >= 2, "one stage loading while one is multiplied");
  static std::string name() {
    auto n = [](int v) { return std::to_string(v); };
    return n(kBlockM) + "x" + n(kBlockN) + " k" + n(kKBytes) + "B s" + n(kStages) + " w" + n(kWarpsM) + "x" +
           n(kWarpsN) + " (" + n(kWarpM) + "x" + n(kWarpN) + ") " + n(kMinBlocks) + "/SM";
  }
};

// Shared-memory layout of one operand's stage (o = m or n, O of them; k = KBytes of them):
//   k-contiguous operand: [o][k + 16 bytes]  (rows of KBytes + 16 bytes, an odd multiple of 16:
//                                             the 8 rows of an ldmatrix hit 8 distinct groups of
//                                             4 banks)
//   o-contiguous operand: [k][o + 8 elements] (O a multiple of 64: rows 4 or 8 banks apart, so
//                                             ldmatrix.trans and the tf32 scalar fragment loads
//                                             are conflict-free)
template <class Cfg, class T, bool KContig, int O> struct MmaSmem {
  static constexpr int kChunk = 16 / sizeof(T);                 // elements per 16-byte cp.async
  static constexpr int kK = Cfg::kKBytes / sizeof(T);           // k per stage
  static constexpr int kPitch = KContig ? kK + kChunk : O + 8;  // elements per smem row
  static constexpr int kRows = KContig ? O : kK;
  static constexpr int kElems = kRows * kPitch;
  static constexpr int kPerWord = 4 / sizeof(T);

  // Each thread copies the same 16-byte column `col` of rows row0, row0 + kRowStep, ...: a fixed
  // number of chunks (the loop unrolls) and one source pointer stepped by kRowStep rows.
  static constexpr int kChunksPerRow = (KContig ? kK : O) / kChunk;
  static constexpr int kRowStep = Cfg::kThreads / kChunksPerRow;
  static_assert(Cfg::kThreads % kChunksPerRow == 0 && kRows % kRowStep == 0,
                "tile chunks must divide among the threads");

  // Queue the tile (o0.., k0..) of `base` as 16-byte cp.async chunks; chunks past O or K are zero.
  // The contiguous extent (K or O) is a multiple of kChunk, so each chunk is all in or all out.
  __device__ __forceinline__ static void copy(T* s, const T* base, int64_t ld, int64_t o0, int64_t k0, int64_t Oext,
                                              int64_t K, int tid) {
    const int row0 = tid / kChunksPerRow, col = (tid % kChunksPerRow) * kChunk;
    // Rows run along o for a k-contiguous operand, along k for an o-contiguous one.
    const int64_t o = KContig ? o0 + row0 : o0 + col, k = KContig ? k0 + col : k0 + row0;
    const int64_t rows_left = KContig ? Oext - o : K - k;  // row0 + r * kRowStep is in iff r * kRowStep < rows_left
    const bool col_in = KContig ? k < K : o < Oext;
    const T* src = base + (KContig ? o * ld + k : k * ld + o);
#pragma unroll
    for (int r = 0; r < kRows / kRowStep; ++r, src += kRowStep * ld) {
      const bool in = col_in && r * kRowStep < rows_left;
      cp_async_16(s + (row0 + r * kRowStep) * kPitch + col, in ? src : base, in);
    }
  }

  // A fragments of the 16 rows at o (tile-relative) and k-step word offset kw (a multiple of 8).
  __device__ __forceinline__ static void a_frag(uint32_t (&a)[4], const T* s, int o, int kw, int lane) {
    const int k = kw * kPerWord;
    if constexpr (KContig) {
      a_frag_m_major(a, s, kPitch, o, k, lane);
      if constexpr (std::is_same_v<T, float>)
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = to_tf32(__uint_as_float(a[i]));
    } else if constexpr (std::is_same_v<T, bf16>) {
      a_frag_k_major(a, s, kPitch, o, k, lane);
    } else {
      const int g = lane / 4, t = lane % 4;
      a[0] = to_tf32(s[(k + t) * kPitch + o + g]);
      a[1] = to_tf32(s[(k + t) * kPitch + o + g + 8]);
      a[2] = to_tf32(s[(k + t + 4) * kPitch + o + g]);
      a[3] = to_tf32(s[(k + t + 4) * kPitch + o + g + 8]);
    }
  }

  // B fragments of two n8 tiles at columns n..n+15: b[0], b[1] for n..n+7, b[2], b[3] for n+8..n+15.
  __device__ __forceinline__ static void b_frags(uint32_t (&b)[4], const T* s, int n, int kw, int lane) {
    const int k = kw * kPerWord;
    if constexpr (KContig) {
      b_frags_n_major(b, s, kPitch, n, k, lane);
      if constexpr (std::is_same_v<T, float>)
#pragma unroll
        for (int i = 0; i < 4; ++i) b[i] = to_tf32(__uint_as_float(b[i]));
    } else if constexpr (std::is_same_v<T, bf16>) {
      b_frags_k_major(b, s, kPitch, n, k, lane);
    } else {
      const int g = lane / 4, t = lane % 4;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        b[2 * h] = to_tf32(s[(k + t) * kPitch + n + 8 * h + g]);
        b[2 * h + 1] = to_tf32(s[(k + t + 4) * kPitch + n + 8 * h + g]);
      }
    }
  }
};

template <class Cfg, class T, bool AK, bool BK>
constexpr int mma_smem_bytes() {
  return Cfg::kStages *
         (MmaSmem<Cfg, T, AK, Cfg::kBlockM>::kElems + MmaSmem<Cfg, T, BK, Cfg::kBlockN>::kElems) * int(sizeof(T));
}

// AK / BK: A (resp. B) is k-contiguous; otherwise m- (resp. n-) contiguous. Operand.outer /
// .inner hold the strides; the non-unit one is `ld` below.
template <class Cfg, class T, bool AK, bool BK>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks)
    mma_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, Operand<T> a, Operand<T> b, Output c, bool accumulate) {
  using SA = MmaSmem<Cfg, T, AK, Cfg::kBlockM>;
  using SB = MmaSmem<Cfg, T, BK, Cfg::kBlockN>;
  constexpr int kStages = Cfg::kStages, kSteps = Cfg::kSteps, kFragsM = Cfg::kFragsM, kFragsN = Cfg::kFragsN;
  TG_DYNAMIC_SMEM(T, sa);
  T* sb = sa + kStages * SA::kElems;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int warp_m = (warp / Cfg::kWarpsN) * Cfg::kWarpM, warp_n = (warp % Cfg::kWarpsN) * Cfg::kWarpN;
  int64_t tm, tn;
  tile_coords(blockIdx.x, ceil_div(M, Cfg::kBlockM), ceil_div(N, Cfg::kBlockN), tm, tn);
  const int64_t m0 = tm * Cfg::kBlockM, n0 = tn * Cfg::kBlockN;
  const int64_t a_ld = AK ? a.outer : a.inner, b_ld = BK ? b.outer : b.inner;
  const int64_t k_tiles = ceil_div(K, SA::kK);

  // One k step's fragments of the warp tile: A of its 16-row tiles, B of its pairs of n8 tiles.
  struct Frags {
    uint32_t a[kFragsM][4], b[kFragsN / 2][4];
  };
  auto load_frags = [&](Frags& f, int stage, int step) {
#pragma unroll
    for (int i = 0; i < kFragsM; ++i) SA::a_frag(f.a[i], sa + stage * SA::kElems, warp_m + 16 * i, 8 * step, lane);
#pragma unroll
    for (int j = 0; j < kFragsN / 2; ++j) SB::b_frags(f.b[j], sb + stage * SB::kElems, warp_n + 16 * j, 8 * step, lane);
  };

  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    const T* a_base = a.p + bi * a.batch;
    const T* b_base = b.p + bi * b.batch;
    auto queue_tile = [&](int64_t kt, int stage) {
      if (kt < k_tiles) {
        SA::copy(sa + stage * SA::kElems, a_base, a_ld, m0, kt * SA::kK, M, K, tid);
        SB::copy(sb + stage * SB::kElems, b_base, b_ld, n0, kt * SA::kK, N, K, tid);
      }
      cp_async_commit();  // an empty group past the end keeps the wait count uniform
    };

    float acc[kFragsM][kFragsN][4] = {};
    Frags frags[2];
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) queue_tile(s, s);
    cp_async_wait<kStages - 2>();  // tile 0 has landed (for this thread's copies)...
    __syncthreads();               // ...and for everyone's
    load_frags(frags[0], 0, 0);

    // Step s of tile kt multiplies frags[s % 2] while the next step's fragments load into the
    // other buffer, so the ldmatrix latency hides behind the mma of the step before, across the
    // stage boundary too. The barrier of the last step is the stage's: after it tile kt + 1 is
    // visible to every thread, and no warp reads tile kt's stage again.
    int stage = 0;  // tile kt's = kt % S
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      // Into stage (kt - 1) % S, free since the barrier that ended tile kt - 1.
      queue_tile(kt + kStages - 1, (stage + kStages - 1) % kStages);
      const int next = (stage + 1) % kStages;
#pragma unroll
      for (int step = 0; step < kSteps; ++step) {
        if (step + 1 < kSteps) {
          load_frags(frags[(step + 1) % 2], stage, step + 1);
        } else {
          // Committed: S - 1 + kt + 1 groups; tile kt + 1 is among all but the newest S - 2.
          cp_async_wait<kStages - 2>();
          __syncthreads();
          if (kt + 1 < k_tiles) load_frags(frags[(step + 1) % 2], next, 0);
        }
        const Frags& f = frags[step % 2];
#pragma unroll
        for (int i = 0; i < kFragsM; ++i)
#pragma unroll
          for (int j = 0; j < kFragsN; ++j)
            mma_16x8(acc[i][j], f.a[i], f.b[j / 2][2 * (j % 2)], f.b[j / 2][2 * (j % 2) + 1], T{});
      }
      stage = next;
    }
    cp_async_wait<0>();
    __syncthreads();  // the next batch item reuses the stages

    T* c_base = static_cast<T*>(c.p) + bi * c.batch;
    const bool pair_store = c.ld % 2 == 0 && reinterpret_cast<uintptr_t>(c_base) % (2 * sizeof(T)) == 0;
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < kFragsM; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + warp_m + 16 * i + g + 8 * h;
        if (row >= M) continue;
#pragma unroll
        for (int j = 0; j < kFragsN; ++j) {
          const int64_t col = n0 + warp_n + 8 * j + 2 * t;
          store_two(c_base + row * c.ld + col, col, N, acc[i][j][2 * h], acc[i][j][2 * h + 1], pair_store, accumulate);
        }
      }
  }
}

}  // namespace
}  // namespace tg::cuda
