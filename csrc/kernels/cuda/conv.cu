// unfold (im2col) and fold (col2im) on the GPU: one thread per element of the result, the index
// arithmetic of kernels/im2col.h (fold gathers each pixel's taps: no atomics).
#include "kernels/cuda/launch.cuh"
#include "kernels/im2col.h"

namespace tg::cuda {

namespace {

#define TG_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// t runs over (n, ck, l) of cols in that order
template <class T>
__global__ void im2col_kernel(Im2ColArgs a, const T* x, T* cols, T pad, int64_t total) {
  const int64_t rows = a.rows(), L = a.positions();
  TG_GRID_LOOP(t, total) {
    const int64_t l = t % L, ck = (t / L) % rows, n = t / (L * rows);
    const int64_t s = im2col_source(a, n, ck, l);
    cols[n * a.col_n + ck * a.col_c + l * a.col_l] = s < 0 ? pad : x[s];
  }
}

template <class T>
__global__ void col2im_kernel(Im2ColArgs a, const T* cols, T* x, int64_t total) {
  TG_GRID_LOOP(p, total) x[p] = static_cast<T>(col2im_pixel<T, T>(a, cols, p));
}

}  // namespace

void CudaBackend::im2col(DType dtype, const Im2ColArgs& a, const void* x, void* cols) {
  const int64_t total = a.N * a.rows() * a.positions();
  if (total == 0) return;
  TG_DISPATCH_STORAGE(dtype, "unfold", [&](auto tag) {
    using T = decltype(tag);
    launch("unfold", device, blocks_for(total), kThreads, im2col_kernel<T>, a, static_cast<const T*>(x),
           static_cast<T*>(cols), static_cast<T>(static_cast<float>(a.pad_value)), total);
  });
}

void CudaBackend::col2im(DType dtype, const Im2ColArgs& a, const void* cols, void* x) {
  const int64_t total = a.N * a.C * a.H * a.W;
  if (total == 0) return;
  TG_DISPATCH_FLOAT(dtype, "fold", [&](auto tag) {
    using T = decltype(tag);
    launch("fold", device, blocks_for(total), kThreads, col2im_kernel<T>, a, static_cast<const T*>(cols),
           static_cast<T*>(x), total);
  });
}

}  // namespace tg::cuda
