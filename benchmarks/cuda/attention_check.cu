// The fused-attention kernels (csrc/kernels/cuda/attention.cu and what it dispatches to: the CUDA
// cores, attention_simt.cuh; the tensor cores, attention_tc.cu; Hopper, sm90/attention_wgmma.cu
// for bfloat16 on sm_90 unless TAPEGRAD_CUDA_ATTENTION=mma), forward and backward, checked against a double-precision
// CPU reference of the CPU kernel's semantics (exit status 1 on any failure), then timed in
// TFLOP/s. One program, two builds (benchmarks/cuda/build_checks.sh; check_common.cuh says what
// each runs):
//
//   attention_check                      checks, then benchmarks
//   attention_check --check [GROUP...]   checks only: "f32" (the CUDA cores), "tf32" (float32 under
//                                        allow_tf32, the tensor cores), "bf16"
//   attention_check --bench              benchmarks only (kernel_check --attention)
//
// The emulator tests (tests/test_cuda_emulated.py) use one command, arrays as float32 files in DIR:
//   attention_check attention DIR f32|tf32|bf16 N L S E Ev causal mask_row mask_col dropout_p seed misalign
//       (tf32: float32 with allow_tf32, on the tensor-core kernels)
//       reads q k v dout [mask mask_offsets(int64)], writes out lse dq dk dv; misalign = 1 starts
//       q, k, v and dout one element past an aligned address
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/attention_args.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/gemm.h"
#include "kernels/philox.h"
#include "check_common.cuh"

using namespace tg_check;

namespace {

struct AttnCase {
  int64_t N, L, S, E, Ev;
  bool causal;
  int mask;  // 0 none, 1 random additive (L x S per problem, some -inf), 2 shared (L x S) with
             // fully masked rows, 3 key padding (one row of S per problem, broadcast over i)
  double dropout;
};

struct AttnResults {
  std::vector<float> out, lse, dq, dk, dv;
};

// The forward then the backward on the device. q, k, v, dout and mask are rounded in place to
// dtype; q, k, v and dout start `shift` elements into their buffers. The backward reads O as the
// device computed it.
AttnResults run_attention(DType dtype, tg::AttentionArgs a, std::vector<float>& q, std::vector<float>& k,
                          std::vector<float>& v, std::vector<float>& dout, std::vector<float>& mask,
                          const std::vector<int64_t>& offsets, size_t shift) {
  Buffer dq_(dtype, q.size() + shift), dk_(dtype, k.size() + shift), dv_(dtype, v.size() + shift);
  Buffer ddo(dtype, dout.size() + shift), dmask(dtype, mask.size());
  Buffer out(dtype, a.N * a.L * a.Ev), lse(DType::Float32, a.N * a.L);
  Buffer gq(dtype, q.size()), gk(dtype, k.size()), gv(dtype, v.size());
  dq_.upload(q, shift), dk_.upload(k, shift), dv_.upload(v, shift), ddo.upload(dout, shift);
  const IndexBuffer doffsets(offsets);
  if (!mask.empty()) {
    dmask.upload(mask);
    a.mask = dmask.ptr, a.mask_offsets = doffsets.ptr;
  }
  cu::attention_forward(dtype, a, dq_.at(shift), dk_.at(shift), dv_.at(shift), out.ptr, lse.ptr, kDevice);
  cu::attention_backward(dtype, a, dq_.at(shift), dk_.at(shift), dv_.at(shift), out.ptr, lse.ptr, ddo.at(shift),
                         gq.ptr, gk.ptr, gv.ptr, kDevice);
  sync();
  return {out.download(out.count), lse.download(lse.count), gq.download(q.size()), gk.download(k.size()),
          gv.download(v.size())};
}

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
  const AttnResults got = run_attention(dtype, a, q, k, v, dout, mask, offsets, 0);
  // The reference uses its own O, which differs from the device's only by rounding (D = rowsum(dO * O)).
  const AttnRef ref = attention_reference(c, a, q, k, v, mask, offsets, dout);
  const double tol = dtype == DType::BFloat16 ? 2.5e-2 : tf32 ? 3e-3 : 2e-4;
  char name[200];
  std::snprintf(name, sizeof name, "attention %s N%lld L%lld S%lld E%lld Ev%lld%s mask%d p%.2f",
                dtype == DType::BFloat16 ? "bf16" : tf32 ? "tf32" : "f32 ", (long long)c.N, (long long)c.L, (long long)c.S,
                (long long)c.E, (long long)c.Ev, c.causal ? " causal" : "", c.mask, c.dropout);
  const struct { const char* what; const std::vector<float>& got; const std::vector<double>& ref; } parts[] = {
      {"out", got.out, ref.out}, {"lse", got.lse, ref.lse}, {"dq", got.dq, ref.dq},
      {"dk", got.dk, ref.dk},    {"dv", got.dv, ref.dv}};
  for (const auto& part : parts) {
    // Relative to the result's size, or to a floor where it is smaller: with one key dq and dk are
    // exactly 0 (dS = P (dP - D) cancels), and what is left of that cancellation is rounding, not
    // a wrong kernel: ~1e-7 in float32 and bfloat16 (dP and D read the same values; the terms are
    // of size 1), but ~2^-11 of the terms under tf32, whose products round q, k, v and dO to 11
    // bits while D = rowsum(dO * O) does not.
    const double err = max_error(part.got, part.ref, tf32 ? 1.0 : 0.1);
    report(err <= tol, std::string(name) + " " + part.what, err, tol);
  }
  cu::set_allow_tf32(false);
}

// Every case on one path: dtype, and float32 through the tensor cores when tf32.
void attention_checks(DType dtype, bool tf32) {
  const AttnCase cases[] = {
      {2, 37, 53, 32, 32, false, 0, 0.0},   {2, 64, 64, 64, 64, true, 0, 0.0},    {3, 100, 70, 80, 80, false, 1, 0.0},
      {2, 65, 129, 128, 128, true, 1, 0.0}, {2, 50, 50, 64, 48, false, 0, 0.2},   {2, 20, 30, 16, 16, false, 2, 0.0},
      {2, 45, 77, 33, 17, false, 3, 0.1},   {1, 90, 40, 64, 64, true, 0, 0.0},    {1, 40, 90, 128, 96, true, 2, 0.3},
      {4, 1, 1, 8, 8, false, 0, 0.0},       {2, 130, 200, 128, 128, false, 3, 0.0}, {1, 33, 0, 32, 32, false, 0, 0.0},
      // E <= 64 < Ev: the Hopper kernels' second Q / K box lies wholly outside the tensors; their
      // mbarriers expect its bytes all the same (a hang here: the TMA did not count them)
      {2, 70, 90, 48, 112, false, 0, 0.0},
  };
  for (const AttnCase& c : cases) check_attention(dtype, c, tf32);
}

// ============================== benchmarks ==============================

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

// ============================== the emulator tests' command ==============================

int attention_from_files(const std::vector<std::string>& args) {
  if (args.size() != 13) throw std::runtime_error("attention: 13 arguments expected");
  const std::string& dir = args[0];
  auto integer = [&](int i) { return std::atoll(args[i].c_str()); };
  const bool tf32 = args[1] == "tf32";
  if (!tf32 && args[1] != "f32" && args[1] != "bf16") throw std::runtime_error("dtype must be f32, tf32 or bf16");
  const DType dtype = args[1] == "bf16" ? DType::BFloat16 : DType::Float32;
  cu::set_allow_tf32(tf32);
  tg::AttentionArgs a{};
  a.N = integer(2), a.L = integer(3), a.S = integer(4), a.E = integer(5), a.Ev = integer(6);
  a.causal = integer(7) != 0;
  a.mask_row = integer(8), a.mask_col = integer(9);
  a.dropout_p = std::atof(args[10].c_str());
  a.seed = std::strtoull(args[11].c_str(), nullptr, 10), a.offset = 0;
  a.scale = 1.0 / std::sqrt(static_cast<double>(a.E));
  const size_t shift = integer(12) != 0 ? 1 : 0;

  auto input = [&](const char* name, int64_t n) {
    std::vector<float> x = read_floats(dir + "/" + name + ".bin");
    if (int64_t(x.size()) != n) throw std::runtime_error(std::string("attention: ") + name + ".bin has the wrong size");
    return x;
  };
  std::vector<float> q = input("q", a.N * a.L * a.E), k = input("k", a.N * a.S * a.E);
  std::vector<float> v = input("v", a.N * a.S * a.Ev), dout = input("dout", a.N * a.L * a.Ev);
  std::vector<float> mask = read_floats(dir + "/mask.bin");
  std::vector<int64_t> offsets(a.N, 0);
  if (!mask.empty())
    std::ifstream(dir + "/mask_offsets.bin", std::ios::binary).read(reinterpret_cast<char*>(offsets.data()), a.N * 8);
  const AttnResults got = run_attention(dtype, a, q, k, v, dout, mask, offsets, shift);
  write_floats(dir + "/out.bin", got.out);
  write_floats(dir + "/lse.bin", got.lse);
  write_floats(dir + "/dq.bin", got.dq);
  write_floats(dir + "/dk.bin", got.dk);
  write_floats(dir + "/dv.bin", got.dv);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Program program;
  program.usage = "usage: see the head of benchmarks/cuda/attention_check.cu\n";
  program.checks = {{"f32", [] { attention_checks(DType::Float32, false); }},
                    {"tf32", [] { attention_checks(DType::Float32, true); }},
                    {"bf16", [] { attention_checks(DType::BFloat16, false); }}};
  program.bench = attention_bench;
  program.commands = {{"attention", attention_from_files}};
  return run_program(argc, argv, program);
}
