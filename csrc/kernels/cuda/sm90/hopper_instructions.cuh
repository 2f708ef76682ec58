// The sm_90a instructions tapegrad's Hopper kernels are built from, as small wrappers: mbarriers
// (a shared-memory barrier that also counts bytes copied in), TMA tensor copies, shared-memory
// matrix descriptors and warpgroup MMA (wgmma), setmaxnreg. Kernels never write this PTX inline,
// so that the emulator (emulator/hopper_emulator.h) can stand in for every one of
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

// Keeps the compiler from reusing a wgmma's register A operand before the wgmma has read it
// (after wgmma_wait, as fence_accumulators).
template <int N> __device__ __forceinline__ void fence_operands(uint32_t (&a)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(a[i])::"memory");
}

// Shared-memory writes of ordinary stores made visible to the async proxy (wgmma and TMA read
// shared memory through it): between a thread's st.shared and a wgmma that reads the data.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Named barrier `id` (1..15; 0 is __syncthreads) among `threads` threads: sync waits for them
// all, arrive counts this thread in and goes on.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// wgmma.mma_async m64nNk16, bfloat16 in, float32 accumulators d (64 x N over the warpgroup):
//   ss: d (+)= A (64 x 16) B (16 x N), both in shared memory (descriptors a, b); TransA / TransB
//       = 1: that operand is m- (n-) major.
//   rs: A from registers: warp w of the warpgroup gives rows 16w..16w + 15 of A in the mma.sync
//       m16n8k16 A layout (a[0] row g, k 2t, 2t + 1; a[1] row g + 8; a[2], a[3] the same at k + 8).
// accumulate = false: d = A B (the old d is ignored). Accumulator layout: warp w holds rows
// 16w..16w + 15 as N / 8 tiles of 16 x 8, d[4j..4j + 3] the tile at columns 8j.. in the mma.sync
// layout (rows g, g, g + 8, g + 8; columns 2t, 2t + 1), so a tile pair converts to an rs A
// fragment register for register.
template <int N> struct Wgmma;

#define TG_ACC8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define TG_ACC32(i) TG_ACC8(i), TG_ACC8(i + 8), TG_ACC8(i + 16), TG_ACC8(i + 24)
#define TG_REGS_0_31                                                                                      \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define TG_REGS_32_63                                                                                           \
  ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, " \
  "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define TG_REGS_64_127                                                                                           \
  ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, "  \
  "%85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, "    \
  "%105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, " \
  "%123, %124, %125, %126, %127"
// One shape: N, its accumulator list, the operand numbers after it (R = N / 2 accumulators: ss
// takes a, b, accumulate, TransA, TransB as %R..%R+4; rs takes a[0..3], b, accumulate, TransB as
// %R..%R+6), then the accumulators' constraints.
#define TG_WGMMA_SHAPE(N, REGS, SS_OPS, SS_PRED, RS_OPS, RS_PRED, ...)                                        \
  template <> struct Wgmma<N> {                                                                                  \
    template <int TransA, int TransB>                                                                            \
    __device__ __forceinline__ static void ss(float (&d)[N / 2], uint64_t a, uint64_t b, bool accumulate = true) { \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SS_PRED ", 0;\n"                                          \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" REGS "}, " SS_OPS ";\n}\n"      \
                   : __VA_ARGS__                                                                                 \
                   : "l"(a), "l"(b), "r"(int(accumulate)), "n"(TransA), "n"(TransB));                           \
    }                                                                                                            \
    template <int TransB>                                                                                        \
    __device__ __forceinline__ static void rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b,             \
                                              bool accumulate = true) {                                          \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " RS_PRED ", 0;\n"                                          \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" REGS "}, " RS_OPS ";\n}\n"      \
                   : __VA_ARGS__                                                                                 \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)), "n"(TransB));    \
    }                                                                                                            \
  };
TG_WGMMA_SHAPE(64, TG_REGS_0_31, "%32, %33, p, 1, 1, %35, %36", "%34", "{%32, %33, %34, %35}, %36, p, 1, 1, %38", "%37",
               TG_ACC32(0))
TG_WGMMA_SHAPE(128, TG_REGS_0_31 TG_REGS_32_63, "%64, %65, p, 1, 1, %67, %68", "%66",
               "{%64, %65, %66, %67}, %68, p, 1, 1, %70", "%69", TG_ACC32(0), TG_ACC32(32))
TG_WGMMA_SHAPE(256, TG_REGS_0_31 TG_REGS_32_63 TG_REGS_64_127, "%128, %129, p, 1, 1, %131, %132", "%130",
               "{%128, %129, %130, %131}, %132, p, 1, 1, %134", "%133", TG_ACC32(0), TG_ACC32(32), TG_ACC32(64),
               TG_ACC32(96))
#undef TG_ACC8
#undef TG_ACC32
#undef TG_REGS_0_31
#undef TG_REGS_32_63
#undef TG_REGS_64_127
#undef TG_WGMMA_SHAPE

}  // namespace tg::cuda::sm90

#endif  // TG_WARP_EMULATOR

namespace tg::cuda::sm90 {

// ---- the register split of a kernel of one producer and two consumer warpgroups ----
// __launch_bounds__(384, 1) gives each thread 168 registers (65536 / 384, rounded down to a
// multiple of 8). setmaxnreg.dec returns the producer's surplus to the CTA's pool and
// setmaxnreg.inc waits until the pool can pay the consumers, so a split over the launch's total
// would leave the consumers waiting forever: checked here, when the kernel is compiled.
template <int Producer, int Consumer> struct RegisterSplit {
  static_assert(Producer % 8 == 0 && Consumer % 8 == 0 && Producer >= 24 && Consumer <= 256,
                "setmaxnreg takes multiples of 8 in [24, 256]");
  static_assert(128 * Producer + 256 * Consumer <= 384 * 168, "the split needs more registers than 384 threads get");
  static constexpr int kThreads = 384;
  __device__ static void producer() { setmaxnreg_dec<Producer>(); }  // all of warpgroup 0
  __device__ static void consumers() { setmaxnreg_inc<Consumer>(); }  // all of warpgroups 1 and 2
};

}  // namespace tg::cuda::sm90
