// simt_gemm: the float32 FMA GEMM kernel (gemm.cu's header comment describes it; gemm.cu picks
// its configuration and launches it).
#pragma once
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_operand.cuh"

namespace tg::cuda {

namespace {

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

}  // namespace
}  // namespace tg::cuda
