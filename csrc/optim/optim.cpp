#include "optim/optim.h"

#include "kernels/cpu/cpu.h"
#include "ops/ops.h"

namespace tg::optim {

namespace {

// The gradient of `p`, checked: same shape, contiguous (a strided one is copied once).
Tensor grad_of(const Tensor& p, const char* opt) {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  TG_CHECK(g.shape() == p.shape(), ValueError, opt, ": gradient of shape ", shape_str(g.shape()),
           " does not match its parameter of shape ", shape_str(p.shape()));
  TG_CHECK(p.is_contiguous(), ValueError, opt, ": parameters must be contiguous, got a view of shape ", shape_str(p.shape()));
  TG_CHECK(is_floating(p.dtype()), TypeError, opt, ": parameters must be floating point, got ", dtype_name(p.dtype()));
  if (g.dtype() != p.dtype()) g = to_dtype(g, p.dtype());
  return contiguous(detach(g));
}

void resize_state(TensorList& state, size_t n) {
  if (state.size() < n) state.resize(n);
}

}  // namespace

void sgd_step(const TensorList& params, TensorList& momentum_bufs, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov) {
  resize_state(momentum_bufs, params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, "SGD");
    if (!g.defined()) continue;
    bool first = false;
    if (momentum != 0 && !momentum_bufs[i].defined()) {
      momentum_bufs[i] = zeros_like(p);
      first = true;
    }
    cpu::SGDConfig cfg{lr, momentum, dampening, weight_decay, nesterov, first};
    cpu::sgd_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(),
                    momentum != 0 ? momentum_bufs[i].raw_data() : nullptr, cfg);
    p.bump_version();
  }
}

void adam_step(const TensorList& params, TensorList& exp_avg, TensorList& exp_avg_sq, std::vector<int64_t>& steps,
               double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled) {
  resize_state(exp_avg, params.size());
  resize_state(exp_avg_sq, params.size());
  if (steps.size() < params.size()) steps.resize(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, decoupled ? "AdamW" : "Adam");
    if (!g.defined()) continue;
    if (!exp_avg[i].defined()) exp_avg[i] = zeros_like(p);
    if (!exp_avg_sq[i].defined()) exp_avg_sq[i] = zeros_like(p);
    cpu::AdamConfig cfg{lr, beta1, beta2, eps, weight_decay, decoupled, ++steps[i]};
    cpu::adam_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(), exp_avg[i].raw_data(), exp_avg_sq[i].raw_data(), cfg);
    p.bump_version();
  }
}

void rmsprop_step(const TensorList& params, TensorList& square_avg, TensorList& momentum_bufs, double lr, double alpha,
                  double eps, double weight_decay, double momentum) {
  resize_state(square_avg, params.size());
  resize_state(momentum_bufs, params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, "RMSprop");
    if (!g.defined()) continue;
    if (!square_avg[i].defined()) square_avg[i] = zeros_like(p);
    if (momentum != 0 && !momentum_bufs[i].defined()) momentum_bufs[i] = zeros_like(p);
    cpu::RMSpropConfig cfg{lr, alpha, eps, weight_decay, momentum};
    cpu::rmsprop_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(), square_avg[i].raw_data(),
                        momentum != 0 ? momentum_bufs[i].raw_data() : nullptr, cfg);
    p.bump_version();
  }
}

}  // namespace tg::optim
