// Fused scaled-dot-product attention. Each (batch, head) problem is one task; its (L x S) score
// block lives in a per-thread buffer and is rebuilt in the backward from the saved row
// log-sum-exp (FlashAttention's recomputation), so memory stays O(L x S) per thread.
//
//   forward:  S = scale q k^T + mask;  P = softmax_rows(S);  P~ = P * Z / (1 - p);  O = P~ v
//             lse_i = log sum_j exp(S_ij)  (-inf for a row that may attend nothing: its P is 0)
//   backward: dV = P~^T dO;  dP~ = dO v^T;  dP = dP~ * Z / (1 - p);  D_i = sum_j P_ij dP_ij
//             dS = P * (dP - D);  dQ = scale dS k;  dK = scale dS^T q
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/random.h"

namespace tg::cpu {

namespace {

// Scores of problem n into s (L x S): scale q k^T, then mask and causal (-inf where hidden).
template <class T>
TG_SIMD_CLONES void scores(const AttentionArgs& a, int64_t n, const T* q, const T* k, T* s) {
  gemm_matrix(dtype_of<T>::value, a.L, a.S, a.E, q, a.E, 1, k, 1, a.E, s, a.S, false);
  const T* mask = static_cast<const T*>(a.mask);
  const T scale = static_cast<T>(a.scale), neg_inf = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < a.L; ++i) {
    T* row = s + i * a.S;
    for (int64_t j = 0; j < a.S; ++j) row[j] *= scale;
    if (mask) {
      const T* m = mask + a.mask_offsets[n] + i * a.mask_row;
      for (int64_t j = 0; j < a.S; ++j) row[j] += m[j * a.mask_col];
    }
    if (a.causal)
      for (int64_t j = i + 1; j < a.S; ++j) row[j] = neg_inf;
  }
}

// Z_ij / (1 - p) for problem n, row i, into z (length S).
template <class T>
void dropout_row(const AttentionArgs& a, int64_t n, int64_t i, T* z) {
  const uint64_t first = static_cast<uint64_t>((n * a.L + i) * a.S);
  keep_scales(a.seed, a.offset, first, a.S, a.dropout_p, static_cast<T>(1.0 / (1.0 - a.dropout_p)), z);
}

// Rows of the scores s (L x S) become P~ in place: P = softmax, times the dropout factors; lse
// gets each row's log-sum-exp (-inf for a row that attends nothing; its P row is 0).
template <class T>
TG_SIMD_CLONES void softmax_rows_of(const AttentionArgs& a, int64_t n, T* s, T* lse, T* z) {
  for (int64_t i = 0; i < a.L; ++i) {
    T* row = s + i * a.S;
    const T m = row_max(row, a.S);
    if (m == -std::numeric_limits<T>::infinity()) {  // nothing to attend: zero output
      for (int64_t j = 0; j < a.S; ++j) row[j] = 0;
      lse[i] = m;
      continue;
    }
    const double sum = exps_and_sum(row, m, row, a.S);
    const T inv = static_cast<T>(1.0 / sum);
    lse[i] = m + static_cast<T>(std::log(sum));
    if (a.dropout_p > 0) {
      dropout_row(a, n, i, z);
      for (int64_t j = 0; j < a.S; ++j) row[j] *= inv * z[j];
    } else {
      for (int64_t j = 0; j < a.S; ++j) row[j] *= inv;
    }
  }
}

// From the recomputed scores p and dp = dP~ (both L x S): p becomes P~ (for dV) and dp becomes
// dS = scale P (dP - D), D_i = sum_j P_ij dP_ij, dP = dP~ Z / (1 - p).
template <class T>
TG_SIMD_CLONES void score_gradients_of(const AttentionArgs& a, int64_t n, const T* lse, T* p, T* dp, T* z) {
  const T scale = static_cast<T>(a.scale);
  for (int64_t i = 0; i < a.L; ++i) {
    T* pr = p + i * a.S;
    T* dpr = dp + i * a.S;
    const T l = lse[i];
    if (l == -std::numeric_limits<T>::infinity()) {
      for (int64_t j = 0; j < a.S; ++j) pr[j] = dpr[j] = 0;
      continue;
    }
    if (a.dropout_p > 0) {
      dropout_row(a, n, i, z);
      for (int64_t j = 0; j < a.S; ++j) dpr[j] *= z[j];
    }
    // P recomputed and D = sum_j P_ij dP_ij in one pass
    const T d = static_cast<T>(exps_and_sum_of(pr, l, pr, a.S, [&](T e, int64_t j) { return e * dpr[j]; }));
    if (a.dropout_p > 0) {
      for (int64_t j = 0; j < a.S; ++j) dpr[j] = scale * pr[j] * (dpr[j] - d), pr[j] *= z[j];
    } else {
      for (int64_t j = 0; j < a.S; ++j) dpr[j] = scale * pr[j] * (dpr[j] - d);
    }
  }
}

template <class T>
void forward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, T* out, T* lse) {
  parallel_for(a.N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> s(static_cast<size_t>(a.L * a.S)), z(a.dropout_p > 0 ? a.S : 0);
    for (int64_t n = n0; n < n1; ++n) {
      const T* qn = q + n * a.L * a.E;
      scores(a, n, qn, k + n * a.S * a.E, s.data());
      softmax_rows_of(a, n, s.data(), lse + n * a.L, z.data());
      gemm_matrix(dtype_of<T>::value, a.L, a.Ev, a.S, s.data(), a.S, 1, v + n * a.S * a.Ev, a.Ev, 1, out + n * a.L * a.Ev, a.Ev,
           false);
    }
  });
}

template <class T>
void backward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, const T* lse, const T* dout, T* dq,
                    T* dk, T* dv) {
  const DType dt = dtype_of<T>::value;
  parallel_for(a.N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> p(static_cast<size_t>(a.L * a.S)), dp(static_cast<size_t>(a.L * a.S)), z(a.S);
    for (int64_t n = n0; n < n1; ++n) {
      const T *qn = q + n * a.L * a.E, *kn = k + n * a.S * a.E, *vn = v + n * a.S * a.Ev, *don = dout + n * a.L * a.Ev;
      scores(a, n, qn, kn, p.data());
      // dP~ = dO v^T
      gemm_matrix(dt, a.L, a.S, a.Ev, don, a.Ev, 1, vn, 1, a.Ev, dp.data(), a.S, false);
      score_gradients_of(a, n, lse + n * a.L, p.data(), dp.data(), z.data());
      // dV = P~^T dO; dQ = dS k; dK = dS^T q  (dS already scaled)
      gemm_matrix(dt, a.S, a.Ev, a.L, p.data(), 1, a.S, don, a.Ev, 1, dv + n * a.S * a.Ev, a.Ev, false);
      gemm_matrix(dt, a.L, a.E, a.S, dp.data(), a.S, 1, kn, a.E, 1, dq + n * a.L * a.E, a.E, false);
      gemm_matrix(dt, a.S, a.E, a.L, dp.data(), 1, a.S, qn, a.E, 1, dk + n * a.S * a.E, a.E, false);
    }
  });
}

}  // namespace

void CpuBackend::attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                   void* out, void* lse) {
  TG_DISPATCH_FLOAT(dtype, "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    forward_typed<T>(a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                     static_cast<T*>(out), static_cast<T*>(lse));
  });
}

// The scores are recomputed from lse alone; `out` (which the GPU kernel reads) is not needed here.
void CpuBackend::attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                    const void*, const void* lse, const void* grad_out, void* dq, void* dk, void* dv) {
  TG_DISPATCH_FLOAT(dtype, "scaled_dot_product_attention backward", [&](auto tag) {
    using T = decltype(tag);
    backward_typed<T>(a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                      static_cast<const T*>(lse), static_cast<const T*>(grad_out), static_cast<T*>(dq),
                      static_cast<T*>(dk), static_cast<T*>(dv));
  });
}

}  // namespace tg::cpu
