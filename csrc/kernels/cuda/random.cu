// Counter-based random numbers on the device: element i is a pure function of (seed, offset + i)
// through kernels/philox.h, with the same bits-to-number maps as kernels/cpu/random.cpp, so a
// seed gives the same tensors on both devices.
#include "kernels/cuda/launch.cuh"
#include "kernels/philox.h"

namespace tg::cuda {

namespace {

// u in [0, 1) for element i: 24 bits (float) or 53 bits (double), as the CPU kernel.
template <class T>
__device__ __forceinline__ double uniform_of(const Philox4& r) {
  if constexpr (std::is_same_v<T, float>) return philox_uniform_float(r.x[0]);
  else return philox_uniform_double(r.x[0], r.x[1]);
}

template <class T>
__global__ void random_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, bool normal) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox(seed, offset + static_cast<uint64_t>(i));
    const double u1 = uniform_of<T>(r);
    if (!normal) {
      out[i] = static_cast<T>(u1);
      continue;
    }
    const double u2 = std::is_same_v<T, float> ? double(philox_uniform_float(r.x[1])) : philox_uniform_double(r.x[2], r.x[3]);
    // Box-Muller in double, as on the CPU; 1 - u1 lies in (0, 1], so the log is finite.
    out[i] = static_cast<T>(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
  }
}

__global__ void random_int_kernel(int64_t* out, int64_t n, int64_t low, uint64_t range, uint64_t seed, uint64_t offset) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox(seed, offset + static_cast<uint64_t>(i));
    const uint64_t v = (uint64_t(r.x[0]) << 32) | r.x[1];
    out[i] = low + static_cast<int64_t>(v % range);
  }
}

// scale_i = (u_i >= p) / (1 - p); out_i = x_i scale_i
template <class T>
__global__ void dropout_kernel(const T* x, T* out, T* scale, int64_t n, double p, T keep, uint64_t seed, uint64_t offset) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T s = static_cast<double>(dropout_uniform(seed, offset, static_cast<uint64_t>(i))) >= p ? keep : T(0);
    scale[i] = s;
    out[i] = x[i] * s;
  }
}

}  // namespace

void CudaBackend::random(RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  TG_DISPATCH_FLOAT(dtype, "random", [&](auto tag) {
    using T = decltype(tag);
    launch("random", device, blocks_for(n), kThreads, random_kernel<T>, static_cast<T*>(out), n, seed, offset,
           kind == RandomKind::Normal);
  });
}

void CudaBackend::random_int(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  launch("random_int", device, blocks_for(n), kThreads, random_int_kernel, out, n, low,
         static_cast<uint64_t>(high - low), seed, offset);
}

void CudaBackend::dropout(DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed,
                          uint64_t offset) {
  if (n == 0) return;
  TG_DISPATCH_FLOAT(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    launch("dropout", device, blocks_for(n), kThreads, dropout_kernel<T>, static_cast<const T*>(x), static_cast<T*>(out),
           static_cast<T*>(scale), n, p, static_cast<T>(1.0 / (1.0 - p)), seed, offset);
  });
}

}  // namespace tg::cuda
