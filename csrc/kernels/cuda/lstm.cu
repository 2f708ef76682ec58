// The pointwise half of an LSTM step on the device, the twin of kernels/cpu/lstm.cpp: one thread
// per (b, j) of the (B, H) state.
//   act = (sigmoid a_i, sigmoid a_f, tanh a_g, sigmoid a_o);  c' = f c + i g;  h = o tanh(c')
#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T>
__global__ void lstm_cell_kernel(const T* gates, const T* c, T* h, T* c_out, T* act, T* tanh_c, int64_t batch,
                                 int64_t hidden) {
  const int64_t n = batch * hidden;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = p / hidden, j = p % hidden;
    const T* a = gates + b * 4 * hidden;
    T* ab = act + b * 4 * hidden;
    const T i = fn::sigmoid(a[j]), f = fn::sigmoid(a[hidden + j]);
    const T g = tanh(a[2 * hidden + j]), o = fn::sigmoid(a[3 * hidden + j]);
    const T cj = f * c[p] + i * g;
    const T t = tanh(cj);
    ab[j] = i;
    ab[hidden + j] = f;
    ab[2 * hidden + j] = g;
    ab[3 * hidden + j] = o;
    c_out[p] = cj;
    tanh_c[p] = t;
    h[p] = o * t;
  }
}

}  // namespace

void CudaBackend::lstm_cell(DType dtype, int64_t batch, int64_t hidden, const void* gates, const void* c, void* h_out,
                            void* c_out, void* act_out, void* tanh_c_out) {
  if (batch * hidden == 0) return;
  TG_DISPATCH_FLOAT(dtype, "lstm_cell", [&](auto tag) {
    using T = decltype(tag);
    launch("lstm_cell", device, blocks_for(batch * hidden), kThreads, lstm_cell_kernel<T>, static_cast<const T*>(gates),
           static_cast<const T*>(c), static_cast<T*>(h_out), static_cast<T*>(c_out), static_cast<T*>(act_out),
           static_cast<T*>(tanh_c_out), batch, hidden);
  });
}

}  // namespace tg::cuda
