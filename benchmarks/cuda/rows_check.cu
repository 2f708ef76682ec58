// The row kernels of the nn functions (csrc/kernels/cuda/nn.cu through rows.h: softmax,
// log_softmax, layer_norm and cross_entropy, forward and backward), checked against a
// double-precision CPU reference (exit status 1 on any failure), then timed in GB/s. One program,
// two builds (benchmarks/cuda/build_checks.sh; check_common.cuh says what each runs):
//
//   rows_check                     checks, then benchmarks
//   rows_check --check [OP...]     checks only, of the ops named (softmax, log_softmax, layer_norm,
//                                  layer_norm_backward, cross_entropy, cross_entropy_backward)
//   rows_check --bench             benchmarks only
//
// nn.cu picks a row kind by the row's width (with_row_kind): a warp's registers, a block's, or a
// row streamed from global memory; vector loads where every row starts on a 16-byte boundary. The
// widths below reach every kind for float32 (capacities 256, 1024, 4096, 8192, 16384, then
// streamed) and float64 (128, 512, 2048, 4096, 8192, then streamed), each with and without
// vector loads (every width runs again with its arrays starting one element late).
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/rows.h"
#include "check_common.cuh"

using namespace tg_check;
using tg::LayerNormArgs;

namespace {

struct RowCase {
  DType dtype;
  int64_t rows, cols;
  size_t shift;  // every array starts this many elements into its buffer (1: no vector loads)
  int64_t count() const { return rows * cols; }
};

// An array of a case on the device: an input (its host values, rounded to the dtype, are what the
// reference reads) or an output (every element NaN until a kernel writes it).
struct DeviceArray {
  std::vector<double> host;
  Buffer buffer;
  size_t shift;
  DeviceArray(const RowCase& c, std::vector<double> values)
      : host(std::move(values)), buffer(c.dtype, host.size() + c.shift), shift(c.shift) {
    buffer.upload(host, shift);
  }
  DeviceArray(const RowCase& c, int64_t n) : buffer(c.dtype, n + c.shift), shift(c.shift) { buffer.poison(); }
  void* ptr() const { return buffer.at(shift); }
  std::vector<double> result() const {
    sync();
    return buffer.download<double>(buffer.count - shift, shift);
  }
};

std::vector<double> normal(int64_t n, double mean, double sd) {
  const std::vector<float> z = randn(n);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = mean + sd * z[i];
  return v;
}

// Class targets, every fourth row ignored (-1).
std::vector<int64_t> targets_of(const RowCase& c) {
  std::uniform_int_distribution<int64_t> cls(0, c.cols - 1);
  std::vector<int64_t> t(c.rows);
  for (int64_t r = 0; r < c.rows; ++r) t[r] = r % 4 == 3 ? -1 : cls(rng);
  return t;
}

// log sum_j exp(x_j) = m + log sum_j exp(x_j - m), m = max_j x_j.
double log_sum_exp(const double* x, int64_t n) {
  double m = -INFINITY, s = 0;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  for (int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}

// max_i |got_i - ref_i| / (|ref_i| + floor): elementwise relative error, absolute below `floor`.
// floor ~ 0 where no output cancels (probabilities); 1 where an output is a difference of terms
// of size ~1 (centred values, log-probabilities), whose rounding is absolute.
void expect(const RowCase& c, const char* op, const char* output, const std::vector<double>& got,
            const std::vector<double>& ref, double floor) {
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = got[i] == ref[i] ? 0 : std::fabs(got[i] - ref[i]) / (std::fabs(ref[i]) + floor);
    worst = std::max(worst, std::isnan(err) ? 1e30 : err);
  }
  // What rounding leaves (sums of up to 20,001 terms, ~80 per thread, then across threads; exp
  // and log to an ulp or two) is ~1e-6 in float32 and ~1e-14 in float64; a tenth of the terms
  // lost, or a wrong row, is far larger.
  const double tol = c.dtype == DType::Float64 ? 1e-12 : 1e-5;
  char name[160];
  std::snprintf(name, sizeof name, "%s %s %lldx%lld%s %s", op, c.dtype == DType::Float64 ? "f64" : "f32",
                (long long)c.rows, (long long)c.cols, c.shift ? " shifted" : "", output);
  report(worst <= tol, name, worst, tol);
}

// y = softmax(x) = exp(x - lse(x)), or log_softmax(x) = x - lse(x), per row.
void check_softmax(const RowCase& c, bool log) {
  const DeviceArray x(c, normal(c.count(), 0, 3)), y(c, c.count());
  cu::softmax_rows(c.dtype, c.rows, c.cols, x.ptr(), y.ptr(), log, kDevice);
  std::vector<double> ref(c.count());
  for (int64_t r = 0; r < c.rows; ++r) {
    const double* xr = &x.host[r * c.cols];
    const double lse = log_sum_exp(xr, c.cols);
    for (int64_t j = 0; j < c.cols; ++j) ref[r * c.cols + j] = log ? xr[j] - lse : std::exp(xr[j] - lse);
  }
  expect(c, log ? "log_softmax" : "softmax", "y", y.result(), ref, log ? 1 : 1e-30);
}

// mean = sum_j x_j / n, rstd = 1 / sqrt(sum_j (x_j - mean)^2 / n + eps), y = (x - mean) rstd w + b.
void check_layer_norm(const RowCase& c) {
  const double eps = 1e-5;
  const DeviceArray x(c, normal(c.count(), 2, 1.5)), y(c, c.count()), mean(c, c.rows), rstd(c, c.rows);
  const DeviceArray w(c, normal(c.cols, 1, 0.5)), b(c, normal(c.cols, 0, 0.5));
  cu::layer_norm_rows({c.dtype, c.rows, c.cols, x.ptr(), w.ptr(), b.ptr(), mean.ptr(), rstd.ptr(), eps}, y.ptr(), kDevice);
  std::vector<double> ref_y(c.count()), ref_mean(c.rows), ref_rstd(c.rows);
  for (int64_t r = 0; r < c.rows; ++r) {
    const double* xr = &x.host[r * c.cols];
    double sum = 0, ss = 0;
    for (int64_t j = 0; j < c.cols; ++j) sum += xr[j];
    const double mu = sum / c.cols;
    for (int64_t j = 0; j < c.cols; ++j) ss += (xr[j] - mu) * (xr[j] - mu);
    ref_mean[r] = mu, ref_rstd[r] = 1 / std::sqrt(ss / c.cols + eps);
    for (int64_t j = 0; j < c.cols; ++j) ref_y[r * c.cols + j] = (xr[j] - mu) * ref_rstd[r] * w.host[j] + b.host[j];
  }
  expect(c, "layer_norm", "y", y.result(), ref_y, 1);
  expect(c, "layer_norm", "mean", mean.result(), ref_mean, 1);
  expect(c, "layer_norm", "rstd", rstd.result(), ref_rstd, 1);
}

// dxhat = g w, dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), xhat = (x - mean) rstd
// rebuilt by the kernel; dw = sum over rows of g xhat, db = sum over rows of g.
void check_layer_norm_backward(const RowCase& c) {
  std::vector<double> rstd_values = normal(c.rows, 0, 0.5);
  for (double& s : rstd_values) s = std::exp(s);
  const DeviceArray g(c, normal(c.count(), 0, 1)), x(c, normal(c.count(), 0.5, 2)), mean(c, normal(c.rows, 0.5, 1));
  const DeviceArray rstd(c, rstd_values), dx(c, c.count()), w(c, normal(c.cols, 1, 0.5));
  const DeviceArray dw(c, c.cols), db(c, c.cols);
  cu::layer_norm_backward_rows({c.dtype, c.rows, c.cols, x.ptr(), w.ptr(), nullptr, mean.ptr(), rstd.ptr(), 0.0},
                               g.ptr(), dx.ptr(), dw.ptr(), db.ptr(), kDevice);
  std::vector<double> ref(c.count()), xhat(c.cols), dxhat(c.cols), ref_dw(c.cols, 0.0), ref_db(c.cols, 0.0);
  for (int64_t r = 0; r < c.rows; ++r) {
    const double* gr = &g.host[r * c.cols];
    double mg = 0, mgx = 0;
    for (int64_t j = 0; j < c.cols; ++j) {
      xhat[j] = (x.host[r * c.cols + j] - mean.host[r]) * rstd.host[r];
      dxhat[j] = gr[j] * w.host[j];
      mg += dxhat[j], mgx += dxhat[j] * xhat[j];
      ref_dw[j] += gr[j] * xhat[j], ref_db[j] += gr[j];
    }
    mg /= c.cols, mgx /= c.cols;
    for (int64_t j = 0; j < c.cols; ++j) ref[r * c.cols + j] = rstd.host[r] * (dxhat[j] - mg - xhat[j] * mgx);
  }
  expect(c, "layer_norm_backward", "dx", dx.result(), ref, 1);
  expect(c, "layer_norm_backward", "dweight", dw.result(), ref_dw, 1);
  expect(c, "layer_norm_backward", "dbias", db.result(), ref_db, 1);
}

// lse_i = log sum_j exp(x_ij), loss_i = lse_i - x_i,t_i (0 for an ignored row).
void check_cross_entropy(const RowCase& c) {
  const std::vector<int64_t> t = targets_of(c);
  const IndexBuffer targets(t);
  const DeviceArray x(c, normal(c.count(), 0, 2)), loss(c, c.rows), lse(c, c.rows);
  cu::cross_entropy_rows(c.dtype, c.rows, c.cols, x.ptr(), targets.ptr, loss.ptr(), lse.ptr(), kDevice);
  std::vector<double> ref_loss(c.rows), ref_lse(c.rows);
  for (int64_t r = 0; r < c.rows; ++r) {
    ref_lse[r] = log_sum_exp(&x.host[r * c.cols], c.cols);
    ref_loss[r] = t[r] < 0 ? 0 : ref_lse[r] - x.host[r * c.cols + t[r]];
  }
  expect(c, "cross_entropy", "loss", loss.result(), ref_loss, 1);
  expect(c, "cross_entropy", "lse", lse.result(), ref_lse, 1);
}

// d_ij = scale_i (exp(x_ij - lse_i) - [j == t_i]), 0 for an ignored row; lse as the forward left it.
void check_cross_entropy_backward(const RowCase& c) {
  const std::vector<int64_t> t = targets_of(c);
  const IndexBuffer targets(t);
  std::vector<double> x_values = normal(c.count(), 0, 2), lse_values(c.rows), scale_values = normal(c.rows, 1, 0.3);
  for (int64_t r = 0; r < c.rows; ++r) lse_values[r] = log_sum_exp(&x_values[r * c.cols], c.cols);
  const DeviceArray x(c, x_values), lse(c, lse_values), scale(c, scale_values), d(c, c.count());
  cu::cross_entropy_backward_rows(c.dtype, c.rows, c.cols, x.ptr(), targets.ptr, lse.ptr(), scale.ptr(), d.ptr(),
                                  kDevice);
  std::vector<double> ref(c.count(), 0.0);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t j = 0; t[r] >= 0 && j < c.cols; ++j)
      ref[r * c.cols + j] = scale.host[r] * (std::exp(x.host[r * c.cols + j] - lse.host[r]) - (j == t[r] ? 1 : 0));
  expect(c, "cross_entropy_backward", "dlogits", d.result(), ref, 1e-30);
}

// Every width for both dtypes, aligned and shifted; 11 rows, so a block of 8 warp-rows holds some
// and a second block the rest.
void for_each_case(void (*check)(const RowCase&)) {
  const int64_t widths[] = {37, 128, 300, 1000, 1025, 4096, 8000, 12000, 20001};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (size_t shift : {0, 1})
      for (int64_t cols : widths) check({dtype, 11, cols, shift});
}

// ============================== benchmarks ==============================

// GB/s of the bytes a kernel must read and write, float32, 2^26 elements (a streamed row is read
// once per pass; the passes after the first are not counted).
void rows_bench() {
  const int64_t n = int64_t(1) << 26;
  std::printf("\nRow kernels, float32, %lld elements (GB/s of the bytes each must move, median of 10)\n", (long long)n);
  std::printf("  %6s %9s %11s %10s %12s %13s %14s\n", "width", "softmax", "log_softmax", "layer_norm", "ln_backward",
              "cross_entropy", "ce_backward");
  std::vector<float> values = randn(n);
  Buffer x(DType::Float32, n), y(DType::Float32, n), g(DType::Float32, n), dx(DType::Float32, n);
  x.upload(values), g.upload(values);
  for (int64_t cols : {128, 1000, 4096, 12000, 20001}) {
    const int64_t rows = n / cols, elems = rows * cols;
    Buffer a(DType::Float32, rows), b(DType::Float32, rows), scale(DType::Float32, rows);
    std::vector<float> ones(rows, 1.f);
    scale.upload(ones);
    const IndexBuffer targets(std::vector<int64_t>(rows, 0));
    auto rate = [&](double bytes_per_element, const std::function<void()>& f) {
      return bytes_per_element * elems / (time_ms(f, 10) * 1e-3) / 1e9;
    };
    const DType t = DType::Float32;
    const double softmax = rate(8, [&] { cu::softmax_rows(t, rows, cols, x.ptr, y.ptr, false, kDevice); });
    const double log_softmax = rate(8, [&] { cu::softmax_rows(t, rows, cols, x.ptr, y.ptr, true, kDevice); });
    const LayerNormArgs ln{t, rows, cols, x.ptr, nullptr, nullptr, a.ptr, b.ptr, 1e-5};  // no weight or bias
    const double layer_norm = rate(8, [&] { cu::layer_norm_rows(ln, y.ptr, kDevice); });
    const double ln_backward =
        rate(12, [&] { cu::layer_norm_backward_rows(ln, g.ptr, dx.ptr, nullptr, nullptr, kDevice); });
    const double cross_entropy =
        rate(4, [&] { cu::cross_entropy_rows(t, rows, cols, x.ptr, targets.ptr, a.ptr, b.ptr, kDevice); });
    const double ce_backward = rate(8, [&] {
      cu::cross_entropy_backward_rows(t, rows, cols, x.ptr, targets.ptr, b.ptr, scale.ptr, y.ptr, kDevice);
    });
    std::printf("  %6lld %9.0f %11.0f %10.0f %12.0f %13.0f %14.0f\n", (long long)cols, softmax, log_softmax, layer_norm,
                ln_backward, cross_entropy, ce_backward);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Program program;
  program.usage = "usage: see the head of benchmarks/cuda/rows_check.cu\n";
  program.checks = {{"softmax", [] { for_each_case([](const RowCase& c) { check_softmax(c, false); }); }},
                    {"log_softmax", [] { for_each_case([](const RowCase& c) { check_softmax(c, true); }); }},
                    {"layer_norm", [] { for_each_case(check_layer_norm); }},
                    {"layer_norm_backward", [] { for_each_case(check_layer_norm_backward); }},
                    {"cross_entropy", [] { for_each_case(check_cross_entropy); }},
                    {"cross_entropy_backward", [] { for_each_case(check_cross_entropy_backward); }}};
  program.bench = rows_bench;
  return run_program(argc, argv, program);
}
