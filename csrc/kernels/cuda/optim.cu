// Multi-tensor optimizer steps: one launch updates every parameter of a list. The host packs a
// table of tensors (pointers, sizes, per-tensor scalars) and a table of chunks (tensor, start)
// into one device buffer; block b takes chunks b, b + gridDim.x, ... and its threads walk the
// chunk's elements. The math is that of kernels/cpu/optim.cpp: parameters and gradients of type P (float32, float64
// or bfloat16), state and arithmetic in T = compute_t<P>.
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "kernels/cuda/launch.cuh"
#include "kernels/optim_math.h"

namespace tg::cuda {

namespace {

constexpr int64_t kChunk = 65536;  // elements per chunk: many blocks for one big tensor, few for small ones

struct TensorSlot {
  void* param;
  const void* grad;
  void* state0;
  void* state1;
  int64_t numel;
  double a, b;   // per-tensor scalars: Adam (lr / bc1, 1 / sqrt(bc2)); SGD (first step ? 1 : 0)
  bool vectors;  // every buffer starts on a 32-byte boundary: Vec loads and stores
};

struct ChunkRef {
  int64_t tensor, start;
};

// The packed tables on the device; the block goes back to the cache when the launch is queued
// (later work on the same stream runs after the kernel, so reuse is safe).
struct PackedTables {
  const TensorSlot* slots = nullptr;
  const ChunkRef* chunks = nullptr;
  int64_t n_chunks = 0;
  void* block = nullptr;
  ~PackedTables() { release(block, nullptr); }
};

void pack(int device, const std::vector<OptimTensor>& tensors, const std::vector<std::pair<double, double>>& scalars,
          PackedTables& out) {
  std::vector<TensorSlot> slots;
  std::vector<ChunkRef> chunks;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const OptimTensor& t = tensors[k];
    if (t.numel == 0) continue;
    for (int64_t s = 0; s < t.numel; s += kChunk) chunks.push_back({static_cast<int64_t>(slots.size()), s});
    bool vectors = true;
    for (const void* ptr : std::initializer_list<const void*>{t.param, t.grad, t.state0, t.state1})
      vectors = vectors && aligned_to(ptr, kVec * sizeof(double));  // null passes
    slots.push_back({t.param, t.grad, t.state0, t.state1, t.numel, scalars[k].first, scalars[k].second, vectors});
  }
  out.n_chunks = static_cast<int64_t>(chunks.size());
  if (chunks.empty()) return;
  const size_t slot_bytes = slots.size() * sizeof(TensorSlot), chunk_bytes = chunks.size() * sizeof(ChunkRef);
  std::vector<char> host(slot_bytes + chunk_bytes);
  std::memcpy(host.data(), slots.data(), slot_bytes);
  std::memcpy(host.data() + slot_bytes, chunks.data(), chunk_bytes);
  out.block = allocate(host.size(), device);
  copy_bytes(out.block, device, host.data(), -1, host.size());
  out.slots = static_cast<const TensorSlot*>(out.block);
  out.chunks = reinterpret_cast<const ChunkRef*>(static_cast<const char*>(out.block) + slot_bytes);
}

unsigned chunk_blocks(int64_t n_chunks) { return static_cast<unsigned>(std::min<int64_t>(n_chunks, 1 << 16)); }

// One launch covers every tensor: block c of the grid walks chunk c (and every gridDim.x-th after
// it). Each element's parameter p and gradient g (type P) and optimizer states s0, s1 (type T, null
// when the optimizer keeps none) are loaded, updated by step(slot, p, g, s0, s1) and stored back.
// Aligned tensors move kVec elements per load and store (the update is memory-bound: 4 reads and
// 3 writes per Adam element); the rest, and a chunk's tail, one element at a time. The math of
// each optimizer is in kernels/optim_math.h; the step functors below only pass it the slot's scalars.
template <class P, class T, class Step>
__global__ void multi_tensor_step(const TensorSlot* slots, const ChunkRef* chunks, int64_t n_chunks, Step step) {
  for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
    const TensorSlot& s = slots[chunks[c].tensor];
    P* param = static_cast<P*>(s.param);
    const P* grad = static_cast<const P*>(s.grad);
    T* s0 = static_cast<T*>(s.state0);
    T* s1 = static_cast<T*>(s.state1);
    const int64_t start = chunks[c].start, end = min(start + kChunk, s.numel);
    const int64_t vec_end = s.vectors ? start + (end - start) / kVec * kVec : start;
    for (int64_t i = start + int64_t(threadIdx.x) * kVec; i < vec_end; i += int64_t(blockDim.x) * kVec) {
      Vec<P> p = *reinterpret_cast<const Vec<P>*>(param + i);
      const Vec<P> g = *reinterpret_cast<const Vec<P>*>(grad + i);
      Vec<T> a{}, b{};
      if (s0) a = *reinterpret_cast<const Vec<T>*>(s0 + i);
      if (s1) b = *reinterpret_cast<const Vec<T>*>(s1 + i);
#pragma unroll
      for (int e = 0; e < kVec; ++e) step(s, p.v[e], g.v[e], s0 ? &a.v[e] : nullptr, s1 ? &b.v[e] : nullptr);
      *reinterpret_cast<Vec<P>*>(param + i) = p;
      if (s0) *reinterpret_cast<Vec<T>*>(s0 + i) = a;
      if (s1) *reinterpret_cast<Vec<T>*>(s1 + i) = b;
    }
    for (int64_t i = vec_end + threadIdx.x; i < end; i += blockDim.x)
      step(s, param[i], grad[i], s0 ? s0 + i : nullptr, s1 ? s1 + i : nullptr);
  }
}

// state0: momentum buffer; a: 1 on the tensor's first step
template <class P, class T = compute_t<P>>
struct SgdStep {
  T lr, mom, damp, wd;
  bool nesterov;
  __device__ void operator()(const TensorSlot& s, P& p, P g, T* momentum, T*) const {
    optim_step::sgd(p, g, momentum, lr, mom, damp, wd, s.a != 0, nesterov);
  }
};

// state0, state1: the moments m, v; a = lr / bc1 and b = 1 / sqrt(bc2) of the tensor's step
template <class P, class T = compute_t<P>>
struct AdamStep {
  T b1, b2, eps, wd, decay;
  bool decoupled;
  __device__ void operator()(const TensorSlot& s, P& p, P g, T* m, T* v) const {
    optim_step::adam(p, g, *m, *v, b1, b2, static_cast<T>(s.a), static_cast<T>(s.b), eps, wd, decay, decoupled);
  }
};

// state0: the running square average; state1: momentum buffer
template <class P, class T = compute_t<P>>
struct RmspropStep {
  T lr, alpha, eps, wd, mom;
  __device__ void operator()(const TensorSlot&, P& p, P g, T* square_avg, T* momentum) const {
    optim_step::rmsprop(p, g, *square_avg, momentum, lr, alpha, eps, wd, mom);
  }
};

}  // namespace

void CudaBackend::sgd_update(DType dtype, const std::vector<OptimTensor>& tensors, const SGDConfig& c) {
  std::vector<std::pair<double, double>> scalars;
  for (const OptimTensor& t : tensors) scalars.push_back({t.step == 1 ? 1.0 : 0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT_STORAGE(dtype, "SGD", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    const SgdStep<P> step{T(c.lr), T(c.momentum), T(1 - c.dampening), T(c.weight_decay), c.nesterov};
    launch("SGD step", device, chunk_blocks(tables.n_chunks), kThreads, multi_tensor_step<P, T, SgdStep<P>>, tables.slots,
           tables.chunks, tables.n_chunks, step);
  });
}

void CudaBackend::adam_update(DType dtype, const std::vector<OptimTensor>& tensors, const AdamConfig& c) {
  std::vector<std::pair<double, double>> scalars;
  for (const OptimTensor& t : tensors) {
    const double bc1 = 1 - std::pow(c.beta1, static_cast<double>(t.step));
    const double bc2 = 1 - std::pow(c.beta2, static_cast<double>(t.step));
    scalars.push_back({c.lr / bc1, 1 / std::sqrt(bc2)});
  }
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT_STORAGE(dtype, "Adam", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    const AdamStep<P> step{T(c.beta1), T(c.beta2), T(c.eps), T(c.weight_decay), T(1 - c.lr * c.weight_decay),
                           c.decoupled};
    launch(c.decoupled ? "AdamW step" : "Adam step", device, chunk_blocks(tables.n_chunks), kThreads,
           multi_tensor_step<P, T, AdamStep<P>>, tables.slots, tables.chunks, tables.n_chunks, step);
  });
}

void CudaBackend::rmsprop_update(DType dtype, const std::vector<OptimTensor>& tensors, const RMSpropConfig& c) {
  std::vector<std::pair<double, double>> scalars(tensors.size(), {0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT_STORAGE(dtype, "RMSprop", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    const RmspropStep<P> step{T(c.lr), T(c.alpha), T(c.eps), T(c.weight_decay), T(c.momentum)};
    launch("RMSprop step", device, chunk_blocks(tables.n_chunks), kThreads, multi_tensor_step<P, T, RmspropStep<P>>,
           tables.slots, tables.chunks, tables.n_chunks, step);
  });
}

}  // namespace tg::cuda
