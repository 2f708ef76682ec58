#include "core/shape.h"

#include "core/error.h"

namespace tg {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void check_shape(const Shape& shape, const char* op) {
  int64_t extent = 1;
  for (int64_t s : shape) {
    TG_CHECK(s >= 0, ShapeError, op, ": negative dimension ", s, " in shape ", shape_str(shape));
    TG_CHECK(!__builtin_mul_overflow(extent, s > 0 ? s : 1, &extent), ValueError, op, ": shape ", shape_str(shape),
             " has more elements than an int64 can count");
  }
}

int64_t checked_add(int64_t a, int64_t b, const char* op) {
  int64_t r;
  TG_CHECK(!__builtin_add_overflow(a, b, &r), ValueError, op, ": size ", a, " + ", b, " does not fit in an int64");
  return r;
}

int64_t checked_mul(int64_t a, int64_t b, const char* op) {
  int64_t r;
  TG_CHECK(!__builtin_mul_overflow(a, b, &r), ValueError, op, ": size ", a, " * ", b, " does not fit in an int64");
  return r;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TG_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  check_shape(out, op);  // two shapes that fit can broadcast to one that does not
  return out;
}

Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target) {
  Shape out(target.size(), 0);
  size_t lead = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) out[lead + i] = shape[i] == 1 ? 0 : strides[i];
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 and -1, as PyTorch
  TG_CHECK(dim >= -n && dim < n, IndexError, op, ": dim ", dim, " is out of range for a tensor with ", ndim,
           " dimension", ndim == 1 ? "" : "s");
  return dim < 0 ? dim + n : dim;
}

uint64_t reduce_mask(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  TG_CHECK(ndim <= 64, ShapeError, op, ": at most 64 dimensions are supported");
  if (dims.empty()) return ndim == 0 ? 0 : (ndim == 64 ? ~0ull : ((1ull << ndim) - 1));
  uint64_t mask = 0;
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    if (ndim == 0) continue;
    TG_CHECK(!(mask >> w & 1), ShapeError, op, ": dim ", d, " appears more than once");
    mask |= 1ull << w;
  }
  return mask;
}

}  // namespace tg
