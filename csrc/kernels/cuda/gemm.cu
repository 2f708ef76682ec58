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
//
// The kernels live in gemm_simt.cuh and gemm_mma.cuh, cuBLAS in gemm_cublas.cu; this file holds
// the float64 / int64 kernel, the tile configurations, the dispatch and the entry points.
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

#include "core/error.h"
#include "kernels/config.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_cublas.h"
#include "kernels/cuda/gemm_mma.cuh"
#include "kernels/cuda/gemm_operand.cuh"
#include "kernels/cuda/gemm_simt.cuh"
#include "kernels/cuda/gemm_tiles.cuh"
#ifdef TAPEGRAD_WITH_SM90
#include "kernels/cuda/sm90/gemm_wgmma.h"
#endif

namespace tg::cuda {

namespace {

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
// The ones benchmarks/cuda/gemm_check.cu --bench times (by index); gemm() runs the defaults.
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
// The survivors of a sweep of eleven (now gemm_check --configs) on an H100 at 4096^3, TFLOP/s
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

std::atomic<int>& backend_state() {
  static std::atomic<int> state{[] {
    if (kernel_config().cuda_matmul_own) return int(GemmBackend::Own);
    if (kernel_config().cuda_matmul_cublas && cublas_built()) return int(GemmBackend::Cublas);
    return int(cublas_built() ? GemmBackend::Cublas : GemmBackend::Own);
  }()};
  return state;
}

std::atomic<bool> tf32_allowed{false};

}  // namespace

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
  if (gemm_backend() == GemmBackend::Cublas && (dtype == DType::Float32 || dtype == DType::BFloat16) &&
      cublas_gemm(dtype, g))
    return;
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
