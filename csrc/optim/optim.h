// Fused multi-tensor optimizer steps: one call updates every parameter of a group, with no
// Python between parameters. Parameters whose gradient is undefined are skipped.
#pragma once
#include "core/tensor.h"

namespace tg::optim {

// momentum_bufs: one per parameter (undefined = created on the first step when momentum != 0).
void sgd_step(const TensorList& params, TensorList& momentum_bufs, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov);
// exp_avg, exp_avg_sq: created on the first step; step counts are per parameter.
void adam_step(const TensorList& params, TensorList& exp_avg, TensorList& exp_avg_sq, std::vector<int64_t>& steps,
               double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled);
void rmsprop_step(const TensorList& params, TensorList& square_avg, TensorList& momentum_bufs, double lr, double alpha,
                  double eps, double weight_decay, double momentum);

}  // namespace tg::optim
