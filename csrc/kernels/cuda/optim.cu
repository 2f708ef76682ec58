// Multi-tensor optimizer steps: one launch updates every parameter of a list. The host packs a
// table of tensors (pointers, sizes, per-tensor scalars) and a table of chunks (tensor, start)
// into one device buffer; block b takes chunks b, b + gridDim.x, ... and its threads walk the
// chunk's elements. The math is that of kernels/cpu/optim.cpp, in T (float32 or float64).
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

// SGD over every chunk; the element math is optim_step::sgd (kernels/optim_math.h).
template <class T>
__global__ void sgd_kernel(const TensorSlot* slots, const ChunkRef* chunks, int64_t n_chunks, T lr, T mom, T damp, T wd,
                           bool nesterov, bool has_momentum) {
  for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
    const TensorSlot& s = slots[chunks[c].tensor];
    T* p = static_cast<T*>(s.param);
    const T* g = static_cast<const T*>(s.grad);
    T* b = static_cast<T*>(s.state0);
    const bool first = s.a != 0;
    const int64_t end = min(chunks[c].start + kChunk, s.numel);
    for (int64_t i = chunks[c].start + threadIdx.x; i < end; i += blockDim.x)
      optim_step::sgd(p[i], g[i], has_momentum ? b + i : nullptr, lr, mom, damp, wd, first, nesterov);
  }
}

// Adam / AdamW over every chunk (optim_step::adam); per tensor, a = lr / bc1 and b = 1 / sqrt(bc2).
template <class T>
__global__ void adam_kernel(const TensorSlot* slots, const ChunkRef* chunks, int64_t n_chunks, T b1, T b2, T eps, T wd,
                            T decay, bool decoupled) {
  for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
    const TensorSlot& s = slots[chunks[c].tensor];
    T* p = static_cast<T*>(s.param);
    const T* g = static_cast<const T*>(s.grad);
    T* m = static_cast<T*>(s.state0);
    T* v = static_cast<T*>(s.state1);
    const T step_size = static_cast<T>(s.a), inv_sqrt_bc2 = static_cast<T>(s.b);
    const int64_t end = min(chunks[c].start + kChunk, s.numel);
    for (int64_t i = chunks[c].start + threadIdx.x; i < end; i += blockDim.x)
      optim_step::adam(p[i], g[i], m[i], v[i], b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay, decoupled);
  }
}

// RMSprop over every chunk (optim_step::rmsprop).
template <class T>
__global__ void rmsprop_kernel(const TensorSlot* slots, const ChunkRef* chunks, int64_t n_chunks, T lr, T alpha, T eps,
                               T wd, T mom, bool has_momentum) {
  for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
    const TensorSlot& s = slots[chunks[c].tensor];
    T* p = static_cast<T*>(s.param);
    const T* g = static_cast<const T*>(s.grad);
    T* sq = static_cast<T*>(s.state0);
    T* b = static_cast<T*>(s.state1);
    const int64_t end = min(chunks[c].start + kChunk, s.numel);
    for (int64_t i = chunks[c].start + threadIdx.x; i < end; i += blockDim.x)
      optim_step::rmsprop(p[i], g[i], sq[i], has_momentum ? b + i : nullptr, lr, alpha, eps, wd, mom);
  }
}

}  // namespace

void sgd_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::SGDConfig& c) {
  std::vector<std::pair<double, double>> scalars;
  for (const OptimTensor& t : tensors) scalars.push_back({t.step == 1 ? 1.0 : 0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT(dtype, "SGD", [&](auto tag) {
    using T = decltype(tag);
    launch("SGD step", device, chunk_blocks(tables.n_chunks), kThreads, sgd_kernel<T>, tables.slots, tables.chunks,
           tables.n_chunks, T(c.lr), T(c.momentum), T(1 - c.dampening), T(c.weight_decay), c.nesterov, c.momentum != 0);
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
  TG_DISPATCH_FLOAT(dtype, "Adam", [&](auto tag) {
    using T = decltype(tag);
    launch(c.decoupled ? "AdamW step" : "Adam step", device, chunk_blocks(tables.n_chunks), kThreads, adam_kernel<T>,
           tables.slots, tables.chunks, tables.n_chunks, T(c.beta1), T(c.beta2), T(c.eps), T(c.weight_decay),
           T(1 - c.lr * c.weight_decay), c.decoupled);
  });
}

void rmsprop_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::RMSpropConfig& c) {
  std::vector<std::pair<double, double>> scalars(tensors.size(), {0.0, 0.0});
  PackedTables tables;
  pack(device, tensors, scalars, tables);
  if (tables.n_chunks == 0) return;
  TG_DISPATCH_FLOAT(dtype, "RMSprop", [&](auto tag) {
    using T = decltype(tag);
    launch("RMSprop step", device, chunk_blocks(tables.n_chunks), kThreads, rmsprop_kernel<T>, tables.slots,
           tables.chunks, tables.n_chunks, T(c.lr), T(c.alpha), T(c.eps), T(c.weight_decay), T(c.momentum),
           c.momentum != 0);
  });
}

}  // namespace tg::cuda
