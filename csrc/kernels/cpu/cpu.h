// CPU kernels. They see raw buffers, shapes and strides (in elements), never tensors or autograd.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/shape.h"
#include "kernels/attention_args.h"
#include "kernels/functors.h"

namespace tg::cpu {

struct Operand {
  char* data;
  const int64_t* strides;  // one per dim of the shared shape; 0 on broadcast dims
  DType dtype;
};

// out = op(in); in and out have the same dtype except LogicalNot (bool out).
void unary(UnaryOp op, const Shape& shape, Operand out, Operand in);
// out = op(a, b); a and b share a dtype; out has it too, or bool for comparisons.
void binary(BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b);
// out = cond ? a : b
void where(const Shape& shape, Operand out, Operand cond, Operand a, Operand b);
// out = in, converting the dtype.
void copy(const Shape& shape, Operand out, Operand in);
void fill(void* out, int64_t n, DType dtype, double value);

// Reductions over the middle axis of a contiguous (outer, r, inner) buffer into (outer, inner).
enum class ReduceOp : uint8_t { Sum, Max, Min, ArgMax, ArgMin };
void reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out);

// C[M,N] (row-major, leading dim ldc) (+)= A[M,K] @ B[K,N]; A and B given by element strides.
const char* gemm_isa();  // "avx512", "avx2" or "portable"
void gemm(DType dtype, int64_t M, int64_t N, int64_t K, const void* A, int64_t a_row, int64_t a_col, const void* B,
          int64_t b_row, int64_t b_col, void* C, int64_t ldc, bool accumulate);

// (outer, n, inner) buffers; indices already checked to lie in [0, n).
void index_select(DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in, const int64_t* index,
                  int64_t n_index, void* out);
void index_add(DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
               int64_t n_index, const void* src);
// gather: out[o, j, i] = in[o, index[o, j, i], i]; scatter_add is its adjoint.
void gather(DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
            const int64_t* index, void* out);
void scatter_add(DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                 const int64_t* index, const void* src);
// out[positions[i]] = values[i] (flat positions into a contiguous buffer; the last write wins).
void put(DType dtype, void* out, const int64_t* positions, const void* values, int64_t n);

// Philox4x32-10 streams: element i uses counter (offset + i) under key `seed`.
enum class RandomKind : uint8_t { Uniform, Normal };
void random(RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset);
void random_int(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
// Dropout in one pass over contiguous x: scale[i] = (u_i >= p) / (1 - p), out[i] = x[i] scale[i],
// u_i the same uniform that random(Uniform, dtype, ...) gives element i.
void dropout(DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed, uint64_t offset);

}  // namespace tg::cpu

namespace tg::cpu {
// Row-wise softmax (or log-softmax) of a contiguous (rows, cols) buffer, max-subtracted.
void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log);
// Layer norm of contiguous (rows, cols): out = (x - mean) * rstd; mean and rstd per row saved.
void layer_norm_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, void* mean, void* rstd, double eps);
// Cross-entropy of contiguous logits (rows, C) at class targets (-1 = ignored row):
// lse_i = log sum_j exp(x_ij), loss_i = lse_i - x_i,t_i (0 for ignored rows).
void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                        void* lse);
// Its backward: d_ij = scale_i (exp(x_ij - lse_i) - [j == t_i]); ignored rows get 0.
void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                 const void* lse, const void* row_scale, void* dlogits);
// Its backward per row: dx = rstd (g - mean(g) - xhat mean(g xhat)), all contiguous (rows, cols).
void layer_norm_backward_rows(DType dtype, int64_t rows, int64_t cols, const void* g, const void* xhat,
                              const void* rstd, void* dx);
}  // namespace tg::cpu

namespace tg::cpu {
// Optimizer updates of one contiguous parameter buffer (float32 or float64), in place.
struct SGDConfig { double lr, momentum, dampening, weight_decay; bool nesterov, first_step; };
void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SGDConfig& cfg);
struct AdamConfig { double lr, beta1, beta2, eps, weight_decay; bool decoupled; int64_t step; };
void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v, const AdamConfig& cfg);
struct RMSpropConfig { double lr, alpha, eps, weight_decay, momentum; };
void rmsprop_update(DType dtype, int64_t n, void* param, const void* grad, void* square_avg, void* momentum_buf,
                    const RMSpropConfig& cfg);
}  // namespace tg::cpu

namespace tg::cpu {
// One LSTM step's pointwise part: gates (B, 4H: i, f, g, o) and c (B, H) -> h, c, and the
// activations (B, 4H) and tanh(c) that the backward reuses.
void lstm_cell(DType dtype, int64_t batch, int64_t hidden, const void* gates, const void* c, void* h_out, void* c_out,
               void* act_out, void* tanh_c_out);
}  // namespace tg::cpu

namespace tg::cpu {
// Fused attention; see kernels/attention_args.h for the layout of every argument.
void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v, void* out,
                       void* lse);
void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                        const void* lse, const void* grad_out, void* dq, void* dk, void* dv);
}  // namespace tg::cpu
