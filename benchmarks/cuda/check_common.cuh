// What the check-and-bench programs of benchmarks/cuda/ share: device buffers filled from and
// read back to float, random inputs, the pass/fail report, and event timing on tapegrad's stream.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/bfloat16.h"
#include "core/dtype.h"
#include "kernels/cuda/runtime.h"

namespace tg_check {

using tg::DType;
namespace cu = tg::cuda;

inline constexpr int kDevice = 0;
inline int failures = 0, checks = 0;

inline void cuda_ok(cudaError_t e, const char* what) { cu::check(static_cast<int>(e), what); }
inline cudaStream_t tg_stream() { return static_cast<cudaStream_t>(cu::stream(kDevice)); }
inline void sync() { cuda_ok(cudaStreamSynchronize(tg_stream()), "sync"); }
// Host -> device on tapegrad's stream, waited for. Not cudaMemcpy: tapegrad's stream is
// non-blocking (it does not wait for the legacy default stream), and a pageable cudaMemcpy may
// return before its DMA has landed, so a kernel queued next could read stale bytes.
inline void upload_bytes(void* dst, const void* src, size_t bytes) {
  cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, tg_stream()), "upload");
  sync();
}

// bfloat16 on the host: core/bfloat16.h rounds to nearest even, as the device's __float2bfloat16.
inline uint16_t to_bf16(float f) { return tg::bfloat16(f).bits; }
inline float from_bf16(uint16_t h) { return static_cast<float>(tg::bfloat16::from_bits(h)); }

inline size_t elem_size(DType t) { return t == DType::Float32 ? 4 : 2; }

// A device buffer of `count` elements of `dtype`, filled from / read back to float.
struct Buffer {
  DType dtype;
  size_t count;
  void* ptr = nullptr;
  Buffer(DType t, size_t n) : dtype(t), count(n) {
    cuda_ok(cudaMalloc(&ptr, std::max<size_t>(1, n) * elem_size(t) + 64), "cudaMalloc");
  }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  // Values as the device stores them (bfloat16-rounded), uploaded; `shift` elements past ptr.
  void upload(std::vector<float>& v, size_t shift = 0) {
    if (dtype == DType::Float32) {
      upload_bytes(static_cast<float*>(ptr) + shift, v.data(), v.size() * 4);
    } else {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = to_bf16(v[i]), v[i] = from_bf16(h[i]);
      upload_bytes(static_cast<uint16_t*>(ptr) + shift, h.data(), h.size() * 2);
    }
  }
  std::vector<float> download(size_t n, size_t shift = 0) const {
    std::vector<float> v(n);
    if (dtype == DType::Float32) {
      cuda_ok(cudaMemcpy(v.data(), static_cast<float*>(ptr) + shift, n * 4, cudaMemcpyDeviceToHost), "download");
    } else {
      std::vector<uint16_t> h(n);
      cuda_ok(cudaMemcpy(h.data(), static_cast<uint16_t*>(ptr) + shift, n * 2, cudaMemcpyDeviceToHost), "download");
      for (size_t i = 0; i < n; ++i) v[i] = from_bf16(h[i]);
    }
    return v;
  }
  void* at(size_t shift) const { return static_cast<char*>(ptr) + shift * elem_size(dtype); }
};

inline std::mt19937 rng(1234);
inline std::vector<float> randn(size_t n, float sd = 1.f) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline void report(bool ok, const std::string& name, double err, double tol) {
  ++checks;
  if (!ok) ++failures;
  std::printf("%-4s %-78s err %.3g (tol %.3g)\n", ok ? "ok" : "FAIL", name.c_str(), err, tol);
}

// Median milliseconds of `iters` runs of f on the stream.
inline double time_ms(const std::function<void()>& f, int iters) {
  cudaStream_t s = static_cast<cudaStream_t>(cu::stream(kDevice));
  cudaEvent_t start, stop;
  cudaEventCreate(&start), cudaEventCreate(&stop);
  f();
  sync();
  std::vector<float> ms;
  for (int it = 0; it < iters; ++it) {
    cudaEventRecord(start, s);
    f();
    cudaEventRecord(stop, s);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start), cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace tg_check
