// Runs tapegrad's GEMM and fused-attention CUDA code (csrc/kernels/cuda/{gemm,attention,
// attention_tc}.cu: the real entry points, dispatch included) on the CPU, one host thread per
// CUDA thread, through the warp emulator; driven by tests/test_cuda_emulated.py, which compares
// the results with NumPy and tapegrad's CPU kernels. Arrays travel as float32 files in DIR.
//
//   emulated_kernels attention DIR f32|tf32|bf16 N L S E Ev causal mask_row mask_col dropout_p seed misalign
//       (tf32: float32 with allow_tf32, on the tensor-core kernels)
//       reads q k v dout [mask mask_offsets(int64)], writes out lse dq dk dv
//   emulated_kernels gemm DIR f32|bf16 batch M N K a_layout(mk|km) b_layout(kn|nk) accumulate tf32 misalign
//                    [mma|simt CONFIG]
//       reads a b c (a as stored: (batch, M, K) or (batch, K, M); b: (batch, K, N) or (batch, N, K)), writes c;
//       with a kernel and a configuration index, through gemm_with_config instead of gemm
//   emulated_kernels gemm-configs mma|simt
//       prints the kernel's tile configurations, one a line, by index
// misalign = 1 offsets every input by one element, so no 16-byte vector path can be taken.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bfloat16.h"
#include "kernels/attention_args.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

// ---- the runtime the kernel files call (runtime.h), on the host ----------------------------------
namespace tg::cuda {
void* stream(int) { return nullptr; }
void check(int err, const char* what) {
  if (err != 0) throw std::runtime_error(std::string(what) + ": emulated CUDA error");
}
void* allocate(size_t nbytes, int) { return nbytes ? std::aligned_alloc(256, (nbytes + 255) / 256 * 256) : nullptr; }
void release(void* ptr, void*) { std::free(ptr); }
}  // namespace tg::cuda

namespace {

using tg::DType;
using tg::bfloat16;

std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return {};
  std::vector<float> data(static_cast<size_t>(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(data.data()), data.size() * sizeof(float));
  return data;
}
void write_floats(const std::string& path, const std::vector<float>& data) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
}

// A "device" array of float32 or bfloat16, optionally starting one element past an aligned address.
struct Array {
  DType dtype;
  size_t n;
  std::vector<unsigned char> bytes;
  size_t shift;
  Array(DType t, size_t count, bool misalign)
      : dtype(t), n(count), bytes((count + 16) * 4 + 64), shift(misalign ? (t == DType::Float32 ? 4 : 2) : 0) {}
  void* ptr() {
    const uintptr_t base = (reinterpret_cast<uintptr_t>(bytes.data()) + 63) / 64 * 64;
    return reinterpret_cast<void*>(base + shift);
  }
  void set(const std::vector<float>& x) {
    for (size_t i = 0; i < n; ++i) {
      if (dtype == DType::Float32) static_cast<float*>(ptr())[i] = x[i];
      else static_cast<bfloat16*>(ptr())[i] = bfloat16(x[i]);
    }
  }
  std::vector<float> get() {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i)
      x[i] = dtype == DType::Float32 ? static_cast<float*>(ptr())[i] : float(static_cast<bfloat16*>(ptr())[i]);
    return x;
  }
};

DType dtype_arg(const std::string& s) {
  if (s == "f32") return DType::Float32;
  if (s == "bf16") return DType::BFloat16;
  throw std::runtime_error("dtype must be f32 or bf16");
}

int attention(char** argv) {
  const std::string dir = argv[0];
  const bool tf32 = std::string(argv[1]) == "tf32";
  const DType t = tf32 ? DType::Float32 : dtype_arg(argv[1]);
  tg::cuda::set_allow_tf32(tf32);
  tg::AttentionArgs a{};
  a.N = std::atoll(argv[2]), a.L = std::atoll(argv[3]), a.S = std::atoll(argv[4]);
  a.E = std::atoll(argv[5]), a.Ev = std::atoll(argv[6]);
  a.causal = std::atoi(argv[7]) != 0;
  a.mask_row = std::atoll(argv[8]), a.mask_col = std::atoll(argv[9]);
  a.dropout_p = std::atof(argv[10]);
  a.seed = std::strtoull(argv[11], nullptr, 10), a.offset = 0;
  const bool misalign = std::atoi(argv[12]) != 0;
  a.scale = 1.0 / std::sqrt(static_cast<double>(a.E));

  auto input = [&](const char* name, size_t n) {
    Array x(t, n, misalign);
    x.set(read_floats(dir + "/" + name + ".bin"));
    return x;
  };
  Array q = input("q", a.N * a.L * a.E), k = input("k", a.N * a.S * a.E), v = input("v", a.N * a.S * a.Ev);
  Array dout = input("dout", a.N * a.L * a.Ev);
  const std::vector<float> mask_values = read_floats(dir + "/mask.bin");
  Array mask(t, mask_values.size(), false);
  mask.set(mask_values);
  std::vector<int64_t> offsets(a.N);
  std::ifstream(dir + "/mask_offsets.bin", std::ios::binary).read(reinterpret_cast<char*>(offsets.data()), a.N * 8);
  a.mask = mask_values.empty() ? nullptr : mask.ptr();
  a.mask_offsets = offsets.data();

  Array out(t, a.N * a.L * a.Ev, false), dq(t, a.N * a.L * a.E, false), dk(t, a.N * a.S * a.E, false);
  Array dv(t, a.N * a.S * a.Ev, false);
  std::vector<float> lse(a.N * a.L);
  tg::cuda::attention_forward(t, a, q.ptr(), k.ptr(), v.ptr(), out.ptr(), lse.data(), 0);
  tg::cuda::attention_backward(t, a, q.ptr(), k.ptr(), v.ptr(), out.ptr(), lse.data(), dout.ptr(), dq.ptr(), dk.ptr(),
                               dv.ptr(), 0);
  write_floats(dir + "/out.bin", out.get());
  write_floats(dir + "/lse.bin", lse);
  write_floats(dir + "/dq.bin", dq.get());
  write_floats(dir + "/dk.bin", dk.get());
  write_floats(dir + "/dv.bin", dv.get());
  return 0;
}

tg::cuda::OwnKernel kernel_arg(const std::string& s) {
  if (s == "mma") return tg::cuda::OwnKernel::Mma;
  if (s == "simt") return tg::cuda::OwnKernel::Simt;
  if (s == "wgmma") return tg::cuda::OwnKernel::Wgmma;
  throw std::runtime_error("kernel must be mma, simt or wgmma");
}

int gemm(char** argv, bool with_config) {
  const std::string dir = argv[0];
  const DType t = dtype_arg(argv[1]);
  const int64_t batch = std::atoll(argv[2]), M = std::atoll(argv[3]), N = std::atoll(argv[4]), K = std::atoll(argv[5]);
  const bool a_mk = std::string(argv[6]) == "mk", b_kn = std::string(argv[7]) == "kn";
  const bool accumulate = std::atoi(argv[8]) != 0, tf32 = std::atoi(argv[9]) != 0, misalign = std::atoi(argv[10]) != 0;
  Array A(t, batch * M * K, misalign), B(t, batch * K * N, misalign), C(t, batch * M * N, false);
  A.set(read_floats(dir + "/a.bin"));
  B.set(read_floats(dir + "/b.bin"));
  C.set(read_floats(dir + "/c.bin"));
  tg::cuda::GemmArgs g{batch, M, N, K,
                       A.ptr(), M * K, a_mk ? K : 1, a_mk ? 1 : M,
                       B.ptr(), K * N, b_kn ? N : 1, b_kn ? 1 : K,
                       C.ptr(), M * N, N, accumulate, 0};
  tg::cuda::set_gemm_backend(tg::cuda::GemmBackend::Own);
  tg::cuda::set_allow_tf32(tf32);
  if (with_config) tg::cuda::gemm_with_config(t, kernel_arg(argv[11]), std::atoi(argv[12]), g);
  else tg::cuda::gemm(t, g);
  write_floats(dir + "/c.bin", C.get());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "attention" && argc == 15) return attention(argv + 2);
    if (what == "gemm" && (argc == 13 || argc == 15)) return gemm(argv + 2, argc == 15);
    if (what == "gemm-configs" && argc == 3) {
      for (const std::string& name : tg::cuda::gemm_config_names(kernel_arg(argv[2])))
        std::printf("%s\n", name.c_str());
      return 0;
    }
    std::fprintf(stderr, "usage: see the head of tests/cuda_emulator/emulated_kernels.cpp\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
