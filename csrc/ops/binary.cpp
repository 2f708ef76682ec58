// Elementwise functions of two (or three) tensors, with NumPy broadcasting and PyTorch's type
// promotion. Gradients are returned at the broadcast shape; the engine sums them back down to
// each input's shape (sum_to), which is the adjoint of broadcasting.
#include <optional>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

// Three priority classes, highest first: tensors with dims, 0-d tensors, wrapped Python numbers.
// A lower class only matters when it brings a higher category (bool < int < float); a Python
// float then gives the default float32, never float64.
DType result_type(const Tensor& a, const Tensor& b) {
  std::optional<DType> cls[3];
  for (const Tensor* t : {&a, &b}) {
    int c = t->is_wrapped_number() ? 2 : t->dim() == 0 ? 1 : 0;
    DType d = c == 2 ? default_of_category(category(t->dtype())) : t->dtype();
    if (c == 2 && cls[2] && category(*cls[2]) >= category(d)) continue;
    cls[c] = cls[c] ? promote(*cls[c], d) : d;
  }
  std::optional<DType> out;
  for (int c = 0; c < 3; ++c) {
    if (!cls[c]) continue;
    if (!out) out = cls[c];
    else if (category(*cls[c]) > category(*out)) out = c == 2 ? *cls[c] : promote(*out, *cls[c]);
  }
  return *out;
}

// A wrapped Python number on another device than the op's tensors (a CPU scalar next to a CUDA
// tensor) is moved to theirs: the kernel reads it through a stride-0 operand.
static Tensor on_device(const Tensor& t, Device device) { return t.device() == device ? t : to_device(t, device); }

Tensor wrap_scalar(double value, const Tensor& like) {
  // Next to bfloat16 the number stays float32 (the compute dtype): it is not rounded before the op.
  DType d = is_floating(like.dtype()) ? compute_dtype(like.dtype()) : DType::Float32;
  if (value == static_cast<double>(static_cast<int64_t>(value)) && !is_floating(like.dtype())) d = DType::Int64;
  return scalar_tensor(value, d, true, like.device());
}

namespace {

Tensor as_dtype(const Tensor& t, DType d) {
  if (t.dtype() == d) return t;
  GradModeGuard no_grad(false);  // the op records its own node against the original inputs
  return to_dtype(t, d);
}

// The forward of every binary op: promote, broadcast, run the kernel.
Tensor map2(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op_name(op);
  check_same_device(name, {&a, &b});
  DType common = result_type(a, b);
  if (op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr) common = DType::Bool;
  else if (is_bitwise_op(op)) {
    // Integers keep their dtype; on bools the bitwise ops are the logical ones (xor is !=).
    TG_CHECK(!is_floating(common), NotImplementedError, name, ": only integer and bool tensors are supported, got ",
             dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), " (shapes ", shape_str(a.shape()), " and ",
             shape_str(b.shape()), ")");
    if (common == DType::Bool && (op == BinaryOp::BitwiseLeftShift || op == BinaryOp::BitwiseRightShift)) common = DType::Int64;
    else if (common == DType::Bool)
      op = op == BinaryOp::BitwiseAnd ? BinaryOp::LogicalAnd : op == BinaryOp::BitwiseOr ? BinaryOp::LogicalOr : BinaryOp::Ne;
  } else if (!is_comparison_op(op)) {
    if (common == DType::Bool) {
      // Bool with bool stays bool, as in PyTorch: + and maximum are `or`, * and minimum are `and`.
      TG_CHECK(op != BinaryOp::Sub, TypeError, "sub: subtracting two bool tensors (shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), ") is not supported; use logical_xor or convert to int64");
      if (op == BinaryOp::Add || op == BinaryOp::Maximum) op = BinaryOp::LogicalOr;
      else if (op == BinaryOp::Mul || op == BinaryOp::Minimum) op = BinaryOp::LogicalAnd;
      else common = DType::Int64;  // pow counts them
    }
    // true division and the float functions (atan2, copysign): integers computed in float32
    if ((op == BinaryOp::Div || dtypes_of(op) == OpDtypes::Float) && !is_floating(common)) common = DType::Float32;
  }
  const Device device = a.is_wrapped_number() ? b.device() : a.device();
  // The kernel runs in the compute dtype (float32 for bfloat16); the result is rounded to `common`.
  const DType compute = compute_dtype(common);
  const Tensor A = on_device(as_dtype(a, compute), device), B = on_device(as_dtype(b, compute), device);
  Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(shape, is_comparison_op(op) ? DType::Bool : compute, device);
  if (A.shape() == shape && B.shape() == shape) {
    backend(device).binary(op, shape, operand(out), operand(A), operand(B));
  } else {
    Shape sa = broadcast_strides(A.shape(), A.strides(), shape), sb = broadcast_strides(B.shape(), B.strides(), shape);
    backend(device).binary(op, shape, operand(out), operand(A, sa), operand(B, sb));
  }
  return compute == common || is_comparison_op(op) ? out : as_dtype(out, common);
}

}  // namespace

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) { return map2(op, a, b); }

// add: z = a + b; da = dz, db = dz
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Add, a, b);
  if (should_record({&a, &b}))
    record("AddBackward", {a, b}, {z}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{g[0], g[0]}; });
  return z;
}

// sub: z = a - b; da = dz, db = -dz
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Sub, a, b);
  if (should_record({&a, &b}))
    record("SubBackward", {a, b}, {z}, {}, [](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0], c.needs_grad(1) ? neg(g[0]) : Tensor()};
    });
  return z;
}

// mul: z = a b; da = dz b, db = dz a (each factor is saved only if the other needs it)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Mul, a, b);
  if (should_record({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("MulBackward", {a, b}, {z}, {gb ? a : Tensor(), ga ? b : Tensor()},
           [](const BackwardContext& c, const TensorList& g) {
             return TensorList{c.needs_grad(0) ? g[0] * c.saved(1) : Tensor(), c.needs_grad(1) ? g[0] * c.saved(0) : Tensor()};
           });
  }
  return z;
}

// div: z = a / b; da = dz / b, db = -dz a / b^2
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Div, a, b);
  if (should_record({&a, &b}))
    record("DivBackward", {a, b}, {z}, {a, b}, [](const BackwardContext& c, const TensorList& g) {
      Tensor b = c.saved(1);
      return TensorList{c.needs_grad(0) ? g[0] / b : Tensor(), c.needs_grad(1) ? -(g[0] * c.saved(0)) / (b * b) : Tensor()};
    });
  return z;
}

// pow: z = a^b; da = dz b a^(b-1) (0 where b = 0: the derivative of the constant a^0 = 1, also
// at a = 0 or +-inf, where b a^(b-1) would be 0 * inf), db = dz z ln a (0 where a = 0 and b >= 0,
// the limit)
// A Python number as the exponent (x ** 2) is known on the host: checked and branched on there.
Tensor pow(const Tensor& a, const Tensor& b) {
  const bool host_exponent = b.is_wrapped_number() && b.device().is_cpu();
  // As PyTorch: an integer base to a negative integer number has no integer result.
  TG_CHECK(!(host_exponent && !is_floating(result_type(a, b)) && b.item<double>() < 0), RuntimeError,
           "pow: integers to negative integer powers are not allowed (base of dtype ", dtype_name(a.dtype()),
           " and shape ", shape_str(a.shape()), ", exponent ", b.item<double>(), ")");
  Tensor z = map2(BinaryOp::Pow, a, b);
  if (should_record({&a, &b}))
    record("PowBackward", {a, b}, {z}, {a, b, z}, [host_exponent](const BackwardContext& c, const TensorList& g) {
      Tensor a = c.saved(0), b = c.saved(1);
      Tensor ga, gb;
      if (c.needs_grad(0)) {
        if (host_exponent && b.item<double>() == 0) ga = zeros_like(g[0]);
        else ga = g[0] * b * pow(a, b - 1.0);
        if (!host_exponent) ga = where(eq(b, wrap_scalar(0.0, b)), zeros_like(ga), ga);
      }
      if (c.needs_grad(1)) {
        Tensor zero_base = logical_and(eq(a, wrap_scalar(0.0, a)), ge(b, wrap_scalar(0.0, b)));
        gb = where(zero_base, zeros_like(g[0]), g[0] * c.saved(2) * log(a));
      }
      return TensorList{ga, gb};
    });
  return z;
}

// maximum / minimum: the gradient goes to the larger (smaller) input, split evenly on ties.
static Tensor extremum(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  Tensor z = map2(op, a, b);
  if (should_record({&a, &b}))
    record(name, {a, b}, {z}, {a, b}, [op](const BackwardContext& c, const TensorList& g) {
      Tensor a = c.saved(0), b = c.saved(1);
      Tensor wins = to_dtype(op == BinaryOp::Maximum ? gt(a, b) : lt(a, b), g[0].dtype());
      Tensor w = wins + to_dtype(eq(a, b), g[0].dtype()) * 0.5;
      return TensorList{g[0] * w, g[0] * (1.0 - w)};
    });
  return z;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Maximum, "MaximumBackward", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Minimum, "MinimumBackward", a, b); }

// ---- division with rounding, and two sign functions -----------------------------------------------
namespace {
// Integer division by zero has no value (and traps the CPU): checked before the kernel, as PyTorch.
void check_integer_divisor(const char* name, const Tensor& a, const Tensor& b) {
  if (is_floating(result_type(a, b)) || b.numel() == 0) return;
  GradModeGuard no_grad(false);
  const bool zero = amax(eq(b, wrap_scalar(0.0, b))).item<bool>();
  TG_CHECK(!zero, ZeroDivisionError, name, ": integer division by zero (shapes ", shape_str(a.shape()), " and ",
           shape_str(b.shape()), ")");
}
}  // namespace

// floor_divide (a // b): floor(a / b), Python's rounding toward -inf. Piecewise constant: its
// gradient is zero wherever it exists, as floor's (PyTorch's backward raises instead).
Tensor floor_divide(const Tensor& a, const Tensor& b) {
  check_integer_divisor("floor_divide", a, b);
  Tensor z = map2(BinaryOp::FloorDivide, a, b);
  if (should_record({&a, &b}))
    record("FloorDivideBackward", {a, b}, {z}, {}, [](const BackwardContext& c, const TensorList& g) {
      const Tensor zero = zeros_like(g[0]);
      return TensorList{c.needs_grad(0) ? zero : Tensor(), c.needs_grad(1) ? zero : Tensor()};
    });
  return z;
}

// The remainders of a division, z = a - b q(a / b): da = dz, db = -dz q(a / b), where q rounds the
// quotient (floor for remainder, trunc for fmod).
//   remainder (a % b): q = floor, the divisor's sign (Python's %);  fmod: q = trunc, the dividend's (C's)
static Tensor division_remainder(BinaryOp op, const char* name, const char* node, Tensor (*quotient)(const Tensor&, const Tensor&),
                                 const Tensor& a, const Tensor& b) {
  check_integer_divisor(name, a, b);
  Tensor z = map2(op, a, b);
  if (should_record({&a, &b}))
    record(node, {a, b}, {z}, {a, b}, [quotient](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0], c.needs_grad(1) ? -(g[0] * quotient(c.saved(0), c.saved(1))) : Tensor()};
    });
  return z;
}
Tensor remainder(const Tensor& a, const Tensor& b) {
  return division_remainder(BinaryOp::Remainder, "remainder", "RemainderBackward", &floor_divide, a, b);
}
Tensor fmod(const Tensor& a, const Tensor& b) {
  return division_remainder(BinaryOp::Fmod, "fmod", "FmodBackward", [](const Tensor& x, const Tensor& y) { return trunc(div(x, y)); },
                            a, b);
}

// atan2(a, b): the angle of the point (b, a); da = dz b / (a^2 + b^2), db = -dz a / (a^2 + b^2)
Tensor atan2(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Atan2, a, b);
  if (should_record({&a, &b}))
    record("Atan2Backward", {a, b}, {z}, {a, b}, [](const BackwardContext& c, const TensorList& g) {
      const Tensor a = c.saved(0), b = c.saved(1), scale = g[0] / (a * a + b * b);
      return TensorList{c.needs_grad(0) ? scale * b : Tensor(), c.needs_grad(1) ? -(scale * a) : Tensor()};
    });
  return z;
}

// copysign(a, b): |a| with the sign of b; da = dz z / a (+-1; 0 where a = 0, as PyTorch), db = 0
Tensor copysign(const Tensor& a, const Tensor& b) {
  Tensor z = map2(BinaryOp::Copysign, a, b);
  if (should_record({&a, &b}))
    record("CopysignBackward", {a, b}, {z}, {a, z}, [](const BackwardContext& c, const TensorList& g) {
      const Tensor a = c.saved(0), zero = zeros_like(g[0]);
      return TensorList{c.needs_grad(0) ? where(eq(a, wrap_scalar(0.0, a)), zero, g[0] * (c.saved(1) / a)) : Tensor(),
                        c.needs_grad(1) ? zero : Tensor()};
    });
  return z;
}

// gelu_backward: dy * gelu'(x), one fused pass (gelu' in kernels/functors.h). Not recorded: under
// create_graph gelu differentiates its composite reference instead (unary.cpp).
Tensor gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_approximation) {
  return map2(tanh_approximation ? BinaryOp::GeluTanhBackward : BinaryOp::GeluBackward, dy, x);
}

// ---- pointwise losses of an input against a target of its shape -----------------------------------
// One elementwise pass each (the formulas are in kernels/functors.h); the backward is tensor ops,
// so it differentiates again. reduction: 0 none, 1 mean, 2 sum.
namespace {
Tensor reduce_loss(const Tensor& loss, int reduction) {
  return reduction == 0 ? loss : reduction == 1 ? mean(loss) : sum(loss);
}
void check_loss_args(const char* op, const Tensor& input, const Tensor& target, int reduction) {
  TG_CHECK(input.shape() == target.shape(), ShapeError, op, ": input of shape ", shape_str(input.shape()),
           " and target of shape ", shape_str(target.shape()), " must have the same shape");
  TG_CHECK(is_floating(input.dtype()), TypeError, op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  TG_CHECK(reduction >= 0 && reduction <= 2, ValueError, op, ": reduction must be 'none', 'mean' or 'sum'");
}
}  // namespace

// mse_loss: l = (x - t)^2;  dx = 2 (x - t) dl,  dt = -dx
Tensor mse_loss(const Tensor& input, const Tensor& target, int reduction) {
  check_loss_args("mse_loss", input, target, reduction);
  Tensor loss = map2(BinaryOp::SquaredDifference, input, target);
  if (should_record({&input, &target}))
    record("MseLossBackward", {input, target}, {loss}, {input, target}, [](const BackwardContext& c, const TensorList& g) {
      Tensor dx = (c.saved(0) - c.saved(1)) * g[0] * 2.0;
      return TensorList{dx, c.needs_grad(1) ? -dx : Tensor()};
    });
  return reduce_loss(loss, reduction);
}

// binary_cross_entropy: l = -(t log p + (1 - t) log(1 - p)), each log clamped at -100;
//   dp = dl (p - t) / max(p (1 - p), 1e-12)   (PyTorch's clamp: finite at p = 0 and 1)
//   dt = dl (log(1 - p) - log p)              (the clamped logs)
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, int reduction) {
  check_loss_args("binary_cross_entropy", input, target, reduction);
  Tensor loss = map2(BinaryOp::BinaryCrossEntropy, input, target);
  if (should_record({&input, &target}))
    record("BinaryCrossEntropyBackward", {input, target}, {loss}, {input, target},
           [](const BackwardContext& c, const TensorList& g) {
             Tensor p = c.saved(0), t = c.saved(1), dp, dt;
             if (c.needs_grad(0)) dp = g[0] * (p - t) / clamp(p * (1.0 - p), 1e-12, std::nullopt);
             if (c.needs_grad(1)) dt = g[0] * (clamp(log(1.0 - p), -100.0, std::nullopt) - clamp(log(p), -100.0, std::nullopt));
             return TensorList{dp, dt};
           });
  return reduce_loss(loss, reduction);
}

// binary_cross_entropy_with_logits: the loss of p = sigmoid(x), stably:
//   l = (1 - t) x + w_pos softplus(-x),  w_pos = 1 + (pos_weight - 1) t  (1 without pos_weight)
//   dx = dl (w_pos sigmoid(x) - w_pos + 1 - t)   (= dl (sigmoid(x) - t) when w_pos = 1)
//   dt = dl (-x + (pos_weight - 1) softplus(-x))
// Without pos_weight the forward is one fused pass; with it, tensor ops (autograd differentiates them).
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& pos_weight,
                                        int reduction) {
  check_loss_args("binary_cross_entropy_with_logits", input, target, reduction);
  if (pos_weight.defined()) {
    Tensor w_pos = 1.0 + (pos_weight - 1.0) * target;
    return reduce_loss((1.0 - target) * input + w_pos * softplus(-input), reduction);
  }
  Tensor loss = map2(BinaryOp::BinaryCrossEntropyWithLogits, input, target);
  if (should_record({&input, &target}))
    record("BinaryCrossEntropyWithLogitsBackward", {input, target}, {loss}, {input, target},
           [](const BackwardContext& c, const TensorList& g) {
             Tensor x = c.saved(0), t = c.saved(1), dx, dt;
             if (c.needs_grad(0)) dx = g[0] * (sigmoid(x) - t);
             if (c.needs_grad(1)) dt = -(g[0] * x);
             return TensorList{dx, dt};
           });
  return reduce_loss(loss, reduction);
}

// Comparisons and logical ops: bool results, no gradient.
Tensor eq(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return map2(BinaryOp::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return map2(BinaryOp::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return map2(BinaryOp::LogicalOr, a, b); }
// Bitwise ops on integers (dtype kept); on bools they are logical_and / logical_or / ne.
Tensor bitwise_and(const Tensor& a, const Tensor& b) { return map2(BinaryOp::BitwiseAnd, a, b); }
Tensor bitwise_or(const Tensor& a, const Tensor& b) { return map2(BinaryOp::BitwiseOr, a, b); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b) { return map2(BinaryOp::BitwiseXor, a, b); }
// Shifts of integers (bools count as 0 / 1); a count outside [0, 64) shifts every bit out.
Tensor bitwise_left_shift(const Tensor& a, const Tensor& b) { return map2(BinaryOp::BitwiseLeftShift, a, b); }
Tensor bitwise_right_shift(const Tensor& a, const Tensor& b) { return map2(BinaryOp::BitwiseRightShift, a, b); }

// lerp: start + weight (end - start); d start = 1 - weight, d end = weight, d weight = end - start
// (tensor ops: autograd differentiates them)
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  TG_CHECK(is_floating(start.dtype()) && is_floating(end.dtype()), TypeError, "lerp: expected floating-point tensors, got ",
           dtype_name(start.dtype()), " and ", dtype_name(end.dtype()), " (shapes ", shape_str(start.shape()), " and ",
           shape_str(end.shape()), ")");
  return start + weight * (end - start);
}

// isclose: |a - b| <= atol + rtol |b|, and equal values (the infinities) always close; NaN is close
// to NaN only with equal_nan. Bool out, no gradient.
Tensor isclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  TG_CHECK(rtol >= 0 && atol >= 0, ValueError, "isclose: rtol and atol must be non-negative, got ", rtol, " and ", atol);
  GradModeGuard no_grad(false);
  const Tensor near = le(abs(a - b), abs(b) * rtol + atol);
  Tensor close = logical_or(eq(a, b), logical_and(near, logical_and(isfinite(a), isfinite(b))));
  if (equal_nan) close = logical_or(close, logical_and(isnan(a), isnan(b)));
  return close;
}

// where: z = cond ? a : b; da = cond ? dz : 0, db = cond ? 0 : dz
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device("where", {&cond, &a, &b});
  TG_CHECK(cond.dtype() == DType::Bool, TypeError, "where: condition must be a bool tensor, got ", dtype_name(cond.dtype()));
  DType common = result_type(a, b);
  const Device device = cond.device();
  Tensor A = on_device(as_dtype(a, common), device), B = on_device(as_dtype(b, common), device);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, common, device);
  Shape sc = broadcast_strides(cond.shape(), cond.strides(), shape), sa = broadcast_strides(A.shape(), A.strides(), shape),
        sb = broadcast_strides(B.shape(), B.strides(), shape);
  backend(device).where(shape, operand(out), operand(cond, sc), operand(A, sa), operand(B, sb));
  if (should_record({&a, &b}))
    record("WhereBackward", {a, b}, {out}, {cond}, [](const BackwardContext& c, const TensorList& g) {
      Tensor cond = c.saved(0), zero = zeros_like(g[0]);
      return TensorList{c.needs_grad(0) ? where(cond, g[0], zero) : Tensor(), c.needs_grad(1) ? where(cond, zero, g[0]) : Tensor()};
    });
  return out;
}

// masked_fill: z = mask ? value : x
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value) {
  TG_CHECK(mask.dtype() == DType::Bool, TypeError, "masked_fill: mask must be a bool tensor, got ", dtype_name(mask.dtype()));
  TG_CHECK(value.dim() == 0, ShapeError, "masked_fill: value must be a scalar or a 0-d tensor, got shape ",
           shape_str(value.shape()));
  Tensor v = value.dtype() == x.dtype() ? value : to_dtype(value, x.dtype());
  Tensor out = where(mask, v, x);
  TG_CHECK(out.shape() == x.shape(), ShapeError, "masked_fill: mask of shape ", shape_str(mask.shape()),
           " does not broadcast to the tensor's shape ", shape_str(x.shape()));
  return out;
}

// clamp: z = min(max(x, lo), hi); dx = dz where lo <= x <= hi, else 0
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  TG_CHECK(lo || hi, ValueError, "clamp: at least one of min and max must be given");
  Tensor z = x;
  {
    GradModeGuard no_grad(false);
    if (lo) z = maximum(z, wrap_scalar(*lo, x));
    if (hi) z = minimum(z, wrap_scalar(*hi, x));
    if (z.same(x)) z = clone(x);
  }
  if (should_record({&x}))
    record("ClampBackward", {x}, {z}, {x}, [lo, hi](const BackwardContext& c, const TensorList& g) {
      Tensor x = c.saved(0);
      Tensor inside = ones(x.shape(), DType::Bool, x.device());
      if (lo) inside = logical_and(inside, ge(x, wrap_scalar(*lo, x)));
      if (hi) inside = logical_and(inside, le(x, wrap_scalar(*hi, x)));
      return TensorList{where(inside, g[0], zeros_like(g[0]))};
    });
  return z;
}

// ---- operator sugar for C++ backward formulas -------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, wrap_scalar(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, wrap_scalar(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, wrap_scalar(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, wrap_scalar(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(wrap_scalar(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(wrap_scalar(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(wrap_scalar(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(wrap_scalar(a, b), b); }

}  // namespace tg
