// Elementwise functions of one tensor. Integer inputs of float-valued functions (exp, log, ...)
// are computed in float32, as PyTorch does.
#include <limits>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

void run_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  backend(x.device()).unary(op, x.shape(), operand(out), operand(x));
}

Tensor map(UnaryOp op, const Tensor& x) {
  const char* name = op_name(op);
  check_same_device(name, {&x});
  if (is_storage_only(x.dtype())) {  // computed in float32 / int64, converted back once where the result has that type
    Tensor y = map(op, compute_copy(x));
    return y.dtype() == compute_dtype(x.dtype()) ? cast_untracked(y, x.dtype()) : y;  // not bools, nor int8 -> exp's float32
  }
  if (dtypes_of(op) == OpDtypes::ToBool) {
    Tensor out = empty(x.shape(), DType::Bool, x.device());
    run_unary(op, out, x);
    return out;
  }
  if (x.dtype() == DType::Bool) {
    TG_CHECK(op != UnaryOp::Neg, TypeError, name, ": negation of a bool tensor is not supported; use logical_not");
    return map(op, to_dtype(x, keeps_integer_dtype(op) ? DType::Int64 : DType::Float32));
  }
  if (!is_floating(x.dtype()) && !keeps_integer_dtype(op)) return map(op, to_dtype(x, DType::Float32));
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  run_unary(op, out, x);
  return out;
}

}  // namespace

Tensor unary_op(UnaryOp op, const Tensor& x) { return map(op, x); }

// neg: y = -x; dx = -dy
Tensor neg(const Tensor& x) {
  Tensor y = map(UnaryOp::Neg, x);
  if (should_record({&x})) record("NegBackward", {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{neg(g[0])}; });
  return y;
}

// abs: y = |x|; dx = dy * sign(x)
Tensor abs(const Tensor& x) {
  Tensor y = map(UnaryOp::Abs, x);
  if (should_record({&x}))
    record("AbsBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) { return TensorList{g[0] * sign(c.saved(0))}; });
  return y;
}

// exp: y = e^x; dx = dy * y
Tensor exp(const Tensor& x) {
  Tensor y = map(UnaryOp::Exp, x);
  if (should_record({&x}))
    record("ExpBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) { return TensorList{g[0] * c.saved(0)}; });
  return y;
}

// log: y = ln x; dx = dy / x
Tensor log(const Tensor& x) {
  Tensor y = map(UnaryOp::Log, x);
  if (should_record({&x}))
    record("LogBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) { return TensorList{g[0] / c.saved(0)}; });
  return y;
}

// sqrt: y = x^(1/2); dx = dy / (2 y)
Tensor sqrt(const Tensor& x) {
  Tensor y = map(UnaryOp::Sqrt, x);
  if (should_record({&x}))
    record("SqrtBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) { return TensorList{g[0] / (c.saved(0) * 2.0)}; });
  return y;
}

// rsqrt: y = x^(-1/2); dx = -dy * y^3 / 2
Tensor rsqrt(const Tensor& x) {
  Tensor y = map(UnaryOp::Rsqrt, x);
  if (should_record({&x}))
    record("RsqrtBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) {
      Tensor y = c.saved(0);
      return TensorList{g[0] * y * y * y * -0.5};
    });
  return y;
}

// sin: dx = dy * cos x
Tensor sin(const Tensor& x) {
  Tensor y = map(UnaryOp::Sin, x);
  if (should_record({&x}))
    record("SinBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) { return TensorList{g[0] * cos(c.saved(0))}; });
  return y;
}

// cos: dx = -dy * sin x
Tensor cos(const Tensor& x) {
  Tensor y = map(UnaryOp::Cos, x);
  if (should_record({&x}))
    record("CosBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) { return TensorList{-(g[0] * sin(c.saved(0)))}; });
  return y;
}

// tanh: dx = dy * (1 - y^2)
Tensor tanh(const Tensor& x) {
  Tensor y = map(UnaryOp::Tanh, x);
  if (should_record({&x}))
    record("TanhBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) {
      Tensor y = c.saved(0);
      return TensorList{g[0] * (1.0 - y * y)};
    });
  return y;
}

// sigmoid: y = 1 / (1 + e^-x); dx = dy * y (1 - y)
Tensor sigmoid(const Tensor& x) {
  Tensor y = map(UnaryOp::Sigmoid, x);
  if (should_record({&x}))
    record("SigmoidBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) {
      Tensor y = c.saved(0);
      return TensorList{g[0] * y * (1.0 - y)};
    });
  return y;
}

// relu: y = max(x, 0); dx = dy * [x > 0]
Tensor relu(const Tensor& x) {
  Tensor y = map(UnaryOp::Relu, x);
  if (should_record({&x}))
    record("ReluBackward", {x}, {y}, {y}, [](const BackwardContext& c, const TensorList& g) {
      Tensor y = c.saved(0);
      return TensorList{g[0] * to_dtype(gt(y, wrap_scalar(0.0, y)), y.dtype())};
    });
  return y;
}

// gelu (erf form): y = x Phi(x), Phi the standard normal CDF
// gelu (tanh form): y = x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
// dx = dy * gelu'(x), one fused pass; gelu' is written once, in kernels/functors.h. Under
// create_graph the backward differentiates gelu_reference, the same function in ordinary ops.
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  Tensor y = map(tanh_approximation ? UnaryOp::GeluTanh : UnaryOp::Gelu, x);
  if (should_record({&x}))
    record("GeluBackward", {x}, {y}, {x}, [tanh_approximation](const BackwardContext& c, const TensorList& g) {
      const Tensor x = c.saved(0);
      if (GradMode::is_enabled()) return grad_through_reference({gelu_reference(x, tanh_approximation)}, g, {x});
      return TensorList{gelu_backward(g[0], x, tanh_approximation)};
    });
  return y;
}

Tensor gelu_reference(const Tensor& x, bool tanh_approximation) {
  if (tanh_approximation) return x * 0.5 * (tanh((x + x * x * x * 0.044715) * 0.79788456080286535588) + 1.0);
  return x * 0.5 * (erf(x * 0.70710678118654752440) + 1.0);
}

// silu: y = x s(x); dx = dy s (1 + x (1 - s))
Tensor silu(const Tensor& x) {
  Tensor y = map(UnaryOp::Silu, x);
  if (should_record({&x}))
    record("SiluBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) {
      Tensor x = c.saved(0);
      Tensor s = sigmoid(x);
      return TensorList{g[0] * s * (1.0 + x * (1.0 - s))};
    });
  return y;
}

// softplus: y = log(1 + e^x); dx = dy sigmoid(x)
Tensor softplus(const Tensor& x) {
  Tensor y = map(UnaryOp::Softplus, x);
  if (should_record({&x}))
    record("SoftplusBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] * sigmoid(c.saved(0))};
    });
  return y;
}

// erf: dx = dy * 2/sqrt(pi) e^(-x^2)
Tensor erf(const Tensor& x) {
  Tensor y = map(UnaryOp::Erf, x);
  if (should_record({&x}))
    record("ErfBackward", {x}, {y}, {x}, [](const BackwardContext& c, const TensorList& g) {
      Tensor x = c.saved(0);
      return TensorList{g[0] * exp(-(x * x)) * 1.12837916709551257390};
    });
  return y;
}

// sign: piecewise constant; its gradient is zero everywhere it exists.
Tensor sign(const Tensor& x) {
  Tensor y = map(UnaryOp::Sign, x);
  if (should_record({&x}))
    record("SignBackward", {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{zeros_like(g[0])}; });
  return y;
}

Tensor logical_not(const Tensor& x) { return map(UnaryOp::LogicalNot, x); }
Tensor isnan(const Tensor& x) { return map(UnaryOp::IsNan, x); }
Tensor isinf(const Tensor& x) { return map(UnaryOp::IsInf, x); }
Tensor isfinite(const Tensor& x) { return map(UnaryOp::IsFinite, x); }

// nan_to_num: where(isnan, nan, where(x == inf, posinf, where(x == -inf, neginf, x))); the gradient
// flows to the finite elements (where's). Integers and bools have nothing to replace.
Tensor nan_to_num(const Tensor& x, double nan, std::optional<double> posinf, std::optional<double> neginf) {
  if (!is_floating(x.dtype())) return clone(x);
  const double largest = x.dtype() == DType::Float64    ? std::numeric_limits<double>::max()
                         : x.dtype() == DType::BFloat16 ? 3.3895313892515355e38  // (2 - 2^-7) 2^127
                         : x.dtype() == DType::Float16  ? 65504.0                 // (2 - 2^-10) 2^15
                                                        : double(std::numeric_limits<float>::max());
  const double inf = std::numeric_limits<double>::infinity();
  Tensor y = where(eq(x, wrap_scalar(-inf, x)), wrap_scalar(neginf.value_or(-largest), x), x);
  y = where(eq(x, wrap_scalar(inf, x)), wrap_scalar(posinf.value_or(largest), x), y);
  return where(isnan(x), wrap_scalar(nan, x), y);
}

// bitwise_not: ~x on integers (dtype kept), logical_not on bools; floats raise TypeError as in PyTorch.
Tensor bitwise_not(const Tensor& x) {
  if (x.dtype() == DType::Bool) return logical_not(x);
  TG_CHECK(!is_floating(x.dtype()), TypeError, "bitwise_not: ~ is only implemented on integer and bool tensors, got ",
           dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
  return map(UnaryOp::BitwiseNot, x);
}

// ---- functions whose derivative is an expression in x or in y = f(x) ------------------------------
// dx = dy * derivative(x) (or of y where that is cheaper), written in tensor ops so that it
// differentiates again.
namespace {
enum class SavedFor { Input, Output };
Tensor with_derivative(UnaryOp op, const char* node, const Tensor& x, SavedFor saved, Tensor (*derivative)(const Tensor&)) {
  Tensor y = map(op, x);
  if (should_record({&x}))
    record(node, {x}, {y}, {saved == SavedFor::Input ? x : y}, [derivative](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] * derivative(c.saved(0))};
    });
  return y;
}
// Piecewise constant (floor, ceil, round, trunc): the gradient is zero wherever it exists.
Tensor with_zero_derivative(UnaryOp op, const char* node, const Tensor& x) {
  Tensor y = map(op, x);
  if (should_record({&x}))
    record(node, {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{zeros_like(g[0])}; });
  return y;
}
constexpr double kLn2 = 0.69314718055994530942, kLn10 = 2.30258509299404568402;
}  // namespace

// log2: d/dx = 1 / (x ln 2);  log10: 1 / (x ln 10);  log1p = ln(1 + x): 1 / (1 + x)
Tensor log2(const Tensor& x) {
  return with_derivative(UnaryOp::Log2, "Log2Backward", x, SavedFor::Input, [](const Tensor& x) { return reciprocal(x * kLn2); });
}
Tensor log10(const Tensor& x) {
  return with_derivative(UnaryOp::Log10, "Log10Backward", x, SavedFor::Input, [](const Tensor& x) { return reciprocal(x * kLn10); });
}
Tensor log1p(const Tensor& x) {
  return with_derivative(UnaryOp::Log1p, "Log1pBackward", x, SavedFor::Input, [](const Tensor& x) { return reciprocal(x + 1.0); });
}
// expm1 = e^x - 1: d/dx = y + 1;  exp2 = 2^x: y ln 2
Tensor expm1(const Tensor& x) {
  return with_derivative(UnaryOp::Expm1, "Expm1Backward", x, SavedFor::Output, [](const Tensor& y) { return y + 1.0; });
}
Tensor exp2(const Tensor& x) {
  return with_derivative(UnaryOp::Exp2, "Exp2Backward", x, SavedFor::Output, [](const Tensor& y) { return y * kLn2; });
}
// tan: d/dx = 1 + tan^2 x = 1 + y^2
Tensor tan(const Tensor& x) {
  return with_derivative(UnaryOp::Tan, "TanBackward", x, SavedFor::Output, [](const Tensor& y) { return y * y + 1.0; });
}
// asin: 1 / sqrt(1 - x^2);  acos: -1 / sqrt(1 - x^2);  atan: 1 / (1 + x^2)
Tensor asin(const Tensor& x) {
  return with_derivative(UnaryOp::Asin, "AsinBackward", x, SavedFor::Input, [](const Tensor& x) { return rsqrt(1.0 - x * x); });
}
Tensor acos(const Tensor& x) {
  return with_derivative(UnaryOp::Acos, "AcosBackward", x, SavedFor::Input, [](const Tensor& x) { return -rsqrt(1.0 - x * x); });
}
Tensor atan(const Tensor& x) {
  return with_derivative(UnaryOp::Atan, "AtanBackward", x, SavedFor::Input, [](const Tensor& x) { return reciprocal(x * x + 1.0); });
}
// sinh: cosh x;  cosh: sinh x
Tensor sinh(const Tensor& x) {
  return with_derivative(UnaryOp::Sinh, "SinhBackward", x, SavedFor::Input, [](const Tensor& x) { return cosh(x); });
}
Tensor cosh(const Tensor& x) {
  return with_derivative(UnaryOp::Cosh, "CoshBackward", x, SavedFor::Input, [](const Tensor& x) { return sinh(x); });
}
// asinh: 1 / sqrt(x^2 + 1);  acosh: 1 / sqrt(x^2 - 1);  atanh: 1 / (1 - x^2)
Tensor asinh(const Tensor& x) {
  return with_derivative(UnaryOp::Asinh, "AsinhBackward", x, SavedFor::Input, [](const Tensor& x) { return rsqrt(x * x + 1.0); });
}
Tensor acosh(const Tensor& x) {
  return with_derivative(UnaryOp::Acosh, "AcoshBackward", x, SavedFor::Input, [](const Tensor& x) { return rsqrt(x * x - 1.0); });
}
Tensor atanh(const Tensor& x) {
  return with_derivative(UnaryOp::Atanh, "AtanhBackward", x, SavedFor::Input, [](const Tensor& x) { return reciprocal(1.0 - x * x); });
}
// reciprocal: y = 1 / x (integers in float32): d/dx = -y^2;  square: y = x^2 (dtype kept): 2 x
Tensor reciprocal(const Tensor& x) {
  return with_derivative(UnaryOp::Reciprocal, "ReciprocalBackward", x, SavedFor::Output, [](const Tensor& y) { return -(y * y); });
}
Tensor square(const Tensor& x) {
  return with_derivative(UnaryOp::Square, "SquareBackward", x, SavedFor::Input, [](const Tensor& x) { return x * 2.0; });
}
Tensor floor(const Tensor& x) { return with_zero_derivative(UnaryOp::Floor, "FloorBackward", x); }
Tensor ceil(const Tensor& x) { return with_zero_derivative(UnaryOp::Ceil, "CeilBackward", x); }
Tensor round(const Tensor& x) { return with_zero_derivative(UnaryOp::Round, "RoundBackward", x); }
Tensor trunc(const Tensor& x) { return with_zero_derivative(UnaryOp::Trunc, "TruncBackward", x); }
// frac: y = x - trunc(x): dx = dy (trunc is piecewise constant)
Tensor frac(const Tensor& x) {
  Tensor y = map(UnaryOp::Frac, x);
  if (should_record({&x})) record("FracBackward", {x}, {y}, {}, [](const BackwardContext&, const TensorList& g) { return TensorList{g[0]}; });
  return y;
}

}  // namespace tg
