// scaled_dot_product_attention, fused: the forward and backward kernels
// (kernels/cpu/attention.cpp) keep one (L x S) score block per (batch, head) at a time.
//
//   q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev)
//   O = softmax(q k^T * scale + mask) v      scale = 1/sqrt(E) by default
//
// The backward recomputes the scores from the saved row log-sum-exp. Beside the fused op sits its
// composite reference, attention_weights: the same attention in ordinary differentiable ops. It
// is what need_weights returns, the path for a mask that requires grad and for a dtype the device
// has no kernel for (float64 on a GPU), and the backward under create_graph (the derivative below
// in differentiable ops), so attention differentiates twice.
//
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = dS K * scale,  dK = dS^T Q * scale
#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "kernels/philox.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

Tensor with_batch(const Tensor& t, const Shape& batch) {
  Shape s = batch;
  s.push_back(t.size(-2));
  s.push_back(t.size(-1));
  return contiguous(expand(t, s));
}

// Everything the kernels need, computed once in the forward and kept for the backward.
struct AttentionProblem {
  Tensor q, k, v, additive;  // contiguous (N, ...) inputs; the additive mask (or none)
  Tensor mask_offsets;       // (N) int64 on the inputs' device: problem n's mask starts there in `additive`
  AttentionArgs args;
  Shape batch;

  Tensor user_mask;  // the mask as given (detached), for the composite reference

  const AttentionArgs& kernel_args() {
    args.mask = additive.defined() ? additive.raw_data() : nullptr;
    args.mask_offsets = mask_offsets.defined() ? mask_offsets.data<int64_t>() : nullptr;
    return args;
  }
};

Tensor mT(const Tensor& t) { return transpose(t, -1, -2); }

double scale_for(const Tensor& q, std::optional<double> scale) {
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
}

}  // namespace

// attention_weights: P = softmax(q k^T * scale + mask) (..., L, S) in differentiable ops. A bool
// mask (or the causal rule, j <= i) keeps the positions that may be attended; a float mask is
// added to the scores. A query that may attend nothing gets all-zero weights (not the NaN of a
// softmax over -inf), as the fused kernels give it.
Tensor attention_weights(const Tensor& q, const Tensor& k, const Tensor& mask, bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  TG_CHECK(!(is_causal && mask.defined()), ShapeError, op, ": pass either attn_mask or is_causal, not both");
  Tensor scores = matmul(q, mT(k)) * scale_for(q, scale);
  Tensor keep = mask.defined() && mask.dtype() == DType::Bool ? mask : Tensor();
  if (is_causal) {
    const Tensor i = arange(0, static_cast<double>(q.size(-2)), 1, DType::Int64, q.device());
    const Tensor j = arange(0, static_cast<double>(k.size(-2)), 1, DType::Int64, q.device());
    keep = logical_not(gt(unsqueeze(j, 0), unsqueeze(i, 1)));
  }
  if (!mask.defined() && !keep.defined()) return softmax(scores, -1);
  const Tensor minus_inf = scalar_tensor(-INFINITY, scores.dtype(), true);
  scores = keep.defined() ? masked_fill(scores, logical_not(keep), minus_inf) : scores + mask;
  const Tensor dead = eq(amax(scores, {-1}, true), minus_inf);
  const Tensor zero = scalar_tensor(0, scores.dtype(), true);
  return masked_fill(softmax(masked_fill(scores, dead, zero), -1), dead, zero);
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  check_same_device(op, {&q, &k, &v, &mask});
  TG_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, ShapeError, op, ": q, k, v need at least 2 dims, got shapes ",
           shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  TG_CHECK(is_floating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(), TypeError, op,
           ": q, k and v must share one floating-point dtype");
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1), Ev = v.size(-1);
  TG_CHECK(k.size(-1) == E && v.size(-2) == S, ShapeError, op, ": shapes q ", shape_str(q.shape()), ", k ",
           shape_str(k.shape()), ", v ", shape_str(v.shape()), " do not fit (q (..., L, E), k (..., S, E), v (..., S, Ev))");
  TG_CHECK(dropout_p >= 0 && dropout_p < 1, ValueError, op, ": dropout_p must be in [0, 1), got ", dropout_p);
  TG_CHECK(!(is_causal && mask.defined()), ShapeError, op, ": pass either attn_mask or is_causal, not both");
  // bfloat16 where the backend has no bfloat16 kernel (the CPU): the float32 kernel on converted
  // inputs, the output rounded once. The CUDA kernel reads bfloat16 itself (tensor cores, float32 softmax).
  Backend& kernels = backend(q.device());
  if (any_storage_only({&q}) && !kernels.has_attention_kernel(q.dtype()))
    return to_dtype(scaled_dot_product_attention(widened(q), widened(k), widened(v), widened(mask), dropout_p, is_causal,
                                                 scale),
                    q.dtype());
  // The kernels treat the mask as a constant: a mask that requires grad, or a dtype without a
  // kernel here, takes the composite reference.
  if (should_record({&mask}) || !kernels.has_attention_kernel(q.dtype())) {
    const Tensor w = attention_weights(q, k, mask, is_causal, scale);
    return matmul(dropout_p > 0 ? dropout(w, dropout_p, true) : w, v);
  }

  auto pb = std::make_shared<AttentionProblem>();
  AttentionProblem& P = *pb;
  P.batch = broadcast_shapes(broadcast_shapes(batch_of(q), batch_of(k), op), batch_of(v), op);
  const int64_t N = numel_of(P.batch);
  Shape out_shape = P.batch;
  out_shape.push_back(L);
  out_shape.push_back(Ev);
  const Device device = q.device();
  Tensor out = empty(out_shape, q.dtype(), device), lse = empty({N, L}, kernels.attention_lse_dtype(q.dtype()), device);
  {
    GradModeGuard no_grad(false);
    P.q = with_batch(detach(q), P.batch);
    P.k = with_batch(detach(k), P.batch);
    P.v = with_batch(detach(v), P.batch);
    int64_t mask_row = 0, mask_col = 0;
    if (mask.defined()) {
      // The mask as an additive float tensor, read in place through broadcast strides.
      P.additive = mask.dtype() == DType::Bool ? where(mask, zeros({}, q.dtype(), device), full({}, -INFINITY, q.dtype(), device))
                                               : to_dtype(detach(mask), q.dtype());
      Shape full_shape = P.batch;
      full_shape.push_back(L);
      full_shape.push_back(S);
      TG_CHECK(broadcast_shapes(P.additive.shape(), full_shape, op) == full_shape, ShapeError, op,
               ": attn_mask of shape ", shape_str(mask.shape()), " does not broadcast to ", shape_str(full_shape));
      Shape st = broadcast_strides(P.additive.shape(), P.additive.strides(), full_shape);
      mask_row = st[st.size() - 2];
      mask_col = st[st.size() - 1];
      Tensor offsets = empty({N}, DType::Int64);  // computed on the host, read by the kernels on the device
      for (int64_t n = 0; n < N; ++n) {
        int64_t rem = n, off = 0;
        for (int64_t d = static_cast<int64_t>(P.batch.size()) - 1; d >= 0; --d) {
          off += (rem % P.batch[d]) * st[d];
          rem /= P.batch[d];
        }
        offsets.data<int64_t>()[n] = off;
      }
      P.mask_offsets = to_device(offsets, device);
    }
    if (mask.defined()) P.user_mask = detach(mask);
    P.args = AttentionArgs{N, L, S, E, Ev, scale_for(q, scale), nullptr,
                                nullptr, mask_row, mask_col, is_causal, dropout_p, 0, 0};
    if (dropout_p > 0) P.args.offset = reserve_random(dropout_counters(N * L * S), &P.args.seed);
    kernels.attention_forward(q.dtype(), P.kernel_args(), P.q.raw_data(), P.k.raw_data(), P.v.raw_data(), out.raw_data(),
                              lse.raw_data());
  }
  if (should_record({&q, &k, &v})) {
    Shape qs = P.q.shape(), ks = P.k.shape(), vs = P.v.shape();
    record("ScaledDotProductAttentionBackward", {q, k, v}, {out}, {lse, out, q, k, v}, [pb, qs, ks, vs](const BackwardContext& c, const TensorList& g) {
      AttentionProblem& P = *pb;
      if (GradMode::is_enabled()) {  // create_graph: the derivative through the composite reference
        TG_CHECK(P.args.dropout_p == 0, NotImplementedError, "scaled_dot_product_attention: backward with "
                 "create_graph=True through attention with dropout is not supported (its mask is not kept)");
        const Tensor q = c.saved(2), k = c.saved(3), v = c.saved(4);
        const Tensor reference = matmul(attention_weights(q, k, P.user_mask, P.args.causal, P.args.scale), v);
        return grad_through_reference({reference}, g, {q, k, v});
      }
      Tensor lse = c.saved(0), go = contiguous(g[0]);
      Tensor dq = empty(qs, go.dtype(), go.device()), dk = empty(ks, go.dtype(), go.device()), dv = empty(vs, go.dtype(), go.device());
      // The GPU backward also reads the forward's output (D_i = rowsum(dO_i * O_i)).
      backend(go.device()).attention_backward(go.dtype(), P.kernel_args(), P.q.raw_data(), P.k.raw_data(),
                                              P.v.raw_data(), c.saved(1).raw_data(), lse.raw_data(), go.raw_data(),
                                              dq.raw_data(), dk.raw_data(), dv.raw_data());
      return TensorList{dq, dk, dv};  // at the broadcast batch shape; the engine sums it back
    });
  }
  return out;
}

}  // namespace tg
