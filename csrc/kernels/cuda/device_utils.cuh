// Small helpers shared by the CUDA kernels: the device scope, bfloat16 conversion, and the
// sm_80 instructions the tensor-core kernels are built from (cp.async, ldmatrix, mma.sync).
// The PTX wrappers need sm_80 or newer; tapegrad's CUDA builds target sm_80 and up.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "kernels/cuda/runtime.h"

namespace tg::cuda {

// Makes `device` current for the scope (kernel launches and library handles act on the current
// device), gives its stream, and restores the previous device. The one device guard of the
// CUDA files.
class DeviceScope {
 public:
  explicit DeviceScope(int device) : device_(device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    stream_ = static_cast<cudaStream_t>(cuda::stream(device));
  }
  ~DeviceScope() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  cudaStream_t stream() const { return stream_; }

 private:
  int previous_ = 0, device_ = 0;
  cudaStream_t stream_ = nullptr;
};

inline cudaStream_t stream_of(int device) { return static_cast<cudaStream_t>(stream(device)); }

// Lets `kernel` use `bytes` of dynamic shared memory (past the default 48 KB) on the current
// device `device`. The attribute sticks to the (kernel, device) pair, so the driver is asked once
// per pair, not on every launch.
template <class Kernel>
void allow_dynamic_smem(Kernel kernel, int bytes, int device, const char* what) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  const std::pair<const void*, int> key{reinterpret_cast<const void*>(kernel), device};
  std::lock_guard<std::mutex> lock(mutex);
  if (done.count(key)) return;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), what);
  done.insert(key);
}

// What a device offers one CTA and the grid: the opt-in shared memory (227 KB on sm_90, 163 KB on
// sm_80, 99 KB on sm_86 / sm_89) and the multiprocessors. Asked once per device.
struct DeviceLimits {
  int smem_per_block = 0, multiprocessors = 0;
};
inline DeviceLimits device_limits(int device) {
  static std::mutex mutex;
  static std::map<int, DeviceLimits> known;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = known.find(device);
  if (it != known.end()) return it->second;
  DeviceLimits d;
  check(cudaDeviceGetAttribute(&d.smem_per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute (shared memory per block)");
  check(cudaDeviceGetAttribute(&d.multiprocessors, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute (multiprocessors)");
  return known[device] = d;
}

__host__ __device__ constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- starting kernels ------------------------------------------------------------------------
// kernel<<<grid, block, smem_bytes, stream>>>(args...): the one place kernels are started, so
// that the emulator (emulator/, at the top of the repository) can run them on the CPU instead.
template <class... KArgs, class... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t stream,
                   Args&&... args) {
#ifdef TG_WARP_EMULATOR
  (void)stream;
  ::emu::run_kernel(grid, block, smem_bytes, [&] { kernel(args...); });
#else
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<Args>(args)...);
#endif
}

// A kernel's dynamic shared memory (the launch gives its size) as `T* name`.
#ifdef TG_WARP_EMULATOR
#define TG_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::emu::dynamic_smem)
#else
#define TG_DYNAMIC_SMEM(T, name)                                   \
  extern __shared__ __align__(16) unsigned char tg_dynamic_smem[]; \
  T* name = reinterpret_cast<T*>(tg_dynamic_smem)
#endif

inline bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Element <-> float32. BFloat16 storage is the top half of a float32; rounding to nearest even.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

#ifdef TG_WARP_EMULATOR
}  // namespace tg::cuda
// The instructions below, emulated on the CPU lane by lane (emulator/warp_emulator.h):
// kernels built that way run, slowly, without a GPU, to check their index math.
#include "warp_emulator.h"
namespace tg::cuda {
#else
// ---- sm_80 asynchronous copies: global -> shared, 16 bytes, bypassing registers and L1 ----
// src_bytes 0 writes zeros: the tile edges past the matrix are filled without a branch.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most `Pending` committed groups are still in flight.
template <int Pending> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

// ---- ldmatrix: four 8x8 matrices of 16-bit elements (8 rows of 16 bytes each); lane l gives
// the row address for matrix l / 8, row l % 8, and receives row l / 4, bytes 4 (l % 4).. of each.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
// Transposed: lane l receives column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1 of each matrix.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// ---- warp-level tensor-core products, D = A B + D, float32 accumulators ----
// Fragment layout (g = lane / 4, t = lane % 4), both shapes alike when counted in 32-bit words:
//   A 16 x (8 words): a0 (g, word t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4)
//   B (8 words) x 8, stored n-major: b0 (word t, n g), b1 (word t + 4, n g)
//   C 16 x 8 float: c0, c1 (g, 2t and 2t + 1), c2, c3 (g + 8, 2t and 2t + 1)
// A word holds two bfloat16 along k (m16n8k16) or one tf32 (m16n8k8).
__device__ __forceinline__ void mma_16x8(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                         __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16x8(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, float) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// float32 -> tf32 (10-bit mantissa), rounded to nearest like cuBLAS, not truncated by the mma.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

#endif  // TG_WARP_EMULATOR

// ---- bfloat16 fragments from shared memory (ldmatrix), for a tile of `pitch` elements per row.
// Each loads the fragments of one 16-wide k step at (o or n, k) in the layouts of mma_16x8; the
// name says how the operand is stored. Rows 16 bytes apart modulo 128 (pitch = width + 8) keep
// every ldmatrix free of bank conflicts.
// The k-contiguous loads move 16-byte rows, 8 bfloat16 or 4 float (tf32: the caller converts).
// A (16 x 16-byte k) stored [m][k]: matrices (o.., k), (o+8.., k), (o.., k+16 B), (o+8.., k+16 B) -> a0..a3.
template <class T>
__device__ __forceinline__ void a_frag_m_major(uint32_t (&a)[4], const T* s, int pitch, int o, int k, int lane) {
  ldmatrix_x4(a, s + (o + lane % 16) * pitch + k + (lane / 16) * int(16 / sizeof(T)));
}
// A (16 x 16) stored [k][m] (the transpose in memory): ldmatrix.trans, matrix q at k + (q / 2) 8, o + (q % 2) 8.
__device__ __forceinline__ void a_frag_k_major(uint32_t (&a)[4], const __nv_bfloat16* s, int pitch, int o, int k,
                                               int lane) {
  const int q = lane / 8, r = lane % 8;
  ldmatrix_x4_trans(a, s + (k + r + (q / 2) * 8) * pitch + o + (q % 2) * 8);
}
// B of two n8 tiles (n.., n+8..) stored [n][k]: b[0], b[1] for n..n+7, b[2], b[3] for n+8..n+15.
template <class T>
__device__ __forceinline__ void b_frags_n_major(uint32_t (&b)[4], const T* s, int pitch, int n, int k, int lane) {
  ldmatrix_x4(b, s + (n + lane % 8 + (lane / 16) * 8) * pitch + k + ((lane / 8) % 2) * int(16 / sizeof(T)));
}
// B of two n8 tiles stored [k][n]: ldmatrix.trans, matrix q at k + (q % 2) 8, n + (q / 2) 8.
__device__ __forceinline__ void b_frags_k_major(uint32_t (&b)[4], const __nv_bfloat16* s, int pitch, int n, int k,
                                                int lane) {
  const int q = lane / 8, r = lane % 8;
  ldmatrix_x4_trans(b, s + (k + r + (q % 2) * 8) * pitch + n + (q / 2) * 8);
}

// Two floats -> one word of two bfloat16 (lo in the low half, as a fragment wants element k).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t word;
  memcpy(&word, &v, sizeof word);  // not a pointer cast: no aliasing of the bfloat16 pair
  return word;
}

}  // namespace tg::cuda
