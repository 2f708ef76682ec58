// lstm_cell: the gate nonlinearities and state update of one LSTM step, fused.
//
//   gates (B, 4H) = x W_ih^T + b_ih + h W_hh^T + b_hh   (the caller's matmuls)
//   i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
//   c' = f * c + i * g          h' = o * tanh(c')
//
// backward, with dc_total = dc' + dh' * o * (1 - tanh(c')^2):
//   da_i = dc_total g i (1 - i)    da_f = dc_total c f (1 - f)
//   da_g = dc_total i (1 - g^2)    da_o = dh' tanh(c') o (1 - o)    dc = dc_total f
// Under create_graph the backward differentiates lstm_cell_reference, the same step in ordinary ops.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

TensorList lstm_cell(const Tensor& gates, const Tensor& c) {
  check_same_device("lstm_cell", {&gates, &c});
  TG_CHECK(gates.dim() == 2 && c.dim() == 2 && gates.size(0) == c.size(0) && gates.size(1) == 4 * c.size(1), ShapeError,
           "lstm_cell: gates of shape ", shape_str(gates.shape()), " and cell state of shape ", shape_str(c.shape()),
           " do not fit (expected (B, 4H) and (B, H))");
  TG_CHECK(gates.dtype() == c.dtype() && is_floating(c.dtype()), TypeError, "lstm_cell: expected floating-point tensors of one dtype");
  if (any_storage_only({&c})) {  // bfloat16: computed in float32, h and c rounded once
    TensorList hc = lstm_cell(widened(gates), widened(c));
    return {to_dtype(hc[0], c.dtype()), to_dtype(hc[1], c.dtype())};
  }
  const Tensor gc = contiguous(detach(gates)), cc = contiguous(detach(c));
  const int64_t B = c.size(0), H = c.size(1);
  const Device device = c.device();
  Tensor h_out = empty({B, H}, c.dtype(), device), c_out = empty({B, H}, c.dtype(), device);
  Tensor act = empty({B, 4 * H}, c.dtype(), device), tanh_c = empty({B, H}, c.dtype(), device);
  backend(device).lstm_cell(c.dtype(), B, H, gc.raw_data(), cc.raw_data(), h_out.raw_data(), c_out.raw_data(),
                            act.raw_data(), tanh_c.raw_data());
  if (should_record({&gates, &c}))
    record("LstmCellBackward", {gates, c}, {h_out, c_out}, {act, cc, tanh_c, gates, c}, [H](const BackwardContext& ctx, const TensorList& g) {
      if (GradMode::is_enabled()) {
        const Tensor gates = ctx.saved(3), c = ctx.saved(4);
        return grad_through_reference(lstm_cell_reference(gates, c), g, {gates, c});
      }
      Tensor act = ctx.saved(0), c_prev = ctx.saved(1), tc = ctx.saved(2);
      Tensor i = narrow(act, 1, 0, H), f = narrow(act, 1, H, H), gg = narrow(act, 1, 2 * H, H), o = narrow(act, 1, 3 * H, H);
      Tensor dh = g[0].defined() ? g[0] : zeros_like(tc);
      Tensor dc = g[1].defined() ? g[1] : zeros_like(tc);
      Tensor dct = dc + dh * o * (1.0 - tc * tc);
      Tensor da = cat({dct * gg * i * (1.0 - i), dct * c_prev * f * (1.0 - f), dct * i * (1.0 - gg * gg),
                       dh * tc * o * (1.0 - o)}, 1);
      return TensorList{da, dct * f};
    });
  return {h_out, c_out};
}

TensorList lstm_cell_reference(const Tensor& gates, const Tensor& c) {
  const int64_t H = c.size(1);
  const Tensor c_next = sigmoid(narrow(gates, 1, H, H)) * c + sigmoid(narrow(gates, 1, 0, H)) * tanh(narrow(gates, 1, 2 * H, H));
  return {sigmoid(narrow(gates, 1, 3 * H, H)) * tanh(c_next), c_next};
}

}  // namespace tg
