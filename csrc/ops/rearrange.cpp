// Ops that move elements around: flip, roll, repeat / tile, tril / triu and pad. Each is a
// composite of ops with kernels and backward formulas (index_select, expand + reshape, cat, where),
// so each runs on every device and differentiates (twice) through them; the index arithmetic is
// done on the device too (arange and elementwise ops), nothing is copied from the host.
#include "autograd/grad_mode.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

Tensor positions(int64_t start, int64_t end, Device device) { return arange(double(start), double(end), 1.0, DType::Int64, device); }

Tensor number_like(double v, const Tensor& t) { return wrap_scalar(v, t); }

}  // namespace

// flip: y[..., i, ...] = x[..., n - 1 - i, ...] along each of dims
Tensor flip(const Tensor& x, const Dims& dims) {
  Tensor y = x;
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  for (int64_t d : dims) {
    d = wrap_dim(d, x.dim(), "flip");
    TG_CHECK(!seen[static_cast<size_t>(d)], ValueError, "flip: dim ", d, " appears twice in the dims of a tensor of shape ",
             shape_str(x.shape()));
    seen[static_cast<size_t>(d)] = true;
    if (x.dim() == 0) continue;
    const int64_t n = x.size(d);
    y = index_select(y, d, sub(number_like(double(n - 1), positions(0, n, x.device())), positions(0, n, x.device())));
  }
  return y.same(x) ? clone(x) : y;
}

// roll: y[..., (i + shift) mod n, ...] = x[..., i, ...] along each dim; without dims, over the
// flattened tensor (shape kept)
Tensor roll(const Tensor& x, const Dims& shifts, const Dims& dims) {
  if (dims.empty()) {
    TG_CHECK(shifts.size() == 1, ValueError, "roll: without dims, one shift is expected, got ", shifts.size());
    return reshape(roll(reshape(x, {-1}), shifts, {0}), x.shape());
  }
  TG_CHECK(shifts.size() == dims.size(), ValueError, "roll: ", shifts.size(), " shifts for ", dims.size(), " dims");
  Tensor y = x;
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t d = wrap_dim(dims[k], x.dim(), "roll");
    const int64_t n = x.dim() == 0 ? 1 : x.size(d);
    if (x.dim() == 0 || n == 0) continue;
    // source of output position i: (i - shift) mod n
    const Tensor i = positions(0, n, x.device());
    y = index_select(y, d, remainder(sub(i, number_like(double(shifts[k] % n), i)), number_like(double(n), i)));
  }
  return y.same(x) ? clone(x) : y;
}

// repeat: x tiled reps[i] times along each dim (reps may add leading dims):
//   (s0, s1) repeat (r0, r1) = (r0 s0, r1 s1), as expand (r0, s0, r1, s1) then reshape
Tensor repeat(const Tensor& x, const Dims& reps) {
  TG_CHECK(static_cast<int64_t>(reps.size()) >= x.dim(), ValueError, "repeat: ", reps.size(),
           " repeat counts for a tensor of shape ", shape_str(x.shape()), "; at least one per dim is needed");
  for (int64_t r : reps) TG_CHECK(r >= 0, ValueError, "repeat: counts must be non-negative, got ", r);
  const size_t lead = reps.size() - static_cast<size_t>(x.dim());
  Shape interleaved, expanded, out;
  for (size_t i = 0; i < reps.size(); ++i) {
    const int64_t s = i < lead ? 1 : x.size(static_cast<int64_t>(i - lead));
    interleaved.push_back(1), interleaved.push_back(s);
    expanded.push_back(reps[i]), expanded.push_back(s);
    out.push_back(checked_mul(reps[i], s, "repeat"));
  }
  return reshape(contiguous(expand(reshape(x, interleaved), expanded)), out);
}

// repeat_interleave: each element along dim repeated (the flattened tensor without a dim):
//   an int count r:  source of output i is i / r
//   a count each:    marks at the running ends of the counts, summed up (index_add, then cumsum),
//                    give each output its source; the output size (the counts' sum) is read back
Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim_in) {
  if (!dim_in) return repeat_interleave(reshape(x, {-1}), repeats, 0);
  check_same_device("repeat_interleave", {&x, &repeats});
  TG_CHECK(x.dim() > 0, ShapeError, "repeat_interleave: expected a tensor with dims, got a 0-d tensor");
  const int64_t dim = wrap_dim(*dim_in, x.dim(), "repeat_interleave"), n = x.size(dim);
  TG_CHECK(repeats.dtype() == DType::Int64, TypeError, "repeat_interleave: repeats must be int64, got ",
           dtype_name(repeats.dtype()));
  TG_CHECK(repeats.numel() == 1 || (repeats.dim() == 1 && repeats.size(0) == n), ShapeError,
           "repeat_interleave: repeats of shape ", shape_str(repeats.shape()), " for dim ", dim, " of size ", n, " (shape ",
           shape_str(x.shape()), ")");
  Tensor source;
  {
    GradModeGuard no_grad(false);
    const Tensor counts = contiguous(to_device(repeats, Device{}));  // the sizes decide the output's shape: read on the host
    const int64_t* c = counts.data<int64_t>();
    int64_t total = 0;
    for (int64_t k = 0; k < counts.numel(); ++k) {
      TG_CHECK(c[k] >= 0, ValueError, "repeat_interleave: repeats must be non-negative, got ", c[k]);
      total = checked_add(total, c[k], "repeat_interleave");
    }
    if (repeats.numel() == 1) {  // one count for every element
      const int64_t r = c[0];
      const Tensor outputs = positions(0, checked_mul(n, r, "repeat_interleave"), x.device());
      source = r == 0 ? outputs : floor_divide(outputs, number_like(double(r), outputs));
    } else if (n == 0) {
      source = positions(0, 0, x.device());
    } else {
      // ends[k] = counts[0] + ... + counts[k]: element k + 1 starts there (mark it), so the running
      // sum of the marks at output i is its source
      const Tensor ends = cumsum(to_device(counts, x.device()), 0);
      const Tensor marks = index_add(zeros({total + 1}, DType::Int64, x.device()), 0, narrow(ends, 0, 0, n - 1),
                                     ones({n - 1}, DType::Int64, x.device()));
      source = cumsum(narrow(marks, 0, 0, total), 0);
    }
  }
  return index_select(x, dim, source);
}

// meshgrid: 1-d tensors (0-d as length 1) to the grid of their sizes, each expanded along the
// others; indexing "xy" swaps the first two dims (NumPy's default, PyTorch's option)
TensorList meshgrid(const TensorList& xs, bool xy) {
  Shape grid;
  for (const Tensor& t : xs) {
    TG_CHECK(t.dim() <= 1, ShapeError, "meshgrid: expected 0-d or 1-d tensors, got shape ", shape_str(t.shape()));
    grid.push_back(t.numel());
  }
  if (xy && grid.size() >= 2) std::swap(grid[0], grid[1]);
  TensorList out;
  for (size_t k = 0; k < xs.size(); ++k) {
    const size_t at = xy && xs.size() >= 2 && k < 2 ? 1 - k : k;  // the grid dim this tensor runs along
    Shape along(grid.size(), 1);
    along[at] = xs[k].numel();
    out.push_back(expand(reshape(xs[k], along), grid));
  }
  return out;
}

// tile: repeat with ones prepended to reps when it has fewer entries than x has dims
Tensor tile(const Tensor& x, const Dims& reps) {
  Dims full(static_cast<size_t>(std::max<int64_t>(0, x.dim() - static_cast<int64_t>(reps.size()))), 1);
  full.insert(full.end(), reps.begin(), reps.end());
  return repeat(x, full);
}

// tril / triu: the elements of each (..., H, W) matrix on and below (above) diagonal k, zeros
// elsewhere; column - row <= k (>= k)
static Tensor triangle(const Tensor& x, int64_t k, bool lower, const char* name) {
  TG_CHECK(x.dim() >= 2, ShapeError, name, ": expected a tensor of at least 2 dims, got shape ", shape_str(x.shape()));
  const Tensor rows = unsqueeze(positions(0, x.size(-2), x.device()), 1), cols = positions(0, x.size(-1), x.device());
  const Tensor offset = sub(cols, rows);  // (H, W)
  const Tensor keep = lower ? le(offset, number_like(double(k), offset)) : ge(offset, number_like(double(k), offset));
  return where(keep, x, zeros_like(x));
}
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true, "tril"); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false, "triu"); }

// pad: pad = (left, right) of the last dim, then of the one before, ...; negative entries trim.
//   constant:  the new elements are `value`
//   reflect:   mirrored without the edge (x1 x0 | x0 x1 x2), padding < size
//   replicate: the edge repeated
//   circular:  wrapped around (x2 | x0 x1 x2 | x0), padding <= size
Tensor pad(const Tensor& x, const Dims& widths, const std::string& mode, double value) {
  TG_CHECK(widths.size() % 2 == 0 && static_cast<int64_t>(widths.size()) <= 2 * x.dim(), ValueError, "pad: ", widths.size(),
           " padding widths for a tensor of shape ", shape_str(x.shape()), "; expected pairs, at most two per dim");
  TG_CHECK(mode == "constant" || mode == "reflect" || mode == "replicate" || mode == "circular", ValueError,
           "pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got '", mode, "'");
  Tensor y = x;
  for (size_t p = 0; p < widths.size() / 2; ++p) {
    const int64_t d = x.dim() - 1 - static_cast<int64_t>(p), n = y.size(d);
    int64_t left = widths[2 * p], right = widths[2 * p + 1];
    if (left < 0) y = narrow(y, d, -left, n + left), left = 0;  // trims first
    if (right < 0) y = narrow(y, d, 0, y.size(d) + right), right = 0;
    const int64_t m = y.size(d);
    if (left == 0 && right == 0) continue;
    if (mode == "constant") {
      Shape side = y.shape();
      TensorList parts;
      if (left > 0) side[static_cast<size_t>(d)] = left, parts.push_back(full(side, value, y.dtype(), y.device()));
      parts.push_back(y);
      if (right > 0) side[static_cast<size_t>(d)] = right, parts.push_back(full(side, value, y.dtype(), y.device()));
      y = cat(parts, d);
      continue;
    }
    TG_CHECK(m > 0, ShapeError, "pad: mode '", mode, "' needs a non-empty dim ", d, ", shape ", shape_str(y.shape()));
    TG_CHECK(mode != "reflect" || (left < m && right < m), ValueError, "pad: reflect padding (", left, ", ", right,
             ") must be smaller than the size ", m, " of dim ", d);
    TG_CHECK(mode != "circular" || (left <= m && right <= m), ValueError, "pad: circular padding (", left, ", ", right,
             ") must be at most the size ", m, " of dim ", d);
    Tensor i = positions(-left, m + right, y.device());  // the output's position in the input's frame
    const Tensor last = number_like(double(m - 1), i);
    if (mode == "reflect") {
      i = abs(i);
      i = where(gt(i, last), sub(number_like(double(2 * (m - 1)), i), i), i);
    } else if (mode == "replicate") {
      i = clamp(i, 0.0, double(m - 1));
    } else {
      i = remainder(i, number_like(double(m), i));
    }
    y = index_select(y, d, i);
  }
  return y.same(x) ? clone(x) : y;
}

}  // namespace tg
