// Tensor factories.
#include <cmath>

#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t.raw_data(), t.numel(), dtype, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }

Tensor scalar_tensor(double value, DType dtype, bool wrapped, Device device) {
  Tensor t = full({}, value, dtype, device);
  t.impl()->is_wrapped_number = wrapped;
  return t;
}

// arange(start, end, step): ceil((end - start) / step) values start + i * step.
Tensor arange(double start, double end, double step, DType dtype, Device device) {
  TG_CHECK(step != 0, ValueError, "arange: step must be nonzero");
  TG_CHECK(std::isfinite(start) && std::isfinite(end), ValueError, "arange: start and end must be finite");
  if (dtype != compute_dtype(dtype)) return to_dtype(arange(start, end, step, compute_dtype(dtype), device), dtype);
  const double span = std::ceil((end - start) / step);
  TG_CHECK(!(span >= 9.2e18), ValueError, "arange: (end - start) / step = (", end, " - ", start, ") / ", step,
           " is more elements than an int64 can count");
  const int64_t n = span > 0 ? static_cast<int64_t>(span) : 0;
  // Computed on the host; a device tensor is then one small transfer of the same values.
  Tensor t = empty({n}, dtype);
  TG_DISPATCH_NUMERIC(dtype, "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return to_device(t, device);
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  TG_CHECK(steps >= 0, ValueError, "linspace: number of steps must be non-negative, got ", steps);
  if (dtype != compute_dtype(dtype)) return to_dtype(linspace(start, end, steps, compute_dtype(dtype), device), dtype);
  Tensor t = empty({steps}, dtype);  // on the host, as arange
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  TG_DISPATCH_NUMERIC(dtype, "linspace", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    // Fill from both ends, as PyTorch does, so that the last value is exactly `end` (a single step
    // is `start`).
    if (steps == 1) p[0] = static_cast<T>(start);
    else for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<T>(i < steps / 2 ? start + step * static_cast<double>(i)
                                          : end - step * static_cast<double>(steps - 1 - i));
  });
  return to_device(t, device);
}

Tensor eye(int64_t n, int64_t m, DType dtype, Device device) {
  TG_CHECK(n >= 0 && m >= 0, ValueError, "eye: sizes must be non-negative, got ", n, " and ", m);
  Tensor t = zeros({n, m}, dtype);  // on the host, as arange
  TG_DISPATCH_STORAGE(dtype, "eye", [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < std::min(n, m); ++i) t.data<T>()[i * m + i] = T(1);
  });
  return to_device(t, device);
}

}  // namespace tg
