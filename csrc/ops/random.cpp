// Seeded random tensors and dropout. The generator is a (seed, offset) pair: a call producing n
// numbers uses counters offset .. offset+n-1 and then advances the offset, so results depend only
// on the seed and the sequence of calls -- never on threads or devices.
#include <atomic>
#include <mutex>

#include "autograd/node.h"
#include "kernels/philox.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {
std::mutex generator_mutex;
uint64_t generator_seed = 0x853c49e6748fea9bULL;
uint64_t generator_offset = 0;

}  // namespace

uint64_t reserve_random(int64_t n, uint64_t* seed) {
  std::lock_guard<std::mutex> lock(generator_mutex);
  *seed = generator_seed;
  uint64_t start = generator_offset;
  generator_offset += static_cast<uint64_t>(n);
  return start;
}

void set_rng_state(uint64_t seed, uint64_t offset) {
  std::lock_guard<std::mutex> lock(generator_mutex);
  generator_seed = seed;
  generator_offset = offset;
}
void manual_seed(uint64_t seed) { set_rng_state(seed, 0); }
std::pair<uint64_t, uint64_t> rng_state() {
  std::lock_guard<std::mutex> lock(generator_mutex);
  return {generator_seed, generator_offset};
}
uint64_t initial_seed() {
  std::lock_guard<std::mutex> lock(generator_mutex);
  return generator_seed;
}

namespace {
// rand and randn: the next numel numbers of the counter-based stream, the same on either device.
Tensor random_floats(RandomKind kind, const char* op, const Shape& shape, DType dtype, Device device) {
  TG_CHECK(is_floating(dtype), TypeError, op, ": expected a floating-point dtype, got ", dtype_name(dtype));
  // bfloat16: the float32 numbers of the same seed, rounded
  if (dtype != compute_dtype(dtype)) return to_dtype(random_floats(kind, op, shape, compute_dtype(dtype), device), dtype);
  Tensor t = empty(shape, dtype, device);
  uint64_t seed, offset = reserve_random(t.numel(), &seed);
  backend(device).random(kind, dtype, t.raw_data(), t.numel(), seed, offset);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, DType dtype, Device device) {
  return random_floats(RandomKind::Uniform, "rand", shape, dtype, device);
}

Tensor randn(const Shape& shape, DType dtype, Device device) {
  return random_floats(RandomKind::Normal, "randn", shape, dtype, device);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Device device) {
  TG_CHECK(high > low, ValueError, "randint: expected low < high, got low=", low, " and high=", high);
  Tensor t = empty(shape, DType::Int64, device);
  uint64_t seed, offset = reserve_random(t.numel(), &seed);
  backend(device).random_int(t.data<int64_t>(), t.numel(), low, high, seed, offset);
  return dtype == DType::Int64 ? t : to_dtype(t, dtype);
}

// dropout: y = x * s, s = m / (1 - p), m ~ Bernoulli(1 - p) from the seeded stream, in one
// pass; dx = dy * s (the saved scale).
Tensor dropout(const Tensor& x, double p, bool training) {
  TG_CHECK(p >= 0 && p <= 1, ValueError, "dropout: probability must be in [0, 1], got ", p);
  TG_CHECK(is_floating(x.dtype()), TypeError, "dropout: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  if (!training || p == 0) return x;
  // bfloat16: the float32 mask of the same seed (the same elements are dropped), rounded result
  if (any_storage_only({&x})) return to_dtype(dropout(widened(x), p, training), x.dtype());
  if (p == 1) return mul(x, zeros_like(x));
  check_same_device("dropout", {&x});
  Tensor xc = contiguous(detach(x));
  Tensor y = empty(x.shape(), x.dtype(), x.device()), scale = empty(x.shape(), x.dtype(), x.device());
  uint64_t seed, offset = reserve_random(dropout_counters(x.numel()), &seed);
  backend(x.device()).dropout(x.dtype(), x.numel(), xc.raw_data(), y.raw_data(), scale.raw_data(), p, seed, offset);
  if (should_record({&x}))
    record("DropoutBackward", {x}, {y}, {scale}, [](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] * c.saved(0)};
    });
  return y;
}

}  // namespace tg
