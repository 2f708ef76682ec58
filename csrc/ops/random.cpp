// Seeded random tensors and dropout. The generator is a (seed, offset) pair: a call producing n
// numbers uses counters offset .. offset+n-1 and then advances the offset, so results depend only
// on the seed and the sequence of calls -- never on threads or devices.
#include <atomic>
#include <mutex>

#include "autograd/node.h"
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

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generator_mutex);
  generator_seed = seed;
  generator_offset = 0;
}
uint64_t initial_seed() {
  std::lock_guard<std::mutex> lock(generator_mutex);
  return generator_seed;
}

Tensor rand(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  TG_CHECK(is_floating(dtype), TypeError, "rand: expected a floating-point dtype, got ", dtype_name(dtype));
  uint64_t seed, offset = reserve_random(t.numel(), &seed);
  cpu::random(cpu::RandomKind::Uniform, dtype, t.raw_data(), t.numel(), seed, offset);
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  TG_CHECK(is_floating(dtype), TypeError, "randn: expected a floating-point dtype, got ", dtype_name(dtype));
  uint64_t seed, offset = reserve_random(t.numel(), &seed);
  cpu::random(cpu::RandomKind::Normal, dtype, t.raw_data(), t.numel(), seed, offset);
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Device device) {
  TG_CHECK(high > low, ValueError, "randint: expected low < high, got low=", low, " and high=", high);
  Tensor t = empty(shape, DType::Int64, device);
  uint64_t seed, offset = reserve_random(t.numel(), &seed);
  cpu::random_int(t.data<int64_t>(), t.numel(), low, high, seed, offset);
  return dtype == DType::Int64 ? t : to_dtype(t, dtype);
}

// dropout: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) drawn from the seeded stream;
// dy/dx = m / (1 - p), the same mask (saved) scales the gradient.
Tensor dropout(const Tensor& x, double p, bool training) {
  TG_CHECK(p >= 0 && p <= 1, ValueError, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  if (p == 1) return mul(x, zeros_like(x));
  Tensor keep = ge(rand(x.shape(), is_floating(x.dtype()) ? x.dtype() : DType::Float32, x.device()),
                   scalar_tensor(p, is_floating(x.dtype()) ? x.dtype() : DType::Float32, true));
  Tensor scale = to_dtype(keep, x.dtype()) * (1.0 / (1.0 - p));
  return mul(x, scale);
}

}  // namespace tg
