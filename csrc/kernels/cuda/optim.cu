// Multi-tensor optimizer steps: one launch updates every parameter of a list. The host packs a
// table of tensors (pointers, sizes, per-tensor scalars) and a table of chunks (tensor, start)
// into one device buffer; block b takes chunks b, b + gridDim.x, ... and its threads walk the
// chunk's elements. The math is that of kernels/cpu/optim.cpp: parameters and gradients of type P (float32, float64
// or bfloat16), state and arithmetic in T = compute_t<P>.
#include <cmath>
#include <cstring>
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
  double a, b;  // per-tensor scalars: Adam (lr / bc1, 1 / sqrt(bc2)); SGD (first step ? 1 : 0)
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
    slots.push_back({t.param, t.grad, t.state0, t.state1, t.numel, scalars[k].first, scalars[k].second});
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
// it), calling step(slot, i) on each element i of the chunk. The per-element math of each optimizer
// is in kernels/optim_math.h; the step functors below only pick a slot's buffers.
template <class Step>
__global__ void multi_tensor_step(const TensorSlot* slots, const ChunkRef* chunks, int64_t n_chunks, Step step) {
  for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
    const TensorSlot& s = slots[chunks[c].tensor];
    const int64_t end = min(chunks[c].start + kChunk, s.numel);
    for (int64_t i = chunks[c].start + threadIdx.x; i < end; i += blockDim.x) step(s, i);
  }
}

// state0: momentum buffer; a: 1 on the tensor's first step
template <class P, class T = compute_t<P>>
struct SgdStep {
  T lr, mom, damp, wd;
  bool nesterov, has_momentum;
  __device__ void operator()(const TensorSlot& s, int64_t i) const {
    T* b = static_cast<T*>(s.state0);
    optim_step::sgd(static_cast<P*>(s.param)[i], static_cast<const P*>(s.grad)[i], has_momentum ? b + i : nullptr, lr,
                    mom, damp, wd, s.a != 0, nesterov);
  }
};

// state0, state1: the moments m, v; a = lr / bc1 and b = 1 / sqrt(bc2) of the tensor's step
template <class P, class T = compute_t<P>>
struct AdamStep {
  T b1, b2, eps, wd, decay;
  bool decoupled;
  __device__ void operator()(const TensorSlot& s, int64_t i) const {
    optim_step::adam(static_cast<P*>(s.param)[i], static_cast<const P*>(s.grad)[i], static_cast<T*>(s.state0)[i],
                     static_cast<T*>(s.state1)[i], b1, b2, static_cast<T>(s.a), static_cast<T>(s.b), eps, wd, decay,
                     decoupled);
  }
};

// state0: the running square average; state1: momentum buffer
template <class P, class T = compute_t<P>>
struct RmspropStep {
  T lr, alpha, eps, wd, mom;
  bool has_momentum;
  __device__ void operator()(const TensorSlot& s, int64_t i) const {
    T* b = static_cast<T*>(s.state1);
    optim_step::rmsprop(static_cast<P*>(s.param)[i], static_cast<const P*>(s.grad)[i], static_cast<T*>(s.state0)[i],
                        has_momentum ? b + i : nullptr, lr, alpha, eps, wd, mom);
  }
};

}  // namespace

void sgd_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::SGDConfig& c) {
  std::vector<std::pair<double, double>> scalars;
  for (const OptimTensor& t : tensors) scalars.push_back({t.step == 1 ? 1.0 : 0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT_STORAGE(dtype, "SGD", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    const SgdStep<P> step{T(c.lr), T(c.momentum), T(1 - c.dampening), T(c.weight_decay), c.nesterov, c.momentum != 0};
    launch("SGD step", device, chunk_blocks(tables.n_chunks), kThreads, multi_tensor_step<SgdStep<P>>, tables.slots,
           tables.chunks, tables.n_chunks, step);
  });
}

void adam_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::AdamConfig& c) {
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
           multi_tensor_step<AdamStep<P>>, tables.slots, tables.chunks, tables.n_chunks, step);
  });
}

void rmsprop_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::RMSpropConfig& c) {
  std::vector<std::pair<double, double>> scalars(tensors.size(), {0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT_STORAGE(dtype, "RMSprop", [&](auto tag) {
    using P = decltype(tag);
    using T = compute_t<P>;
    const RmspropStep<P> step{T(c.lr), T(c.alpha), T(c.eps), T(c.weight_decay), T(c.momentum), c.momentum != 0};
    launch("RMSprop step", device, chunk_blocks(tables.n_chunks), kThreads, multi_tensor_step<RmspropStep<P>>,
           tables.slots, tables.chunks, tables.n_chunks, step);
  });
}

}  // namespace tg::cuda
