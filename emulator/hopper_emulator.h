// The sm_90a instructions of kernels/cuda/sm90/hopper_instructions.cuh, emulated on the CPU from
// their definitions in the PTX ISA: mbarriers, TMA tensor copies (cp.async.bulk.tensor, with the
// swizzle), warpgroup MMA (wgmma.mma_async, operands in shared memory through matrix
// descriptors). Built with -DTG_WARP_EMULATOR, the Hopper kernels run their own index math,
// barriers and producer / consumer hand-offs on hopper_emulator.h, thread by thread, where no GPU
// is; tests/test_cuda_emulated.py compares their results with NumPy.
//
// What is and is not modelled. A wgmma runs when the wgmma_wait that retires its group does (its
// register A operand is taken at issue): reading the accumulators before that wait, or letting a
// stage be overwritten while a product that reads it is still pending, gives wrong results here
// as on a GPU. A TMA copy lands when some thread first waits on its mbarrier, so reading a stage
// without waiting for it sees stale bytes here too. Waiting on an mbarrier yields the fiber until
// the phase completes. Races between threads that do synchronise, and the memory model, are the
// GPU tests' to find.
// Only what tapegrad's kernels use is emulated: bfloat16 wgmma (A in shared memory or registers,
// B in shared memory, in the 128-byte swizzle), 3-d TMA loads, named barriers; anything else
// stops the process with a message, as an illegal instruction stops a GPU.
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace tg::cuda::sm90 {

namespace emu_hopper {

[[noreturn]] inline void fault(const char* what) {
  std::fprintf(stderr, "emulator: %s\n", what);
  std::abort();
}

inline unsigned char* shared_at(uint32_t address, uint32_t bytes = 1) {
  if (address + bytes > sizeof ::emu::dynamic_smem) fault("shared-memory access past the dynamic shared memory");
  return ::emu::dynamic_smem + address;
}

// The 128-byte swizzle (and its 64- and 32-byte cousins) as the hardware computes it from a
// shared address: the 16-byte chunk index, bits [4, 4 + log2(span / 16)), XORed with the same
// number of bits from bit 7 up (the row of 128 bytes within the pattern's period).
inline uint32_t swizzled(uint32_t address, int span_bytes) {
  if (span_bytes == 0) return address;
  const uint32_t mask = uint32_t(span_bytes / 16 - 1);
  return address ^ (((address >> 7) & mask) << 4);
}

// An mbarrier's state, kept in its own 64 bits: transaction bytes still expected, arrivals
// still expected in this phase, the arrival count per phase and the phase's parity.
struct Mbarrier {
  int32_t tx;
  uint16_t pending;
  uint16_t count : 15, phase : 1;
};
static_assert(sizeof(Mbarrier) == 8, "an mbarrier is 64 bits");

inline Mbarrier load(const uint64_t* bar) {
  Mbarrier m;
  std::memcpy(&m, bar, sizeof m);
  return m;
}
// Stores m, first completing the phase when every arrival and every byte is in.
inline void store(uint64_t* bar, Mbarrier m) {
  if (m.pending == 0 && m.tx == 0) m.pending = m.count, m.phase ^= 1;
  std::memcpy(bar, &m, sizeof m);
  ++::emu::progress;
}

// One element of a bfloat16 wgmma operand in shared memory: `row` is m (for A) or n (for B).
// The descriptor's layouts (PTX ISA, "shared memory matrix layout", 128-byte swizzle):
//   k-major: row r, k at start + (r / 8) SBO + (r % 8) 128 + 2k          (LBO unused)
//   mn-major: at start + (r / 64) LBO + (k / 8) SBO + (k % 8) 128 + 2 (r % 64)
// and the swizzle applied to the resulting address.
struct Operand {
  uint32_t start, lbo, sbo;
  bool mn_major;
  Operand(uint64_t desc, bool mn) : mn_major(mn) {
    start = uint32_t(desc & 0x3FFF) << 4;
    lbo = uint32_t((desc >> 16) & 0x3FFF) << 4;
    sbo = uint32_t((desc >> 32) & 0x3FFF) << 4;
    if ((desc >> 62) != 1 || ((desc >> 49) & 7) != 0)
      fault("wgmma: only operands in the 128-byte swizzle, base offset 0, are emulated");
    // With base offset 0 the pattern's rows are counted from the start, which must then sit on a
    // row-0 boundary of the pattern (address bits 7-9 clear), as the TMA's swizzle counts them
    // from the address: where the two could disagree, stop.
    if ((start >> 7) & 7) fault("wgmma: a descriptor start inside a 1024-byte swizzle pattern needs a base offset");
  }
  float at(int row, int k) const {
    const uint32_t offset = mn_major ? (row / 64) * lbo + (k / 8) * sbo + (k % 8) * 128 + (row % 64) * 2
                                     : (row / 8) * sbo + (row % 8) * 128 + k * 2;
    uint16_t bits;
    std::memcpy(&bits, shared_at(swizzled(start + offset, 128), 2), 2);
    return static_cast<float>(tg::bfloat16::from_bits(bits));
  }
};

// d (64 x N) (+)= A (64 x 16) B (16 x N) for this thread's accumulators, given its rows of A
// (a[h][k]: row 16w + g + 8h of the warpgroup's 64): warp w, lane (g, t) holds d[4j + 2h + c] =
// element (16w + g + 8h, 8j + 2t + c).
inline void wgmma_rows(float* d, int N, const float (&a)[2][16], const Operand& B, bool accumulate) {
  const int t = ::emu::lane() % 4;
  if (!accumulate)
    for (int i = 0; i < N / 2; ++i) d[i] = 0.f;
  for (int j = 0; j < N / 8; ++j)
    for (int c = 0; c < 2; ++c) {
      float b[16];
      for (int k = 0; k < 16; ++k) b[k] = B.at(8 * j + 2 * t + c, k);
      for (int h = 0; h < 2; ++h) {
        float acc = d[4 * j + 2 * h + c];
        for (int k = 0; k < 16; ++k) acc += a[h][k] * b[k];
        d[4 * j + 2 * h + c] = acc;
      }
    }
}

// Queues work for the thread's next commit group.
inline void issue(std::function<void()> op) { ::emu::current->async_ops.push_back(std::move(op)); }

// Both operands in shared memory, read when the product runs.
inline void wgmma_ss(float* d, int N, uint64_t a_desc, bool a_mn_major, uint64_t b_desc, bool b_mn_major,
                     bool accumulate) {
  const int warp = (::emu::linear_tid % 128) / 32, g = ::emu::lane() / 4;
  issue([=] {
    const Operand A(a_desc, a_mn_major), B(b_desc, b_mn_major);
    float a[2][16];
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 16; ++k) a[h][k] = A.at(16 * warp + g + 8 * h, k);
    wgmma_rows(d, N, a, B, accumulate);
  });
}

// A from registers, each warp's 16 rows in the m16n8k16 A layout: element (row r, k) of the warp's
// rows is half k % 2 of register (r / 8) + 2 (k / 8) of lane 4 (r % 8) + (k % 8) / 2.
inline void wgmma_rs(float* d, int N, const uint32_t (&frag)[4], uint64_t b_desc, bool b_mn_major, bool accumulate) {
  ::emu::Warp& w = ::emu::warp();
  const int l = ::emu::lane(), g = l / 4;
  for (int i = 0; i < 4; ++i) w.slot[l][i] = frag[i];
  w.bar.arrive_and_wait();
  float a[2][16];
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 16; ++k) {
      const int row = g + 8 * h;
      const uint32_t word = static_cast<uint32_t>(w.slot[4 * (row % 8) + (k % 8) / 2][row / 8 + 2 * (k / 8)]);
      a[h][k] = static_cast<float>(tg::bfloat16::from_bits(static_cast<uint16_t>(k % 2 ? word >> 16 : word & 0xFFFFu)));
    }
  w.bar.arrive_and_wait();
  issue([=] { wgmma_rows(d, N, a, Operand(b_desc, b_mn_major), accumulate); });
}

// Lands the copies in flight that complete `bar`, in the order they were issued.
inline void land_copies(const uint64_t* bar) {
  auto& copies = ::emu::block->copies_in_flight;
  for (size_t i = 0; i < copies.size();) {
    if (copies[i].first != bar) {
      ++i;
      continue;
    }
    const std::function<void()> land = std::move(copies[i].second);
    copies.erase(copies.begin() + static_cast<std::ptrdiff_t>(i));
    land();
  }
}

}  // namespace emu_hopper

inline void mbarrier_init(uint64_t* bar, uint32_t count) {
  emu_hopper::Mbarrier m{0, static_cast<uint16_t>(count), static_cast<uint16_t>(count), 0};
  std::memcpy(bar, &m, sizeof m);
}
inline void fence_mbarrier_init() {}
inline void mbarrier_arrive(uint64_t* bar) {
  emu_hopper::Mbarrier m = emu_hopper::load(bar);
  if (m.pending == 0) emu_hopper::fault("mbarrier: more arrivals than the barrier's count");
  --m.pending;
  emu_hopper::store(bar, m);
}
inline void mbarrier_expect_bytes(uint64_t* bar, uint32_t bytes) {
  emu_hopper::Mbarrier m = emu_hopper::load(bar);
  m.tx += static_cast<int32_t>(bytes);
  std::memcpy(bar, &m, sizeof m);
  mbarrier_arrive(bar);
}
// The phase of this parity has completed once the barrier's current phase has the other one.
inline void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  emu_hopper::land_copies(bar);
  while (emu_hopper::load(bar).phase == (parity & 1)) {
    ::emu::yield();
    emu_hopper::land_copies(bar);
  }
}

// cp.async.bulk.tensor.3d: the box at (c0, c1, c2), element (x, y, z) of the box at byte
// ((z box1 + y) box0 + x) * size from dst, swizzled; zeros outside the tensor. Then the bytes
// complete on `bar`. In flight until a thread waits on `bar`.
inline void tma_load(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1, int c2) {
  const ::emu::TensorMap m = ::emu::tensor_map_of(map);
  if (m.rank != 3) emu_hopper::fault("tma_load: a 3-d copy of a tensor map of another rank");
  const uint32_t base = smem_address(dst);
  if (base % 128 != 0) emu_hopper::fault("tma_load: shared destination not 128-byte aligned");
  const int64_t origin[3] = {c0, c1, c2};
  ::emu::block->copies_in_flight.emplace_back(bar, [=] {
    const uint32_t size = static_cast<uint32_t>(m.element_bytes);
    uint32_t offset = 0;
    for (uint32_t z = 0; z < m.box[2]; ++z)
      for (uint32_t y = 0; y < m.box[1]; ++y)
        for (uint32_t x = 0; x < m.box[0]; ++x, offset += size) {
          const int64_t at[3] = {origin[0] + x, origin[1] + y, origin[2] + z};
          unsigned char* to = emu_hopper::shared_at(emu_hopper::swizzled(base + offset, m.swizzle_bytes), size);
          bool inside = true;
          for (int i = 0; i < 3; ++i) inside = inside && at[i] >= 0 && uint64_t(at[i]) < m.dims[i];
          if (inside)
            std::memcpy(to, m.base + at[0] * m.strides[0] + at[1] * m.strides[1] + at[2] * m.strides[2], size);
          else
            std::memset(to, 0, size);
        }
    emu_hopper::Mbarrier b = emu_hopper::load(bar);
    b.tx -= static_cast<int32_t>(offset);
    emu_hopper::store(bar, b);
  });
}

template <int Registers> inline void setmaxnreg_dec() {}
template <int Registers> inline void setmaxnreg_inc() {}

inline void wgmma_fence() {}
// Closes the group of the wgmmas issued since the last commit.
inline void wgmma_commit() {
  ::emu::Fiber& f = *::emu::current;
  f.async_group_ends.push_back(f.async_ops.size());
}
// Runs the oldest committed groups until at most Pending are left.
template <int Pending> inline void wgmma_wait() {
  ::emu::Fiber& f = *::emu::current;
  const size_t groups = f.async_group_ends.size();
  if (groups <= static_cast<size_t>(Pending)) return;
  const size_t retire = groups - Pending, end = f.async_group_ends[retire - 1];
  for (size_t i = 0; i < end; ++i) f.async_ops[i]();
  f.async_ops.erase(f.async_ops.begin(), f.async_ops.begin() + static_cast<std::ptrdiff_t>(end));
  f.async_group_ends.erase(f.async_group_ends.begin(), f.async_group_ends.begin() + static_cast<std::ptrdiff_t>(retire));
  for (size_t& e : f.async_group_ends) e -= end;
}
template <int N> inline void fence_accumulators(float (&)[N]) {}
template <int N> inline void fence_operands(uint32_t (&)[N]) {}
inline void fence_async_shared() {}

inline void named_barrier_sync(int id, int threads) {
  ::emu::Barrier& b = ::emu::block->named[id];
  b.count = threads;
  b.arrive_and_wait();
}
inline void named_barrier_arrive(int id, int threads) {
  ::emu::Barrier& b = ::emu::block->named[id];
  b.count = threads;
  b.arrive();
}

template <int N> struct Wgmma {
  static_assert(N % 8 == 0 && N >= 8 && N <= 256, "wgmma m64nNk16: N a multiple of 8 up to 256");
  template <int TransA, int TransB> static void ss(float (&d)[N / 2], uint64_t a, uint64_t b, bool accumulate = true) {
    emu_hopper::wgmma_ss(d, N, a, TransA != 0, b, TransB != 0, accumulate);
  }
  template <int TransB> static void rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b, bool accumulate = true) {
    emu_hopper::wgmma_rs(d, N, a, b, TransB != 0, accumulate);
  }
};

}  // namespace tg::cuda::sm90
