// Batch and group normalisation over (N, C, *) inputs, as composites of mean, var and elementwise
// ops (autograd differentiates them, twice); layer_norm, which has its own row kernels, is in
// nn.cpp.
//
//   batch_norm:  statistics per channel c over (N, *):  y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c
//                training: the batch's mean and biased variance, and the running statistics move
//                by momentum toward them (running_var toward the unbiased variance), no gradient;
//                evaluation: the running statistics
//   group_norm:  statistics per (sample, group of C / G channels) over the group's channels and *
#include "autograd/grad_mode.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// (C) -> (1, C, 1, ..., 1), to broadcast over an (N, C, *) input
Tensor per_channel(const Tensor& v, const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = v.numel();
  return reshape(v, s);
}

void check_channels(const char* op, const Tensor& x, const Tensor& v, const char* what) {
  TG_CHECK(!v.defined() || (v.dim() == 1 && v.size(0) == x.size(1)), ShapeError, op, ": ", what, " of shape ",
           shape_str(v.shape()), " for an input of shape ", shape_str(x.shape()), " (", x.size(1), " channels)");
}

// bfloat16 and float16 are normalised in float32 and rounded once: statistics of a few close
// values, rounded op by op, would lose every digit of the differences they divide by.
Tensor in_float32(const Tensor& t) { return t.defined() && is_storage_only(t.dtype()) ? to_dtype(t, DType::Float32) : t; }

Tensor affine(Tensor y, const Tensor& weight, const Tensor& bias) {
  if (weight.defined()) y = y * per_channel(weight, y);
  if (bias.defined()) y = y + per_channel(bias, y);
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  TG_CHECK(x.dim() >= 2, ShapeError, "batch_norm: expected an (N, C, *) input, got shape ", shape_str(x.shape()));
  TG_CHECK(is_floating(x.dtype()), TypeError, "batch_norm: expected a floating-point input, got ", dtype_name(x.dtype()));
  for (auto [v, what] : {std::pair{&running_mean, "running_mean"}, {&running_var, "running_var"}, {&weight, "weight"},
                         {&bias, "bias"}})
    check_channels("batch_norm", x, *v, what);
  if (is_storage_only(x.dtype())) {
    const Tensor rm = in_float32(running_mean), rv = in_float32(running_var);
    const Tensor y = batch_norm(in_float32(x), rm, rv, in_float32(weight), in_float32(bias), training, momentum, eps);
    if (training && running_mean.defined() && !rm.same(running_mean)) {
      GradModeGuard no_grad(false);
      copy_(running_mean, rm), copy_(running_var, rv);
    }
    return to_dtype(y, x.dtype());
  }
  Dims dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  const int64_t n = x.numel() / std::max<int64_t>(x.size(1), 1);
  Tensor mean, var;
  if (training || !running_mean.defined()) {
    TG_CHECK(n > 1, ValueError, "batch_norm: expected more than 1 value per channel when training, got input of shape ",
             shape_str(x.shape()));
    mean = sum(x, dims, true) / static_cast<double>(n);
    const Tensor centred = x - mean;
    var = sum(centred * centred, dims, true) / static_cast<double>(n);
    if (training && running_mean.defined()) {
      GradModeGuard no_grad(false);
      const Tensor batch_mean = reshape(detach(mean), {-1}), unbiased = reshape(detach(var), {-1}) * (double(n) / double(n - 1));
      copy_(running_mean, running_mean * (1.0 - momentum) + batch_mean * momentum);
      copy_(running_var, running_var * (1.0 - momentum) + unbiased * momentum);
    }
  } else {
    mean = per_channel(running_mean, x), var = per_channel(running_var, x);
  }
  return affine((x - mean) * rsqrt(var + eps), weight, bias);
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  TG_CHECK(x.dim() >= 2, ShapeError, "group_norm: expected an (N, C, *) input, got shape ", shape_str(x.shape()));
  TG_CHECK(is_floating(x.dtype()), TypeError, "group_norm: expected a floating-point input, got ", dtype_name(x.dtype()));
  TG_CHECK(groups > 0 && x.size(1) % groups == 0, ValueError, "group_norm: ", x.size(1), " channels (input of shape ",
           shape_str(x.shape()), ") do not split into ", groups, " groups");
  check_channels("group_norm", x, weight, "weight");
  check_channels("group_norm", x, bias, "bias");
  if (is_storage_only(x.dtype()))
    return to_dtype(group_norm(in_float32(x), groups, in_float32(weight), in_float32(bias), eps), x.dtype());
  const Tensor g = reshape(x, {x.size(0), groups, -1});  // (N, G, C / G * prod(*))
  const int64_t n = g.size(2);
  const Tensor mean = sum(g, {2}, true) / static_cast<double>(std::max<int64_t>(n, 1));
  const Tensor centred = g - mean;
  const Tensor var = sum(centred * centred, {2}, true) / static_cast<double>(std::max<int64_t>(n, 1));
  return affine(reshape(centred * rsqrt(var + eps), x.shape()), weight, bias);
}

}  // namespace tg
