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

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/random.h"

namespace tg::cpu {

namespace {

// Problems up to this many multiply-adds per product run their products in `product` below;
// larger ones through the packed GEMM, whose packing only pays off on bigger blocks.
constexpr int64_t kSmallProblem = 64 * 64 * 128;

// C (M x N) = A B for a small problem, A(i, k) = A[i * a_row + k * a_col] and B with contiguous
// rows (B(k, j) = B[k * N + j]): the i-k-j order streams rows of B into a row of C held in L1,
// which the AVX2 clone widens.
template <class T>
TG_SIMD_CLONES void small_product(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col,
                                  const T* B, T* C) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * N;
    for (int64_t j = 0; j < N; ++j) c[j] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * a_row + k * a_col];
      const T* b = B + k * N;
      for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

// Per-thread scratch for one problem's products: `transposed` holds a transposed operand (k^T,
// v^T) so that every small product reads B by contiguous rows.
template <class T>
struct Products {
  bool small;
  std::vector<T> transposed;

  explicit Products(const AttentionArgs& a)
      : small(a.L * a.S * std::max(a.E, a.Ev) <= kSmallProblem),
        transposed(small ? static_cast<size_t>(a.S * std::max(a.E, a.Ev)) : 0) {}

  // C (M x N) = A (M x K) B^T where B is (N x K) row-major: C = A B^T
  void times_transposed(int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C) {
    if (!small) return gemm(dtype_of<T>::value, M, N, K, A, K, 1, B, 1, K, C, N, false);
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) transposed[k * N + j] = B[j * K + k];
    small_product(M, N, K, A, K, int64_t(1), transposed.data(), C);
  }
  // C (M x N) = op(A) B, B (K x N) row-major; op(A)(i, k) = A[i * a_row + k * a_col]
  void times(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row, int64_t a_col, const T* B, T* C) {
    if (!small) return gemm(dtype_of<T>::value, M, N, K, A, a_row, a_col, B, N, 1, C, N, false);
    small_product(M, N, K, A, a_row, a_col, B, C);
  }
};

// Scores of problem n into s (L x S): scale q k^T, then mask and causal (-inf where hidden).
template <class T>
void scores(const AttentionArgs& a, int64_t n, const T* q, const T* k, T* s, Products<T>& products) {
  products.times_transposed(a.L, a.S, a.E, q, k, s);
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

template <class T>
void forward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, T* out, T* lse) {
  parallel_for(a.N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> s(static_cast<size_t>(a.L * a.S)), z(a.dropout_p > 0 ? a.S : 0);
    Products<T> products(a);
    for (int64_t n = n0; n < n1; ++n) {
      const T* qn = q + n * a.L * a.E;
      scores(a, n, qn, k + n * a.S * a.E, s.data(), products);
      for (int64_t i = 0; i < a.L; ++i) {
        T* row = s.data() + i * a.S;
        const T m = row_max(row, a.S);
        if (m == -std::numeric_limits<T>::infinity()) {  // nothing to attend: zero output
          for (int64_t j = 0; j < a.S; ++j) row[j] = 0;
          lse[n * a.L + i] = m;
          continue;
        }
        for (int64_t j = 0; j < a.S; ++j) row[j] = fn::exp_vec(row[j] - m);
        const double sum = row_sum(row, a.S);
        const T inv = static_cast<T>(1.0 / sum);
        for (int64_t j = 0; j < a.S; ++j) row[j] *= inv;
        lse[n * a.L + i] = m + static_cast<T>(std::log(sum));
        if (a.dropout_p > 0) {
          dropout_row(a, n, i, z.data());
          for (int64_t j = 0; j < a.S; ++j) row[j] *= z[j];
        }
      }
      products.times(a.L, a.Ev, a.S, s.data(), a.S, 1, v + n * a.S * a.Ev, out + n * a.L * a.Ev);
    }
  });
}

template <class T>
void backward_typed(const AttentionArgs& a, const T* q, const T* k, const T* v, const T* lse, const T* dout, T* dq,
                    T* dk, T* dv) {
  parallel_for(a.N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> p(static_cast<size_t>(a.L * a.S)), dp(static_cast<size_t>(a.L * a.S)), z(a.S);
    Products<T> products(a);
    for (int64_t n = n0; n < n1; ++n) {
      const T *qn = q + n * a.L * a.E, *kn = k + n * a.S * a.E, *vn = v + n * a.S * a.Ev, *don = dout + n * a.L * a.Ev;
      scores(a, n, qn, kn, p.data(), products);
      // dP~ = dO v^T
      products.times_transposed(a.L, a.S, a.Ev, don, vn, dp.data());
      for (int64_t i = 0; i < a.L; ++i) {
        T* pr = p.data() + i * a.S;
        T* dpr = dp.data() + i * a.S;
        const T l = lse[n * a.L + i];
        if (l == -std::numeric_limits<T>::infinity()) {
          for (int64_t j = 0; j < a.S; ++j) pr[j] = dpr[j] = 0;
          continue;
        }
        for (int64_t j = 0; j < a.S; ++j) pr[j] = fn::exp_vec(pr[j] - l);
        if (a.dropout_p > 0) {
          dropout_row(a, n, i, z.data());
          for (int64_t j = 0; j < a.S; ++j) dpr[j] *= z[j];
        }
        double d = 0;
        for (int64_t j = 0; j < a.S; ++j) d += static_cast<double>(pr[j]) * dpr[j];
        // dpr becomes dS; pr becomes P~ for dV.
        for (int64_t j = 0; j < a.S; ++j) dpr[j] = pr[j] * (dpr[j] - static_cast<T>(d));
        if (a.dropout_p > 0)
          for (int64_t j = 0; j < a.S; ++j) pr[j] *= z[j];
      }
      const T scale = static_cast<T>(a.scale);
      for (auto& x : dp) x *= scale;
      // dV = P~^T dO; dQ = dS k; dK = dS^T q  (dS already scaled)
      products.times(a.S, a.Ev, a.L, p.data(), 1, a.S, don, dv + n * a.S * a.Ev);
      products.times(a.L, a.E, a.S, dp.data(), a.S, 1, kn, dq + n * a.L * a.E);
      products.times(a.S, a.E, a.L, dp.data(), 1, a.S, qn, dk + n * a.S * a.E);
    }
  });
}

}  // namespace

void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v, void* out,
                       void* lse) {
  TG_DISPATCH_FLOAT(dtype, "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    forward_typed<T>(a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                     static_cast<T*>(out), static_cast<T*>(lse));
  });
}

void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                        const void* lse, const void* grad_out, void* dq, void* dk, void* dv) {
  TG_DISPATCH_FLOAT(dtype, "scaled_dot_product_attention backward", [&](auto tag) {
    using T = decltype(tag);
    backward_typed<T>(a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                      static_cast<const T*>(lse), static_cast<const T*>(grad_out), static_cast<T*>(dq),
                      static_cast<T*>(dk), static_cast<T*>(dv));
  });
}

}  // namespace tg::cpu
