// Device GEMM, C_b (+)= A_b @ B_b (see gemm.h for the stride convention). Three own kernels for
// float32 and bfloat16, a plain tiled one for float64 and int64, and an optional cuBLAS backend:
//
//   simt_gemm   float32 FMA (and the bfloat16 fallback). Block tile 128 x 128 x 16, 256 threads,
//               each thread an 8 x 8 block of C in registers (two 4 x 4 quadrants 16 rows / 32
//               columns apart, so a warp's shared-memory reads are one contiguous 64 or 128 byte
//               line). Tiles are double buffered in shared memory, stored k-major (S[k][m]) so
//               the inner product reads float4 of 4 rows and 4 columns: 4 loads per 64 FMAs.
//               The next tile is loaded into registers while the current one is multiplied.
//               Vector (float4) global loads when the contiguous dimension allows it, scalar
//               bounds-checked loads for any other strides and for bfloat16.
//   mma_gemm    tensor cores through mma.sync: bfloat16 (m16n8k16) and, behind allow_tf32(),
//               float32 as tf32 (m16n8k8). Block tile 128 x 128 x (64 bytes of k), 8 warps of
//               64 x 32, a 4-stage cp.async pipeline so the loads of tiles k+1..k+3 overlap the
//               products of tile k. Both element types share the kernel: counted in 32-bit
//               words their fragments are the same (device_utils.cuh), so only the k depth per
//               mma and the tf32 rounding differ. Operands may be k-contiguous or m/n-contiguous
//               (ldmatrix, or ldmatrix.trans for bfloat16; scalar fragment loads for tf32).
//   cuBLAS      cublasGemmStridedBatchedEx on tapegrad's stream; row-major as C^T = B^T A^T.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>

#ifdef TAPEGRAD_WITH_CUBLAS
#include <cublas_v2.h>
#endif

#include "core/error.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm.h"

namespace tg::cuda {

namespace {

using bf16 = __nv_bfloat16;

// One operand as the kernels see it: element (o, k) of batch b at p[b * batch + o * outer + k * inner],
// o the row of A (m) or the column of B (n).
template <class T> struct Operand {
  const T* p;
  int64_t batch, outer, inner;
};

struct Output {
  void* p;
  int64_t batch, ld;
};

// Grouped tile order: runs of 8 consecutive tile rows sweep the tile columns together, so the
// A rows and B columns of the tiles in flight stay in L2.
__device__ __forceinline__ void tile_coords(int64_t tiles_m, int64_t tiles_n, int64_t& tm, int64_t& tn) {
  constexpr int64_t kGroup = 8;
  const int64_t pid = blockIdx.x;
  const int64_t group = pid / (kGroup * tiles_n), first_m = group * kGroup;
  const int64_t group_rows = min(tiles_m - first_m, kGroup);
  const int64_t in_group = pid % (kGroup * tiles_n);
  tm = first_m + in_group % group_rows;
  tn = in_group / group_rows;
}

// C(i, j) (+)= value, rows and columns already bounds-checked by the caller.
template <class T>
__device__ __forceinline__ void store_one(T* c, float value, bool accumulate) {
  if (accumulate) value += to_float(*c);
  *c = from_float<T>(value);
}
// Two neighbours (j, j + 1) of one row, one 8- or 4-byte store when the caller checked alignment.
template <class T>
__device__ __forceinline__ void store_pair(T* c, float v0, float v1, bool accumulate);
template <>
__device__ __forceinline__ void store_pair<float>(float* c, float v0, float v1, bool accumulate) {
  float2 v = make_float2(v0, v1);
  if (accumulate) {
    const float2 old = *reinterpret_cast<const float2*>(c);
    v.x += old.x;
    v.y += old.y;
  }
  *reinterpret_cast<float2*>(c) = v;
}
template <>
__device__ __forceinline__ void store_pair<bf16>(bf16* c, float v0, float v1, bool accumulate) {
  if (accumulate) {
    const __nv_bfloat162 old = *reinterpret_cast<const __nv_bfloat162*>(c);
    v0 += __low2float(old);
    v1 += __high2float(old);
  }
  *reinterpret_cast<__nv_bfloat162*>(c) = __floats2bfloat162_rn(v0, v1);
}

// ============================== SIMT kernel ==============================

constexpr int kSimtBlock = 128, kSimtK = 16, kSimtThreads = 256;
constexpr int kSimtPitch = kSimtBlock + 4;  // float4-aligned rows; the pad staggers the transposed stores

// How an operand tile is read from global memory.
enum class Load : uint8_t {
  Scalar,      // any strides, any type: one bounds-checked element at a time
  VecInner,    // float32, k contiguous (inner == 1): float4 along k
  VecOuter,    // float32, m or n contiguous (outer == 1): float4 along m / n
};

// The 128 (o) x 16 (k) tile at (o0, k0), read into registers and then stored as S[k][o].
template <class T, Load L> struct SimtTile {
  static constexpr int kPerThread = kSimtBlock * kSimtK / kSimtThreads;  // 8
  float r[kPerThread];

  __device__ __forceinline__ void load(const Operand<T>& op, const T* base, int64_t o0, int64_t k0, int64_t O,
                                       int64_t K, int tid) {
    if constexpr (L == Load::Scalar) {
      // Consecutive threads take consecutive o: coalesced when o is the contiguous dimension.
#pragma unroll
      for (int v = 0; v < kPerThread; ++v) {
        const int idx = tid + v * kSimtThreads, o = idx % kSimtBlock, k = idx / kSimtBlock;
        const bool in = o0 + o < O && k0 + k < K;
        r[v] = in ? to_float(base[(o0 + o) * op.outer + (k0 + k) * op.inner]) : 0.f;
      }
    } else if constexpr (L == Load::VecInner) {
      // 4 float4 per 16-wide row of k; K % 4 == 0 makes each float4 all in or all out.
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const int idx = tid + v * kSimtThreads, o = idx / 4, k = (idx % 4) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (o0 + o < O && k0 + k < K)
          x = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(base) + (o0 + o) * op.outer + k0 + k);
        r[4 * v] = x.x, r[4 * v + 1] = x.y, r[4 * v + 2] = x.z, r[4 * v + 3] = x.w;
      }
    } else {
      // 32 float4 per 128-wide row of o; O % 4 == 0.
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const int idx = tid + v * kSimtThreads, k = idx / 32, o = (idx % 32) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (o0 + o < O && k0 + k < K)
          x = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(base) + (k0 + k) * op.inner + o0 + o);
        r[4 * v] = x.x, r[4 * v + 1] = x.y, r[4 * v + 2] = x.z, r[4 * v + 3] = x.w;
      }
    }
  }

  __device__ __forceinline__ void store(float (*s)[kSimtPitch], int tid) const {
    if constexpr (L == Load::Scalar) {
#pragma unroll
      for (int v = 0; v < kPerThread; ++v) {
        const int idx = tid + v * kSimtThreads;
        s[idx / kSimtBlock][idx % kSimtBlock] = r[v];
      }
    } else if constexpr (L == Load::VecInner) {
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const int idx = tid + v * kSimtThreads, o = idx / 4, k = (idx % 4) * 4;
#pragma unroll
        for (int e = 0; e < 4; ++e) s[k + e][o] = r[4 * v + e];
      }
    } else {
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const int idx = tid + v * kSimtThreads, k = idx / 32, o = (idx % 32) * 4;
        *reinterpret_cast<float4*>(&s[k][o]) = make_float4(r[4 * v], r[4 * v + 1], r[4 * v + 2], r[4 * v + 3]);
      }
    }
  }
};

// Warp layout: 8 warps as 4 (m) x 2 (n), each warp 32 x 64; lane (lr = lane / 8, lc = lane % 8)
// owns rows {lr*4 .. +3, 16 + lr*4 .. +3} and columns {lc*4 .. +3, 32 + lc*4 .. +3} of its warp tile.
template <class T, Load LA, Load LB>
__global__ void __launch_bounds__(kSimtThreads) simt_gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
                                                         Operand<T> a, Operand<T> b, Output c, bool accumulate) {
  __shared__ __align__(16) float As[2][kSimtK][kSimtPitch];
  __shared__ __align__(16) float Bs[2][kSimtK][kSimtPitch];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row_base = (warp / 2) * 32 + (lane / 8) * 4, col_base = (warp % 2) * 64 + (lane % 8) * 4;
  int64_t tm, tn;
  tile_coords(ceil_div(M, kSimtBlock), ceil_div(N, kSimtBlock), tm, tn);
  const int64_t m0 = tm * kSimtBlock, n0 = tn * kSimtBlock;
  const int64_t k_tiles = ceil_div(K, kSimtK);

  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    const T* a_base = a.p + bi * a.batch;
    const T* b_base = b.p + bi * b.batch;
    float acc[8][8] = {};
    SimtTile<T, LA> ta;
    SimtTile<T, LB> tb;
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
        ta.load(a, a_base, m0, (kt + 1) * kSimtK, M, K, tid);
        tb.load(b, b_base, n0, (kt + 1) * kSimtK, N, K, tid);
      }
#pragma unroll
      for (int k = 0; k < kSimtK; ++k) {
        float fa[8], fb[8];
        *reinterpret_cast<float4*>(fa) = *reinterpret_cast<const float4*>(&As[cur][k][row_base]);
        *reinterpret_cast<float4*>(fa + 4) = *reinterpret_cast<const float4*>(&As[cur][k][row_base + 16]);
        *reinterpret_cast<float4*>(fb) = *reinterpret_cast<const float4*>(&Bs[cur][k][col_base]);
        *reinterpret_cast<float4*>(fb + 4) = *reinterpret_cast<const float4*>(&Bs[cur][k][col_base + 32]);
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

struct MmaTiles {
  static constexpr int kBlockM = 128, kBlockN = 128, kKBytes = 64, kStages = 4;
  // CTAs per SM the registers are budgeted for: 2 caps them at 128 and spills a little (sm_90).
  static constexpr int kMinBlocks = 1;
  static constexpr int kWarpsM = 2, kWarpsN = 4, kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kWarpM = kBlockM / kWarpsM, kWarpN = kBlockN / kWarpsN;  // 64 x 32
  static constexpr int kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;               // 4 x 4 mma tiles
};

// Shared-memory layout of one operand tile (o = m or n, 128 of them; k = 64 bytes of them):
//   k-contiguous operand: [o][k + 16 bytes]  (80-byte rows: the 8 rows of an ldmatrix hit 8
//                                             distinct groups of 4 banks)
//   o-contiguous operand: [k][o + 8 elements] (rows 4 or 8 banks apart: ldmatrix.trans and the
//                                             tf32 scalar fragment loads are conflict-free)
template <class T, bool KContig> struct MmaSmem {
  static constexpr int kChunk = 16 / sizeof(T);                    // elements per 16-byte cp.async
  static constexpr int kK = MmaTiles::kKBytes / sizeof(T);         // k per tile: 32 bf16, 16 float
  static constexpr int kO = MmaTiles::kBlockM;                     // == kBlockN
  static constexpr int kPitch = KContig ? kK + kChunk : kO + 8;    // elements per smem row
  static constexpr int kRows = KContig ? kO : kK;
  static constexpr int kElems = kRows * kPitch;

  // Queue the tile (o0.., k0..) of `base` as 16-byte cp.async chunks; chunks past O or K are zero.
  // The contiguous extent (K or O) is a multiple of kChunk, so each chunk is all in or all out.
  __device__ __forceinline__ static void copy(T* s, const T* base, int64_t ld, int64_t o0, int64_t k0, int64_t O,
                                              int64_t K, int tid) {
    constexpr int kChunksPerRow = (KContig ? kK : kO) / kChunk;
    constexpr int kChunks = kRows * kChunksPerRow;
    static_assert(kChunks % MmaTiles::kThreads == 0, "tile chunks must divide among the threads");
#pragma unroll
    for (int c = tid; c < kChunks; c += MmaTiles::kThreads) {
      const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * kChunk;
      int64_t o, k;
      if constexpr (KContig) o = o0 + row, k = k0 + col;
      else o = o0 + col, k = k0 + row;
      const bool in = o < O && k < K;
      const T* src = in ? (KContig ? base + o * ld + k : base + k * ld + o) : base;
      cp_async_16(s + row * kPitch + col, src, in);
    }
  }
};

// A fragments of the 16 rows at o (tile-relative) and k-step word offset kw (0 or 8).
template <class T, bool KContig>
__device__ __forceinline__ void load_a_frag(uint32_t (&a)[4], const T* s, int o, int kw, int lane) {
  using Sm = MmaSmem<T, KContig>;
  constexpr int kPerWord = 4 / sizeof(T);
  const int k = kw * kPerWord;
  if constexpr (KContig) {
    a_frag_m_major(a, s, Sm::kPitch, o, k, lane);
    if constexpr (std::is_same_v<T, float>)
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = to_tf32(__uint_as_float(a[i]));
  } else if constexpr (std::is_same_v<T, bf16>) {
    a_frag_k_major(a, s, Sm::kPitch, o, k, lane);
  } else {
    const int g = lane / 4, t = lane % 4;
    a[0] = to_tf32(s[(k + t) * Sm::kPitch + o + g]);
    a[1] = to_tf32(s[(k + t) * Sm::kPitch + o + g + 8]);
    a[2] = to_tf32(s[(k + t + 4) * Sm::kPitch + o + g]);
    a[3] = to_tf32(s[(k + t + 4) * Sm::kPitch + o + g + 8]);
  }
}

// B fragments of two n8 tiles at columns n..n+15: b[0], b[1] for n..n+7, b[2], b[3] for n+8..n+15.
template <class T, bool KContig>
__device__ __forceinline__ void load_b_frags(uint32_t (&b)[4], const T* s, int n, int kw, int lane) {
  using Sm = MmaSmem<T, KContig>;
  constexpr int kPerWord = 4 / sizeof(T);
  const int k = kw * kPerWord;
  if constexpr (KContig) {
    b_frags_n_major(b, s, Sm::kPitch, n, k, lane);
    if constexpr (std::is_same_v<T, float>)
#pragma unroll
      for (int i = 0; i < 4; ++i) b[i] = to_tf32(__uint_as_float(b[i]));
  } else if constexpr (std::is_same_v<T, bf16>) {
    b_frags_k_major(b, s, Sm::kPitch, n, k, lane);
  } else {
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      b[2 * h] = to_tf32(s[(k + t) * Sm::kPitch + n + 8 * h + g]);
      b[2 * h + 1] = to_tf32(s[(k + t + 4) * Sm::kPitch + n + 8 * h + g]);
    }
  }
}

template <class T, bool AK, bool BK>
constexpr int mma_smem_bytes() {
  return MmaTiles::kStages * (MmaSmem<T, AK>::kElems + MmaSmem<T, BK>::kElems) * int(sizeof(T));
}

// AK / BK: A (resp. B) is k-contiguous; otherwise m- (resp. n-) contiguous. Operand.outer /
// .inner hold the strides; the non-unit one is `ld` below.
template <class T, bool AK, bool BK>
__global__ void __launch_bounds__(MmaTiles::kThreads, MmaTiles::kMinBlocks) mma_gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
                                                              Operand<T> a, Operand<T> b, Output c, bool accumulate) {
  using SA = MmaSmem<T, AK>;
  using SB = MmaSmem<T, BK>;
  using Tl = MmaTiles;
  TG_DYNAMIC_SMEM(unsigned char, smem_raw);
  T* sa = reinterpret_cast<T*>(smem_raw);
  T* sb = sa + Tl::kStages * SA::kElems;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int warp_m = (warp / Tl::kWarpsN) * Tl::kWarpM, warp_n = (warp % Tl::kWarpsN) * Tl::kWarpN;
  int64_t tm, tn;
  tile_coords(ceil_div(M, Tl::kBlockM), ceil_div(N, Tl::kBlockN), tm, tn);
  const int64_t m0 = tm * Tl::kBlockM, n0 = tn * Tl::kBlockN;
  const int64_t a_ld = AK ? a.outer : a.inner, b_ld = BK ? b.outer : b.inner;
  constexpr int kTileK = SA::kK;
  const int64_t k_tiles = ceil_div(K, kTileK);

  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    const T* a_base = a.p + bi * a.batch;
    const T* b_base = b.p + bi * b.batch;
    auto queue_tile = [&](int64_t kt) {
      if (kt < k_tiles) {
        const int stage = kt % Tl::kStages;
        SA::copy(sa + stage * SA::kElems, a_base, a_ld, m0, kt * kTileK, M, K, tid);
        SB::copy(sb + stage * SB::kElems, b_base, b_ld, n0, kt * kTileK, N, K, tid);
      }
      cp_async_commit();  // an empty group past the end keeps the wait count uniform
    };

    float acc[Tl::kFragsM][Tl::kFragsN][4] = {};
#pragma unroll
    for (int s = 0; s < Tl::kStages - 1; ++s) queue_tile(s);

    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      cp_async_wait<Tl::kStages - 2>();  // tile kt has landed (for this thread's copies)...
      __syncthreads();                   // ...and for everyone's; stage (kt-1) % S is free again
      queue_tile(kt + Tl::kStages - 1);
      const T* ta = sa + (kt % Tl::kStages) * SA::kElems;
      const T* tb = sb + (kt % Tl::kStages) * SB::kElems;
#pragma unroll
      for (int kw = 0; kw < Tl::kKBytes / 4; kw += 8) {
        uint32_t fa[Tl::kFragsM][4], fb[Tl::kFragsN / 2][4];
#pragma unroll
        for (int i = 0; i < Tl::kFragsM; ++i) load_a_frag<T, AK>(fa[i], ta, warp_m + 16 * i, kw, lane);
#pragma unroll
        for (int j = 0; j < Tl::kFragsN / 2; ++j) load_b_frags<T, BK>(fb[j], tb, warp_n + 16 * j, kw, lane);
#pragma unroll
        for (int i = 0; i < Tl::kFragsM; ++i)
#pragma unroll
          for (int j = 0; j < Tl::kFragsN; ++j)
            mma_16x8(acc[i][j], fa[i], fb[j / 2][2 * (j % 2)], fb[j / 2][2 * (j % 2) + 1], T{});
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // the next batch item reuses the stages

    T* c_base = static_cast<T*>(c.p) + bi * c.batch;
    const bool pair_store = c.ld % 2 == 0 && reinterpret_cast<uintptr_t>(c_base) % (2 * sizeof(T)) == 0;
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < Tl::kFragsM; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + warp_m + 16 * i + g + 8 * h;
        if (row >= M) continue;
#pragma unroll
        for (int j = 0; j < Tl::kFragsN; ++j) {
          const int64_t col = n0 + warp_n + 8 * j + 2 * t;
          const float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
          T* dst = c_base + row * c.ld + col;
          if (pair_store && col + 1 < N) {
            store_pair<T>(dst, v0, v1, accumulate);
          } else {
            if (col < N) store_one(dst, v0, accumulate);
            if (col + 1 < N) store_one(dst + 1, v1, accumulate);
          }
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

template <class T, Load LA, Load LB>
void launch_simt(const GemmArgs& g, const Operand<T>& a, const Operand<T>& b, const Output& c, cudaStream_t s) {
  launch_kernel(simt_gemm<T, LA, LB>, grid_for(g.batch, g.M, g.N, kSimtBlock, kSimtBlock), kSimtThreads, 0, s, g.batch,
                g.M, g.N, g.K, a, b, c, g.accumulate);
}

template <class T, bool AK, bool BK>
void launch_mma(const GemmArgs& g, const Operand<T>& a, const Operand<T>& b, const Output& c, cudaStream_t s) {
  constexpr int bytes = mma_smem_bytes<T, AK, BK>();
  auto kernel = mma_gemm<T, AK, BK>;
  allow_dynamic_smem(kernel, bytes, g.device, "gemm: cudaFuncSetAttribute");
  launch_kernel(kernel, grid_for(g.batch, g.M, g.N, MmaTiles::kBlockM, MmaTiles::kBlockN), MmaTiles::kThreads, bytes, s,
                g.batch, g.M, g.N, g.K, a, b, c, g.accumulate);
}

// A as (m, k): outer a_row, inner a_col. B as (n, k): outer b_col, inner b_row.
template <class T> Operand<T> operand_a(const GemmArgs& g) {
  return {static_cast<const T*>(g.A), g.a_batch, g.a_row, g.a_col};
}
template <class T> Operand<T> operand_b(const GemmArgs& g) {
  return {static_cast<const T*>(g.B), g.b_batch, g.b_col, g.b_row};
}

template <class T>
bool try_mma(const GemmArgs& g, cudaStream_t s) {
  const Operand<T> a = operand_a<T>(g), b = operand_b<T>(g);
  const Output c{g.C, g.c_batch, g.ldc};
  constexpr int chunk = 16 / sizeof(T);
  const bool ak = a.inner == 1, bk = b.inner == 1;
  if (!ak && a.outer != 1) return false;
  if (!bk && b.outer != 1) return false;
  if (!vector_readable(a, ak, ak ? g.K : g.M, g.batch, chunk)) return false;
  if (!vector_readable(b, bk, bk ? g.K : g.N, g.batch, chunk)) return false;
  if (ak && bk) launch_mma<T, true, true>(g, a, b, c, s);
  else if (ak) launch_mma<T, true, false>(g, a, b, c, s);
  else if (bk) launch_mma<T, false, true>(g, a, b, c, s);
  else launch_mma<T, false, false>(g, a, b, c, s);
  return true;
}

template <class T>
void run_simt(const GemmArgs& g, cudaStream_t s) {
  const Operand<T> a = operand_a<T>(g), b = operand_b<T>(g);
  const Output c{g.C, g.c_batch, g.ldc};
  if constexpr (std::is_same_v<T, float>) {
    const bool ak = a.inner == 1, bk = b.inner == 1;
    const bool a_vec = (ak || a.outer == 1) && vector_readable(a, ak, ak ? g.K : g.M, g.batch, 4);
    const bool b_vec = (bk || b.outer == 1) && vector_readable(b, bk, bk ? g.K : g.N, g.batch, 4);
    if (a_vec && b_vec && g.K > 0) {
      if (ak && bk) return launch_simt<T, Load::VecInner, Load::VecInner>(g, a, b, c, s);
      if (ak) return launch_simt<T, Load::VecInner, Load::VecOuter>(g, a, b, c, s);
      if (bk) return launch_simt<T, Load::VecOuter, Load::VecInner>(g, a, b, c, s);
      return launch_simt<T, Load::VecOuter, Load::VecOuter>(g, a, b, c, s);
    }
  }
  launch_simt<T, Load::Scalar, Load::Scalar>(g, a, b, c, s);
}

void own_gemm(DType dtype, const GemmArgs& g, cudaStream_t s) {
  if (dtype == DType::Float32) {
    if (!(allow_tf32() && g.K > 0 && try_mma<float>(g, s))) run_simt<float>(g, s);
  } else if (dtype == DType::BFloat16) {
    if (!(g.K > 0 && try_mma<bf16>(g, s))) run_simt<bf16>(g, s);
  } else if (dtype == DType::Float64) {
    run_plain<double>(g, s);
  } else {
    run_plain<int64_t>(g, s);
  }
  check(cudaGetLastError(), "gemm kernel launch");
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
  TG_CHECK(g.batch >= 0 && g.M >= 0 && g.N >= 0 && g.K >= 0, ValueError, "gemm: negative size");
  if (g.batch == 0 || g.M == 0 || g.N == 0) return;
  DeviceScope scope(g.device);
#ifdef TAPEGRAD_WITH_CUBLAS
  if (gemm_backend() == GemmBackend::Cublas && (dtype == DType::Float32 || dtype == DType::BFloat16) &&
      cublas_gemm(dtype, g))
    return;
#endif
  own_gemm(dtype, g, scope.stream());
}

}  // namespace tg::cuda
