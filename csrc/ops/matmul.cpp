// matmul with NumPy semantics: 1-d operands gain (and then lose) a dim; leading dims broadcast.
//
//   a (..., M, K) @ b (..., K, N) -> c (..., M, N),   c[m, n] = sum_k a[m, k] b[k, n]
//   da = dc @ b^T   (..., M, K)
//   db = a^T @ dc   (..., K, N)   (summed over broadcast batch dims by the engine)
//
// The kernel reads a and b through their strides, so transposed views cost no copy. linear
// (below) is the layer's product with its bias.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// Backend::gemm reads a (rows, cols) matrix with a unit stride in one of its dims.
bool gemm_readable(int64_t row_stride, int64_t col_stride, int64_t rows, int64_t cols) {
  return (col_stride == 1 && row_stride >= cols) || (row_stride == 1 && col_stride >= rows);
}

// A 2-d t as gemm reads it: itself, or a contiguous copy when neither stride is 1.
Tensor as_matrix(const Tensor& t) {
  return gemm_readable(t.strides()[0], t.strides()[1], t.size(0), t.size(1)) ? t : contiguous(t);
}

// t broadcast to batch + (rows, cols) as a (nb, rows, cols) view with one batch stride and a unit
// stride inside each matrix -- the layout Backend::gemm reads; a copy when the strides do not allow it.
Tensor as_batched_matrices(const Tensor& t, const Shape& batch, int64_t rows, int64_t cols) {
  Shape full = batch;
  full.push_back(rows);
  full.push_back(cols);
  Tensor v = reshape(expand(t, full), {numel_of(batch), rows, cols});
  const Shape& s = v.strides();
  return gemm_readable(s[1], s[2], rows, cols) ? v : contiguous(v);
}

// a (..., M, K) @ b (..., K, N), both with dim >= 2, batch dims broadcast; no autograd. A bias
// (N), when given in the product's dtype, is added to every row by the GEMM's epilogue (linear).
Tensor matmul_kernel(const Tensor& a, const Tensor& b, const Tensor& bias = Tensor()) {
  GradModeGuard no_grad(false);  // the caller records one node for the whole product
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  TG_CHECK(b.size(-2) == K, ShapeError, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
           " are not aligned: ", K, " (dim -1 of the first) != ", b.size(-2), " (dim -2 of the second)");
  DType dtype = promote(a.dtype(), b.dtype());
  TG_CHECK(dtype != DType::Bool, TypeError, "matmul: not supported for bool tensors");
  Backend& kernels = backend(a.device());
  // A storage dtype without a GEMM of its own (bfloat16 on the CPU, float16, the small integers):
  // both operands converted to the compute dtype for its GEMM, the product rounded (wrapped) once.
  if (is_storage_only(dtype) && !(dtype == DType::BFloat16 && kernels.has_bfloat16_gemm()))
    return to_dtype(matmul_kernel(to_dtype(a, compute_dtype(dtype)), to_dtype(b, compute_dtype(dtype)),
                                  bias.defined() ? to_dtype(bias, compute_dtype(dtype)) : bias), dtype);
  const Tensor A = a.dtype() == dtype ? a : to_dtype(a, dtype), B = b.dtype() == dtype ? b : to_dtype(b, dtype);
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  if (K == 0) return zeros(out_shape, dtype, a.device());  // an empty sum
  Tensor c = empty(out_shape, dtype, a.device());
  if (c.numel() == 0) return c;
  const int64_t nb = numel_of(batch);
  const void* bias_data = bias.defined() ? bias.raw_data() : nullptr;
  // b is one matrix: a's rows (a batch folded into them) in one (batch*M, K) @ (K, N) product.
  // Two matrices take this path too: no broadcast views to build, which small products feel.
  if (b.dim() == 2) {
    const Tensor a2 = as_matrix(a.dim() == 2 ? A : reshape(A, {nb * M, K})), b2 = as_matrix(B);
    kernels.gemm(dtype, GemmArgs{1, nb * M, N, K, a2.raw_data(), 0, a2.strides()[0], a2.strides()[1], b2.raw_data(), 0,
                                 b2.strides()[0], b2.strides()[1], c.raw_data(), 0, N, false, 0, bias_data});
    return c;
  }
  const Tensor a3 = as_batched_matrices(A, batch, M, K), b3 = as_batched_matrices(B, batch, K, N);
  kernels.gemm(dtype, GemmArgs{nb, M, N, K, a3.raw_data(), a3.strides()[0], a3.strides()[1], a3.strides()[2],
                               b3.raw_data(), b3.strides()[0], b3.strides()[1], b3.strides()[2], c.raw_data(), M * N,
                               N, false, 0, bias_data});
  return c;
}

Tensor mT(const Tensor& t) { return transpose(t, -1, -2); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device("matmul", {&a, &b});
  TG_CHECK(a.dim() > 0 && b.dim() > 0, ShapeError, "matmul: both arguments need at least 1 dimension, got shapes ",
           shape_str(a.shape()), " and ", shape_str(b.shape()));
  // Vectors: (K,) is read as (1, K) on the left and (K, 1) on the right, and that dim is dropped.
  if (a.dim() == 1 || b.dim() == 1) {
    TG_CHECK(a.size(-1) == (b.dim() == 1 ? b.size(0) : b.size(-2)), ShapeError, "matmul: shapes ", shape_str(a.shape()),
             " and ", shape_str(b.shape()), " are not aligned");
    Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a, b2 = b.dim() == 1 ? unsqueeze(b, -1) : b;
    Tensor c = matmul(a2, b2);
    if (b.dim() == 1) c = squeeze(c, {-1});
    if (a.dim() == 1) c = squeeze(c, {a.dim() == 1 && b.dim() == 1 ? -1 : -2});
    return c;
  }
  Tensor c = matmul_kernel(a, b);
  if (should_record({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("MatmulBackward", {a, b}, {c}, {gb ? a : Tensor(), ga ? b : Tensor()},
           [](const BackwardContext& ctx, const TensorList& g) {
             Tensor da, db;
             if (ctx.needs_grad(0)) da = matmul(g[0], mT(ctx.saved(1)));
             if (ctx.needs_grad(1)) {
               Tensor a = ctx.saved(0);
               if (ctx.input_shape(1).size() == 2 && a.dim() > 2) {
                 // A shared weight: fold the batch into the rows rather than summing per-batch products.
                 // (flatten, not reshape to (-1, K): with no rows and K = 0 the -1 is undetermined)
                 db = matmul(mT(flatten(a, 0, -2)), flatten(g[0], 0, -2));
               } else {
                 db = matmul(mT(a), g[0]);
               }
             }
             return TensorList{da, db};
           });
  }
  return c;
}

namespace {
// (..., n) as the rows of a matrix (rows, n); a vector is one row.
Tensor as_rows(const Tensor& t) { return t.dim() == 1 ? unsqueeze(t, 0) : flatten(t, 0, -2); }
}  // namespace

// linear: PyTorch's layer product, the weight stored (out, in), as one GEMM whose epilogue adds
// the bias while the tile is in registers (no second pass over y).
//
//   x (..., K), w (N, K), b (N) -> y (..., N),   y = x w^T + b
//   dx = dy w          (..., K)
//   dw = dy^T x        (N, K)   rows folded: already the parameter's layout, contiguous
//   db = sum_rows dy   (N)
//
// Mixed dtypes, bfloat16 and K = 0 take the composite matmul(x, w^T) + b.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const char* op = "linear";
  check_same_device(op, {&x, &w, &b});
  TG_CHECK(w.dim() == 2, ShapeError, op, ": weight must be 2-d (out_features, in_features), got shape ",
           shape_str(w.shape()));
  TG_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), ShapeError, op, ": input of shape ", shape_str(x.shape()),
           " does not fit weight of shape ", shape_str(w.shape()), " (input (..., in_features))");
  TG_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), ShapeError, op, ": bias of shape ",
           shape_str(b.shape()), " does not fit weight of shape ", shape_str(w.shape()), " (bias (out_features,))");
  const DType dtype = x.dtype();
  const bool fused = (dtype == DType::Float32 || dtype == DType::Float64) && w.dtype() == dtype &&
                     (!b.defined() || b.dtype() == dtype) && w.size(1) > 0;
  if (!fused) {
    const Tensor y = matmul(x, mT(w));
    return b.defined() ? add(y, b) : y;
  }
  Tensor y = matmul_kernel(x.dim() == 1 ? unsqueeze(x, 0) : x, mT(w), b.defined() ? contiguous(b) : Tensor());
  if (x.dim() == 1) y = squeeze(y, {0});
  if (should_record({&x, &w, &b})) {
    record("LinearBackward", {x, w, b}, {y}, {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor()},
           [](const BackwardContext& ctx, const TensorList& g) {
             Tensor dx, dw, db;
             if (ctx.needs_grad(0)) dx = matmul(g[0], ctx.saved(1));
             if (ctx.needs_grad(1)) dw = matmul(mT(as_rows(g[0])), as_rows(ctx.saved(0)));
             if (ctx.needs_grad(2)) db = sum(as_rows(g[0]), {0});
             return TensorList{dx, dw, db};
           });
  }
  return y;
}

}  // namespace tg
