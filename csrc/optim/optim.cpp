#include "optim/optim.h"

#include <map>
#include <tuple>
#include <utility>

#include "ops/dispatch.h"

namespace tg::optim {

namespace {

// The gradient of `p`, checked: same shape, contiguous (a strided one is copied once).
Tensor grad_of(const Tensor& p, const char* opt) {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  TG_CHECK(g.shape() == p.shape(), ShapeError, opt, ": gradient of shape ", shape_str(g.shape()),
           " does not match its parameter of shape ", shape_str(p.shape()));
  TG_CHECK(p.is_contiguous(), ShapeError, opt, ": parameters must be contiguous, got a view of shape ", shape_str(p.shape()));
  TG_CHECK(is_floating(p.dtype()), TypeError, opt, ": parameters must be floating point, got ", dtype_name(p.dtype()));
  if (g.dtype() != p.dtype()) g = to_dtype(g, p.dtype());
  return contiguous(detach(g));
}

void resize_state(TensorList& state, size_t n) {
  if (state.size() < n) state.resize(n);
}

// Optimizer state (moments, momentum) is kept in the compute dtype: float32 for bfloat16
// parameters, whose small updates would otherwise round away in the state itself.
Tensor state_like(const Tensor& p) { return zeros(p.shape(), compute_dtype(p.dtype()), p.device()); }

// Parameters are collected per (device, dtype) and each group is updated by one backend call (one
// multi-tensor launch on a GPU; the CPU goes through the list tensor by tensor).
struct DeviceBatches {
  std::map<std::tuple<DeviceType, int, DType>, std::vector<OptimTensor>> groups;
  // grad_of may have made a converted or contiguous copy of a gradient: it must stay allocated
  // until the launch that reads it is queued, or its block could be handed out and written first.
  TensorList keep_alive;
  void add(const Tensor& p, const Tensor& g, OptimTensor t) {
    keep_alive.push_back(g);
    groups[{p.device().type, p.device().index, p.dtype()}].push_back(t);
  }
  template <class F>
  void run(F update) {
    for (auto& [key, list] : groups) update(backend(Device{std::get<0>(key), std::get<1>(key)}), std::get<2>(key), list);
  }
};

void check_state_device(const Tensor& p, const Tensor& g, const char* opt) {
  TG_CHECK(g.device() == p.device(), RuntimeError, opt, ": gradient on ", g.device().str(), " for a parameter on ",
           p.device().str());
}

}  // namespace

void sgd_step(const TensorList& params, TensorList& momentum_bufs, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov) {
  resize_state(momentum_bufs, params.size());
  DeviceBatches batches;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, "SGD");
    if (!g.defined()) continue;
    bool first = false;
    if (momentum != 0 && !momentum_bufs[i].defined()) {
      momentum_bufs[i] = state_like(p);
      first = true;
    }
    check_state_device(p, g, "SGD");
    void* buf = momentum != 0 ? momentum_bufs[i].raw_data() : nullptr;
    batches.add(p, g, {p.raw_data(), g.raw_data(), buf, nullptr, p.numel(), first ? 1 : 0});
    p.bump_version();
  }
  const SGDConfig cfg{lr, momentum, dampening, weight_decay, nesterov};
  batches.run([&](Backend& kernels, DType dtype, const std::vector<OptimTensor>& list) {
    kernels.sgd_update(dtype, list, cfg);
  });
}

void adam_step(const TensorList& params, TensorList& exp_avg, TensorList& exp_avg_sq, std::vector<int64_t>& steps,
               double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled) {
  resize_state(exp_avg, params.size());
  resize_state(exp_avg_sq, params.size());
  if (steps.size() < params.size()) steps.resize(params.size(), 0);
  DeviceBatches batches;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, decoupled ? "AdamW" : "Adam");
    if (!g.defined()) continue;
    if (!exp_avg[i].defined()) exp_avg[i] = state_like(p);
    if (!exp_avg_sq[i].defined()) exp_avg_sq[i] = state_like(p);
    check_state_device(p, g, decoupled ? "AdamW" : "Adam");
    const int64_t step = ++steps[i];
    batches.add(p, g, {p.raw_data(), g.raw_data(), exp_avg[i].raw_data(), exp_avg_sq[i].raw_data(), p.numel(), step});
    p.bump_version();
  }
  const AdamConfig cfg{lr, beta1, beta2, eps, weight_decay, decoupled};  // steps are per tensor
  batches.run([&](Backend& kernels, DType dtype, const std::vector<OptimTensor>& list) {
    kernels.adam_update(dtype, list, cfg);
  });
}

void rmsprop_step(const TensorList& params, TensorList& square_avg, TensorList& momentum_bufs, double lr, double alpha,
                  double eps, double weight_decay, double momentum) {
  resize_state(square_avg, params.size());
  resize_state(momentum_bufs, params.size());
  DeviceBatches batches;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    Tensor g = grad_of(p, "RMSprop");
    if (!g.defined()) continue;
    if (!square_avg[i].defined()) square_avg[i] = state_like(p);
    if (momentum != 0 && !momentum_bufs[i].defined()) momentum_bufs[i] = state_like(p);
    check_state_device(p, g, "RMSprop");
    void* buf = momentum != 0 ? momentum_bufs[i].raw_data() : nullptr;
    batches.add(p, g, {p.raw_data(), g.raw_data(), square_avg[i].raw_data(), buf, p.numel(), 0});
    p.bump_version();
  }
  const RMSpropConfig cfg{lr, alpha, eps, weight_decay, momentum};
  batches.run([&](Backend& kernels, DType dtype, const std::vector<OptimTensor>& list) {
    kernels.rmsprop_update(dtype, list, cfg);
  });
}

}  // namespace tg::optim
