// One element's update for each optimizer (the math of torch.optim's docs), shared by the CPU
// loops (kernels/cpu/optim.cpp) and the CUDA kernels (kernels/cuda/optim.cu). `momentum` points
// at the element's momentum buffer, or is null when the optimizer runs without one.
#pragma once
#include <cmath>

#include "kernels/functors.h"

namespace tg::optim_step {

// g' = g + wd p;  b = momentum b + (1 - dampening) g' (b = g' on the first step);
// step = nesterov ? g' + momentum b : b;  p -= lr step
template <class T>
HD void sgd(T& p, T g, T* momentum, T lr, T mom, T damp, T wd, bool first, bool nesterov) {
  T d = g + wd * p;
  if (momentum) {
    *momentum = first ? d : mom * *momentum + damp * d;
    d = nesterov ? d + mom * *momentum : *momentum;
  }
  p -= lr * d;
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)   (step_size = lr / (1 - b1^t))
// Adam adds wd p to g; AdamW (decoupled) multiplies p by decay = 1 - lr wd first.
template <class T>
HD void adam(T& p, T g, T& m, T& v, T b1, T b2, T step_size, T inv_sqrt_bc2, T eps, T wd, T decay, bool decoupled) {
  if (decoupled) p *= decay;
  else g += wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  p -= step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps);
}

// g' = g + wd p;  v = alpha v + (1 - alpha) g'^2;  step = g' / (sqrt(v) + eps);
// with momentum: b = momentum b + step, p -= lr b; else p -= lr step
template <class T>
HD void rmsprop(T& p, T g, T& sq, T* momentum, T lr, T alpha, T eps, T wd, T mom) {
  g += wd * p;
  sq = alpha * sq + (T(1) - alpha) * g * g;
  T step = g / (std::sqrt(sq) + eps);
  if (momentum) {
    *momentum = mom * *momentum + step;
    step = *momentum;
  }
  p -= lr * step;
}

}  // namespace tg::optim_step
