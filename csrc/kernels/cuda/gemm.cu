// Device GEMM, C_b (+)= A_b @ B_b (see gemm.h for the stride convention). Three own kernels for
// float32 and bfloat16, a plain tiled one for float64 and int64, and an optional cuBLAS backend:
//
//   simt_gemm   float32 FMA (and the bfloat16 fallback). Block tile 128 x 128 x 32,
//               256 threads, each thread an 8 x 8 block of C in registers (two 4 x 4 quadrants
//               16 rows / 32 columns apart, so a warp's shared-memory reads are one contiguous 64
//               or 128 byte line). Tiles are double buffered in shared memory, stored k-major
//               (S[k][m]) so the inner product reads float4 of 4 rows and 4 columns: 4 loads per
//               64 FMAs (depth k at row SimtConfig::row_of(k), an order that keeps the transposed
//               stores free of bank conflicts). The next tile is loaded into registers while the
//               current one is multiplied.
//               Vector (float4) global loads when the contiguous dimension allows it, scalar
//               bounds-checked loads for any other strides and for bfloat16.
//   mma_gemm    tensor cores through mma.sync: bfloat16 (m16n8k16) and, behind allow_tf32(),
//               float32 as tf32 (m16n8k8). Block tiles of 128 x 128 or 256 x 128 (MmaConfigs
//               below: picked by the device's shared memory and the product's size), warps of
//               64 x 64, a 3- or 4-stage cp.async pipeline so the loads of the next tiles overlap
//               the products of this one, and fragments double buffered in registers so the
//               ldmatrix of the next k step overlaps the mma of this one. Both element types share
//               the kernel: counted in 32-bit words their fragments are the same
//               (device_utils.cuh), so only the k depth per mma and the tf32 rounding differ.
//               Operands may be k-contiguous or m/n-contiguous (ldmatrix, or ldmatrix.trans for
//               bfloat16; scalar fragment loads for tf32).
//   cuBLAS      cublasGemmStridedBatchedEx on tapegrad's stream; row-major as C^T = B^T A^T.
// The two tensor/FMA kernels take their tiling as a configuration type (MmaConfig, SimtConfig);
// gemm() picks one by the device and the product's size (gemm_config_for), gemm_with_config()
// runs any of MmaConfigs / SimtConfigs (benchmarks and tests).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#ifdef TAPEGRAD_WITH_CUBLAS
#include <cublas_v2.h>
#endif

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_tiles.cuh"
#ifdef TAPEGRAD_WITH_SM90
#include "kernels/cuda/sm90/gemm_wgmma.h"
#endif

namespace tg::cuda {

namespace {

using bf16 = __nv_bfloat16;

// One operand as the kernels see it: element (o, k) of batch b at p[b * batch + o * outer + k * inner],
// o the row of A (m) or the column of B (n).
template <class T> struct Operand {
  const T* p;
  int64_t batch, outer, inner;
};

using Output = GemmOutput;

// ============================== SIMT kernel ==============================

// A tile configuration of simt_gemm: K of k per shared-memory stage (two stages of A and B,
// 2 * 2 * K * 132 floats: 66 KB at K = 32). The block is 128 x 128, 256 threads of 8 x 8
// outputs, in every configuration. (Two CTAs per SM, which would hide one CTA's barriers behind
// the other's FMAs, cap the registers at 128 and spill a kilobyte a thread.)
template <int K> struct SimtConfig {
  static constexpr int kBlock = 128, kK = K, kThreads = 256;
  static constexpr int kPitch = kBlock + 4;  // float4-aligned rows; the pad staggers the transposed stores
  static constexpr int kSmemBytes = 2 * 2 * kK * kPitch * int(sizeof(float));
  static_assert(kK % 8 == 0, "whole float4 per thread in every tile load");
  // The shared-memory row that holds depth k of a tile: k = 4j + e goes to row j + (K / 4) e. A
  // k-contiguous tile is loaded as float4 along k and stored transposed: one store instruction
  // writes element e of depths 4j + e, j = 0..7, of 4 rows o (K = 32). Rows are 4 banks apart
  // (kPitch = 4 mod 32), so at rows 4j + e those 32 lanes would share 8 banks four ways (K = 64:
  // eight ways); at rows j + 8e they take 4j + o, 32 distinct banks (K = 64: two ways). The
  // products read depth k at a constant row, so the order costs them nothing.
  __host__ __device__ static constexpr int row_of(int k) { return k / 4 + (kK / 4) * (k % 4); }
  static std::string name() {
    return std::to_string(kBlock) + "x" + std::to_string(kBlock) + " k" + std::to_string(kK);
  }
};

// How an operand tile is read from global memory.
enum class Load : uint8_t {
  Scalar,      // any strides, any type: one bounds-checked element at a time
  VecInner,    // float32, k contiguous (inner == 1): float4 along k
  VecOuter,    // float32, m or n contiguous (outer == 1): float4 along m / n
};

// The 128 (o) x K (k) tile at (o0, k0), read into registers and then stored as S[k][o].
template <class Cfg, class T, Load L> struct SimtTile {
  static constexpr int kBlock = Cfg::kBlock, kK = Cfg::kK, kThreads = Cfg::kThreads;
  static constexpr int kPerThread = kBlock * kK / kThreads;  // K / 2
  float r[kPerThread];

  __device__ __forceinline__ void load(const Operand<T>& op, const T* base, int64_t o0, int64_t k0, int64_t O,
                                       int64_t K, int tid) {
    if constexpr (L == Load::Scalar) {
      // Consecutive threads take consecutive o: coalesced when o is the contiguous dimension.
#pragma unroll
      for (int v = 0; v < kPerThread; ++v) {
        const int idx = tid + v * kThreads, o = idx % kBlock, k = idx / kBlock;
        const bool in = o0 + o < O && k0 + k < K;
        r[v] = in ? to_float(base[(o0 + o) * op.outer + (k0 + k) * op.inner]) : 0.f;
      }
    } else if constexpr (L == Load::VecInner) {
      // K / 4 float4 per row of k; K % 4 == 0 makes each float4 all in or all out.
#pragma unroll
      for (int v = 0; v < kPerThread / 4; ++v) {
        const int idx = tid + v * kThreads, o = idx / (kK / 4), k = (idx % (kK / 4)) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (o0 + o < O && k0 + k < K)
          x = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(base) + (o0 + o) * op.outer + k0 + k);
        r[4 * v] = x.x, r[4 * v + 1] = x.y, r[4 * v + 2] = x.z, r[4 * v + 3] = x.w;
      }
    } else {
      // 32 float4 per 128-wide row of o; O % 4 == 0.
#pragma unroll
      for (int v = 0; v < kPerThread / 4; ++v) {
        const int idx = tid + v * kThreads, k = idx / (kBlock / 4), o = (idx % (kBlock / 4)) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (o0 + o < O && k0 + k < K)
          x = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(base) + (k0 + k) * op.inner + o0 + o);
        r[4 * v] = x.x, r[4 * v + 1] = x.y, r[4 * v + 2] = x.z, r[4 * v + 3] = x.w;
      }
    }
  }

  __device__ __forceinline__ void store(float (*s)[Cfg::kPitch], int tid) const {
    if constexpr (L == Load::Scalar) {
#pragma unroll
      for (int v = 0; v < kPerThread; ++v) {
        const int idx = tid + v * kThreads;
        s[Cfg::row_of(idx / kBlock)][idx % kBlock] = r[v];
      }
    } else if constexpr (L == Load::VecInner) {
#pragma unroll
      for (int v = 0; v < kPerThread / 4; ++v) {
        const int idx = tid + v * kThreads, o = idx / (kK / 4), k = (idx % (kK / 4)) * 4;
#pragma unroll
        for (int e = 0; e < 4; ++e) s[Cfg::row_of(k + e)][o] = r[4 * v + e];
      }
    } else {
#pragma unroll
      for (int v = 0; v < kPerThread / 4; ++v) {
        const int idx = tid + v * kThreads, k = idx / (kBlock / 4), o = (idx % (kBlock / 4)) * 4;
        *reinterpret_cast<float4*>(&s[Cfg::row_of(k)][o]) = make_float4(r[4 * v], r[4 * v + 1], r[4 * v + 2], r[4 * v + 3]);
      }
    }
  }
};

// Warp layout: 8 warps as 4 (m) x 2 (n), each warp 32 x 64; lane (lr = lane / 8, lc = lane % 8)
// owns rows {lr*4 .. +3, 16 + lr*4 .. +3} and columns {lc*4 .. +3, 32 + lc*4 .. +3} of its warp tile.
template <class Cfg, class T, Load LA, Load LB>
__global__ void __launch_bounds__(Cfg::kThreads)
    simt_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, Operand<T> a, Operand<T> b, Output c, bool accumulate) {
  constexpr int kBlock = Cfg::kBlock, kK = Cfg::kK;
  using Stage = float[kK][Cfg::kPitch];
  TG_DYNAMIC_SMEM(Stage, As);  // As[2], then Bs[2]
  Stage* Bs = As + 2;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row_base = (warp / 2) * 32 + (lane / 8) * 4, col_base = (warp % 2) * 64 + (lane % 8) * 4;
  int64_t tm, tn;
  tile_coords(blockIdx.x, ceil_div(M, kBlock), ceil_div(N, kBlock), tm, tn);
  const int64_t m0 = tm * kBlock, n0 = tn * kBlock;
  const int64_t k_tiles = ceil_div(K, kK);

  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    const T* a_base = a.p + bi * a.batch;
    const T* b_base = b.p + bi * b.batch;
    float acc[8][8] = {};
    SimtTile<Cfg, T, LA> ta;
    SimtTile<Cfg, T, LB> tb;
    if (k_tiles > 0) {
      ta.load(a, a_base, m0, 0, M, K, tid);
      tb.load(b, b_base, n0, 0, N, K, tid);
      ta.store(As[0], tid);
      tb.store(Bs[0], tid);
    }
    __syncthreads();
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      const int cur = kt & 1;
      const bool more = kt + 1 < k_tiles;
      if (more) {  // global loads in flight during the products below
        ta.load(a, a_base, m0, (kt + 1) * kK, M, K, tid);
        tb.load(b, b_base, n0, (kt + 1) * kK, N, K, tid);
      }
#pragma unroll
      for (int k = 0; k < kK; ++k) {
        float fa[8], fb[8];
        const int row = Cfg::row_of(k);
        *reinterpret_cast<float4*>(fa) = *reinterpret_cast<const float4*>(&As[cur][row][row_base]);
        *reinterpret_cast<float4*>(fa + 4) = *reinterpret_cast<const float4*>(&As[cur][row][row_base + 16]);
        *reinterpret_cast<float4*>(fb) = *reinterpret_cast<const float4*>(&Bs[cur][row][col_base]);
        *reinterpret_cast<float4*>(fb + 4) = *reinterpret_cast<const float4*>(&Bs[cur][row][col_base + 32]);
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
      }
      // The other buffer was last read in iteration kt - 1, which every thread finished before
      // the barrier that ended it.
      if (more) {
        ta.store(As[cur ^ 1], tid);
        tb.store(Bs[cur ^ 1], tid);
      }
      __syncthreads();
    }

    T* c_base = static_cast<T*>(c.p) + bi * c.batch;
    const bool vec_store = std::is_same_v<T, float> && c.ld % 4 == 0 && (reinterpret_cast<uintptr_t>(c_base) % 16) == 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t row = m0 + row_base + (i % 4) + (i / 4) * 16;
      if (row >= M) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t col = n0 + col_base + h * 32;
        T* dst = c_base + row * c.ld + col;
        const float* v = &acc[i][4 * h];
        if constexpr (std::is_same_v<T, float>) {
          if (vec_store && col + 3 < N) {
            float4 x = make_float4(v[0], v[1], v[2], v[3]);
            if (accumulate) {
              const float4 old = *reinterpret_cast<const float4*>(dst);
              x.x += old.x, x.y += old.y, x.z += old.z, x.w += old.w;
            }
            *reinterpret_cast<float4*>(dst) = x;
            continue;
          }
        }
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (col + e < N) store_one(dst + e, v[e], accumulate);
      }
    }
  }
}

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

// ============================== float64 and int64 ==============================

// The plain tiled product for the types without a fast path: 16 x 16 threads each own one C
// element; 16 x 16 tiles of A and B pass through shared memory; exact-type accumulation.
constexpr int kPlainTile = 16;

template <class T>
__global__ void plain_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, Operand<T> a, Operand<T> b, Output c,
                           bool accumulate) {
  __shared__ T as[kPlainTile][kPlainTile + 1], bs[kPlainTile][kPlainTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t tiles_n = ceil_div(N, kPlainTile);
  const int64_t i = (blockIdx.x / tiles_n) * kPlainTile + ty, j = (blockIdx.x % tiles_n) * kPlainTile + tx;
  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    const T* pa = a.p + bi * a.batch;
    const T* pb = b.p + bi * b.batch;
    T acc = 0;
    for (int64_t k0 = 0; k0 < K; k0 += kPlainTile) {
      const int64_t ka = k0 + tx, kb = k0 + ty;  // A (i, k0 + tx), B (k0 + ty, j)
      as[ty][tx] = i < M && ka < K ? pa[i * a.outer + ka * a.inner] : T(0);
      bs[ty][tx] = j < N && kb < K ? pb[j * b.outer + kb * b.inner] : T(0);
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kPlainTile; ++k) acc += as[ty][k] * bs[k][tx];
      __syncthreads();
    }
    if (i < M && j < N) {
      T* dst = static_cast<T*>(c.p) + bi * c.batch + i * c.ld + j;
      *dst = accumulate ? *dst + acc : acc;
    }
  }
}

template <class T>
void run_plain(const GemmArgs& g, cudaStream_t s) {
  const Operand<T> a{static_cast<const T*>(g.A), g.a_batch, g.a_row, g.a_col};
  const Operand<T> b{static_cast<const T*>(g.B), g.b_batch, g.b_col, g.b_row};
  const Output c{g.C, g.c_batch, g.ldc};
  const int64_t tiles = ceil_div(g.M, kPlainTile) * ceil_div(g.N, kPlainTile);
  TG_CHECK(tiles < (int64_t(1) << 31), RuntimeError, "gemm: matrix too large for the grid (", g.M, " x ", g.N, ")");
  launch_kernel(plain_gemm<T>, dim3(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(std::min<int64_t>(g.batch, 65535))),
                dim3(kPlainTile, kPlainTile), 0, s, g.batch, g.M, g.N, g.K, a, b, c, g.accumulate);
}

// ============================== dispatch ==============================

// Can `op` be read in `chunk`-element vectors along its contiguous dimension, of extent `extent`?
template <class T>
bool vector_readable(const Operand<T>& op, bool inner_contig, int64_t extent, int64_t batch, int chunk) {
  const int64_t ld = inner_contig ? op.outer : op.inner;
  return aligned_to(op.p, chunk * sizeof(T)) && extent % chunk == 0 && ld % chunk == 0 &&
         (batch == 1 || op.batch % chunk == 0);
}

dim3 grid_for(int64_t batch, int64_t M, int64_t N, int block_m, int block_n) {
  const int64_t tiles = ceil_div(M, block_m) * ceil_div(N, block_n);
  TG_CHECK(tiles < (int64_t(1) << 31), RuntimeError, "gemm: matrix too large for the grid (", M, " x ", N, ")");
  return dim3(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
}

// ---- tile configurations ----
// The ones benchmarks/cuda/kernel_check.cu --bench times (by index); gemm() runs the defaults.
template <class... Cs> struct ConfigList {
  using Tuple = std::tuple<Cs...>;
  static std::vector<std::string> names() { return {Cs::name()...}; }
  // f(C{}) for the configuration C at `index`.
  template <class F> static void visit(int index, F&& f) {
    int i = 0;
    ((i++ == index ? f(Cs{}) : void()), ...);
  }
};

// Shared memory per CTA with both operands k-contiguous (the other layouts take no more), and
// the warp tile. A CTA may opt in to 227 KB on sm_90, 163 KB on sm_80, 99 KB on sm_86 / sm_89.
// The survivors of a sweep of eleven (kernel_check --configs) on an H100 at 4096^3, TFLOP/s
// (256 x 128 with 4 stages gave 383 bf16 in 216 KB, too close to the 3-stage 381 to keep; 128 x
// 256 tiles at most 366; the 4-warp 64 x 32 warp tiles of the first version 285):
//                                                        bf16   tf32
using MmaConfigs = ConfigList<MmaConfig<128, 128, 64, 4, 2, 2, 2>,   //  80 KB, 64 x 64, 2 CTAs / SM   308    113
                              MmaConfig<128, 128, 128, 3, 2, 2, 2>,  // 108 KB, 64 x 64, 2 CTAs / SM   309    126
                              MmaConfig<256, 128, 128, 3, 4, 2>>;    // 162 KB, 64 x 64, 8 warps       381    115
enum MmaConfigIndex { kMmaSmall, kMmaMid, kMmaLarge };
using SimtConfigs = ConfigList<SimtConfig<32>, SimtConfig<64>>;  // 39.4 TFLOP/s at 4096^3 (k16: 35.5)
constexpr int kMaxDynamicSmem = 227 * 1024;

template <int I, class T> constexpr int mma_config_smem() {
  return mma_smem_bytes<std::tuple_element_t<I, typename MmaConfigs::Tuple>, T, true, true>();
}

// The largest tiles that fit the device's shared memory; the 256 x 128 tiles (bfloat16 only, the
// fastest there) only while they still give every multiprocessor one.
template <class T>
int mma_config_for(const GemmArgs& g) {
  const DeviceLimits d = device_limits(g.device);
  const int64_t large_tiles = g.batch * ceil_div(g.M, 256) * ceil_div(g.N, 128);
  if (std::is_same_v<T, bf16> && d.smem_per_block >= mma_config_smem<kMmaLarge, T>() && large_tiles >= d.multiprocessors)
    return kMmaLarge;
  return d.smem_per_block >= mma_config_smem<kMmaMid, T>() ? kMmaMid : kMmaSmall;
}

template <class Cfg, class T, Load LA, Load LB>
void launch_simt(const GemmArgs& g, const Operand<T>& a, const Operand<T>& b, const Output& c, cudaStream_t s) {
  auto kernel = simt_gemm<Cfg, T, LA, LB>;
  allow_dynamic_smem(kernel, Cfg::kSmemBytes, g.device, "gemm: cudaFuncSetAttribute");
  launch_kernel(kernel, grid_for(g.batch, g.M, g.N, Cfg::kBlock, Cfg::kBlock), Cfg::kThreads, Cfg::kSmemBytes, s,
                g.batch, g.M, g.N, g.K, a, b, c, g.accumulate);
}

template <class Cfg, class T, bool AK, bool BK>
void launch_mma(const GemmArgs& g, const Operand<T>& a, const Operand<T>& b, const Output& c, cudaStream_t s) {
  constexpr int bytes = mma_smem_bytes<Cfg, T, AK, BK>();
  static_assert(bytes <= kMaxDynamicSmem, "tile configuration past the shared memory of a CTA");
  auto kernel = mma_gemm<Cfg, T, AK, BK>;
  allow_dynamic_smem(kernel, bytes, g.device, "gemm: cudaFuncSetAttribute");
  launch_kernel(kernel, grid_for(g.batch, g.M, g.N, Cfg::kBlockM, Cfg::kBlockN), Cfg::kThreads, bytes, s, g.batch,
                g.M, g.N, g.K, a, b, c, g.accumulate);
}

// A as (m, k): outer a_row, inner a_col. B as (n, k): outer b_col, inner b_row.
template <class T> Operand<T> operand_a(const GemmArgs& g) {
  return {static_cast<const T*>(g.A), g.a_batch, g.a_row, g.a_col};
}
template <class T> Operand<T> operand_b(const GemmArgs& g) {
  return {static_cast<const T*>(g.B), g.b_batch, g.b_col, g.b_row};
}

template <class T>
bool try_mma(const GemmArgs& g, cudaStream_t s, int config) {
  const Operand<T> a = operand_a<T>(g), b = operand_b<T>(g);
  const Output c{g.C, g.c_batch, g.ldc};
  constexpr int chunk = 16 / sizeof(T);
  const bool ak = a.inner == 1, bk = b.inner == 1;
  if (!ak && a.outer != 1) return false;
  if (!bk && b.outer != 1) return false;
  if (!vector_readable(a, ak, ak ? g.K : g.M, g.batch, chunk)) return false;
  if (!vector_readable(b, bk, bk ? g.K : g.N, g.batch, chunk)) return false;
  MmaConfigs::visit(config, [&](auto cfg) {
    using C = decltype(cfg);
    if (ak && bk) launch_mma<C, T, true, true>(g, a, b, c, s);
    else if (ak) launch_mma<C, T, true, false>(g, a, b, c, s);
    else if (bk) launch_mma<C, T, false, true>(g, a, b, c, s);
    else launch_mma<C, T, false, false>(g, a, b, c, s);
  });
  return true;
}

template <class T>
void run_simt(const GemmArgs& g, cudaStream_t s, int config) {
  const Operand<T> a = operand_a<T>(g), b = operand_b<T>(g);
  const Output c{g.C, g.c_batch, g.ldc};
  SimtConfigs::visit(config, [&](auto cfg) {
    using C = decltype(cfg);
    if constexpr (std::is_same_v<T, float>) {
      const bool ak = a.inner == 1, bk = b.inner == 1;
      const bool a_vec = (ak || a.outer == 1) && vector_readable(a, ak, ak ? g.K : g.M, g.batch, 4);
      const bool b_vec = (bk || b.outer == 1) && vector_readable(b, bk, bk ? g.K : g.N, g.batch, 4);
      if (a_vec && b_vec && g.K > 0) {
        if (ak && bk) return launch_simt<C, T, Load::VecInner, Load::VecInner>(g, a, b, c, s);
        if (ak) return launch_simt<C, T, Load::VecInner, Load::VecOuter>(g, a, b, c, s);
        if (bk) return launch_simt<C, T, Load::VecOuter, Load::VecInner>(g, a, b, c, s);
        return launch_simt<C, T, Load::VecOuter, Load::VecOuter>(g, a, b, c, s);
      }
    }
    launch_simt<C, T, Load::Scalar, Load::Scalar>(g, a, b, c, s);
  });
}

// The Hopper kernel (sm90/gemm_wgmma.cu) in `config`, or its choice when config < 0; false where
// it does not apply (see wgmma_gemm) or was not built.
bool try_wgmma(const GemmArgs& g, cudaStream_t s, int config) {
#ifdef TAPEGRAD_WITH_SM90
  return sm90::wgmma_gemm(g, config < 0 ? sm90::wgmma_config_for(g) : config, s);
#else
  (void)g, (void)s, (void)config;
  return false;
#endif
}

std::vector<std::string> wgmma_config_names() {
#ifdef TAPEGRAD_WITH_SM90
  return sm90::wgmma_config_names();
#else
  return {};
#endif
}

void own_gemm(DType dtype, const GemmArgs& g, cudaStream_t s) {
  if (dtype == DType::Float32) {
    if (!(allow_tf32() && g.K > 0 && try_mma<float>(g, s, mma_config_for<float>(g)))) run_simt<float>(g, s, 0);
  } else if (dtype == DType::BFloat16) {
    if (!(g.K > 0 && (try_wgmma(g, s, -1) || try_mma<bf16>(g, s, mma_config_for<bf16>(g))))) run_simt<bf16>(g, s, 0);
  } else if (dtype == DType::Float64) {
    run_plain<double>(g, s);
  } else {
    run_plain<int64_t>(g, s);
  }
  check(cudaGetLastError(), "gemm kernel launch");
}

// Checks the sizes; false when there is nothing to compute.
bool has_work(const GemmArgs& g) {
  TG_CHECK(g.batch >= 0 && g.M >= 0 && g.N >= 0 && g.K >= 0, ValueError, "gemm: negative size");
  return g.batch > 0 && g.M > 0 && g.N > 0;
}

// ============================== cuBLAS ==============================

#ifdef TAPEGRAD_WITH_CUBLAS
void check_cublas(cublasStatus_t st, const char* what) {
  TG_CHECK(st == CUBLAS_STATUS_SUCCESS, RuntimeError, what, ": cuBLAS error ", static_cast<int>(st));
}

// One handle per device, bound to tapegrad's stream, with a workspace taken from the caching
// allocator (so it shows in memory_allocated(), as PyTorch's does) and never from cuBLAS itself.
// Calls are serialised per device: the workspace is shared.
struct CublasDevice {
  std::mutex mu;
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
};

CublasDevice& cublas_device(int device) {
  constexpr int kMaxDevices = 64;
  constexpr size_t kWorkspaceBytes = size_t(32) << 20;
  static CublasDevice devices[kMaxDevices];
  static std::once_flag created[kMaxDevices];
  TG_CHECK(device >= 0 && device < kMaxDevices, RuntimeError, "gemm: bad device ", device);
  std::call_once(created[device], [device] {
    CublasDevice& d = devices[device];
    check_cublas(cublasCreate(&d.handle), "cublasCreate");
    check_cublas(cublasSetStream(d.handle, stream_of(device)), "cublasSetStream");
    d.workspace = allocate(kWorkspaceBytes, device);  // held for the process's life
    check_cublas(cublasSetWorkspace(d.handle, d.workspace, kWorkspaceBytes), "cublasSetWorkspace");
  });
  return devices[device];
}

// Column-major view of a row-major operand whose element (r, c) sits at r * rs + c * cs: the
// stored matrix and its op. `rows` x `cols` is what the product needs (op applied).
struct ColMajor {
  cublasOperation_t op;
  int64_t ld;
  bool ok;
};
ColMajor col_major(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // Column-major X(r, c) = X[r + c * ld]: with rs == 1 the operand is X itself (ld = cs);
  // with cs == 1 it is the transpose of a (cols x rows) matrix with ld = rs.
  if (rs == 1 && (cols <= 1 || cs >= rows)) return {CUBLAS_OP_N, std::max<int64_t>({cs, rows, 1}), true};
  if (cs == 1 && (rows <= 1 || rs >= cols)) return {CUBLAS_OP_T, std::max<int64_t>({rs, cols, 1}), true};
  return {CUBLAS_OP_N, 0, false};
}

bool cublas_gemm(DType dtype, const GemmArgs& g) {
  // C^T (N x M, column-major, ld = ldc) = B^T (N x K) @ A^T (K x M).
  //   first operand:  (j, k) -> B[k * b_row + j * b_col]
  //   second operand: (k, i) -> A[i * a_row + k * a_col]
  const ColMajor x = col_major(g.N, g.K, g.b_col, g.b_row), y = col_major(g.K, g.M, g.a_col, g.a_row);
  constexpr int64_t kIntMax = 2147483647;
  if (!x.ok || !y.ok || g.ldc < std::max<int64_t>(g.N, 1) || g.M > kIntMax || g.N > kIntMax || g.K > kIntMax ||
      x.ld > kIntMax || y.ld > kIntMax || g.ldc > kIntMax || g.batch > kIntMax || g.K == 0)
    return false;
  CublasDevice& d = cublas_device(g.device);
  std::lock_guard<std::mutex> lock(d.mu);
  const cudaDataType_t t = dtype == DType::Float32 ? CUDA_R_32F : CUDA_R_16BF;
  const cublasComputeType_t compute =
      dtype == DType::Float32 && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = g.accumulate ? 1.f : 0.f;
  check_cublas(cublasGemmStridedBatchedEx(d.handle, x.op, y.op, static_cast<int>(g.N), static_cast<int>(g.M),
                                          static_cast<int>(g.K), &alpha, g.B, t, static_cast<int>(x.ld), g.b_batch,
                                          g.A, t, static_cast<int>(y.ld), g.a_batch, &beta, g.C, t,
                                          static_cast<int>(g.ldc), g.c_batch, static_cast<int>(g.batch), compute,
                                          CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
  return true;
}
#endif

std::atomic<int>& backend_state() {
  static std::atomic<int> state{[] {
    const char* env = std::getenv("TAPEGRAD_CUDA_MATMUL");
    if (env && std::strcmp(env, "own") == 0) return int(GemmBackend::Own);
    if (env && std::strcmp(env, "cublas") == 0 && cublas_built()) return int(GemmBackend::Cublas);
    return int(cublas_built() ? GemmBackend::Cublas : GemmBackend::Own);
  }()};
  return state;
}

std::atomic<bool> tf32_allowed{false};

}  // namespace

bool cublas_built() {
#ifdef TAPEGRAD_WITH_CUBLAS
  return true;
#else
  return false;
#endif
}

GemmBackend gemm_backend() { return static_cast<GemmBackend>(backend_state().load()); }

void set_gemm_backend(GemmBackend backend) {
  TG_CHECK(backend != GemmBackend::Cublas || cublas_built(), RuntimeError,
           "gemm: tapegrad was built without cuBLAS; only the own kernels are available");
  backend_state().store(int(backend));
}

bool allow_tf32() { return tf32_allowed.load(); }
void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }

void gemm(DType dtype, const GemmArgs& g) {
  TG_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16 || dtype == DType::Float64 || dtype == DType::Int64,
           TypeError, "matmul on CUDA: not supported for dtype ", dtype_name(dtype));
  if (!has_work(g)) return;
  DeviceScope scope(g.device);
#ifdef TAPEGRAD_WITH_CUBLAS
  if (gemm_backend() == GemmBackend::Cublas && (dtype == DType::Float32 || dtype == DType::BFloat16) &&
      cublas_gemm(dtype, g))
    return;
#endif
  own_gemm(dtype, g, scope.stream());
}

std::vector<std::string> gemm_config_names(OwnKernel kernel) {
  switch (kernel) {
    case OwnKernel::Mma: return MmaConfigs::names();
    case OwnKernel::Simt: return SimtConfigs::names();
    case OwnKernel::Wgmma: return wgmma_config_names();
  }
  return {};
}

int gemm_config_for(DType dtype, OwnKernel kernel, const GemmArgs& g) {
  if (kernel == OwnKernel::Simt) return 0;
  if (kernel == OwnKernel::Wgmma) {
#ifdef TAPEGRAD_WITH_SM90
    return sm90::wgmma_config_for(g);
#else
    return 0;  // a build without the Hopper kernel lists no configurations of it
#endif
  }
  return dtype == DType::BFloat16 ? mma_config_for<bf16>(g) : mma_config_for<float>(g);
}

void gemm_with_config(DType dtype, OwnKernel kernel, int config, const GemmArgs& g) {
  const int count = static_cast<int>(gemm_config_names(kernel).size());
  TG_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16, TypeError,
           "gemm_with_config: float32 or bfloat16, not ", dtype_name(dtype));
  TG_CHECK(kernel != OwnKernel::Wgmma || dtype == DType::BFloat16, TypeError,
           "gemm_with_config: the wgmma kernel takes bfloat16, not ", dtype_name(dtype));
  TG_CHECK(config >= 0 && config < count, IndexError, "gemm_with_config: no configuration ", config, " of ", count);
  if (!has_work(g)) return;
  DeviceScope scope(g.device);
  if (kernel == OwnKernel::Wgmma) {
    TG_CHECK(try_wgmma(g, scope.stream(), config), ValueError,
             "gemm_with_config: the wgmma kernel needs an sm_90 device, K > 0 and operands the TMA can read (a "
             "stride-1 dimension, 16-byte aligned, other strides multiples of 8)");
  } else if (kernel == OwnKernel::Simt) {
    if (dtype == DType::Float32) run_simt<float>(g, scope.stream(), config);
    else run_simt<bf16>(g, scope.stream(), config);
  } else {
    const bool ran = g.K > 0 && (dtype == DType::Float32 ? try_mma<float>(g, scope.stream(), config)
                                                         : try_mma<bf16>(g, scope.stream(), config));
    TG_CHECK(ran, ValueError,
             "gemm_with_config: the tensor-core kernel cannot read these operands (it needs K > 0, a stride-1 "
             "dimension and 16-byte alignment)");
  }
  check(cudaGetLastError(), "gemm kernel launch");
}

}  // namespace tg::cuda
