// The pointwise half of an LSTM step (the matmuls that make the gates run before it).
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

// gates (B, 4H) in the order i, f, g, o (pre-activation); c (B, H).
// act (B, 4H) = sigmoid/tanh of the gates; c_out = f c + i g; tanh_c = tanh(c_out); h = o tanh_c
void CpuBackend::lstm_cell(DType dtype, int64_t batch, int64_t hidden, const void* gates_in, const void* c_in, void* h_out,
                           void* c_out, void* act_out, void* tanh_c_out) {
  TG_DISPATCH_FLOAT(dtype, "lstm_cell", [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(gates_in);
    const T* c = static_cast<const T*>(c_in);
    T* h = static_cast<T*>(h_out);
    T* cn = static_cast<T*>(c_out);
    T* act = static_cast<T*>(act_out);
    T* tc = static_cast<T*>(tanh_c_out);
    parallel_for(batch, grain_for(hidden, 4096), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const T* ab = a + b * 4 * hidden;
        T* actb = act + b * 4 * hidden;
        for (int64_t j = 0; j < hidden; ++j) {
          const T i = fn::sigmoid(ab[j]), f = fn::sigmoid(ab[hidden + j]);
          const T g = std::tanh(ab[2 * hidden + j]), o = fn::sigmoid(ab[3 * hidden + j]);
          const T cj = f * c[b * hidden + j] + i * g;
          const T t = std::tanh(cj);
          actb[j] = i;
          actb[hidden + j] = f;
          actb[2 * hidden + j] = g;
          actb[3 * hidden + j] = o;
          cn[b * hidden + j] = cj;
          tc[b * hidden + j] = t;
          h[b * hidden + j] = o * t;
        }
      }
    });
  });
}

}  // namespace tg::cpu
