// The stable sorting permutation of contiguous rows, the twin of kernels/cpu/sort.cpp.
//
// One block per row runs a bitonic sort of (value, position) pairs over the row padded to a power
// of two, m: log2(m) (log2(m) + 1) / 2 compare-exchange passes, a __syncthreads after each.
// Ties are broken by position, which makes the order total, so the unstable network gives the
// stable sort's answer. The pairs live in shared memory when they fit (rows up to 4,096
// float32 values), else in a global scratch block per CTA.
//
// Each pass touches every element: the work is m log^2 m per row, fine for the rows of topk,
// median or a vocabulary, slow for one row of millions (a radix sort would be the next step).
#include <algorithm>
#include <memory>

#include "kernels/cuda/launch.cuh"

namespace tg::cuda {

namespace {

constexpr size_t kSharedSortBytes = 48 * 1024;  // the default dynamic shared memory limit

// Whether (a, at) goes before (b, bt) in the sorted row. Padding (a position >= n) goes last;
// NaN is the largest value; equal values keep their positions' order.
template <class T>
__device__ __forceinline__ bool goes_before(T a, int64_t at, T b, int64_t bt, int64_t n, bool descending) {
  const bool pad_a = at >= n, pad_b = bt >= n;
  if (pad_a || pad_b) return !pad_a || (pad_b && at < bt);
  const bool nan_a = a != a, nan_b = b != b;
  if (nan_a || nan_b) return nan_a && nan_b ? at < bt : (descending ? nan_a : nan_b);
  if (a == b) return at < bt;
  return descending ? a > b : a < b;
}

// Sorts each row of n elements (blocks take rows with a grid stride); the pairs sit in
// `global_keys` / `global_pos` (m per block) or, when those are null, in dynamic shared memory.
template <class T>
__global__ void bitonic_argsort_rows(const T* in, int64_t* index, int64_t rows, int64_t n, int64_t m, bool descending,
                                     T* global_keys, int64_t* global_pos) {
  TG_DYNAMIC_SMEM(int64_t, shared);
  int64_t* pos = global_pos ? global_pos + int64_t(blockIdx.x) * m : shared;
  T* keys = global_keys ? global_keys + int64_t(blockIdx.x) * m : reinterpret_cast<T*>(shared + m);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      keys[i] = i < n ? in[r * n + i] : T();
      pos[i] = i;
    }
    __syncthreads();
    for (int64_t k = 2; k <= m; k <<= 1)
      for (int64_t j = k >> 1; j > 0; j >>= 1) {
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
          const int64_t l = i ^ j;
          if (l <= i) continue;
          // In an ascending run (i & k == 0) the pair ends in order (i before l); else reversed.
          const bool ascending_run = (i & k) == 0;
          const bool swap = ascending_run ? goes_before(keys[l], pos[l], keys[i], pos[i], n, descending)
                                          : goes_before(keys[i], pos[i], keys[l], pos[l], n, descending);
          if (swap) {
            const T key = keys[i];
            keys[i] = keys[l], keys[l] = key;
            const int64_t p = pos[i];
            pos[i] = pos[l], pos[l] = p;
          }
        }
        __syncthreads();
      }
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) index[r * n + i] = pos[i];
    __syncthreads();  // the next row overwrites the pairs
  }
}

}  // namespace

void CudaBackend::argsort_rows(DType dtype, int64_t rows, int64_t n, const void* in, int64_t* index, bool descending) {
  if (rows * n == 0) return;
  TG_DISPATCH_ALL(dtype, "sort", [&](auto tag) {
    using T = decltype(tag);
    int64_t m = 1;
    while (m < n) m <<= 1;
    const size_t pair_bytes = sizeof(T) + sizeof(int64_t), shared_bytes = size_t(m) * pair_bytes;
    const bool in_shared = shared_bytes <= kSharedSortBytes;
    // Global scratch: enough CTAs to fill the GPU, at most 256 MiB of pairs.
    const int64_t blocks = std::min<int64_t>(rows, in_shared ? (1 << 20) : std::max<int64_t>(1, (int64_t(1) << 28) / (m * int64_t(pair_bytes))));
    std::unique_ptr<ScratchBlock> scratch;
    if (!in_shared) scratch = std::make_unique<ScratchBlock>(size_t(blocks * m) * pair_bytes, device);
    int64_t* global_pos = in_shared ? nullptr : static_cast<int64_t*>(scratch->get());
    T* global_keys = in_shared ? nullptr : reinterpret_cast<T*>(global_pos + blocks * m);
    DeviceScope scope(device);
    launch_kernel(bitonic_argsort_rows<T>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), in_shared ? shared_bytes : 0,
                  scope.stream(), static_cast<const T*>(in), index, rows, n, m, descending, global_keys, global_pos);
    check_launch("sort");
  });
}

}  // namespace tg::cuda
