// One element's update for each optimizer (the math of torch.optim's docs), shared by the CPU
// loops (kernels/cpu/optim.cpp) and the CUDA kernels (kernels/cuda/optim.cu). `momentum` points
// at the element's momentum buffer, or is null when the optimizer runs without one.
// The parameter and gradient are of the storage type P; the math and the optimizer state are in
// T = compute_t<P>: float32 for a bfloat16 parameter, rounded once when stored back. (For float
// and double P is T and the conversions vanish.)
#pragma once
#include <cmath>

#include "core/dtype.h"
#include "kernels/functors.h"

namespace tg::optim_step {

// g' = g + wd p;  b = momentum b + (1 - dampening) g' (b = g' on the first step);
// step = nesterov ? g' + momentum b : b;  p -= lr step
template <class P, class T = compute_t<P>>
HD void sgd(P& param, P grad, T* momentum, T lr, T mom, T damp, T wd, bool first, bool nesterov) {
  T p = T(param), d = T(grad) + wd * p;
  if (momentum) {
    *momentum = first ? d : mom * *momentum + damp * d;
    d = nesterov ? d + mom * *momentum : *momentum;
  }
  param = P(p - lr * d);
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)   (step_size = lr / (1 - b1^t))
// Adam adds wd p to g; AdamW (decoupled) multiplies p by decay = 1 - lr wd first.
template <class P, class T = compute_t<P>>
HD void adam(P& param, P grad, T& m, T& v, T b1, T b2, T step_size, T inv_sqrt_bc2, T eps, T wd, T decay,
             bool decoupled) {
  T p = T(param), g = T(grad);
  if (decoupled) p *= decay;
  else g += wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  param = P(p - step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps));
}

// g' = g + wd p;  v = alpha v + (1 - alpha) g'^2;  step = g' / (sqrt(v) + eps);
// with momentum: b = momentum b + step, p -= lr b; else p -= lr step
template <class P, class T = compute_t<P>>
HD void rmsprop(P& param, P grad, T& sq, T* momentum, T lr, T alpha, T eps, T wd, T mom) {
  const T p = T(param), g = T(grad) + wd * p;
  sq = alpha * sq + (T(1) - alpha) * g * g;
  T step = g / (std::sqrt(sq) + eps);
  if (momentum) {
    *momentum = mom * *momentum + step;
    step = *momentum;
  }
  param = P(p - lr * step);
}

}  // namespace tg::optim_step
