// interpolate: resizing (N, C, *spatial) one spatial dim at a time (nearest and (bi)linear are
// separable), each step an index_select (nearest) or two and a weighted sum (linear), so the
// gradient is theirs (index_add back to the sources). The source coordinates are computed on the
// device from arange, as PyTorch computes them:
//   scale = 1 / scale_factor when one is given, else in / out
//   nearest:                  src = min(floor(dst scale), in - 1)
//   linear, align_corners:    src = dst (in - 1) / (out - 1)
//   linear, otherwise:        src = max((dst + 0.5) scale - 0.5, 0)
//   then i0 = floor(src), i1 = min(i0 + 1, in - 1), y = (1 - w) x[i0] + w x[i1], w = src - i0
#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// One spatial dim of x resized to `out` elements.
Tensor resample_dim(const Tensor& x, int64_t dim, int64_t out, double scale, bool linear, bool align_corners) {
  const int64_t in = x.size(dim);
  Tensor i0, i1, w;
  {
    GradModeGuard no_grad(false);
    const Tensor dst = arange(0, double(out), 1, DType::Float64, x.device());
    const Tensor last = full({}, double(in - 1), DType::Int64, x.device());
    if (!linear) {
      i0 = minimum(to_dtype(floor(dst * scale), DType::Int64), last);
    } else {
      const Tensor src = align_corners ? dst * (out > 1 ? double(in - 1) / double(out - 1) : 0.0)
                                       : maximum(dst * scale + (0.5 * scale - 0.5), zeros({}, DType::Float64, x.device()));
      i0 = minimum(to_dtype(floor(src), DType::Int64), last);
      i1 = minimum(i0 + 1.0, last);
      Shape along(static_cast<size_t>(x.dim()), 1);
      along[static_cast<size_t>(dim)] = out;
      w = reshape(to_dtype(src - to_dtype(i0, DType::Float64), x.dtype()), along);
    }
  }
  if (!linear) return index_select(x, dim, i0);
  return index_select(x, dim, i0) * (1.0 - w) + index_select(x, dim, i1) * w;
}

}  // namespace

// x (N, C, *spatial) resized to `size`; `scales` (one per spatial dim, 0 where not given) are the
// caller's scale factors, which PyTorch uses for the coordinates in place of in / out.
Tensor interpolate(const Tensor& x, const Shape& size, const std::vector<double>& scales, const std::string& mode,
                   bool align_corners) {
  const int64_t spatial = x.dim() - 2;
  TG_CHECK(spatial >= 1 && spatial <= 3, ShapeError, "interpolate: expected an (N, C, ...) input with 1 to 3 spatial dims, ",
           "got shape ", shape_str(x.shape()));
  TG_CHECK(static_cast<int64_t>(size.size()) == spatial && scales.size() == size.size(), ValueError, "interpolate: ",
           size.size(), " output sizes for ", spatial, " spatial dims (input of shape ", shape_str(x.shape()), ")");
  const bool linear = mode == "linear" || mode == "bilinear" || mode == "trilinear";
  TG_CHECK(linear || mode == "nearest", ValueError, "interpolate: mode must be 'nearest', 'linear', 'bilinear' or ",
           "'trilinear', got '", mode, "'");
  const char* linear_mode = spatial == 1 ? "linear" : spatial == 2 ? "bilinear" : "trilinear";
  TG_CHECK(!linear || mode == linear_mode, ValueError, "interpolate: mode '", mode, "' does not fit an input of shape ",
           shape_str(x.shape()), " (", linear_mode, " does)");
  TG_CHECK(is_floating(x.dtype()), TypeError, "interpolate: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  if (any_storage_only({&x})) return to_dtype(interpolate(widened(x), size, scales, mode, align_corners), x.dtype());  // rounded once
  Tensor y = x;
  for (int64_t k = 0; k < spatial; ++k) {
    const int64_t dim = 2 + k, in = x.size(dim), out = size[static_cast<size_t>(k)];
    TG_CHECK(out > 0 && in > 0, ValueError, "interpolate: sizes must be positive, got ", in, " -> ", out, " in dim ", dim);
    const double given = scales[static_cast<size_t>(k)];
    const double scale = given > 0 ? 1.0 / given : double(in) / double(out);
    if (in == out && given <= 0) continue;
    y = resample_dim(y, dim, out, scale, linear, align_corners);
  }
  return y.same(x) ? clone(x) : y;
}

}  // namespace tg
