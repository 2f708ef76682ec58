// Row kernels of the neural-network functions.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {
// Rows per thread chunk: enough that a chunk holds ~16K elements.
constexpr int64_t row_grain(int64_t cols) { return grain_for(cols, 16384); }

// Each kernel's rows [b, e) in one SIMD-cloned function (the threads only split the rows).

// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k (exact, and no overflow).
// A row of all -inf has no maximum to subtract: it gives NaN, as in PyTorch.
template <class T>
TG_SIMD_CLONES void softmax_range(const T* x, T* y, int64_t cols, int64_t b, int64_t e, bool log) {
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = row_max(xr, cols);
    const double s = exps_and_sum(xr, m, yr, cols);
    if (log) {
      const T lse = m + static_cast<T>(std::log(s));
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
  }
}

// xhat = (x - mean) * rstd per row, rstd = 1 / sqrt(var + eps) (var biased), then
// y = xhat * w + b per column; kWeight / kBias: whether there is a w / b (else 1 / 0).
template <class T, bool kWeight, bool kBias>
TG_ALWAYS_INLINE void layer_norm_row(const T* xr, const T* w, const T* bias, T* yr, T* mean, T* rstd, int64_t cols,
                                     double eps) {
  const double mu = row_sum(xr, cols) / static_cast<double>(cols);
  const double rs = 1.0 / std::sqrt(row_sq_dev(xr, cols, mu) / static_cast<double>(cols) + eps);
  const T m = static_cast<T>(mu), s = static_cast<T>(rs);
  for (int64_t j = 0; j < cols; ++j) {
    T y = (xr[j] - m) * s;
    if constexpr (kWeight) y *= w[j];
    if constexpr (kBias) y += bias[j];
    yr[j] = y;
  }
  *mean = m;
  *rstd = s;
}

template <class T>
TG_SIMD_CLONES void layer_norm_range(const LayerNormArgs& a, T* y, int64_t b, int64_t e) {
  const T *x = static_cast<const T*>(a.x), *w = static_cast<const T*>(a.weight), *bias = static_cast<const T*>(a.bias);
  T *mean = static_cast<T*>(a.mean), *rstd = static_cast<T*>(a.rstd);
  const int64_t cols = a.cols;
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    if (w && bias) layer_norm_row<T, true, true>(xr, w, bias, yr, mean + r, rstd + r, cols, a.eps);
    else if (w) layer_norm_row<T, true, false>(xr, w, bias, yr, mean + r, rstd + r, cols, a.eps);
    else if (bias) layer_norm_row<T, false, true>(xr, w, bias, yr, mean + r, rstd + r, cols, a.eps);
    else layer_norm_row<T, false, false>(xr, w, bias, yr, mean + r, rstd + r, cols, a.eps);
  }
}

// The backward of rows [b, e), per row with dxhat = dy * w (dy when there is no w):
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
// and the rows' share of the weight and bias gradients added into dw_part, db_part (null: not
// wanted): dw += dy * xhat, db += dy. xhat is rebuilt into dx's row, which then takes the result.
template <class T, bool kWeight>
TG_ALWAYS_INLINE void layer_norm_backward_rows_of(const LayerNormArgs& a, const T* dy, T* dx, T* dw_part, T* db_part,
                                                  int64_t b, int64_t e) {
  const T *x = static_cast<const T*>(a.x), *w = static_cast<const T*>(a.weight);
  const T *mean = static_cast<const T*>(a.mean), *rstd = static_cast<const T*>(a.rstd);
  const int64_t cols = a.cols;
  for (int64_t r = b; r < e; ++r) {
    const T *gr = dy + r * cols, *xr = x + r * cols;
    const T mu = mean[r], rs = rstd[r];
    T* d = dx + r * cols;
    double sum_g = 0, sum_gx = 0;  // sums of dxhat and dxhat * xhat
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rs, g = kWeight ? gr[j] * w[j] : gr[j];
      d[j] = xhat;
      sum_g += g;
      sum_gx += static_cast<double>(g) * xhat;
    }
    if (dw_part)
      for (int64_t j = 0; j < cols; ++j) dw_part[j] += gr[j] * d[j];
    if (db_part)
      for (int64_t j = 0; j < cols; ++j) db_part[j] += gr[j];
    const T mg = static_cast<T>(sum_g / cols), mgx = static_cast<T>(sum_gx / cols);
    for (int64_t j = 0; j < cols; ++j) {
      const T g = kWeight ? gr[j] * w[j] : gr[j];
      d[j] = rs * (g - mg - d[j] * mgx);
    }
  }
}

template <class T>
TG_SIMD_CLONES void layer_norm_backward_range(const LayerNormArgs& a, const T* dy, T* dx, T* dw_part, T* db_part,
                                              int64_t b, int64_t e) {
  if (a.weight) layer_norm_backward_rows_of<T, true>(a, dy, dx, dw_part, db_part, b, e);
  else layer_norm_backward_rows_of<T, false>(a, dy, dx, dw_part, db_part, b, e);
}

// loss_r = lse_r - x[r, t_r], lse_r = m + log sum_j exp(x_rj - m); an ignored row (t_r < 0)
// has loss 0. `scratch` holds one row of exps.
template <class T>
TG_SIMD_CLONES void cross_entropy_range(const T* x, const int64_t* targets, T* loss, T* lse, T* scratch, int64_t C,
                                        int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const T* xr = x + r * C;
    const T m = row_max(xr, C);
    lse[r] = m + static_cast<T>(std::log(exps_and_sum(xr, m, scratch, C)));
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
    for (int64_t j = 0; j < C; ++j) dr[j] = s * fn::exp_nonpositive(xr[j] - l);
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

void CpuBackend::layer_norm_rows(const LayerNormArgs& a, void* y) {
  TG_DISPATCH_FLOAT(a.dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(a.rows, row_grain(a.cols), [&](int64_t b, int64_t e) { layer_norm_range(a, static_cast<T*>(y), b, e); });
  });
}

// The rows go in fixed blocks, each with its own dweight / dbias partial sums, added block after
// block at the end: the gradients do not depend on the thread count. At least ~16K elements and
// at most 64 blocks, so the partials stay a small fraction of dy.
void CpuBackend::layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight,
                                          void* dbias) {
  TG_DISPATCH_FLOAT(a.dtype, "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = a.rows, cols = a.cols;
    const int64_t per_block = std::max(row_grain(cols), (rows + 63) / 64), blocks = (rows + per_block - 1) / per_block;
    const bool params = dweight || dbias;
    std::vector<T> partial(params ? static_cast<size_t>(blocks * 2 * cols) : 0, T(0));
    parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        T* dw_part = dweight ? partial.data() + k * 2 * cols : nullptr;
        T* db_part = dbias ? partial.data() + k * 2 * cols + cols : nullptr;
        layer_norm_backward_range(a, static_cast<const T*>(dy), static_cast<T*>(dx), dw_part, db_part, k * per_block,
                                  std::min(rows, (k + 1) * per_block));
      }
    });
    for (int which = 0; which < 2; ++which) {
      T* out = static_cast<T*>(which == 0 ? dweight : dbias);
      if (!out) continue;
      for (int64_t j = 0; j < cols; ++j) {
        double total = 0;
        for (int64_t k = 0; k < blocks; ++k) total += partial[static_cast<size_t>((k * 2 + which) * cols + j)];
        out[j] = static_cast<T>(total);
      }
    }
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
