// Row kernels of the neural-network functions, the twins of kernels/cpu/nn.cpp. Each op is one
// body written against a Row: the row's elements, a map-and-reduce over them (every thread of the
// row gets the result) and a store. Two kinds of Row serve every body:
//   RegisterRow  the row is loaded once, with vector loads, into the registers of a warp (rows up
//                to 1,024 float32) or of a block (up to 16,384): one read and one write per element,
//                which is what reaches the copy bandwidth;
//   StreamedRow  longer rows stay in global memory, one block per row, each pass reading it again.
// The host picks the smallest RegisterRow that holds the row (with_row_kind below). The entry
// points are rows.h's; CudaBackend forwards to them (backend.cu).
#include <algorithm>
#include <initializer_list>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rows.h"

namespace tg::cuda {

namespace {

// kVecs vectors of kVec elements per thread, kRowThreads threads per row (32: a warp, so the
// reductions are shuffles, and a block of 256 holds 8 rows; more: the whole block is the row).
// Thread `lane` holds vectors lane, lane + kRowThreads, ...: consecutive threads read consecutive
// 16 or 32 bytes (coalesced).
template <class T, int kVecs, int kRowThreads>
struct RegisterRow {
  static constexpr int kThreadsPerRow = kRowThreads;
  static constexpr int kBlockThreads = kRowThreads < kThreads ? kThreads : kRowThreads;
  static constexpr int64_t kCapacity = int64_t(kVecs) * kVec * kRowThreads;
  T v[kVecs * kVec];
  int64_t cols;
  int lane;

  __device__ __forceinline__ int64_t col(int k) const { return (int64_t(k / kVec) * kRowThreads + lane) * kVec + k % kVec; }

  // vectors: the row starts on a Vec boundary and cols % kVec == 0 (decided once on the host).
  __device__ __forceinline__ void load(const T* x, int64_t cols_, int lane_, bool vectors) {
    cols = cols_, lane = lane_;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c0 = col(i * kVec);
      if (vectors && c0 + kVec <= cols) {
        const Vec<T> w = *reinterpret_cast<const Vec<T>*>(x + c0);
#pragma unroll
        for (int e = 0; e < kVec; ++e) v[i * kVec + e] = w.v[e];
      } else {
#pragma unroll
        for (int e = 0; e < kVec; ++e) v[i * kVec + e] = c0 + e < cols ? x[c0 + e] : T(0);
      }
    }
  }
  __device__ __forceinline__ T at(int k) const { return v[k]; }

  template <class F>
  __device__ __forceinline__ void for_each(F f) const {
#pragma unroll
    for (int k = 0; k < kVecs * kVec; ++k)
      if (col(k) < cols) f(k);
  }

  // y_j = f(position of j) for every element of the row.
  template <class F>
  __device__ __forceinline__ void store(T* y, bool vectors, F f) const {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c0 = col(i * kVec);
      if (vectors && c0 + kVec <= cols) {
        Vec<T> w;
#pragma unroll
        for (int e = 0; e < kVec; ++e) w.v[e] = f(i * kVec + e);
        *reinterpret_cast<Vec<T>*>(y + c0) = w;
      } else {
#pragma unroll
        for (int e = 0; e < kVec; ++e)
          if (c0 + e < cols) y[c0 + e] = f(i * kVec + e);
      }
    }
  }

  template <class C>
  __device__ __forceinline__ T across_threads(T v, C combine, T identity, T* scratch) const {
    if constexpr (kRowThreads == 32) return warp_reduce(v, combine);
    else return block_reduce(v, combine, identity, scratch);
  }
};

// One block per row; every pass reads the row from global memory (L2 holds it between passes).
template <class T>
struct StreamedRow {
  static constexpr int kThreadsPerRow = 0;  // the whole block
  static constexpr int kBlockThreads = kThreads;
  const T* x;
  int64_t cols;
  int lane;

  __device__ __forceinline__ void load(const T* x_, int64_t cols_, int lane_, bool) { x = x_, cols = cols_, lane = lane_; }
  __device__ __forceinline__ int64_t col(int64_t j) const { return j; }
  __device__ __forceinline__ T at(int64_t j) const { return x[j]; }
  template <class F>
  __device__ __forceinline__ void for_each(F f) const {
    for (int64_t j = lane; j < cols; j += blockDim.x) f(j);
  }
  template <class F>
  __device__ __forceinline__ void store(T* y, bool, F f) const {
    for_each([&](int64_t j) { y[j] = f(j); });
  }
  template <class C>
  __device__ __forceinline__ T across_threads(T v, C combine, T identity, T* scratch) const {
    return block_reduce(v, combine, identity, scratch);
  }
};

// combine over the row of f(position), every thread of the row getting the result.
template <class Row, class T, class F, class C>
__device__ __forceinline__ T row_reduce(const Row& row, F f, C combine, T identity, T* scratch) {
  T acc = identity;
  row.for_each([&](auto k) { acc = combine(acc, static_cast<T>(f(k))); });
  return row.across_threads(acc, combine, identity, scratch);
}

// body(row index, lane) for every row: Row::kThreadsPerRow threads per row (0: the block), so
// blockDim.x / kThreadsPerRow rows per block; blocks stride over the rows.
template <class Row, class Body>
__device__ __forceinline__ void for_each_row(int64_t rows, Body body) {
  const int per_row = Row::kThreadsPerRow ? Row::kThreadsPerRow : blockDim.x, per_block = blockDim.x / per_row;
  const int lane = threadIdx.x % per_row;
  for (int64_t r = int64_t(blockIdx.x) * per_block + threadIdx.x / per_row; r < rows; r += int64_t(gridDim.x) * per_block)
    body(r, lane);
}

// softmax_j = exp(x_j - m) / sum_k exp(x_k - m);  log_softmax_j = x_j - (m + log sum)
template <class T, class Row>
__global__ void __launch_bounds__(Row::kBlockThreads) softmax_kernel(const T* in, T* out, int64_t rows, int64_t cols, bool log_output, bool vectors) {
  __shared__ T scratch[32];
  for_each_row<Row>(rows, [&](int64_t r, int lane) {
    Row x;
    x.load(in + r * cols, cols, lane, vectors);
    const T m = row_reduce(x, [&](auto k) { return x.at(k); }, MaxOp{}, neg_infinity<T>(), scratch);
    const T s = row_reduce(x, [&](auto k) { return exp(x.at(k) - m); }, SumOp{}, T(0), scratch);
    if (log_output) {
      const T lse = m + log(s);
      x.store(out + r * cols, vectors, [&](auto k) { return x.at(k) - lse; });
    } else {
      const T inv = T(1) / s;
      x.store(out + r * cols, vectors, [&](auto k) { return exp(x.at(k) - m) * inv; });
    }
  });
}

// Two passes over the row (mean, then the centred second moment), as the CPU does.
// y = (x - mu) rstd w + b,  rstd = 1 / sqrt(mean((x - mu)^2) + eps); w, b per column (null: 1, 0)
template <class T, class Row>
__global__ void __launch_bounds__(Row::kBlockThreads) layer_norm_kernel(LayerNormArgs a, T* out, bool vectors) {
  __shared__ T scratch[32];
  const T *in = static_cast<const T*>(a.x), *w = static_cast<const T*>(a.weight), *b = static_cast<const T*>(a.bias);
  const int64_t cols = a.cols;
  for_each_row<Row>(a.rows, [&](int64_t r, int lane) {
    Row x;
    x.load(in + r * cols, cols, lane, vectors);
    const T mu = row_reduce(x, [&](auto k) { return x.at(k); }, SumOp{}, T(0), scratch) / T(cols);
    const T ss = row_reduce(x, [&](auto k) { return (x.at(k) - mu) * (x.at(k) - mu); }, SumOp{}, T(0), scratch);
    const T rstd = static_cast<T>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(cols) + a.eps));
    x.store(out + r * cols, vectors, [&](auto k) {
      const T xhat = (x.at(k) - mu) * rstd;
      return (w ? xhat * w[x.col(k)] : xhat) + (b ? b[x.col(k)] : T(0));
    });
    if (lane == 0) {
      static_cast<T*>(a.mean)[r] = mu;
      static_cast<T*>(a.rstd)[r] = rstd;
    }
  });
}

// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy w, xhat = (x - mean) rstd
// rebuilt from the forward's input
template <class T, class Row>
__global__ void __launch_bounds__(Row::kBlockThreads) layer_norm_backward_kernel(LayerNormArgs a, const T* g, T* dx,
                                                                                 bool vectors) {
  __shared__ T scratch[32];
  const T *x = static_cast<const T*>(a.x), *w = static_cast<const T*>(a.weight);
  const int64_t cols = a.cols;
  for_each_row<Row>(a.rows, [&](int64_t r, int lane) {
    Row gr, xr;
    gr.load(g + r * cols, cols, lane, vectors);
    xr.load(x + r * cols, cols, lane, vectors);
    const T mu = static_cast<const T*>(a.mean)[r], rs = static_cast<const T*>(a.rstd)[r];
    const auto xhat = [&](auto k) { return (xr.at(k) - mu) * rs; };
    const auto dxhat = [&](auto k) { return w ? gr.at(k) * w[gr.col(k)] : gr.at(k); };
    const T mg = row_reduce(gr, dxhat, SumOp{}, T(0), scratch) / T(cols);
    const T mgx = row_reduce(gr, [&](auto k) { return dxhat(k) * xhat(k); }, SumOp{}, T(0), scratch) / T(cols);
    gr.store(dx + r * cols, vectors, [&](auto k) { return rs * (dxhat(k) - mg - xhat(k) * mgx); });
  });
}

// dw_j = sum_r dy_rj xhat_rj, db_j = sum_r dy_rj: a thread per column walks down the rows
// (neighbouring threads read neighbouring columns: coalesced), in the order of the rows, so the
// sums are the same run after run. Either output may be null.
template <class T>
__global__ void layer_norm_param_grads_kernel(LayerNormArgs a, const T* g, T* dw, T* db) {
  const T *x = static_cast<const T*>(a.x), *mean = static_cast<const T*>(a.mean), *rstd = static_cast<const T*>(a.rstd);
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < a.cols; j += int64_t(gridDim.x) * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t r = 0; r < a.rows; ++r) {
      const T gv = g[r * a.cols + j];
      sw += static_cast<double>(gv) * static_cast<double>((x[r * a.cols + j] - mean[r]) * rstd[r]);
      sb += gv;
    }
    if (dw) dw[j] = static_cast<T>(sw);
    if (db) db[j] = static_cast<T>(sb);
  }
}

// lse_i = m + log sum_j exp(x_ij - m);  loss_i = lse_i - x_i,t_i  (0 for ignored rows, t_i < 0)
template <class T, class Row>
__global__ void __launch_bounds__(Row::kBlockThreads) cross_entropy_kernel(const T* logits, const int64_t* targets, T* loss, T* lse, int64_t rows, int64_t C,
                                     bool vectors) {
  __shared__ T scratch[32];
  for_each_row<Row>(rows, [&](int64_t r, int lane) {
    const T* x_r = logits + r * C;
    Row x;
    x.load(x_r, C, lane, vectors);
    const T m = row_reduce(x, [&](auto k) { return x.at(k); }, MaxOp{}, neg_infinity<T>(), scratch);
    const T s = row_reduce(x, [&](auto k) { return exp(x.at(k) - m); }, SumOp{}, T(0), scratch);
    if (lane == 0) {
      const T l = m + log(s);
      lse[r] = l;
      loss[r] = targets[r] < 0 ? T(0) : l - x_r[targets[r]];
    }
  });
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

// launch_with(row) for the smallest RegisterRow that holds `cols` elements, else a StreamedRow.
// A thread holds at most 128 bytes of a row (32 float32, 16 float64): two rows of that (layer_norm
// backward) still fit in the 128 registers a 512-thread block allows, so nothing spills.
template <class T, class LaunchWith>
void with_row_kind(int64_t cols, LaunchWith launch_with) {
  constexpr int kMost = 128 / (kVec * sizeof(T));  // vectors per thread: 8 float32, 4 float64
  if (cols <= RegisterRow<T, kMost / 4, 32>::kCapacity) return launch_with(RegisterRow<T, kMost / 4, 32>{});
  if (cols <= RegisterRow<T, kMost, 32>::kCapacity) return launch_with(RegisterRow<T, kMost, 32>{});
  if (cols <= RegisterRow<T, kMost / 2, 256>::kCapacity) return launch_with(RegisterRow<T, kMost / 2, 256>{});
  if (cols <= RegisterRow<T, kMost, 256>::kCapacity) return launch_with(RegisterRow<T, kMost, 256>{});
  if (cols <= RegisterRow<T, kMost, 512>::kCapacity) return launch_with(RegisterRow<T, kMost, 512>{});
  launch_with(StreamedRow<T>{});
}

// Blocks for `rows` rows of `Row` (the kernels stride over the rest).
template <class Row>
unsigned row_blocks(int64_t rows) {
  const int64_t per_block = Row::kThreadsPerRow ? Row::kBlockThreads / Row::kThreadsPerRow : 1;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>((rows + per_block - 1) / per_block, 1), 1 << 20));
}

// Vector loads need every row to start on a Vec boundary.
template <class T>
bool rows_vectorizable(int64_t cols, std::initializer_list<const void*> ptrs) {
  bool ok = cols % kVec == 0;
  for (const void* p : ptrs) ok = ok && aligned_to(p, alignof(Vec<T>));
  return ok;
}

}  // namespace

void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log, int device) {
  if (rows * cols == 0) return;
  TG_DISPATCH_FLOAT(dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    const bool vectors = rows_vectorizable<T>(cols, {in, out});
    with_row_kind<T>(cols, [&](auto row) {
      using Row = decltype(row);
      launch(log ? "log_softmax" : "softmax", device, row_blocks<Row>(rows), Row::kBlockThreads, softmax_kernel<T, Row>,
             static_cast<const T*>(in), static_cast<T*>(out), rows, cols, log, vectors);
    });
  });
}

void layer_norm_rows(const LayerNormArgs& a, void* y, int device) {
  if (a.rows == 0) return;
  TG_DISPATCH_FLOAT(a.dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const bool vectors = rows_vectorizable<T>(a.cols, {a.x, y});
    with_row_kind<T>(a.cols, [&](auto row) {
      using Row = decltype(row);
      launch("layer_norm", device, row_blocks<Row>(a.rows), Row::kBlockThreads, layer_norm_kernel<T, Row>, a,
             static_cast<T*>(y), vectors);
    });
  });
}

void layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight, void* dbias,
                              int device) {
  if (a.cols == 0) return;
  TG_DISPATCH_FLOAT(a.dtype, "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const bool vectors = rows_vectorizable<T>(a.cols, {dy, a.x, dx});
    if (a.rows > 0)
      with_row_kind<T>(a.cols, [&](auto row) {
        using Row = decltype(row);
        launch("layer_norm backward", device, row_blocks<Row>(a.rows), Row::kBlockThreads,
               layer_norm_backward_kernel<T, Row>, a, static_cast<const T*>(dy), static_cast<T*>(dx), vectors);
      });
    if (dweight || dbias)  // zeros when there are no rows
      launch("layer_norm weight and bias gradients", device, blocks_for(a.cols), kThreads,
             layer_norm_param_grads_kernel<T>, a, static_cast<const T*>(dy), static_cast<T*>(dweight),
             static_cast<T*>(dbias));
  });
}

void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                        void* lse, int device) {
  if (rows == 0) return;
  TG_DISPATCH_FLOAT(dtype, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const bool vectors = rows_vectorizable<T>(C, {logits});
    with_row_kind<T>(C, [&](auto row) {
      using Row = decltype(row);
      launch("cross_entropy", device, row_blocks<Row>(rows), Row::kBlockThreads, cross_entropy_kernel<T, Row>,
             static_cast<const T*>(logits), targets, static_cast<T*>(loss), static_cast<T*>(lse), rows, C, vectors);
    });
  });
}

void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                 const void* lse, const void* row_scale, void* dlogits, int device) {
  if (rows * C == 0) return;
  TG_DISPATCH_FLOAT(dtype, "cross_entropy backward", [&](auto tag) {
    using T = decltype(tag);
    launch("cross_entropy backward", device, blocks_for(rows * C), kThreads, cross_entropy_backward_kernel<T>,
           static_cast<const T*>(logits), targets, static_cast<const T*>(lse), static_cast<const T*>(row_scale),
           static_cast<T*>(dlogits), rows, C);
  });
}

}  // namespace tg::cuda
