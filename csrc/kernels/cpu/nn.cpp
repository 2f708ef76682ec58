// Row kernels of the neural-network functions.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {
// Rows per thread chunk: enough that a chunk holds ~16K elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }
}  // namespace

// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k (exact, and no overflow).
// A row of all -inf has no maximum to subtract: it gives NaN, as in PyTorch.
void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) {
  TG_DISPATCH_FLOAT(dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
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
    });
  });
}

// (x - mean) / sqrt(var + eps) per row, var biased; the two moments come from one pass.
void layer_norm_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, void* mean_out,
                     void* rstd_out, double eps) {
  TG_DISPATCH_FLOAT(dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    T* mo = static_cast<T*>(mean_out);
    T* ro = static_cast<T*>(rstd_out);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        double s = 0, ss = 0;
        for (int64_t j = 0; j < cols; ++j) s += xr[j];
        const double mu = s / static_cast<double>(cols);
        for (int64_t j = 0; j < cols; ++j) {
          double d = xr[j] - mu;
          ss += d * d;
        }
        const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
        const T m = static_cast<T>(mu), rs = static_cast<T>(rstd);
        T* yr = y + r * cols;
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * rs;
        mo[r] = m;
        ro[r] = rs;
      }
    });
  });
}

void layer_norm_backward_rows(DType dtype, int64_t rows, int64_t cols, const void* g_in, const void* xhat_in,
                              const void* rstd_in, void* dx_out) {
  TG_DISPATCH_FLOAT(dtype, "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(g_in);
    const T* xh = static_cast<const T*>(xhat_in);
    const T* rs = static_cast<const T*>(rstd_in);
    T* dx = static_cast<T*>(dx_out);
    parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* gr = g + r * cols;
        const T* xr = xh + r * cols;
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < cols; ++j) {
          sg += gr[j];
          sgx += static_cast<double>(gr[j]) * xr[j];
        }
        const T mg = static_cast<T>(sg / cols), mgx = static_cast<T>(sgx / cols), rstd = rs[r];
        T* d = dx + r * cols;
        for (int64_t j = 0; j < cols; ++j) d[j] = rstd * (gr[j] - mg - xr[j] * mgx);
      }
    });
  });
}

void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                        void* lse_out) {
  TG_DISPATCH_FLOAT(dtype, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(logits);
    T* l = static_cast<T*>(loss);
    T* lse = static_cast<T*>(lse_out);
    parallel_for(rows, row_grain(C), [&](int64_t b, int64_t e) {
      std::vector<T> ex(static_cast<size_t>(C));
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * C;
        const T m = row_max(xr, C);
        for (int64_t j = 0; j < C; ++j) ex[j] = fn::exp_vec(xr[j] - m);
        const double s = row_sum(ex.data(), C);
        lse[r] = m + static_cast<T>(std::log(s));
        l[r] = targets[r] < 0 ? T(0) : lse[r] - xr[targets[r]];
      }
    });
  });
}

void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                 const void* lse_in, const void* row_scale, void* dlogits) {
  TG_DISPATCH_FLOAT(dtype, "cross_entropy backward", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(logits);
    const T* lse = static_cast<const T*>(lse_in);
    const T* sc = static_cast<const T*>(row_scale);
    T* d = static_cast<T*>(dlogits);
    parallel_for(rows, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        T* dr = d + r * C;
        if (targets[r] < 0) {
          for (int64_t j = 0; j < C; ++j) dr[j] = 0;
          continue;
        }
        const T* xr = x + r * C;
        const T s = sc[r], l = lse[r];
        for (int64_t j = 0; j < C; ++j) dr[j] = s * fn::exp_vec(xr[j] - l);
        dr[targets[r]] -= s;
      }
    });
  });
}

}  // namespace tg::cpu
