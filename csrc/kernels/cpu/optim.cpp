// Optimizer update kernels: one pass over each parameter, the math of torch.optim's docs.
#include <cmath>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

// g' = g + wd p;  b = momentum b + (1 - dampening) g' (b = g' on the first step);
// step = nesterov ? g' + momentum b : b;  p -= lr step
void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SGDConfig& c) {
  TG_DISPATCH_FLOAT(dtype, "SGD", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* b = static_cast<T*>(momentum_buf);
    const T lr = T(c.lr), mom = T(c.momentum), damp = T(1 - c.dampening), wd = T(c.weight_decay);
    parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T d = g[i] + wd * p[i];
        if (b) {
          b[i] = c.first_step ? d : mom * b[i] + damp * d;
          d = c.nesterov ? d + mom * b[i] : b[i];
        }
        p[i] -= lr * d;
      }
    });
  });
}

namespace {

// The Adam update of [s, e): every scalar is a by-value argument, so the loop vectorises.
template <class T, bool decoupled>
__attribute__((always_inline)) inline void adam_range(int64_t s, int64_t e, T* __restrict p, const T* __restrict g,
                                                      T* __restrict m, T* __restrict v, T b1, T b2, T step_size,
                                                      T inv_sqrt_bc2, T eps, T wd, T decay) {
  for (int64_t i = s; i < e; ++i) {
    T gi = g[i];
    T pi = p[i];
    if (decoupled) pi *= decay;
    else gi += wd * pi;
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

// The loop compiled for AVX2+FMA and for baseline x86-64; the CPU picks one at load time
// (GCC's function multi-versioning), so the update runs 8 floats wide where it can.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TG_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define TG_MULTIVERSION
#endif
#define TG_ADAM_LOOP(NAME, T, DECOUPLED)                                                                        \
  TG_MULTIVERSION void NAME(int64_t s, int64_t e, T* p, const T* g, T* m, T* v, T b1, T b2, T step_size,       \
                            T inv_sqrt_bc2, T eps, T wd, T decay) {                                            \
    adam_range<T, DECOUPLED>(s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);                \
  }
TG_ADAM_LOOP(adam_loop_f32, float, false)
TG_ADAM_LOOP(adamw_loop_f32, float, true)
TG_ADAM_LOOP(adam_loop_f64, double, false)
TG_ADAM_LOOP(adamw_loop_f64, double, true)
#undef TG_ADAM_LOOP

void adam_loop(bool decoupled, int64_t s, int64_t e, float* p, const float* g, float* m, float* v, float b1, float b2,
               float step_size, float inv_sqrt_bc2, float eps, float wd, float decay) {
  (decoupled ? adamw_loop_f32 : adam_loop_f32)(s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);
}
void adam_loop(bool decoupled, int64_t s, int64_t e, double* p, const double* g, double* m, double* v, double b1,
               double b2, double step_size, double inv_sqrt_bc2, double eps, double wd, double decay) {
  (decoupled ? adamw_loop_f64 : adam_loop_f64)(s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);
}

}  // namespace

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
// Adam adds wd p to g; AdamW (decoupled) multiplies p by (1 - lr wd) first.
void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* m_buf, void* v_buf, const AdamConfig& c) {
  TG_DISPATCH_FLOAT(dtype, "Adam", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(m_buf);
    T* v = static_cast<T*>(v_buf);
    const double bc1 = 1 - std::pow(c.beta1, static_cast<double>(c.step));
    const double bc2 = 1 - std::pow(c.beta2, static_cast<double>(c.step));
    const T b1 = T(c.beta1), b2 = T(c.beta2), step_size = T(c.lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
    const T eps = T(c.eps), wd = T(c.weight_decay), decay = T(1 - c.lr * c.weight_decay);
    const bool decoupled = c.decoupled;
    parallel_for(n, kParallelGrain, [=](int64_t s, int64_t e) {
      adam_loop(decoupled, s, e, p, g, m, v, b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay);
    });
  });
}

// v = alpha v + (1 - alpha) g^2;  step = g / (sqrt(v) + eps);
// with momentum: b = momentum b + step, p -= lr b; else p -= lr step
void rmsprop_update(DType dtype, int64_t n, void* param, const void* grad, void* sq_buf, void* mom_buf,
                    const RMSpropConfig& c) {
  TG_DISPATCH_FLOAT(dtype, "RMSprop", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* sq = static_cast<T*>(sq_buf);
    T* b = static_cast<T*>(mom_buf);
    const T lr = T(c.lr), alpha = T(c.alpha), eps = T(c.eps), wd = T(c.weight_decay), mom = T(c.momentum);
    parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T gi = g[i] + wd * p[i];
        sq[i] = alpha * sq[i] + (T(1) - alpha) * gi * gi;
        T step = gi / (std::sqrt(sq[i]) + eps);
        if (b) {
          b[i] = mom * b[i] + step;
          step = b[i];
        }
        p[i] -= lr * step;
      }
    });
  });
}

}  // namespace tg::cpu
