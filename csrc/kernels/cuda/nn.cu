// Row kernels of the neural-network functions, the twins of kernels/cpu/nn.cpp: one block per
// row (rows walked with a grid stride), each thread folding a strided part of the row, the block
// combining partial maxima and sums with warp shuffles (launch.cuh). Sums accumulate in Acc<T>.
#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

#define TG_ROW_LOOP(r, rows) for (int64_t r = blockIdx.x; r < (rows); r += gridDim.x)
#define TG_COL_LOOP(j, cols) for (int64_t j = threadIdx.x; j < (cols); j += blockDim.x)

template <class T>
__device__ __forceinline__ T row_max(const T* x, int64_t cols, T* scratch) {
  T m = neg_infinity<T>();
  TG_COL_LOOP(j, cols) m = MaxOp{}(m, x[j]);
  return block_reduce(m, MaxOp{}, neg_infinity<T>(), scratch);
}

// softmax_j = exp(x_j - m) / sum_k exp(x_k - m);  log_softmax_j = x_j - (m + log sum)
template <class T>
__global__ void softmax_kernel(const T* in, T* out, int64_t rows, int64_t cols, bool log_output) {
  __shared__ T scratch[32];
  TG_ROW_LOOP(r, rows) {
    const T* x = in + r * cols;
    T* y = out + r * cols;
    const T m = row_max(x, cols, scratch);
    T s = 0;
    TG_COL_LOOP(j, cols) s += exp(x[j] - m);
    s = block_reduce(s, SumOp{}, T(0), scratch);
    if (log_output) {
      const T lse = m + log(s);
      TG_COL_LOOP(j, cols) y[j] = x[j] - lse;
    } else {
      const T inv = T(1) / s;
      TG_COL_LOOP(j, cols) y[j] = exp(x[j] - m) * inv;
    }
  }
}

// Two passes over the row (mean, then the centred second moment), as the CPU does.
template <class T>
__global__ void layer_norm_kernel(const T* in, T* out, T* mean_out, T* rstd_out, int64_t rows, int64_t cols, double eps) {
  __shared__ T scratch[32];
  TG_ROW_LOOP(r, rows) {
    const T* x = in + r * cols;
    T s = 0;
    TG_COL_LOOP(j, cols) s += x[j];
    const T mu = block_reduce(s, SumOp{}, T(0), scratch) / T(cols);
    T ss = 0;
    TG_COL_LOOP(j, cols) ss += (x[j] - mu) * (x[j] - mu);
    ss = block_reduce(ss, SumOp{}, T(0), scratch);
    const T rstd = static_cast<T>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(cols) + eps));
    T* y = out + r * cols;
    TG_COL_LOOP(j, cols) y[j] = (x[j] - mu) * rstd;
    if (threadIdx.x == 0) {
      mean_out[r] = mu;
      rstd_out[r] = rstd;
    }
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat))
template <class T>
__global__ void layer_norm_backward_kernel(const T* g, const T* xhat, const T* rstd, T* dx, int64_t rows, int64_t cols) {
  __shared__ T scratch[32];
  TG_ROW_LOOP(r, rows) {
    const T* gr = g + r * cols;
    const T* xr = xhat + r * cols;
    T sg = 0, sgx = 0;
    TG_COL_LOOP(j, cols) {
      sg += gr[j];
      sgx += gr[j] * xr[j];
    }
    const T mg = block_reduce(sg, SumOp{}, T(0), scratch) / T(cols);
    const T mgx = block_reduce(sgx, SumOp{}, T(0), scratch) / T(cols);
    const T rs = rstd[r];
    T* d = dx + r * cols;
    TG_COL_LOOP(j, cols) d[j] = rs * (gr[j] - mg - xr[j] * mgx);
  }
}

// lse_i = m + log sum_j exp(x_ij - m);  loss_i = lse_i - x_i,t_i  (0 for ignored rows, t_i < 0)
template <class T>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* targets, T* loss, T* lse, int64_t rows, int64_t C) {
  __shared__ T scratch[32];
  TG_ROW_LOOP(r, rows) {
    const T* x = logits + r * C;
    const T m = row_max(x, C, scratch);
    T s = 0;
    TG_COL_LOOP(j, C) s += exp(x[j] - m);
    s = block_reduce(s, SumOp{}, T(0), scratch);
    if (threadIdx.x == 0) {
      const T l = m + log(s);
      lse[r] = l;
      loss[r] = targets[r] < 0 ? T(0) : l - x[targets[r]];
    }
  }
}

// d_ij = scale_i (exp(x_ij - lse_i) - [j == t_i]); ignored rows get 0. One thread per element.
template <class T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* targets, const T* lse, const T* scale,
                                              T* d, int64_t rows, int64_t C) {
  const int64_t n = rows * C;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = p / C, j = p % C, t = targets[r];
    d[p] = t < 0 ? T(0) : scale[r] * (exp(logits[p] - lse[r]) - (j == t ? T(1) : T(0)));
  }
}

#undef TG_ROW_LOOP
#undef TG_COL_LOOP

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(rows, 1), 1 << 20)); }

}  // namespace

void softmax_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) {
  if (rows * cols == 0) return;
  TG_DISPATCH_FLOAT(dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    launch(log ? "log_softmax" : "softmax", device, row_blocks(rows), kThreads, softmax_kernel<T>,
           static_cast<const T*>(in), static_cast<T*>(out), rows, cols, log);
  });
}

void layer_norm_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* in, void* out, void* mean,
                     void* rstd, double eps) {
  if (rows == 0) return;
  TG_DISPATCH_FLOAT(dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    launch("layer_norm", device, row_blocks(rows), kThreads, layer_norm_kernel<T>, static_cast<const T*>(in),
           static_cast<T*>(out), static_cast<T*>(mean), static_cast<T*>(rstd), rows, cols, eps);
  });
}

void layer_norm_backward_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* g, const void* xhat,
                              const void* rstd, void* dx) {
  if (rows * cols == 0) return;
  TG_DISPATCH_FLOAT(dtype, "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    launch("layer_norm backward", device, row_blocks(rows), kThreads, layer_norm_backward_kernel<T>,
           static_cast<const T*>(g), static_cast<const T*>(xhat), static_cast<const T*>(rstd), static_cast<T*>(dx), rows,
           cols);
  });
}

void cross_entropy_rows(int device, DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                        void* loss, void* lse) {
  if (rows == 0) return;
  TG_DISPATCH_FLOAT(dtype, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    launch("cross_entropy", device, row_blocks(rows), kThreads, cross_entropy_kernel<T>, static_cast<const T*>(logits),
           targets, static_cast<T*>(loss), static_cast<T*>(lse), rows, C);
  });
}

void cross_entropy_backward_rows(int device, DType dtype, int64_t rows, int64_t C, const void* logits,
                                 const int64_t* targets, const void* lse, const void* row_scale, void* dlogits) {
  if (rows * C == 0) return;
  TG_DISPATCH_FLOAT(dtype, "cross_entropy backward", [&](auto tag) {
    using T = decltype(tag);
    launch("cross_entropy backward", device, blocks_for(rows * C), kThreads, cross_entropy_backward_kernel<T>,
           static_cast<const T*>(logits), targets, static_cast<const T*>(lse), static_cast<const T*>(row_scale),
           static_cast<T*>(dlogits), rows, C);
  });
}

}  // namespace tg::cuda
