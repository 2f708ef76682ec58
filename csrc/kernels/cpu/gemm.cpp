// GEMM: C[M,N] (+)= A[M,K] @ B[K,N], the Goto/BLIS way.
//
//   for jc (NC columns of B)        B block  [kc x nc] packed into NR-wide column panels
//     for pc (KC of the K axis)     A block  [mc x kc] packed into MR-tall row panels
//       for ic (MC rows of A)  -- threads --
//         for jr, ir: micro-kernel: an MR x NR tile of C held in vector registers,
//                     updated by kc rank-1 products (one broadcast of A times one row of B)
//
// The micro-kernel is written with GCC/Clang vector types and compiled three times: for AVX-512,
// for AVX2+FMA and for a portable baseline; the CPU picks one at run time, so a wheel built here
// runs (correctly, if slower) on any x86-64 and elsewhere. TAPEGRAD_GEMM=portable forces the
// baseline (the tests use it to check that path; it shares the AVX-512 tile shape).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/config.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

template <class T, int Bytes> struct Vec;
template <> struct Vec<float, 32> { typedef float type __attribute__((vector_size(32))); };
template <> struct Vec<float, 64> { typedef float type __attribute__((vector_size(64))); };
template <> struct Vec<double, 32> { typedef double type __attribute__((vector_size(32))); };
template <> struct Vec<double, 64> { typedef double type __attribute__((vector_size(64))); };

constexpr int64_t KC = 256, MC = 96, NC = 2048;

// Ap[panel][k][0..MR) = A[ic + panel*MR + i, pc + k], zero past the edge.
template <class T, int MR>
__attribute__((always_inline)) inline void pack_a(const T* A, int64_t rs, int64_t cs, int64_t mc, int64_t kc, T* Ap) {
  for (int64_t p = 0; p < mc; p += MR) {
    int64_t mr = std::min<int64_t>(MR, mc - p);
    if (mr == MR) {  // a whole panel: a fixed count per k, unrolled (no compare per element)
      for (int64_t k = 0; k < kc; ++k, Ap += MR)
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) Ap[i] = A[(p + i) * rs + k * cs];
      continue;
    }
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < mr; ++i) Ap[i] = A[(p + i) * rs + k * cs];
      for (int64_t i = mr; i < MR; ++i) Ap[i] = T(0);
      Ap += MR;
    }
  }
}

// Bp[panel][k][0..NR) = B[pc + k, jc + panel*NR + j], zero past the edge, for panels [pb, pe).
// SIMD-cloned like the other hot loops: with M small (a convolution's 64 output channels) B is
// reused by few tiles and its packing is a fifth of the product; 16-wide copies halve it.
template <class T>
TG_SIMD_CLONES void pack_b_panels(const T* B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int64_t NR, T* Bp,
                                  int64_t pb, int64_t pe) {
  for (int64_t p = pb; p < pe; ++p) {
    const int64_t nr = std::min<int64_t>(NR, nc - p * NR);
    T* dst = Bp + p * NR * kc;
    if (rs == 1 && cs != 1) {  // B = X^T with X row-major (q k^T): each column of B is contiguous
      for (int64_t j = 0; j < nr; ++j) {
        const T* col = B + (p * NR + j) * cs;
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = col[k];
      }
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = T(0);
      continue;
    }
    for (int64_t k = 0; k < kc; ++k, dst += NR) {
      const T* src = B + k * rs + p * NR * cs;
      if (cs == 1 && nr == NR) {  // a loop, not memcpy: a call per 128 bytes cost more than the copy
        for (int64_t j = 0; j < NR; ++j) dst[j] = src[j];
      } else {
        for (int64_t j = 0; j < nr; ++j) dst[j] = src[j * cs];
        for (int64_t j = nr; j < NR; ++j) dst[j] = T(0);
      }
    }
  }
}

template <class T>
void pack_b(const T* B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int64_t NR, T* Bp) {
  const int64_t panels = (nc + NR - 1) / NR;
  // Threads only for a block worth it (~256 KB): a parallel region costs microseconds, and far
  // more when the cores are shared with other processes.
  const int64_t panel_elems = std::max<int64_t>(1, NR * kc);
  parallel_for(panels, grain_for(panel_elems, int64_t(1) << 16),
               [&](int64_t pb, int64_t pe) { pack_b_panels(B, rs, cs, kc, nc, NR, Bp, pb, pe); });
}

// C tile [mr x nr] (+)= Ap panel [kc x MR]^T @ Bp panel [kc x NR], plus bias[0..nr) on each row
// when given (the epilogue: the first K step of a product that does not accumulate).
template <class T, int VB, int MR, int NR>
__attribute__((always_inline)) inline void micro_kernel(int64_t kc, const T* __restrict Ap, const T* __restrict Bp,
                                                        T* C, int64_t ldc, int64_t mr, int64_t nr, bool accumulate,
                                                        const T* bias) {
  using V = typename Vec<T, VB>::type;
  constexpr int L = VB / sizeof(T), NV = NR / L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) std::memcpy(&b[j], Bp + j * L, sizeof(V));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T a = Ap[i];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += b[j] * a;
    }
    Ap += MR;
    Bp += NR;
  }
  if (mr == MR && nr == NR) {
    V row_bias[NV];
    for (int j = 0; j < NV; ++j)
      if (bias) std::memcpy(&row_bias[j], bias + j * L, sizeof(V));
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NV; ++j) {
        T* c = C + i * ldc + j * L;
        V cur = acc[i][j];
        if (accumulate) {
          V old;
          std::memcpy(&old, c, sizeof(V));
          cur += old;
        } else if (bias) {
          cur += row_bias[j];
        }
        std::memcpy(c, &cur, sizeof(V));
      }
    return;
  }
  alignas(64) T tile[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) std::memcpy(tile + i * NR + j * L, &acc[i][j], sizeof(V));
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      C[i * ldc + j] = (accumulate ? C[i * ldc + j] : bias ? bias[j] : T(0)) + tile[i * NR + j];
}

// One (jc, pc) step of the blocked product: Bp is packed; tasks [tb, te) are
// (row block of MC, group of column panels) pairs.
template <class T>
struct BlockStep {
  const T* A;
  int64_t ars, acs;
  const T* Bp;
  T* C;
  int64_t ldc, M, mc, nc, kc, jc, n_panels, panel_group, n_groups;  // mc: rows per row block
  bool accumulate;
  const T* bias;  // (N) added to each row, or null; only in a step that does not accumulate
};

// The compute of a range of tasks: packs its A blocks, runs the micro-kernel. No lambdas and
// no OpenMP in here, so that the whole body takes the instruction set of the caller's target.
template <class T, int VB, int MR, int NR>
__attribute__((always_inline)) inline void run_tasks(const BlockStep<T>& s, int64_t tb, int64_t te, T* Ap) {
  int64_t packed_block = -1;
  for (int64_t t = tb; t < te; ++t) {
    const int64_t ib = t / s.n_groups, g = t % s.n_groups;
    const int64_t ic = ib * s.mc, mc = std::min(s.mc, s.M - ic);
    if (packed_block != ib) {
      pack_a<T, MR>(s.A + ic * s.ars, s.ars, s.acs, mc, s.kc, Ap);
      packed_block = ib;
    }
    const int64_t p_end = std::min(s.n_panels, (g + 1) * s.panel_group);
    for (int64_t p = g * s.panel_group; p < p_end; ++p) {
      const int64_t jr = p * NR, nr = std::min<int64_t>(NR, s.nc - jr);
      for (int64_t ir = 0; ir < mc; ir += MR)
        micro_kernel<T, VB, MR, NR>(s.kc, Ap + ir * s.kc, s.Bp + p * NR * s.kc, s.C + (ic + ir) * s.ldc + s.jc + jr,
                                    s.ldc, std::min<int64_t>(MR, mc - ir), nr, s.accumulate,
                                    s.bias ? s.bias + s.jc + jr : nullptr);
    }
  }
}

template <class T>
struct Variant {
  void (*tasks)(const BlockStep<T>&, int64_t, int64_t, T*);
  int64_t MR, NR;
};

// Rows per row block: at most MC, a multiple of MR, and near-equal blocks in a count the threads
// split evenly when the tasks are few. M = 307 in blocks of 96 is 96, 96, 96, 19: two threads get
// 192 and 115 rows; in four blocks of 80 they get 160 and 147. M = 128: 96 + 32 -> 64 + 64.
int64_t row_block_height(int64_t M, int64_t MR, int64_t n_groups) {
  const int64_t threads = available_threads();
  int64_t blocks = (M + MC - 1) / MC;
  if ((blocks * n_groups) % threads != 0 && blocks * n_groups < 8 * threads)
    blocks = (blocks + threads - 1) / threads * threads;
  const int64_t rows = (M + blocks - 1) / blocks;
  return std::min(MC, std::max(MR, (rows + MR - 1) / MR * MR));
}

// A packing buffer of at least n elements, 64-byte aligned: one per thread and per operand (A, B),
// grown when a product needs more and kept. Attention runs thousands of small products a step,
// and each would otherwise allocate (and zero) its buffers.
enum class Packed { A, B };
template <class T>
T* packing_buffer(Packed operand, int64_t n) {
  thread_local std::unique_ptr<char[]> buffers[2];
  thread_local size_t capacities[2] = {0, 0};
  const int i = static_cast<int>(operand);
  const size_t bytes = static_cast<size_t>(n) * sizeof(T) + 64;
  if (capacities[i] < bytes) {
    buffers[i].reset(new char[bytes]);
    capacities[i] = bytes;
  }
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buffers[i].get()) + 63) & ~uintptr_t(63));
}

// The portable driver: blocking, packing of B, threads. It calls the variant for the compute.
template <class T>
void gemm_blocked(const Variant<T>& v, int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs,
                  const T* B, int64_t brs, int64_t bcs, T* C, int64_t ldc, bool accumulate, const T* bias) {
  // Packed panels in this thread's kept buffers (packing_buffer), sized to this product.
  const int64_t kc_max = std::min(KC, K), nc_max = (std::min(NC, N) + v.NR - 1) / v.NR * v.NR;
  T* Bp = packing_buffer<T>(Packed::B, kc_max * nc_max);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t n_panels = (nc + v.NR - 1) / v.NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      pack_b<T>(B + pc * brs + jc * bcs, brs, bcs, kc, nc, v.NR, Bp);
      // Tasks: (row block, group of column panels), so small-M products still use every core.
      const int64_t panel_group = std::max<int64_t>(1, std::min<int64_t>(n_panels, 16));
      const int64_t n_groups = (n_panels + panel_group - 1) / panel_group;
      const int64_t mc = row_block_height(M, v.MR, n_groups), m_blocks = (M + mc - 1) / mc;
      const bool add_to_c = accumulate || pc > 0;
      BlockStep<T> step{A + pc * acs, ars, acs, Bp, C, ldc, M, mc, nc, kc, jc, n_panels, panel_group, n_groups,
                        add_to_c, add_to_c ? nullptr : bias};
      const int64_t flops_per_task = mc * kc * panel_group * v.NR;
      parallel_for(m_blocks * n_groups, grain_for(flops_per_task, int64_t(1) << 19),
                   [&](int64_t tb, int64_t te) {
        v.tasks(step, tb, te, packing_buffer<T>(Packed::A, mc * kc_max));
      });
    }
  }
}

// The three builds of the compute. 256-bit vectors: 6x16 float tiles (12 accumulators of 16
// registers); 512-bit: 8x32 (16 of 32), and 16x16 for narrow products (N <= 16, as attention's
// P v and dS k with a head dim of 16), where an 8x32 tile would compute half zeros. NAME_f32 /
// NAME_f64 are Variants.
#define TG_GEMM_VARIANT(NAME, ATTR, VB, MR, NRF, NRD)                                                       \
  ATTR void NAME##_tasks_f32(const BlockStep<float>& s, int64_t tb, int64_t te, float* Ap) {                 \
    run_tasks<float, VB, MR, NRF>(s, tb, te, Ap);                                                            \
  }                                                                                                          \
  ATTR void NAME##_tasks_f64(const BlockStep<double>& s, int64_t tb, int64_t te, double* Ap) {               \
    run_tasks<double, VB, MR, NRD>(s, tb, te, Ap);                                                           \
  }                                                                                                          \
  const Variant<float> NAME##_f32{NAME##_tasks_f32, MR, NRF};                                                \
  const Variant<double> NAME##_f64{NAME##_tasks_f64, MR, NRD};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
TG_GEMM_VARIANT(gemm_avx512, __attribute__((target("avx512f,avx512dq,fma"))), 64, 8, 32, 16)
TG_GEMM_VARIANT(gemm_avx512_narrow, __attribute__((target("avx512f,avx512dq,fma"))), 64, 16, 16, 8)
TG_GEMM_VARIANT(gemm_avx2, __attribute__((target("avx2,fma"))), 32, 6, 16, 8)
#endif
TG_GEMM_VARIANT(gemm_portable, , 64, 8, 32, 16)

struct Kernels {
  const Variant<float>* f32;
  const Variant<double>* f64;
  const char* name;
  const Variant<float>* f32_narrow = nullptr;  // for N <= NR / 2, where the ISA has one
  const Variant<double>* f64_narrow = nullptr;

  template <class T>
  const Variant<T>& for_width(int64_t N) const {
    if constexpr (std::is_same_v<T, float>) return f32_narrow && 2 * N <= f32->NR ? *f32_narrow : *f32;
    else return f64_narrow && 2 * N <= f64->NR ? *f64_narrow : *f64;
  }
};

Kernels pick_kernels() {
  const bool portable = kernel_config().cpu_gemm_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (!portable) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
      return {&gemm_avx512_f32, &gemm_avx512_f64, "avx512", &gemm_avx512_narrow_f32, &gemm_avx512_narrow_f64};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {&gemm_avx2_f32, &gemm_avx2_f64, "avx2"};
  }
#endif
  return {&gemm_portable_f32, &gemm_portable_f64, "portable"};
}

const Kernels& kernels() {
  static const Kernels k = pick_kernels();
  return k;
}

// Small products: packing costs more than it saves. i-k-j order streams rows of B and C.
template <class T>
TG_SIMD_CLONES void gemm_small(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B, int64_t brs,
                int64_t bcs, T* C, int64_t ldc, bool accumulate, const T* bias = nullptr) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (!accumulate)
      for (int64_t j = 0; j < N; ++j) c[j] = bias ? bias[j] : T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * ars + k * acs];
      const T* b = B + k * brs;
      if (bcs == 1) {
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j * bcs];
      }
    }
  }
}

// Little output and a long inner dim, as the weight gradients X^T dY (128 x 2048 x 128): the
// blocked loop would sync the threads once per KC step with only a task or two each. Here each
// thread multiplies its own slice of K on its own (a nested parallel_for runs on one thread), the
// first into C, the others into scratch added to C at the end.
//   C (+)= sum_t A[:, K_t] B[K_t, :]
bool wants_split_k(int64_t M, int64_t N, int64_t K) { return available_threads() > 1 && K >= 4 * KC && M * N <= 512 * 512; }

template <class T>
void gemm_split_k(const Variant<T>& v, int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs,
                  const T* B, int64_t brs, int64_t bcs, T* C, int64_t ldc, bool accumulate, const T* bias) {
  // Slices of whole KC steps, at least two steps each, none empty (the last may be shorter).
  const int64_t steps = (K + KC - 1) / KC;
  const int64_t wanted = std::min(available_threads(), steps / 2);  // >= 2: K >= 4 KC
  const int64_t steps_per_slice = (steps + wanted - 1) / wanted;
  const int64_t slices = (steps + steps_per_slice - 1) / steps_per_slice;
  // Every partial is written whole by its slice's product (accumulate off): no zeroing first.
  std::unique_ptr<T[]> partials(new T[static_cast<size_t>((slices - 1) * M * N)]);
#pragma omp parallel for num_threads(slices) schedule(static, 1)
  for (int64_t t = 0; t < slices; ++t) {
    const int64_t k0 = t * steps_per_slice * KC, k1 = std::min(K, k0 + steps_per_slice * KC);
    T* out = t == 0 ? C : partials.get() + (t - 1) * M * N;
    gemm_blocked(v, M, N, k1 - k0, A + k0 * acs, ars, acs, B + k0 * brs, brs, bcs, out, t == 0 ? ldc : N,
                 t == 0 && accumulate, t == 0 ? bias : nullptr);
  }
  parallel_for(M, grain_for(N * (slices - 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t t = 1; t < slices; ++t)
      for (int64_t i = i0; i < i1; ++i) {
        const T* p = partials.get() + (t - 1) * M * N + i * N;
        T* c = C + i * ldc;
        for (int64_t j = 0; j < N; ++j) c[j] += p[j];
      }
  });
}

// The float products: small ones unpacked, the rest blocked, over K slices where that threads better.
template <class T>
void gemm_floating(const Variant<T>& v, int64_t M, int64_t N, int64_t K, const void* A, int64_t a_row, int64_t a_col,
                   const void* B, int64_t b_row, int64_t b_col, void* C, int64_t ldc, bool accumulate,
                   const void* bias_of_c) {
  const T *a = static_cast<const T*>(A), *b = static_cast<const T*>(B), *bias = static_cast<const T*>(bias_of_c);
  T* c = static_cast<T*>(C);
  if (M * N * K <= 16 * 16 * 16 || K == 0) gemm_small<T>(M, N, K, a, a_row, a_col, b, b_row, b_col, c, ldc, accumulate, bias);
  else if (wants_split_k(M, N, K)) gemm_split_k<T>(v, M, N, K, a, a_row, a_col, b, b_row, b_col, c, ldc, accumulate, bias);
  else gemm_blocked<T>(v, M, N, K, a, a_row, a_col, b, b_row, b_col, c, ldc, accumulate, bias);
}

}  // namespace

const char* gemm_isa() { return kernels().name; }

void gemm_matrix(DType dtype, int64_t M, int64_t N, int64_t K, const void* A, int64_t a_row, int64_t a_col,
                 const void* B, int64_t b_row, int64_t b_col, void* C, int64_t ldc, bool accumulate, const void* bias) {
  if (M == 0 || N == 0) return;
  if (accumulate) bias = nullptr;  // a bias joins only a product written fresh
  switch (dtype) {
    case DType::Float32:
      gemm_floating<float>(kernels().for_width<float>(N), M, N, K, A, a_row, a_col, B, b_row, b_col, C, ldc, accumulate, bias);
      return;
    case DType::Float64:
      gemm_floating<double>(kernels().for_width<double>(N), M, N, K, A, a_row, a_col, B, b_row, b_col, C, ldc, accumulate, bias);
      return;
    case DType::Int64:
      gemm_small<int64_t>(M, N, K, (const int64_t*)A, a_row, a_col, (const int64_t*)B, b_row, b_col, (int64_t*)C, ldc,
                          accumulate, static_cast<const int64_t*>(bias));
      return;
    default:
      throw TypeError(str("matmul: not supported for dtype ", dtype_name(dtype)));
  }
}

// The batched product: many small products (attention heads) give threads whole products; a
// large one threads inside (gemm_blocked).
void CpuBackend::gemm(DType dtype, const GemmArgs& g) {
  if (g.batch == 1) {
    gemm_matrix(dtype, g.M, g.N, g.K, g.A, g.a_row, g.a_col, g.B, g.b_row, g.b_col, g.C, g.ldc, g.accumulate, g.bias);
    return;
  }
  const int64_t isz = itemsize(dtype);
  const char* a = static_cast<const char*>(g.A);
  const char* b = static_cast<const char*>(g.B);
  char* c = static_cast<char*>(g.C);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(g.M * g.N * g.K, 1));
  parallel_for(g.batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i)
      gemm_matrix(dtype, g.M, g.N, g.K, a + i * g.a_batch * isz, g.a_row, g.a_col, b + i * g.b_batch * isz, g.b_row,
                  g.b_col, c + i * g.c_batch * isz, g.ldc, g.accumulate, g.bias);
  });
}

}  // namespace tg::cpu
