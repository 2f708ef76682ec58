// What the check-and-bench programs of benchmarks/cuda/ share (one program per kernel family, as
// llm.c's dev/cuda: gemm_check.cu, attention_check.cu, rows_check.cu): device buffers filled from
// and read back to the host, random inputs, the error measures and the pass/fail report, timing
// on tapegrad's stream, the float32 files the emulator tests hand over, and main()'s modes.
//
// Every program builds two ways (benchmarks/cuda/build_checks.sh):
//   nvcc                       a real GPU: the checks against a double-precision CPU reference,
//                              then the benchmarks
//   g++ -DTG_WARP_EMULATOR     against emulator/ (the same kernel sources, run on the CPU): the
//                              checks and the file commands of tests/test_cuda_emulated.py; the
//                              benchmarks are skipped (host threads time nothing a GPU does)
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
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
// Both directions on tapegrad's stream, waited for. Not cudaMemcpy: tapegrad's stream is
// non-blocking (it does not wait for the legacy default stream), and a pageable cudaMemcpy may
// return before its DMA has landed, so a kernel queued next could read stale bytes.
inline void upload_bytes(void* dst, const void* src, size_t bytes) {
  cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, tg_stream()), "upload");
  sync();
}
inline void download_bytes(void* dst, const void* src, size_t bytes) {
  cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, tg_stream()), "download");
  sync();
}

inline size_t elem_size(DType t) { return t == DType::Float64 ? 8 : t == DType::Float32 ? 4 : 2; }

// A device buffer of `count` elements of `dtype` (float32, float64 or bfloat16), filled from and
// read back to host vectors of float or double. bfloat16 on the host is core/bfloat16.h, which
// rounds to nearest even as the device's __float2bfloat16 does.
struct Buffer {
  DType dtype;
  size_t count;
  void* ptr = nullptr;
  Buffer(DType t, size_t n) : dtype(t), count(n) {
    cuda_ok(cudaMalloc(&ptr, std::max<size_t>(1, n) * elem_size(t) + 64), "cudaMalloc");
  }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* at(size_t shift) const { return static_cast<char*>(ptr) + shift * elem_size(dtype); }

  // v rounded to what the device stores (so a reference reads the same values), uploaded
  // `shift` elements past ptr.
  template <class H>
  void upload(std::vector<H>& v, size_t shift = 0) {
    std::vector<unsigned char> bytes(v.size() * elem_size(dtype));
    for (size_t i = 0; i < v.size(); ++i) v[i] = store(bytes.data(), i, v[i]);
    upload_bytes(at(shift), bytes.data(), bytes.size());
  }
  template <class H = float>
  std::vector<H> download(size_t n, size_t shift = 0) const {
    std::vector<unsigned char> bytes(n * elem_size(dtype));
    download_bytes(bytes.data(), at(shift), bytes.size());
    std::vector<H> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<H>(load(bytes.data(), i));
    return v;
  }
  // Every byte 0xff: NaN in each floating type, so an element a kernel never writes fails its check.
  void poison() { cuda_ok(cudaMemsetAsync(ptr, 0xff, std::max<size_t>(1, count) * elem_size(dtype), tg_stream()), "memset"); }

 private:
  template <class H>
  H store(unsigned char* bytes, size_t i, H x) const {
    if (dtype == DType::Float64) return reinterpret_cast<double*>(bytes)[i] = double(x);
    if (dtype == DType::Float32) return reinterpret_cast<float*>(bytes)[i] = float(x);
    const tg::bfloat16 h(static_cast<float>(x));
    reinterpret_cast<tg::bfloat16*>(bytes)[i] = h;
    return static_cast<H>(static_cast<float>(h));
  }
  double load(const unsigned char* bytes, size_t i) const {
    if (dtype == DType::Float64) return reinterpret_cast<const double*>(bytes)[i];
    if (dtype == DType::Float32) return reinterpret_cast<const float*>(bytes)[i];
    return static_cast<float>(reinterpret_cast<const tg::bfloat16*>(bytes)[i]);
  }
};

// An int64 array on the device (mask offsets, class targets).
struct IndexBuffer {
  int64_t* ptr = nullptr;
  explicit IndexBuffer(const std::vector<int64_t>& v) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<size_t>(1, v.size()) * sizeof(int64_t)), "cudaMalloc");
    upload_bytes(ptr, v.data(), v.size() * sizeof(int64_t));
  }
  ~IndexBuffer() { cudaFree(ptr); }
  IndexBuffer(const IndexBuffer&) = delete;
  IndexBuffer& operator=(const IndexBuffer&) = delete;
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

// max |got - ref| over max |ref|: the error relative to the size of the result, or to `floor`
// where the result is smaller (a result that cancels to ~0 keeps the rounding of its terms, which
// is not a wrong kernel). An infinite reference must be matched exactly; NaN never matches.
template <class G>
double max_error(const std::vector<G>& got, const std::vector<double>& ref, double floor = 0.1) {
  double scale = 0, worst = 0;
  for (double x : ref)
    if (std::isfinite(x)) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < ref.size(); ++i) {
    double err = std::isinf(ref[i]) ? (got[i] == ref[i] ? 0 : 1e30) : std::fabs(got[i] - ref[i]);
    if (std::isnan(double(got[i]))) err = 1e30;
    worst = std::max(worst, err);
  }
  return worst / std::max(scale, floor);
}

// Median milliseconds of `iters` runs of f on tapegrad's stream (CUDA events). The emulator has
// no events; its runs are timed on the host clock (they run on the host), never benchmarked.
inline double time_ms(const std::function<void()>& f, int iters) {
  f();
  sync();
  std::vector<float> ms;
#ifdef TG_WARP_EMULATOR
  for (int it = 0; it < iters; ++it) {
    const auto start = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
#else
  cudaEvent_t start, stop;
  cudaEventCreate(&start), cudaEventCreate(&stop);
  for (int it = 0; it < iters; ++it) {
    cudaEventRecord(start, tg_stream());
    f();
    cudaEventRecord(stop, tg_stream());
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start), cudaEventDestroy(stop);
#endif
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// ---- the files of the emulator tests: flat float32 arrays, DIR/NAME.bin ----------------------------
inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return {};
  std::vector<float> data(static_cast<size_t>(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(data.data()), data.size() * sizeof(float));
  return data;
}
inline void write_floats(const std::string& path, const std::vector<float>& data) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
}

// ---- main() ------------------------------------------------------------------------------------------
// A program's checks come in named groups (`--check NAME...` runs some of them, the emulator tests
// one at a time); its commands are the other first arguments it takes (benchmark variants, the
// file commands), each handed the arguments after its name.
struct CheckGroup {
  std::string name;
  std::function<void()> run;
};
struct Command {
  std::string name;
  std::function<int(const std::vector<std::string>& args)> run;
};
struct Program {
  std::string usage;  // printed for a command line the program does not know
  std::vector<CheckGroup> checks;
  std::function<void()> bench;
  std::vector<Command> commands;
};

inline void print_device() {
  int major = 0, minor = 0;
  cuda_ok(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, kDevice), "cudaDeviceGetAttribute");
  cuda_ok(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, kDevice), "cudaDeviceGetAttribute");
#ifdef TG_WARP_EMULATOR
  std::printf("device: the CPU emulator (sm_%d%d)\n", major, minor);
#else
  cudaDeviceProp prop;
  cuda_ok(cudaGetDeviceProperties(&prop, kDevice), "cudaGetDeviceProperties");
  std::printf("device: %s (sm_%d%d)\n", prop.name, major, minor);
#endif
}

// No argument: every check, then the benchmarks. `--check [NAME...]`: the checks (those groups
// only). `--bench`: the benchmarks only. Exit status 0 when every check passed, 1 when one
// failed or something raised, 2 for a bad command line or no device.
inline int run_program(int argc, char** argv, const Program& program) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string mode = args.empty() ? "" : args[0];
  try {
    for (const Command& c : program.commands)
      if (c.name == mode) return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
    const bool run_checks = mode.empty() || mode == "--check", run_bench = mode.empty() || mode == "--bench";
    if (!run_checks && !run_bench) {
      std::fprintf(stderr, "%s", program.usage.c_str());
      return 2;
    }
    if (!cu::is_available()) {
      std::printf("no CUDA device\n");
      return 2;
    }
    print_device();
    if (run_checks) {
      const std::vector<std::string> only(args.begin() + (mode.empty() ? 0 : 1), args.end());
      for (const std::string& name : only)
        if (std::none_of(program.checks.begin(), program.checks.end(), [&](const CheckGroup& g) { return g.name == name; })) {
          std::fprintf(stderr, "no check group %s\n%s", name.c_str(), program.usage.c_str());
          return 2;
        }
      for (const CheckGroup& g : program.checks)
        if (only.empty() || std::find(only.begin(), only.end(), g.name) != only.end()) g.run();
      std::printf("\n%d passed, %d failed\n", checks - failures, failures);
    }
    if (run_bench) {
#ifdef TG_WARP_EMULATOR
      std::printf("\nbenchmarks: skipped on the emulator\n");
#else
      program.bench();
      if (failures) std::printf("\n%d of %d checks FAILED\n", failures, checks);
#endif
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace tg_check
