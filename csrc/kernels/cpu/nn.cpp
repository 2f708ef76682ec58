// Row kernels of the neural-network functions.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {
// Rows per thread chunk: enough that a chunk holds ~16K elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

// Each kernel's rows [b, e) in one SIMD-cloned function (the threads only split the rows).

// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k (exact, and no overflow).
// A row of all -inf has no maximum to subtract: it gives NaN, as in PyTorch.
template <class T>
TG_SIMD_CLONES void softmax_range(const T* x, T* y, int64_t cols, int64_t b, int64_t e, bool log) {
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = row_max(xr, cols);
    // exps first (a loop the compiler widens), then their sum in double
    for (int64_t j = 0; j < cols; ++j) yr[j] = fn::exp_vec(xr[j] - m);
    const double s = row_sum(yr, cols);
    if (log) {
      const T lse = m + static_cast<T>(std::log(s));
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
  }
}

// y = (x - mean) / sqrt(var + eps) per row, var biased.
template <class T>
TG_SIMD_CLONES void layer_norm_range(const T* x, T* y, T* mean, T* rstd, int64_t cols, int64_t b, int64_t e,
                                     double eps) {
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * cols;
    const double mu = row_sum(xr, cols) / static_cast<double>(cols);
    const double rs = 1.0 / std::sqrt(row_sq_dev(xr, cols, mu) / static_cast<double>(cols) + eps);
    const T m = static_cast<T>(mu), s = static_cast<T>(rs);
    T* yr = y + r * cols;
    for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * s;
    mean[r] = m;
    rstd[r] = s;
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g the gradient at xhat (after the affine
// weight), per row; xhat = (x - mean) * rstd is rebuilt into dx's row, which then takes the result.
template <class T>
TG_SIMD_CLONES void layer_norm_backward_range(const T* g, const T* x, const T* mean, const T* rstd, T* dx,
                                              int64_t cols, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const T* gr = g + r * cols;
    const T* xr = x + r * cols;
    const T mu = mean[r], rs = rstd[r];
    T* d = dx + r * cols;
    for (int64_t j = 0; j < cols; ++j) d[j] = (xr[j] - mu) * rs;
    const T mg = static_cast<T>(row_sum(gr, cols) / cols), mgx = static_cast<T>(row_dot(gr, d, cols) / cols);
    for (int64_t j = 0; j < cols; ++j) d[j] = rs * (gr[j] - mg - d[j] * mgx);
  }
}

// loss_r = lse_r - x[r, t_r], lse_r = m + log sum_j exp(x_rj - m); an ignored row (t_r < 0)
// has loss 0. `scratch` holds one row of exps.
template <class T>
TG_SIMD_CLONES void cross_entropy_range(const T* x, const int64_t* targets, T* loss, T* lse, T* scratch, int64_t C,
                                        int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * C;
    const T m = row_max(xr, C);
    for (int64_t j = 0; j < C; ++j) scratch[j] = fn::exp_vec(xr[j] - m);
    lse[r] = m + static_cast<T>(std::log(row_sum(scratch, C)));
    loss[r] = targets[r] < 0 ? T(0) : lse[r] - xr[targets[r]];
  }
}

// dx_rj = s_r (softmax(x_r)_j - [j == t_r]) = s_r (exp(x_rj - lse_r) - [j == t_r]), s_r the
// row's scale (the incoming gradient, divided by the count for a mean); ignored rows get 0.
template <class T>
TG_SIMD_CLONES void cross_entropy_backward_range(const T* x, const int64_t* targets, const T* lse, const T* scale,
                                                 T* dx, int64_t C, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    T* dr = dx + r * C;
    const T* xr = x + r * C;
    const T s = targets[r] < 0 ? T(0) : scale[r], l = lse[r];
    for (int64_t j = 0; j < C; ++j) dr[j] = s * fn::exp_vec(xr[j] - l);
    if (targets[r] >= 0) dr[targets[r]] -= s;
  }
}

}  // namespace

void CpuBackend::softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) {
  TG_DISPATCH_FLOAT(dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
      softmax_range(static_cast<const T*>(in), static_cast<T*>(out), cols, b, e, log);
    });
  });
}

void CpuBackend::layer_norm_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, void* mean_out,
                                 void* rstd_out, double eps) {
  TG_DISPATCH_FLOAT(dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
      layer_norm_range(static_cast<const T*>(in), static_cast<T*>(out), static_cast<T*>(mean_out),
                       static_cast<T*>(rstd_out), cols, b, e, eps);
    });
  });
}

void CpuBackend::layer_norm_backward_rows(DType dtype, int64_t rows, int64_t cols, const void* g_in, const void* x_in,
                                          const void* mean_in, const void* rstd_in, void* dx_out) {
  TG_DISPATCH_FLOAT(dtype, "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
      layer_norm_backward_range(static_cast<const T*>(g_in), static_cast<const T*>(x_in), static_cast<const T*>(mean_in),
                                static_cast<const T*>(rstd_in), static_cast<T*>(dx_out), cols, b, e);
    });
  });
}

void CpuBackend::cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                                    void* lse_out) {
  TG_DISPATCH_FLOAT(dtype, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(C), [&](int64_t b, int64_t e) {
      std::vector<T> scratch(static_cast<size_t>(C));
      cross_entropy_range(static_cast<const T*>(logits), targets, static_cast<T*>(loss), static_cast<T*>(lse_out),
                          scratch.data(), C, b, e);
    });
  });
}

void CpuBackend::cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                             const void* lse_in, const void* row_scale, void* dlogits) {
  TG_DISPATCH_FLOAT(dtype, "cross_entropy backward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(C), [&](int64_t b, int64_t e) {
      cross_entropy_backward_range(static_cast<const T*>(logits), targets, static_cast<const T*>(lse_in),
                                   static_cast<const T*>(row_scale), static_cast<T*>(dlogits), C, b, e);
    });
  });
}

}  // namespace tg::cpu
