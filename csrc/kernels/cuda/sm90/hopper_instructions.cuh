// The sm_90a instructions tapegrad's Hopper kernels are built from, as small wrappers: mbarriers
// (a shared-memory barrier that also counts bytes copied in), TMA tensor copies, shared-memory
// matrix descriptors and warpgroup MMA (wgmma), setmaxnreg. Kernels never write this PTX inline,
// so that the emulator (kernels/cuda/emulator/hopper_emulator.h) can stand in for every one of
// them and the kernels' index math runs, and is tested, where no Hopper GPU is.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tg::cuda::sm90 {

// A shared-memory address as the instructions take it (32 bits, in the CTA's shared window).
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Matrix descriptor of an operand tile at p in shared memory, written with the 128-byte swizzle
// (PTX ISA, "matrix descriptor"): start address, leading and stride byte offsets (in 16-byte
// units, 14 bits each), swizzle mode 1 (128 bytes) in bits 62-63. What LBO and SBO mean:
//   k-major (A as (m, k), B as (n, k), k contiguous): rows of 128 bytes (64 bfloat16 of k), 8-row
//       groups SBO apart; LBO unused (a k16 step stays inside a row: start + 32 bytes).
//   mn-major (m or n contiguous): 8 k rows of 128 bytes (64 m / n) make a group, groups SBO
//       apart along k; the next 64 m / n are LBO on.
// Either way the swizzle is a function of the final address: 16-byte chunk bits [4, 7) are
// XORed with bits [7, 10), so a tile must start 1024-byte aligned, as the TMA writes it.
__device__ __forceinline__ uint64_t matrix_descriptor(const void* p, uint32_t lbo, uint32_t sbo) {
  return uint64_t((smem_address(p) & 0x3FFFF) >> 4) | uint64_t((lbo >> 4) & 0x3FFF) << 16 |
         uint64_t((sbo >> 4) & 0x3FFF) << 32 | uint64_t(1) << 62;
}

}  // namespace tg::cuda::sm90

#ifdef TG_WARP_EMULATOR
#include "hopper_emulator.h"
#else

namespace tg::cuda::sm90 {

// ---- mbarriers: a phase completes when `count` threads have arrived and every byte announced
// with expect_bytes has been written by the copy engine; waiters name the phase by its parity.
__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(count));
}
// Makes initialised mbarriers visible to the copy engine (once, after the inits, before a sync).
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Arrives and announces `bytes` of copies still to land before the phase completes.
__device__ __forceinline__ void mbarrier_expect_bytes(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_address(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_address(bar)) : "memory");
}
// Waits until the phase of parity `parity` has completed. A fresh barrier is in phase 0, so
// waiting on parity 1 returns at once.
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_address(bar)), "r"(parity)
        : "memory");
  } while (!done);
}

// ---- TMA: box (c0, c1, c2) of the tensor `map` describes, into shared memory at dst (laid out
// and swizzled as the map says, zeros where the box leaves the tensor); its bytes complete a
// transaction on `bar`.
__device__ __forceinline__ void tma_load(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];\n" ::
          "r"(smem_address(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_address(bar)), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// ---- register budget of a warpgroup (all four warps execute it) ----
template <int Registers> __device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Registers));
}
template <int Registers> __device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Registers));
}

// ---- wgmma: asynchronous warpgroup products. fence before the first wgmma that touches
// registers written since; commit closes a group of issued wgmmas; wait<P> returns when at most
// P groups are still running.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int Pending> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}
// Keeps the compiler from moving accumulator reads or writes across a wgmma fence or wait (the
// asynchronous wgmma writes registers the compiler cannot see it write).
template <int N> __device__ __forceinline__ void fence_accumulators(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// d (64 x N, float32) += A (64 x 16) @ B (16 x N), bfloat16, both operands in shared memory
// (descriptors a, b); TransA / TransB = 1: the operand is m- (n-) major. Accumulator layout: warp
// w of the warpgroup holds rows 16w..16w + 15 as N / 8 tiles of 16 x 8, d[4j..4j + 3] the tile at
// columns 8j.. in the mma.sync layout (rows g, g, g + 8, g + 8; columns 2t, 2t + 1).
template <int N> struct Wgmma;

#define TG_ACC8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])

template <> struct Wgmma<256> {
  template <int TransA, int TransB> __device__ __forceinline__ static void run(float (&d)[128], uint64_t a, uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p, 1, 1, %131, %132;\n}\n"
        : TG_ACC8(0), TG_ACC8(8), TG_ACC8(16), TG_ACC8(24), TG_ACC8(32), TG_ACC8(40), TG_ACC8(48), TG_ACC8(56),
          TG_ACC8(64), TG_ACC8(72), TG_ACC8(80), TG_ACC8(88), TG_ACC8(96), TG_ACC8(104), TG_ACC8(112), TG_ACC8(120)
        : "l"(a), "l"(b), "r"(1), "n"(TransA), "n"(TransB));
  }
};

template <> struct Wgmma<128> {
  template <int TransA, int TransB> __device__ __forceinline__ static void run(float (&d)[64], uint64_t a, uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1, %67, %68;\n}\n"
        : TG_ACC8(0), TG_ACC8(8), TG_ACC8(16), TG_ACC8(24), TG_ACC8(32), TG_ACC8(40), TG_ACC8(48), TG_ACC8(56)
        : "l"(a), "l"(b), "r"(1), "n"(TransA), "n"(TransB));
  }
};
#undef TG_ACC8

}  // namespace tg::cuda::sm90

#endif  // TG_WARP_EMULATOR
