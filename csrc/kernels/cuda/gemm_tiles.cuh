// What the GEMM kernels (gemm.cu, sm90/gemm_wgmma.cu) share: the output, the order in which CTAs
// take tiles, and the stores of finished C elements.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/device_utils.cuh"

namespace tg::cuda {

struct GemmOutput {
  void* p;
  int64_t batch, ld;
};

// Grouped tile order: runs of 8 consecutive tile rows sweep the tile columns together, so the
// A rows and B columns of the tiles in flight stay in L2. `pid` is the tile's index in launch order.
__device__ __forceinline__ void tile_coords(int64_t pid, int64_t tiles_m, int64_t tiles_n, int64_t& tm, int64_t& tn) {
  constexpr int64_t kGroup = 8;
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
__device__ __forceinline__ void store_pair<__nv_bfloat16>(__nv_bfloat16* c, float v0, float v1, bool accumulate) {
  if (accumulate) {
    const __nv_bfloat162 old = *reinterpret_cast<const __nv_bfloat162*>(c);
    v0 += __low2float(old);
    v1 += __high2float(old);
  }
  *reinterpret_cast<__nv_bfloat162*>(c) = __floats2bfloat162_rn(v0, v1);
}

// C(i, j) and C(i, j + 1) at dst, the columns j, j + 1 bounds-checked against N: one pair store
// where `pair_store` (even ld, aligned C). An mma accumulator tile (16 x 8, and each 16-row slice
// of a wgmma's) holds such pairs: lane l has row l / 4 (values 0, 1) and row l / 4 + 8 (2, 3), at
// columns 2 (l % 4) and + 1.
template <class T>
__device__ __forceinline__ void store_two(T* dst, int64_t col, int64_t N, float v0, float v1, bool pair_store,
                                          bool accumulate) {
  if (pair_store && col + 1 < N) {
    store_pair<T>(dst, v0, v1, accumulate);
  } else {
    if (col < N) store_one(dst, v0, accumulate);
    if (col + 1 < N) store_one(dst + 1, v1, accumulate);
  }
}

}  // namespace tg::cuda
