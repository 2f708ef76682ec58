// Optimizer update kernels: one pass over each parameter, the math of torch.optim's docs.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/optim_math.h"

namespace tg::cpu {

namespace {

// The update loops of [s, e), SIMD-cloned; every scalar is a by-value argument, so they vectorise.
// The per-element math is in kernels/optim_math.h. P is the parameter's storage type, T = compute_t<P>
// that of the state and the math.
template <class P, class T>
TG_SIMD_CLONES void sgd_range(int64_t s, int64_t e, P* p, const P* g, T* b, T lr, T mom, T damp, T wd, bool first,
                              bool nesterov) {
  for (int64_t i = s; i < e; ++i) optim_step::sgd(p[i], g[i], b ? b + i : nullptr, lr, mom, damp, wd, first, nesterov);
}

template <class P, class T>
TG_SIMD_CLONES void rmsprop_range(int64_t s, int64_t e, P* p, const P* g, T* sq, T* b, T lr, T alpha, T eps, T wd,
                                  T mom) {
  for (int64_t i = s; i < e; ++i) optim_step::rmsprop(p[i], g[i], sq[i], b ? b + i : nullptr, lr, alpha, eps, wd, mom);
}

template <class P, class T, bool decoupled>
TG_SIMD_CLONES void adam_range(int64_t s, int64_t e, P* __restrict p, const P* __restrict g, T* __restrict m,
                               T* __restrict v, T b1, T b2, T step_size, T inv_sqrt_bc2, T eps, T wd, T decay) {
  for (int64_t i = s; i < e; ++i)
    optim_step::adam(p[i], g[i], m[i], v[i], b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay, decoupled);
}

void sgd_one(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SGDConfig& c, bool first) {
  TG_DISPATCH_FLOAT_STORAGE(dtype, "SGD", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    P* p = static_cast<P*>(param);
    const P* g = static_cast<const P*>(grad);
    T* b = static_cast<T*>(momentum_buf);
    const T lr = T(c.lr), mom = T(c.momentum), damp = T(1 - c.dampening), wd = T(c.weight_decay);
    const bool nesterov = c.nesterov;
    parallel_for(n, kParallelGrain, [=](int64_t s, int64_t e) {
      sgd_range(s, e, p, g, b, lr, mom, damp, wd, first, nesterov);
    });
  });
}

void adam_one(DType dtype, int64_t n, void* param, const void* grad, void* m_buf, void* v_buf, const AdamConfig& c,
              int64_t step) {
  TG_DISPATCH_FLOAT_STORAGE(dtype, "Adam", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    P* p = static_cast<P*>(param);
    const P* g = static_cast<const P*>(grad);
    T* m = static_cast<T*>(m_buf);
    T* v = static_cast<T*>(v_buf);
    const double bc1 = 1 - std::pow(c.beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(c.beta2, static_cast<double>(step));
    const T b1 = T(c.beta1), b2 = T(c.beta2), step_size = T(c.lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
    const T eps = T(c.eps), wd = T(c.weight_decay), decay = T(1 - c.lr * c.weight_decay);
    const bool decoupled = c.decoupled;
    parallel_for(n, kParallelGrain, [=](int64_t s, int64_t e) {
      if (decoupled) adam_range<P, T, true>(s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);
      else adam_range<P, T, false>(s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);
    });
  });
}

void rmsprop_one(DType dtype, int64_t n, void* param, const void* grad, void* sq_buf, void* mom_buf,
                 const RMSpropConfig& c) {
  TG_DISPATCH_FLOAT_STORAGE(dtype, "RMSprop", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    P* p = static_cast<P*>(param);
    const P* g = static_cast<const P*>(grad);
    T* sq = static_cast<T*>(sq_buf);
    T* b = static_cast<T*>(mom_buf);
    const T lr = T(c.lr), alpha = T(c.alpha), eps = T(c.eps), wd = T(c.weight_decay), mom = T(c.momentum);
    parallel_for(n, kParallelGrain, [=](int64_t s, int64_t e) { rmsprop_range(s, e, p, g, sq, b, lr, alpha, eps, wd, mom); });
  });
}

}  // namespace

// One tensor after the other, each threaded over its elements.
void CpuBackend::sgd_update(DType dtype, const std::vector<OptimTensor>& tensors, const SGDConfig& cfg) {
  for (const OptimTensor& t : tensors) sgd_one(dtype, t.numel, t.param, t.grad, t.state0, cfg, t.step == 1);
}

void CpuBackend::adam_update(DType dtype, const std::vector<OptimTensor>& tensors, const AdamConfig& cfg) {
  for (const OptimTensor& t : tensors) adam_one(dtype, t.numel, t.param, t.grad, t.state0, t.state1, cfg, t.step);
}

void CpuBackend::rmsprop_update(DType dtype, const std::vector<OptimTensor>& tensors, const RMSpropConfig& cfg) {
  for (const OptimTensor& t : tensors) rmsprop_one(dtype, t.numel, t.param, t.grad, t.state0, t.state1, cfg);
}

}  // namespace tg::cpu
