// The sm_80 instructions of kernels/cuda/device_utils.cuh, emulated on the CPU lane by lane,
// from their definitions in the PTX ISA (ldmatrix, mma.sync m16n8k16 .bf16 and m16n8k8 .tf32,
// cp.async). Built with -DTG_WARP_EMULATOR, device_utils.cuh takes these instead of its inline
// PTX, so that the tensor-core kernels' index math can be run and checked where no GPU is.
// Every lane of a warp calls each function (as with the real .sync instructions); each call
// publishes the lane's operands, waits for the warp, computes the lane's results, waits again.
// (The lanes are fibers of one host thread: nothing here may be kept in static or thread_local
// storage across a wait.)
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace tg::cuda {

// cp.async: a plain 16-byte copy (zeros when !valid); the groups need no waiting.
inline void cp_async_16(void* smem, const void* gmem, bool valid) {
  if (valid) std::memcpy(smem, gmem, 16);
  else std::memset(smem, 0, 16);
}
inline void cp_async_commit() {}
template <int Pending> inline void cp_async_wait() {}

namespace emu_detail {

inline uint32_t word_at(const void* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}
inline uint16_t half_at(const void* p, int element) {
  uint16_t h;
  std::memcpy(&h, static_cast<const char*>(p) + 2 * element, 2);
  return h;
}
// Publishes this lane's row address, then returns every lane's.
inline std::array<const void*, 32> share_addresses(const void* row) {
  ::emu::Warp& w = ::emu::warp();
  std::memcpy(&w.slot[::emu::lane()][0], &row, sizeof row);
  w.bar.arrive_and_wait();
  std::array<const void*, 32> rows;
  for (int l = 0; l < 32; ++l) std::memcpy(&rows[l], &w.slot[l][0], sizeof(void*));
  w.bar.arrive_and_wait();
  return rows;
}

}  // namespace emu_detail

// ldmatrix.x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i (16-bit elements); lane l
// receives, in r[i], elements 2 (l % 4) and 2 (l % 4) + 1 of row l / 4 of matrix i.
inline void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const std::array<const void*, 32> rows = emu_detail::share_addresses(smem);
  const int l = ::emu::lane();
  for (int i = 0; i < 4; ++i) r[i] = emu_detail::word_at(static_cast<const char*>(rows[8 * i + l / 4]) + 4 * (l % 4));
}
// ldmatrix.x4.trans: each matrix is delivered transposed: lane l receives elements (row 2 (l % 4),
// column l / 4) and (row 2 (l % 4) + 1, column l / 4) of matrix i, the first in the low half.
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  const std::array<const void*, 32> rows = emu_detail::share_addresses(smem);
  const int l = ::emu::lane();
  for (int i = 0; i < 4; ++i) {
    const uint32_t lo = emu_detail::half_at(rows[8 * i + 2 * (l % 4)], l / 4);
    const uint32_t hi = emu_detail::half_at(rows[8 * i + 2 * (l % 4) + 1], l / 4);
    r[i] = lo | (hi << 16);
  }
}

namespace emu_detail {

inline float bf16_of(uint32_t word, int half) {
  return static_cast<float>(tg::bfloat16::from_bits(static_cast<uint16_t>(half ? word >> 16 : word & 0xFFFFu)));
}

// D = A B + C for one m16n8 tile: every lane publishes a[4], b0, b1; lane (g, t) computes its
// four C elements (rows g, g + 8; columns 2t, 2t + 1). elem_a(row, k) / elem_b(k, col) read the
// published fragments.
template <class ElemA, class ElemB>
void mma_tile(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, int K, ElemA elem_a, ElemB elem_b) {
  ::emu::Warp& w = ::emu::warp();
  const int l = ::emu::lane();
  for (int i = 0; i < 4; ++i) w.slot[l][i] = a[i];
  w.slot[l][4] = b0, w.slot[l][5] = b1;
  w.bar.arrive_and_wait();
  const int g = l / 4, t = l % 4;
  for (int e = 0; e < 4; ++e) {
    const int row = g + 8 * (e / 2), col = 2 * t + e % 2;
    float acc = c[e];
    for (int k = 0; k < K; ++k) acc += elem_a(w, row, k) * elem_b(w, k, col);
    c[e] = acc;
  }
  w.bar.arrive_and_wait();
}

}  // namespace emu_detail

// m16n8k16 .bf16: A register j of lane (g, t) holds (row g + 8 (j % 2), k 2t + 8 (j / 2) + {0, 1});
// B register j holds (k 2t + 8 j + {0, 1}, column g).
inline void mma_16x8(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, __nv_bfloat16) {
  using emu_detail::bf16_of;
  emu_detail::mma_tile(
      c, a, b0, b1, 16,
      [](::emu::Warp& w, int row, int k) {
        const int lane = 4 * (row % 8) + (k % 8) / 2, reg = (row / 8) + 2 * (k / 8);
        return bf16_of(static_cast<uint32_t>(w.slot[lane][reg]), k % 2);
      },
      [](::emu::Warp& w, int k, int col) {
        const int lane = 4 * col + (k % 8) / 2, reg = 4 + k / 8;
        return bf16_of(static_cast<uint32_t>(w.slot[lane][reg]), k % 2);
      });
}
// m16n8k8 .tf32: A register j of lane (g, t) holds (row g + 8 (j % 2), k t + 4 (j / 2));
// B register j holds (k t + 4 j, column g).
inline void mma_16x8(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, float) {
  auto as_float = [](uint64_t word) {
    float f;
    const uint32_t u = static_cast<uint32_t>(word);
    std::memcpy(&f, &u, 4);
    return f;
  };
  emu_detail::mma_tile(
      c, a, b0, b1, 8,
      [as_float](::emu::Warp& w, int row, int k) { return as_float(w.slot[4 * (row % 8) + k % 4][(row / 8) + 2 * (k / 4)]); },
      [as_float](::emu::Warp& w, int k, int col) { return as_float(w.slot[4 * col + k % 4][4 + k / 4]); });
}

// cvt.rna.tf32.f32: keep 10 mantissa bits, rounding half away from zero.
inline uint32_t to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0x1000u) & 0xFFFFE000u;
  return u;
}

}  // namespace tg::cuda
