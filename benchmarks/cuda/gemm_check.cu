// The GEMM kernels (csrc/kernels/cuda/gemm.cu: the SIMT, mma.sync and Hopper wgmma kernels, their
// dispatch, and cuBLAS where the build has it), checked against a double-precision CPU reference
// (exit status 1 on any failure), then timed in TFLOP/s. One program, two builds
// (benchmarks/cuda/build_checks.sh; check_common.cuh says what each runs):
//
//   gemm_check                      checks, then benchmarks
//   gemm_check --check [GROUP...]   checks only: "dispatch" (gemm() per backend and dtype, every
//                                   layout, padded, misaligned, broadcast), "configs" (every tile
//                                   configuration of the own kernels)
//   gemm_check --bench              benchmarks only: 4096^3 per backend and dtype, then every tile
//                                   configuration (checked against the one gemm() picks), next to cuBLAS
//   gemm_check --configs            the same as --bench (kernel_check's name for it)
//
// The emulator tests (tests/test_cuda_emulated.py) use two commands, arrays as float32 files in DIR:
//   gemm_check gemm DIR f32|bf16 batch M N K a_layout(mk|km) b_layout(kn|nk) accumulate tf32 misalign
//              [mma|simt|wgmma CONFIG]
//       reads a b c (a as stored: (batch, M, K) or (batch, K, M); b: (batch, K, N) or (batch, N, K)),
//       writes c; with a kernel and a configuration index, through gemm_with_config instead of gemm.
//       misalign = 1 starts A and B one element past an aligned address (no 16-byte vector path).
//   gemm_check gemm-configs mma|simt|wgmma
//       prints the kernel's tile configurations, one a line, by index
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/gemm.h"
#include "check_common.cuh"

using namespace tg_check;

namespace {

struct GemmMode {
  std::string name;
  DType dtype;
  cu::GemmBackend backend;
  bool tf32;
  double tol;         // on |C - ref| / (sum_k |a b| + |C0|)
  int config = -1;    // >= 0: cu::gemm_with_config(dtype, kernel, config, ...) instead of cu::gemm
  cu::OwnKernel kernel = cu::OwnKernel::Mma;
};

struct GemmCase {
  int64_t batch, M, N, K;
  bool trans_a, trans_b, accumulate;
  int64_t pad;        // extra leading-dimension elements on A, B and C
  int64_t shift;      // element offset of the A and B pointers (misaligns vector loads when odd)
  bool broadcast_b;   // b_batch = 0
  bool shift_c = true;  // C starts `shift` elements in too
};

// The strides of a case: A is (M, K) stored row-major, or transposed (K, M); B is (K, N), or (N, K).
struct GemmLayout {
  int64_t lda, ldb, ldc, a_mat, b_mat, c_mat, b_count;
  explicit GemmLayout(const GemmCase& c)
      : lda((c.trans_a ? c.M : c.K) + c.pad), ldb((c.trans_b ? c.K : c.N) + c.pad), ldc(c.N + c.pad),
        a_mat((c.trans_a ? c.K : c.M) * lda), b_mat((c.trans_b ? c.N : c.K) * ldb), c_mat(c.M * ldc),
        b_count(c.broadcast_b ? b_mat : b_mat * c.batch) {}
};

// C (+)= A B on the device for a case: a (batch a_mat), b (b_count) and c (batch c_mat) as the
// layout stores them, rounded in place to the mode's dtype; returns C as the device left it.
std::vector<float> run_gemm(const GemmMode& mode, const GemmCase& c, cu::GemmArgs& g, std::vector<float>& a,
                            std::vector<float>& b, std::vector<float>& c0) {
  cu::set_gemm_backend(mode.backend);
  cu::set_allow_tf32(mode.tf32);
  const GemmLayout l(c);
  const int64_t cs = c.shift_c ? c.shift : 0;
  Buffer da(mode.dtype, a.size() + c.shift), db(mode.dtype, b.size() + c.shift), dc(mode.dtype, c0.size() + cs);
  da.upload(a, c.shift), db.upload(b, c.shift), dc.upload(c0, cs);
  g = cu::GemmArgs{};
  g.batch = c.batch, g.M = c.M, g.N = c.N, g.K = c.K;
  g.A = da.at(c.shift), g.a_batch = l.a_mat;
  g.a_row = c.trans_a ? 1 : l.lda, g.a_col = c.trans_a ? l.lda : 1;
  g.B = db.at(c.shift), g.b_batch = c.broadcast_b ? 0 : l.b_mat;
  g.b_row = c.trans_b ? 1 : l.ldb, g.b_col = c.trans_b ? l.ldb : 1;
  g.C = dc.at(cs), g.c_batch = l.c_mat, g.ldc = l.ldc;
  g.accumulate = c.accumulate;
  g.device = kDevice;
  if (mode.config >= 0) cu::gemm_with_config(mode.dtype, mode.kernel, mode.config, g);
  else cu::gemm(mode.dtype, g);
  sync();
  return dc.download(c0.size(), cs);
}

void check_gemm(const GemmMode& mode, const GemmCase& c) {
  const GemmLayout l(c);
  std::vector<float> a = randn(l.a_mat * c.batch), b = randn(l.b_count), c0 = randn(l.c_mat * c.batch);
  cu::GemmArgs g;
  const std::vector<float> got = run_gemm(mode, c, g, a, b, c0);

  double worst = 0;
  for (int64_t bi = 0; bi < c.batch; ++bi)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = a[bi * l.a_mat + i * g.a_row + k * g.a_col];
          const double y = b[bi * g.b_batch + k * g.b_row + j * g.b_col];
          ref += x * y, mag += std::fabs(x * y);
        }
        const double old = c0[bi * l.c_mat + i * l.ldc + j];
        if (c.accumulate) ref += old, mag += std::fabs(old);
        const double err = std::fabs(got[bi * l.c_mat + i * l.ldc + j] - ref) / (mag + 1e-6);
        worst = std::max(worst, std::isnan(err) ? 1e30 : err);
      }
  // The padding between rows must be untouched.
  for (int64_t bi = 0; bi < c.batch; ++bi)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = c.N; j < l.ldc; ++j)
        if (got[bi * l.c_mat + i * l.ldc + j] != c0[bi * l.c_mat + i * l.ldc + j]) worst = 1e30;
  char name[200];
  std::snprintf(name, sizeof name, "gemm %-10s b%lld %lldx%lldx%lld %c%c%s pad%lld shift%lld%s", mode.name.c_str(),
                (long long)c.batch, (long long)c.M, (long long)c.N, (long long)c.K, c.trans_a ? 'T' : 'N',
                c.trans_b ? 'T' : 'N', c.accumulate ? " acc" : "", (long long)c.pad, (long long)c.shift,
                c.broadcast_b ? " bcastB" : "");
  report(worst <= mode.tol, name, worst, mode.tol);
}

std::vector<GemmMode> gemm_modes() {
  std::vector<GemmMode> modes = {
      {"own-f32", DType::Float32, cu::GemmBackend::Own, false, 2e-6},
      {"own-tf32", DType::Float32, cu::GemmBackend::Own, true, 4e-3},
      {"own-bf16", DType::BFloat16, cu::GemmBackend::Own, false, 1.2e-2},
  };
  if (cu::cublas_built()) {
    modes.push_back({"cublas-f32", DType::Float32, cu::GemmBackend::Cublas, false, 2e-6});
    modes.push_back({"cublas-tf32", DType::Float32, cu::GemmBackend::Cublas, true, 4e-3});
    modes.push_back({"cublas-bf16", DType::BFloat16, cu::GemmBackend::Cublas, false, 1.2e-2});
  }
  return modes;
}

struct Shape { int64_t batch, M, N, K; };

void dispatch_checks() {
  std::printf("cuBLAS %s\n", cu::cublas_built() ? "built" : "not built");
  const Shape shapes[] = {{1, 1, 1, 1},      {1, 17, 33, 9},    {1, 128, 128, 128}, {1, 129, 131, 67},
                          {3, 200, 72, 40},  {1, 64, 256, 1000}, {1, 257, 129, 264}, {2, 96, 80, 48},
                          {1, 5, 7, 0},      {1, 512, 384, 512}, {2, 33, 260, 136}};
  for (const GemmMode& mode : gemm_modes())
    for (const Shape& s : shapes)
      for (int t = 0; t < 4; ++t)
        for (int acc = 0; acc < 2; ++acc) {
          const bool ta = t & 1, tb = t & 2;
          check_gemm(mode, {s.batch, s.M, s.N, s.K, ta, tb, acc == 1, 0, 0, false});
          if (acc == 0 && s.M > 1) {
            check_gemm(mode, {s.batch, s.M, s.N, s.K, ta, tb, false, 8, 0, s.batch > 1});  // padded, aligned
            check_gemm(mode, {s.batch, s.M, s.N, s.K, ta, tb, true, 3, 1, false});          // misaligned
          }
        }
  cu::set_allow_tf32(false);
}

// Every tile configuration of the own kernels (what --bench times) on shapes no tile divides;
// the mma kernel's m- or n-contiguous operands need M or N a multiple of 8.
void config_checks() {
  const Shape odd[] = {{1, 264, 136, 264}, {2, 136, 264, 200}};
  const GemmMode kinds[] = {{"wgmma", DType::BFloat16, cu::GemmBackend::Own, false, 1.2e-2, 0, cu::OwnKernel::Wgmma},
                            {"bf16", DType::BFloat16, cu::GemmBackend::Own, false, 1.2e-2, 0, cu::OwnKernel::Mma},
                            {"tf32", DType::Float32, cu::GemmBackend::Own, true, 4e-3, 0, cu::OwnKernel::Mma},
                            {"f32", DType::Float32, cu::GemmBackend::Own, false, 2e-6, 0, cu::OwnKernel::Simt}};
  for (const GemmMode& kind : kinds)
    for (int i = 0; i < int(cu::gemm_config_names(kind.kernel).size()); ++i) {
      GemmMode mode = kind;
      mode.config = i, mode.name = kind.name + "#" + std::to_string(i);
      for (const Shape& s : odd)
        for (int t = 0; t < 4; ++t)
          check_gemm(mode, {s.batch, s.M, s.N, s.K, bool(t & 1), bool(t & 2), t % 2 == 1, 0, 0, false});
    }
  cu::set_allow_tf32(false);
}

// ============================== benchmarks ==============================

// TFLOP/s by mode name.
std::vector<std::pair<std::string, double>> gemm_bench() {
  const int64_t n = 4096;
  std::printf("\nGEMM %lld^3 (TFLOP/s, median of 10)\n", (long long)n);
  std::vector<std::pair<std::string, double>> rates;
  for (const GemmMode& mode : gemm_modes()) {
    Buffer a(mode.dtype, n * n), b(mode.dtype, n * n), c(mode.dtype, n * n);
    std::vector<float> x = randn(n * n);
    a.upload(x), b.upload(x);
    cu::set_gemm_backend(mode.backend);
    cu::set_allow_tf32(mode.tf32);
    cu::GemmArgs g{1, n, n, n, a.ptr, 0, n, 1, b.ptr, 0, n, 1, c.ptr, 0, n, false, kDevice};
    const double ms = time_ms([&] { cu::gemm(mode.dtype, g); }, 10);
    const double tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
    std::printf("  %-12s %8.3f ms  %7.1f TFLOP/s\n", mode.name.c_str(), ms, tflops);
    rates.emplace_back(mode.name, tflops);
  }
  cu::set_allow_tf32(false);
  auto rate = [&](const char* name) {
    for (auto& r : rates)
      if (r.first == name) return r.second;
    return 0.0;
  };
  if (cu::cublas_built())
    std::printf("  own / cuBLAS: f32 %.2f (target 0.8), tf32 %.2f, bf16 %.2f (target 0.6)\n",
                rate("own-f32") / rate("cublas-f32"), rate("own-tf32") / rate("cublas-tf32"),
                rate("own-bf16") / rate("cublas-bf16"));
  return rates;
}

// Every tile configuration of the own kernels (cu::gemm_with_config) at n^3, each first checked
// against the configuration gemm() picks, on the same inputs: the configurations of one kernel add
// the same products in the same k order, so beyond rounding (tol_of) a difference is a tiling bug.
void gemm_config_bench(const std::vector<std::pair<std::string, double>>& rates) {
  const int64_t n = 4096;
  // On max |C - C_picked| / max |C_picked|. The bfloat16 kernels round their sums differently
  // (wgmma and mma.sync add in different orders); one bfloat16 ulp is 2^-8 = 0.4%.
  auto tol_of = [](DType t) { return t == DType::BFloat16 ? 1e-2 : 1e-3; };
  struct Family {
    const char* name;
    DType dtype;
    cu::OwnKernel kernel;
    bool tf32;
    const char* cublas;
  };
  const Family families[] = {{"wgmma", DType::BFloat16, cu::OwnKernel::Wgmma, false, "cublas-bf16"},
                             {"bf16", DType::BFloat16, cu::OwnKernel::Mma, false, "cublas-bf16"},
                             {"tf32", DType::Float32, cu::OwnKernel::Mma, true, "cublas-tf32"},
                             {"f32", DType::Float32, cu::OwnKernel::Simt, false, "cublas-f32"}};
  std::printf("\nGEMM %lld^3 by tile configuration, * the one gemm() picks here (TFLOP/s, median of 10; "
              "err: max |C - C_picked| / max |C_picked|)\n",
              (long long)n);
  for (const Family& f : families) {
    double cublas = 0;
    for (const auto& r : rates)
      if (r.first == f.cublas) cublas = r.second;
    Buffer a(f.dtype, n * n), b(f.dtype, n * n), c(f.dtype, n * n), ref(f.dtype, n * n);
    std::vector<float> x = randn(n * n), y = randn(n * n);
    a.upload(x), b.upload(y);
    cu::set_gemm_backend(cu::GemmBackend::Own);
    cu::set_allow_tf32(f.tf32);
    cu::GemmArgs g{1, n, n, n, a.ptr, 0, n, 1, b.ptr, 0, n, 1, ref.ptr, 0, n, false, kDevice};
    cu::gemm(f.dtype, g);
    sync();
    const std::vector<float> want = ref.download(n * n);
    double scale = 0;
    for (float v : want) scale = std::max(scale, double(std::fabs(v)));
    g.C = c.ptr;
    const std::vector<std::string> names = cu::gemm_config_names(f.kernel);
    int best = -1;
    double best_rate = 0;
    for (int i = 0; i < int(names.size()); ++i) {
      const char* mark = i == cu::gemm_config_for(f.dtype, f.kernel, g) ? "*" : " ";
      try {
        cuda_ok(cudaMemsetAsync(c.ptr, 0xff, n * n * elem_size(f.dtype), tg_stream()), "memset");  // NaN
        cu::gemm_with_config(f.dtype, f.kernel, i, g);
        sync();
        const std::vector<float> got = c.download(n * n);
        double worst = 0;
        for (int64_t e = 0; e < n * n; ++e) {
          const double d = std::fabs(double(got[e]) - want[e]);
          worst = std::max(worst, std::isnan(d) ? 1e30 : d);
        }
        const double err = worst / std::max(scale, 1e-30);
        ++checks;
        const double tol = tol_of(f.dtype);
        if (err > tol) {
          ++failures;
          std::printf("FAIL %-4s [%d]%s %-34s err %.3g (tol %.3g): differs from the configuration gemm() picks\n", f.name, i,
                      mark, names[i].c_str(), err, tol);
          continue;
        }
        const double ms = time_ms([&] { cu::gemm_with_config(f.dtype, f.kernel, i, g); }, 10);
        const double tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
        std::printf("  %-4s [%d]%s %-34s err %.1e %8.3f ms %7.1f TFLOP/s", f.name, i, mark, names[i].c_str(), err, ms,
                    tflops);
        if (cublas > 0) std::printf("  %.2fx cuBLAS", tflops / cublas);
        std::printf("\n");
        if (tflops > best_rate) best = i, best_rate = tflops;
      } catch (const std::exception& e) {  // e.g. more shared memory than this GPU has
        std::printf("  %-4s [%d]%s %-34s not run: %s\n", f.name, i, mark, names[i].c_str(), e.what());
      }
    }
    if (best >= 0) {
      std::printf("  best %s: [%d] %s, %.1f TFLOP/s", f.name, best, names[best].c_str(), best_rate);
      if (cublas > 0) std::printf(" = %.2fx cuBLAS", best_rate / cublas);
      std::printf("\n");
    }
  }
  cu::set_allow_tf32(false);
}

// ============================== the emulator tests' commands ==============================

DType dtype_arg(const std::string& s) {
  if (s == "f32") return DType::Float32;
  if (s == "bf16") return DType::BFloat16;
  throw std::runtime_error("dtype must be f32 or bf16");
}

cu::OwnKernel kernel_arg(const std::string& s) {
  if (s == "mma") return cu::OwnKernel::Mma;
  if (s == "simt") return cu::OwnKernel::Simt;
  if (s == "wgmma") return cu::OwnKernel::Wgmma;
  throw std::runtime_error("kernel must be mma, simt or wgmma");
}

int gemm_from_files(const std::vector<std::string>& args) {
  if (args.size() != 11 && args.size() != 13) throw std::runtime_error("gemm: 11 or 13 arguments expected");
  const std::string& dir = args[0];
  auto integer = [&](int i) { return std::atoll(args[i].c_str()); };
  GemmMode mode{"files", dtype_arg(args[1]), cu::GemmBackend::Own, integer(9) != 0, 0};
  if (args.size() == 13) mode.kernel = kernel_arg(args[11]), mode.config = int(integer(12));
  const GemmCase c{integer(2), integer(3), integer(4), integer(5), args[6] == "km", args[7] == "nk", integer(8) != 0,
                   0, integer(10), false, false};
  std::vector<float> a = read_floats(dir + "/a.bin"), b = read_floats(dir + "/b.bin"), c0 = read_floats(dir + "/c.bin");
  const GemmLayout l(c);
  if (int64_t(a.size()) != l.a_mat * c.batch || int64_t(b.size()) != l.b_count || int64_t(c0.size()) != l.c_mat * c.batch)
    throw std::runtime_error("gemm: the files' sizes do not match the shape");
  cu::GemmArgs g;
  write_floats(dir + "/c.bin", run_gemm(mode, c, g, a, b, c0));
  return 0;
}

int list_configs(const std::vector<std::string>& args) {
  if (args.size() != 1) throw std::runtime_error("gemm-configs: a kernel name expected");
  for (const std::string& name : cu::gemm_config_names(kernel_arg(args[0]))) std::printf("%s\n", name.c_str());
  return 0;
}

void benchmarks() { gemm_config_bench(gemm_bench()); }

}  // namespace

int main(int argc, char** argv) {
  Program program;
  program.usage = "usage: see the head of benchmarks/cuda/gemm_check.cu\n";
  program.checks = {{"dispatch", dispatch_checks}, {"configs", config_checks}};
  program.bench = benchmarks;
  program.commands = {{"gemm", gemm_from_files}, {"gemm-configs", list_configs}};
  // kernel_check's name for the GEMM benchmarks, which gemm.cu's notes on the tile sweep use
  if (argc > 1 && std::string(argv[1]) == "--configs") argv[1] = const_cast<char*>("--bench");
  return run_program(argc, argv, program);
}
