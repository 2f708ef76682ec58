// Reductions of a contiguous (outer, r, inner) buffer over its middle axis, the twin of
// kernels/cpu/reduce.cpp.
//   inner == 1: one block per row of r contiguous elements; each thread folds a strided part of
//               the row, then the block combines with warp shuffles.
//   inner > 1:  sums: 32-column tiles, 8 row groups per tile (a warp reads 32 neighbouring
//               columns of one row: coalesced), and when there are too few tiles to fill the GPU
//               (sum(dim=0) of a tall matrix) the rows are split among CTAs too; the split sums
//               land in a workspace that a second pass adds up in order (no atomics, so the
//               result is deterministic). Many narrow columns (inner < 32, outer * inner large):
//               one thread per output. max/min: one thread per output (o, i), walking r rows.
// Max/min carry (value, index) pairs: NaN beats every number, ties go to the lower index -- the
// first extremum, as the CPU's sequential scan finds.
#include <algorithm>

#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T>
struct Candidate {
  T v;
  int64_t i;  // -1: no element yet
};

template <bool is_max, class T>
__device__ __forceinline__ Candidate<T> better_of(Candidate<T> a, Candidate<T> b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) return (an && (!bn || a.i < b.i)) ? a : b;
  if (a.v == b.v) return a.i < b.i ? a : b;
  return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
}

template <class T>
__device__ __forceinline__ T shuffle_xor(T v, int delta) {
  if constexpr (std::is_same_v<T, bool>) return __shfl_xor_sync(0xffffffffu, int(v), delta) != 0;  // no bool shuffle
  else return __shfl_xor_sync(0xffffffffu, v, delta);
}

template <bool is_max, class T>
__device__ __forceinline__ Candidate<T> warp_best(Candidate<T> c) {
  for (int delta = 16; delta > 0; delta >>= 1) {
    Candidate<T> o{shuffle_xor(c.v, delta), shuffle_xor(c.i, delta)};
    c = better_of<is_max>(c, o);
  }
  return c;
}

struct ProdOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a * b; }
};

// One block per row: out[o] = the fold (sum, product) of row o, in the accumulation type.
template <class T, class Op>
__global__ void fold_rows(const T* in, T* out, int64_t outer, int64_t r, Acc<T> identity, Op op) {
  __shared__ Acc<T> scratch[32];
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = in + o * r;
    Acc<T> acc = identity;
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) acc = op(acc, Acc<T>(row[j]));
    acc = block_reduce(acc, op, identity, scratch);
    if (threadIdx.x == 0) out[o] = static_cast<T>(acc);
  }
}

constexpr int kColTile = 32, kRowGroups = 8;  // a (32 x 8)-thread CTA per 32-column tile

// out[o, split, i] = sum of in[o, j, i] over the rows j of `split` (rows_per_split of them), in
// the accumulation type; out has gridDim.z rows per o (1: the final result, cast to Out).
template <class In, class Out>
__global__ void sum_columns(const In* in, Out* out, int64_t outer, int64_t r, int64_t inner, int64_t rows_per_split) {
  __shared__ Acc<In> partial[kRowGroups][kColTile + 1];
  const int64_t i = int64_t(blockIdx.x) * kColTile + threadIdx.x, split = blockIdx.z;
  const int64_t begin = split * rows_per_split, end = min(r, begin + rows_per_split);
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    Acc<In> acc = 0;
    if (i < inner)
      for (int64_t j = begin + threadIdx.y; j < end; j += kRowGroups) acc += in[(o * r + j) * inner + i];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
#pragma unroll
      for (int y = 1; y < kRowGroups; ++y) acc += partial[y][threadIdx.x];
      out[(o * gridDim.z + split) * inner + i] = static_cast<Out>(acc);
    }
    __syncthreads();  // partial is rewritten for the next o
  }
}

// One thread per output (o, i), walking the r rows: for many narrow columns (inner < 32), where
// a 32-column tile would leave most of its threads idle, and for products.
template <class T, class Op>
__global__ void fold_columns_per_output(const T* in, T* out, int64_t outer, int64_t r, int64_t inner, Acc<T> identity,
                                        Op op) {
  const int64_t n = outer * inner;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const T* base = in + (p / inner) * r * inner + p % inner;
    Acc<T> acc = identity;
    for (int64_t j = 0; j < r; ++j) acc = op(acc, Acc<T>(base[j * inner]));
    out[p] = static_cast<T>(acc);
  }
}

// Sums over the middle axis of (outer, r, inner), inner > 1.
template <class T>
void sum_over_columns(int device, int64_t outer, int64_t r, int64_t inner, const T* in, T* out) {
  constexpr int64_t kTargetBlocks = 512, kMinRowsPerSplit = 64, kMaxGridYZ = 65535;
  if (inner < kColTile && outer * inner >= kTargetBlocks * kThreads / 8) {
    launch("reduce (sum columns)", device, blocks_for(outer * inner), kThreads, fold_columns_per_output<T, SumOp>, in, out,
           outer, r, inner, Acc<T>(0), SumOp{});
    return;
  }
  const int64_t col_tiles = ceil_div(inner, kColTile), tiles = col_tiles * outer;
  TG_CHECK(col_tiles < (int64_t(1) << 31), ValueError, "sum: too many columns (", inner, ") for the CUDA reduction");
  const int64_t splits = std::max<int64_t>(
      1, std::min<int64_t>({ceil_div(kTargetBlocks, tiles), ceil_div(r, kMinRowsPerSplit), kMaxGridYZ}));
  const int64_t rows_per_split = ceil_div(r, splits);
  const unsigned grid_y = static_cast<unsigned>(std::min(outer, kMaxGridYZ));
  const dim3 threads(kColTile, kRowGroups);
  if (splits == 1) {
    launch("reduce (sum columns)", device, dim3(col_tiles, grid_y, 1), threads, sum_columns<T, T>, in, out, outer, r,
           inner, rows_per_split);
    return;
  }
  // pass 1: (outer, splits, inner) partial sums in Acc<T>; pass 2: their sum over the splits, in order
  const ScratchBlock partial(outer * splits * inner * sizeof(Acc<T>), device);
  Acc<T>* p = static_cast<Acc<T>*>(partial.get());
  launch("reduce (sum columns, split)", device, dim3(col_tiles, grid_y, splits), threads, sum_columns<T, Acc<T>>, in, p,
         outer, r, inner, rows_per_split);
  launch("reduce (sum columns, combine)", device, dim3(col_tiles, grid_y, 1), threads, sum_columns<Acc<T>, T>, p, out,
         outer, splits, inner, splits);
}

template <bool is_max, bool want_index, class T>
__global__ void extreme_rows(const T* in, void* out, int64_t outer, int64_t r) {
  __shared__ T values[32];
  __shared__ int64_t indices[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = in + o * r;
    Candidate<T> best{T(0), -1};
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) best = better_of<is_max>(best, Candidate<T>{row[j], j});
    best = warp_best<is_max>(best);
    __syncthreads();
    if (lane == 0) {
      values[warp] = best.v;
      indices[warp] = best.i;
    }
    __syncthreads();
    if (warp == 0) {
      Candidate<T> c = lane < n_warps ? Candidate<T>{values[lane], indices[lane]} : Candidate<T>{T(0), -1};
      c = warp_best<is_max>(c);
      if (lane == 0) {
        if constexpr (want_index) static_cast<int64_t*>(out)[o] = c.i;
        else static_cast<T*>(out)[o] = c.v;
      }
    }
  }
}

template <bool is_max, bool want_index, class T>
__global__ void extreme_columns(const T* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = p / inner, i = p % inner;
    const T* base = in + o * r * inner + i;
    Candidate<T> best{base[0], 0};
    for (int64_t j = 1; j < r; ++j) best = better_of<is_max>(best, Candidate<T>{base[j * inner], j});
    if constexpr (want_index) static_cast<int64_t*>(out)[p] = best.i;
    else static_cast<T*>(out)[p] = best.v;
  }
}

unsigned row_blocks(int64_t outer) { return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(outer, 1), 1 << 20)); }

template <bool is_max, bool want_index, class T>
void extreme(int device, int64_t outer, int64_t r, int64_t inner, const T* in, void* out) {
  if (inner == 1)
    launch("reduce (max/min rows)", device, row_blocks(outer), kThreads, extreme_rows<is_max, want_index, T>, in, out, outer, r);
  else
    launch("reduce (max/min columns)", device, blocks_for(outer * inner), kThreads, extreme_columns<is_max, want_index, T>,
           in, out, outer, r, inner);
}

}  // namespace

// Running reductions: one thread per (outer, inner) line, walking it (neighbouring threads read
// neighbouring columns); float32 sums and products accumulate in float64, as on the CPU.
template <class T, class Op>
__global__ void running_lines(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, Acc<T> identity, Op op) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < outer * inner; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, i = t % inner;
    Acc<T> acc = identity;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t at = (o * n + j) * inner + i;
      acc = op(acc, Acc<T>(x[at]));
      y[at] = static_cast<T>(acc);
    }
  }
}

// log(exp(a) + exp(b)) without overflow; equal arguments (both infinite among them) give a + log 2.
struct LogAddExpOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const {
    if (a == b) return a + T(0.69314718055994530942);
    const T hi = a > b ? a : b, gap = a > b ? b - a : a - b;
    return hi + log1p(exp(gap));
  }
};

// index = the position of the running max (min): a later equal element takes over, and so does
// every NaN (PyTorch's cummax / cummin, as the CPU).
template <bool is_max, class T>
__global__ void running_extreme_lines(const T* x, int64_t* index, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < outer * inner; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, i = t % inner;
    T best = x[o * n * inner + i];
    int64_t where = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t at = (o * n + j) * inner + i;
      const T v = x[at];
      if ((is_max ? v >= best : v <= best) || v != v) best = v, where = j;
      index[at] = where;
    }
  }
}

void CudaBackend::scan(ScanOp op, DType dtype, int64_t outer, int64_t n, int64_t inner, const void* in, void* out,
                       int64_t* index) {
  if (outer * inner * n == 0) return;
  TG_DISPATCH_NUMERIC(dtype, "scan", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    const unsigned blocks = blocks_for(outer * inner);
    switch (op) {
      case ScanOp::Sum:
        launch("cumsum", device, blocks, kThreads, running_lines<T, SumOp>, x, y, outer, n, inner, Acc<T>(0), SumOp{});
        break;
      case ScanOp::Prod:
        launch("cumprod", device, blocks, kThreads, running_lines<T, ProdOp>, x, y, outer, n, inner, Acc<T>(1), ProdOp{});
        break;
      case ScanOp::LogSumExp:
        if constexpr (!std::is_floating_point_v<T>) throw TypeError("logcumsumexp: expected a floating-point tensor");
        else launch("logcumsumexp", device, blocks, kThreads, running_lines<T, LogAddExpOp>, x, y, outer, n, inner,
                    -std::numeric_limits<Acc<T>>::infinity(), LogAddExpOp{});
        break;
      case ScanOp::Max:
        launch("cummax", device, blocks, kThreads, running_extreme_lines<true, T>, x, index, outer, n, inner);
        break;
      case ScanOp::Min:
        launch("cummin", device, blocks, kThreads, running_extreme_lines<false, T>, x, index, outer, n, inner);
        break;
    }
  });
}

void CudaBackend::reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) {
  if (outer * inner == 0) return;
  TG_DISPATCH_ALL(dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) {
          throw TypeError("sum: bool input must be converted first");
        } else if (inner == 1) {
          launch("reduce (sum rows)", device, row_blocks(outer), kThreads, fold_rows<T, SumOp>, x, static_cast<T*>(out), outer,
                 r, Acc<T>(0), SumOp{});
        } else {
          sum_over_columns(device, outer, r, inner, x, static_cast<T*>(out));
        }
        break;
      case ReduceOp::Prod:
        if constexpr (std::is_same_v<T, bool>) throw TypeError("prod: bool input must be converted first");
        else if (inner == 1)
          launch("reduce (prod rows)", device, row_blocks(outer), kThreads, fold_rows<T, ProdOp>, x, static_cast<T*>(out),
                 outer, r, Acc<T>(1), ProdOp{});
        else
          launch("reduce (prod columns)", device, blocks_for(outer * inner), kThreads, fold_columns_per_output<T, ProdOp>, x,
                 static_cast<T*>(out), outer, r, inner, Acc<T>(1), ProdOp{});
        break;
      case ReduceOp::Max: extreme<true, false>(device, outer, r, inner, x, out); break;
      case ReduceOp::Min: extreme<false, false>(device, outer, r, inner, x, out); break;
      case ReduceOp::ArgMax: extreme<true, true>(device, outer, r, inner, x, out); break;
      case ReduceOp::ArgMin: extreme<false, true>(device, outer, r, inner, x, out); break;
    }
  });
}

}  // namespace tg::cuda
