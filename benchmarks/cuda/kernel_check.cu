// Standalone check and benchmark of the CUDA GEMM and fused-attention kernels, without Python:
// every kernel against a double-precision CPU reference (exit status 1 on any failure), then
// timings in TFLOP/s. Build with benchmarks/cuda/build_kernel_check.sh.
//
//   ./kernel_check            checks, then benchmarks
//   ./kernel_check --check    checks only
//   ./kernel_check --bench    benchmarks only
//   ./kernel_check --configs  the GEMM benchmarks only: every tile configuration of the own kernels
//                             (checked against the one gemm() picks), next to cuBLAS
//   ./kernel_check --attention  the attention benchmarks only
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention_args.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#include "kernels/philox.h"
#include "check_common.cuh"

using namespace tg_check;

namespace {

// ============================== GEMM ==============================

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
  int64_t shift;      // element offset of every pointer (misaligns vector loads when odd)
  bool broadcast_b;   // b_batch = 0
};

void check_gemm(const GemmMode& mode, const GemmCase& c) {
  cu::set_gemm_backend(mode.backend);
  cu::set_allow_tf32(mode.tf32);
  const int64_t lda = (c.trans_a ? c.M : c.K) + c.pad, ldb = (c.trans_b ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
  const int64_t a_mat = (c.trans_a ? c.K : c.M) * lda, b_mat = (c.trans_b ? c.N : c.K) * ldb, c_mat = c.M * ldc;
  const int64_t b_count = c.broadcast_b ? b_mat : b_mat * c.batch;
  std::vector<float> a = randn(a_mat * c.batch), b = randn(b_count), c0 = randn(c_mat * c.batch);
  Buffer da(mode.dtype, a.size() + c.shift), db(mode.dtype, b.size() + c.shift), dc(mode.dtype, c0.size() + c.shift);
  da.upload(a, c.shift), db.upload(b, c.shift), dc.upload(c0, c.shift);

  cu::GemmArgs g{};
  g.batch = c.batch, g.M = c.M, g.N = c.N, g.K = c.K;
  g.A = da.at(c.shift), g.a_batch = a_mat;
  g.a_row = c.trans_a ? 1 : lda, g.a_col = c.trans_a ? lda : 1;
  g.B = db.at(c.shift), g.b_batch = c.broadcast_b ? 0 : b_mat;
  g.b_row = c.trans_b ? 1 : ldb, g.b_col = c.trans_b ? ldb : 1;
  g.C = dc.at(c.shift), g.c_batch = c_mat, g.ldc = ldc;
  g.accumulate = c.accumulate;
  g.device = kDevice;
  if (mode.config >= 0) cu::gemm_with_config(mode.dtype, mode.kernel, mode.config, g);
  else cu::gemm(mode.dtype, g);
  sync();
  const std::vector<float> got = dc.download(c0.size(), c.shift);

  double worst = 0;
  for (int64_t bi = 0; bi < c.batch; ++bi)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = a[bi * a_mat + i * g.a_row + k * g.a_col];
          const double y = b[bi * g.b_batch + k * g.b_row + j * g.b_col];
          ref += x * y, mag += std::fabs(x * y);
        }
        const double old = c0[bi * c_mat + i * ldc + j];
        if (c.accumulate) ref += old, mag += std::fabs(old);
        const double err = std::fabs(got[bi * c_mat + i * ldc + j] - ref) / (mag + 1e-6);
        worst = std::max(worst, std::isnan(err) ? 1e30 : err);
      }
  // The padding between rows must be untouched.
  for (int64_t bi = 0; bi < c.batch; ++bi)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = c.N; j < ldc; ++j)
        if (got[bi * c_mat + i * ldc + j] != c0[bi * c_mat + i * ldc + j]) worst = 1e30;
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

void gemm_checks() {
  struct Shape { int64_t batch, M, N, K; };
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
  // Every tile configuration of the own kernels (what --bench times) on shapes no tile divides;
  // the mma kernel's m- or n-contiguous operands need M or N a multiple of 8.
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

// ============================== attention ==============================

struct AttnCase {
  int64_t N, L, S, E, Ev;
  bool causal;
  int mask;  // 0 none, 1 random additive (L x S per problem, some -inf), 2 shared (L x S) with
             // fully masked rows, 3 key padding (one row of S per problem, broadcast over i)
  double dropout;
};

// Double-precision reference of the CPU kernel's semantics (kernels/cpu/attention.cpp).
struct AttnRef {
  std::vector<double> out, lse, dq, dk, dv;
};

AttnRef attention_reference(const AttnCase& c, const tg::AttentionArgs& a, const std::vector<float>& q,
                            const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& mask,
                            const std::vector<int64_t>& offsets, const std::vector<float>& dout) {
  AttnRef r;
  r.out.assign(c.N * c.L * c.Ev, 0), r.lse.assign(c.N * c.L, 0);
  r.dq.assign(c.N * c.L * c.E, 0), r.dk.assign(c.N * c.S * c.E, 0), r.dv.assign(c.N * c.S * c.Ev, 0);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> s(c.S), p(c.S), z(c.S), dp(c.S);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t i = 0; i < c.L; ++i) {
      double m = -inf;
      for (int64_t j = 0; j < c.S; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < c.E; ++e) dot += double(q[(n * c.L + i) * c.E + e]) * k[(n * c.S + j) * c.E + e];
        s[j] = dot * double(float(a.scale));
        if (c.mask) s[j] += mask[offsets[n] + i * a.mask_row + j * a.mask_col];
        if (c.causal && j > i) s[j] = -inf;
        m = std::max(m, s[j]);
        // The shared layout (kernels/philox.h): four elements per Philox call.
        const uint64_t element = uint64_t((n * c.L + i) * c.S + j);
        z[j] = c.dropout > 0 ? (double(tg::dropout_uniform(a.seed, a.offset, element)) >= c.dropout
                                    ? double(float(1.0 / (1.0 - c.dropout)))
                                    : 0.0)
                             : 1.0;
      }
      if (m == -inf) {
        r.lse[n * c.L + i] = -inf;
        continue;  // zero output, zero gradients
      }
      double sum = 0;
      for (int64_t j = 0; j < c.S; ++j) sum += (p[j] = std::exp(s[j] - m));
      r.lse[n * c.L + i] = m + std::log(sum);
      for (int64_t j = 0; j < c.S; ++j) p[j] /= sum;
      const float* dor = &dout[(n * c.L + i) * c.Ev];
      double d = 0;
      for (int64_t j = 0; j < c.S; ++j) {
        double acc = 0;
        for (int64_t e = 0; e < c.Ev; ++e) {
          r.out[(n * c.L + i) * c.Ev + e] += p[j] * z[j] * v[(n * c.S + j) * c.Ev + e];
          acc += double(dor[e]) * v[(n * c.S + j) * c.Ev + e];
        }
        dp[j] = acc * z[j];
        d += p[j] * dp[j];
      }
      for (int64_t j = 0; j < c.S; ++j) {
        const double ds = p[j] * (dp[j] - d) * double(float(a.scale));
        for (int64_t e = 0; e < c.Ev; ++e) r.dv[(n * c.S + j) * c.Ev + e] += p[j] * z[j] * dor[e];
        for (int64_t e = 0; e < c.E; ++e) {
          r.dq[(n * c.L + i) * c.E + e] += ds * k[(n * c.S + j) * c.E + e];
          r.dk[(n * c.S + j) * c.E + e] += ds * q[(n * c.L + i) * c.E + e];
        }
      }
    }
  return r;
}

// max |got - ref| over max |ref|: the error relative to the size of the result, or to 0.1 where
// the result is smaller: with one key dk is exactly 0 (dS = P (dP - D) cancels), and what float32
// leaves of that cancellation (~1e-7, the terms are of size 1) is rounding, not a wrong kernel.
// An infinite reference (lse of a row that sees nothing) must be matched exactly.
double max_error(const std::vector<float>& got, const std::vector<double>& ref) {
  double scale = 0, worst = 0;
  for (double x : ref)
    if (std::isfinite(x)) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < ref.size(); ++i) {
    double err = std::isinf(ref[i]) ? (got[i] == ref[i] ? 0 : 1e30) : std::fabs(got[i] - ref[i]);
    if (std::isnan(got[i])) err = 1e30;
    worst = std::max(worst, err);
  }
  return worst / std::max(scale, 0.1);
}

// tf32: float32 with allow_tf32 (the tensor-core kernels, tf32 products).
void check_attention(DType dtype, const AttnCase& c, bool tf32 = false) {
  cu::set_allow_tf32(tf32);
  tg::AttentionArgs a{};
  a.N = c.N, a.L = c.L, a.S = c.S, a.E = c.E, a.Ev = c.Ev;
  a.scale = 1.0 / std::sqrt(double(c.E));
  a.causal = c.causal;
  a.dropout_p = c.dropout;
  a.seed = 0x5eedu, a.offset = 977;
  std::vector<float> q = randn(c.N * c.L * c.E), k = randn(c.N * c.S * c.E), v = randn(c.N * c.S * c.Ev);
  std::vector<float> dout = randn(c.N * c.L * c.Ev), mask;
  std::vector<int64_t> offsets(c.N, 0);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  const float inf = std::numeric_limits<float>::infinity();
  if (c.mask == 1) {
    mask = randn(c.N * c.L * c.S);
    for (auto& x : mask) if (uni(rng) < 0.2f) x = -inf;
    for (int64_t n = 0; n < c.N; ++n) offsets[n] = n * c.L * c.S;
    a.mask_row = c.S, a.mask_col = 1;
  } else if (c.mask == 2) {
    mask.assign(c.L * c.S, 0.f);
    for (int64_t i = 0; i < c.L; ++i)
      for (int64_t j = 0; j < c.S; ++j)
        if (i % 5 == 3 || uni(rng) < 0.3f) mask[i * c.S + j] = -inf;  // rows 3, 8, ... see nothing
    a.mask_row = c.S, a.mask_col = 1;
  } else if (c.mask == 3) {
    mask.assign(c.N * c.S, 0.f);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t j = std::max<int64_t>(0, c.S - 1 - n * 3); j < c.S; ++j) mask[n * c.S + j] = -inf;  // padded keys at the end
    for (int64_t n = 0; n < c.N; ++n) offsets[n] = n * c.S;
    a.mask_row = 0, a.mask_col = 1;
  }
  Buffer dq_(dtype, q.size()), dk_(dtype, k.size()), dv_(dtype, v.size()), ddo(dtype, dout.size());
  Buffer dout_(dtype, c.N * c.L * c.Ev), dlse(DType::Float32, c.N * c.L), dmask(dtype, mask.size());
  Buffer gq(dtype, q.size()), gk(dtype, k.size()), gv(dtype, v.size());
  dq_.upload(q), dk_.upload(k), dv_.upload(v), ddo.upload(dout);
  int64_t* doffsets = nullptr;
  if (c.mask) {
    dmask.upload(mask);
    cuda_ok(cudaMalloc(&doffsets, c.N * sizeof(int64_t)), "cudaMalloc");
    upload_bytes(doffsets, offsets.data(), c.N * sizeof(int64_t));
    a.mask = dmask.ptr, a.mask_offsets = doffsets;
  }
  cu::attention_forward(dtype, a, dq_.ptr, dk_.ptr, dv_.ptr, dout_.ptr, dlse.ptr, kDevice);
  cu::attention_backward(dtype, a, dq_.ptr, dk_.ptr, dv_.ptr, dout_.ptr, dlse.ptr, ddo.ptr, gq.ptr, gk.ptr, gv.ptr,
                         kDevice);
  sync();
  // The backward reads O as the device computed it; the reference uses its own O, which differs
  // only by rounding (D = rowsum(dO * O)).
  const AttnRef ref = attention_reference(c, a, q, k, v, mask, offsets, dout);
  const double tol = dtype == DType::BFloat16 ? 2.5e-2 : tf32 ? 3e-3 : 2e-4;
  char name[200];
  std::snprintf(name, sizeof name, "attention %s N%lld L%lld S%lld E%lld Ev%lld%s mask%d p%.2f",
                dtype == DType::BFloat16 ? "bf16" : tf32 ? "tf32" : "f32 ", (long long)c.N, (long long)c.L, (long long)c.S,
                (long long)c.E, (long long)c.Ev, c.causal ? " causal" : "", c.mask, c.dropout);
  const struct { const char* what; std::vector<float> got; const std::vector<double>& ref; } parts[] = {
      {"out", dout_.download(ref.out.size()), ref.out}, {"lse", dlse.download(ref.lse.size()), ref.lse},
      {"dq", gq.download(ref.dq.size()), ref.dq},       {"dk", gk.download(ref.dk.size()), ref.dk},
      {"dv", gv.download(ref.dv.size()), ref.dv}};
  for (const auto& part : parts) {
    const double err = max_error(part.got, part.ref);
    report(err <= tol, std::string(name) + " " + part.what, err, tol);
  }
  cudaFree(doffsets);
  cu::set_allow_tf32(false);
}

void attention_checks() {
  const AttnCase cases[] = {
      {2, 37, 53, 32, 32, false, 0, 0.0},   {2, 64, 64, 64, 64, true, 0, 0.0},    {3, 100, 70, 80, 80, false, 1, 0.0},
      {2, 65, 129, 128, 128, true, 1, 0.0}, {2, 50, 50, 64, 48, false, 0, 0.2},   {2, 20, 30, 16, 16, false, 2, 0.0},
      {2, 45, 77, 33, 17, false, 3, 0.1},   {1, 90, 40, 64, 64, true, 0, 0.0},    {1, 40, 90, 128, 96, true, 2, 0.3},
      {4, 1, 1, 8, 8, false, 0, 0.0},       {2, 130, 200, 128, 128, false, 3, 0.0}, {1, 33, 0, 32, 32, false, 0, 0.0},
      // E <= 64 < Ev: the Hopper kernels' second Q / K box lies wholly outside the tensors; their
      // mbarriers expect its bytes all the same (a hang here: the TMA did not count them)
      {2, 70, 90, 48, 112, false, 0, 0.0},
  };
  for (const AttnCase& c : cases) {
    check_attention(DType::Float32, c);
    check_attention(DType::Float32, c, true);
    check_attention(DType::BFloat16, c);
  }
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

void attention_bench() {
  std::printf("\nAttention, batch 8 x 16 heads (TFLOP/s: forward 4 N T^2 D, backward 10 N T^2 D, non-causal)\n");
  const struct { const char* name; DType t; bool tf32; } kinds[] = {
      {"bf16", DType::BFloat16, false}, {"tf32", DType::Float32, true}, {"f32 ", DType::Float32, false}};
  for (const auto& kind : kinds)
    for (int64_t T : {1024, 4096})
      for (int64_t D : {64, 128}) {
        const DType t = kind.t;
        cu::set_allow_tf32(kind.tf32);
        const int64_t N = 128;
        tg::AttentionArgs a{N, T, T, D, D, 1.0 / std::sqrt(double(D)), nullptr, nullptr, 0, 0, false, 0.0, 0, 0};
        Buffer q(t, N * T * D), k(t, N * T * D), v(t, N * T * D), o(t, N * T * D), lse(DType::Float32, N * T);
        Buffer dO(t, N * T * D), dq(t, N * T * D), dk(t, N * T * D), dv(t, N * T * D);
        std::vector<float> x = randn(N * T * D);
        q.upload(x), k.upload(x), v.upload(x), dO.upload(x);
        const int iters = T >= 4096 ? 3 : 5;
        const double fwd = time_ms([&] { cu::attention_forward(t, a, q.ptr, k.ptr, v.ptr, o.ptr, lse.ptr, kDevice); },
                                   iters);
        const double bwd = time_ms(
            [&] {
              cu::attention_backward(t, a, q.ptr, k.ptr, v.ptr, o.ptr, lse.ptr, dO.ptr, dq.ptr, dk.ptr, dv.ptr, kDevice);
            },
            iters);
        const double f = double(N) * T * T * D;
        std::printf("  %s T %5lld D %3lld  fwd %8.2f ms %6.1f TFLOP/s  bwd %8.2f ms %6.1f TFLOP/s  fwd+bwd %6.1f TFLOP/s\n",
                    kind.name, (long long)T, (long long)D, fwd, 4 * f / fwd / 1e9, bwd,
                    10 * f / bwd / 1e9, 14 * f / (fwd + bwd) / 1e9);
      }
  cu::set_allow_tf32(false);
}

}  // namespace

int main(int argc, char** argv) {
  const bool check_only = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  const bool configs_only = argc > 1 && std::strcmp(argv[1], "--configs") == 0;
  const bool attention_only = argc > 1 && std::strcmp(argv[1], "--attention") == 0;
  const bool bench_only = configs_only || attention_only || (argc > 1 && std::strcmp(argv[1], "--bench") == 0);
  try {
    if (!cu::is_available()) {
      std::printf("no CUDA device\n");
      return 2;
    }
    cudaDeviceProp prop;
    cuda_ok(cudaGetDeviceProperties(&prop, kDevice), "cudaGetDeviceProperties");
    std::printf("device: %s (sm_%d%d), cuBLAS %s\n", prop.name, prop.major, prop.minor,
                cu::cublas_built() ? "built" : "not built");
    if (!bench_only) {
      gemm_checks();
      attention_checks();
      std::printf("\n%d passed, %d failed\n", checks - failures, failures);
    }
    if (!check_only) {
      if (!attention_only) gemm_config_bench(gemm_bench());
      if (!configs_only) attention_bench();
      if (failures) std::printf("\n%d of %d checks FAILED\n", failures, checks);
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
