// Scalar math shared by the CPU and CUDA kernels (HD marks host+device functions). A kernel
// instantiates its loop with one functor; the op layer picks the functor from the enum.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/float_bits.h"

namespace tg {

// ---- the elementwise ops, each once --------------------------------------------------------------
// One line per op: its enum name, its name in messages, the dtypes it takes, and what it computes
// of x (unary) or of a and b (binary), T being the compute type. The enums, op_name, dtypes_of,
// apply_unary / apply_binary and both backends' dispatch switches all expand these two lists, so a
// new op is one line here, plus its op function with the backward (declared in ops.h), its binding
// (which also exports it from tapegrad) and its row in tests/op_specs.py.
//   Numeric  any number type, the result in it (integers keep their dtype)
//   Float    integers are computed in float32, as PyTorch does
//   Integer  integers only (bitwise ops)
//   ToBool   any dtype in, bool out (logical_not, the comparisons and logical binary ops)
#define TG_UNARY_OPS(X)                                  \
  X(Neg,        "neg",         Numeric, fn::neg(x))      \
  X(Abs,        "abs",         Numeric, fn::abs(x))      \
  X(Exp,        "exp",         Float,   fn::exp_vec(x))  \
  X(Log,        "log",         Float,   std::log(x))     \
  X(Sqrt,       "sqrt",        Float,   std::sqrt(x))    \
  X(Rsqrt,      "rsqrt",       Float,   fn::rsqrt(x))    \
  X(Sin,        "sin",         Float,   std::sin(x))     \
  X(Cos,        "cos",         Float,   std::cos(x))     \
  X(Tanh,       "tanh",        Float,   fn::tanh_vec(x)) \
  X(Sigmoid,    "sigmoid",     Float,   fn::sigmoid(x))  \
  X(Relu,       "relu",        Numeric, fn::relu(x))     \
  X(Gelu,       "gelu",        Float,   fn::gelu(x))     \
  X(GeluTanh,   "gelu",        Float,   fn::gelu_tanh(x)) \
  X(Silu,       "silu",        Float,   fn::silu(x))     \
  X(Softplus,   "softplus",    Float,   fn::softplus(x)) \
  X(Erf,        "erf",         Float,   fn::erf_vec(x))  \
  X(Sign,       "sign",        Numeric, fn::sign(x))     \
  X(LogicalNot, "logical_not", ToBool,  !x)              \
  X(BitwiseNot, "bitwise_not", Integer, T(~x))           \
  X(Log2,       "log2",        Float,   std::log2(x))    \
  X(Log10,      "log10",       Float,   std::log10(x))   \
  X(Log1p,      "log1p",       Float,   std::log1p(x))   \
  X(Expm1,      "expm1",       Float,   std::expm1(x))   \
  X(Exp2,       "exp2",        Float,   std::exp2(x))    \
  X(Tan,        "tan",         Float,   std::tan(x))     \
  X(Asin,       "asin",        Float,   std::asin(x))    \
  X(Acos,       "acos",        Float,   std::acos(x))    \
  X(Atan,       "atan",        Float,   std::atan(x))    \
  X(Sinh,       "sinh",        Float,   std::sinh(x))    \
  X(Cosh,       "cosh",        Float,   std::cosh(x))    \
  X(Asinh,      "asinh",       Float,   std::asinh(x))   \
  X(Acosh,      "acosh",       Float,   std::acosh(x))   \
  X(Atanh,      "atanh",       Float,   std::atanh(x))   \
  X(Reciprocal, "reciprocal",  Float,   T(1) / x)        \
  X(Square,     "square",      Numeric, T(x * x))        \
  X(Floor,      "floor",       Numeric, fn::floor(x))    \
  X(Ceil,       "ceil",        Numeric, fn::ceil(x))     \
  X(Round,      "round",       Numeric, fn::round(x))    \
  X(Trunc,      "trunc",       Numeric, fn::trunc(x))    \
  X(Frac,       "frac",        Float,   x - std::trunc(x)) \
  X(Softsign,   "softsign",    Float,   x / (T(1) + fn::abs(x)))             \
  X(Mish,       "mish",        Float,   x * fn::tanh_vec(fn::softplus(x)))   \
  X(LogSigmoid, "logsigmoid",  Float,   -fn::softplus(-x))                   \
  X(Hardsigmoid, "hardsigmoid", Float,  fn::hardsigmoid(x))                  \
  X(Hardswish,  "hardswish",   Float,   x * fn::hardsigmoid(x))              \
  X(Selu,       "selu",        Float,   fn::selu(x))         \
  X(IsNan,      "isnan",       ToBool,  x != x)               \
  X(IsInf,      "isinf",       ToBool,  fn::is_inf(x))        \
  X(IsFinite,   "isfinite",    ToBool,  fn::is_finite(x))
#define TG_BINARY_OPS(X)                                                                                        \
  X(Add,                          "add",                              Numeric, T(a + b))                          \
  X(Sub,                          "sub",                              Numeric, T(a - b))                          \
  X(Mul,                          "mul",                              Numeric, T(a * b))                          \
  X(Div,                          "div",                              Numeric, T(a / b))                          \
  X(Pow,                          "pow",                              Numeric, fn::pow(a, b))                     \
  X(Maximum,                      "maximum",                          Numeric, fn::maximum(a, b))                 \
  X(Minimum,                      "minimum",                          Numeric, fn::minimum(a, b))                 \
  X(FloorDivide,                  "floor_divide",                     Numeric, fn::floor_divide(a, b))            \
  X(Remainder,                    "remainder",                        Numeric, fn::remainder(a, b))               \
  X(Fmod,                         "fmod",                             Numeric, fn::fmod(a, b))                    \
  X(Atan2,                        "atan2",                            Float,   T(std::atan2(a, b)))               \
  X(Copysign,                     "copysign",                         Float,   T(std::copysign(a, b)))            \
  X(LeakyRelu,                    "leaky_relu",                       Float,   T(a > T(0) ? a : a * b)) /* b: slope */ \
  X(Elu,                          "elu",                              Float,   T(a > T(0) ? a : b * std::expm1(a))) /* b: alpha */ \
  X(Celu,                         "celu",                             Float,   T(a > T(0) ? a : b * std::expm1(a / b)))   \
  X(GeluBackward,                 "gelu_backward",                    Numeric, T(a * fn::gelu_grad(b))) /* dy, x */ \
  X(GeluTanhBackward,             "gelu_backward",                    Numeric, T(a * fn::gelu_tanh_grad(b)))      \
  X(SquaredDifference,            "mse_loss",                         Numeric, T((a - b) * (a - b)))              \
  X(BinaryCrossEntropy,           "binary_cross_entropy",             Numeric, T(fn::binary_cross_entropy(a, b))) \
  X(BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits", Numeric,                                  \
    T(fn::binary_cross_entropy_with_logits(a, b)))                                                              \
  X(BitwiseAnd,                   "bitwise_and",                      Integer, T(a & b))                          \
  X(BitwiseOr,                    "bitwise_or",                       Integer, T(a | b))                          \
  X(BitwiseXor,                   "bitwise_xor",                      Integer, T(a ^ b))                          \
  X(BitwiseLeftShift,             "bitwise_left_shift",               Integer, fn::shift_left(a, b))              \
  X(BitwiseRightShift,            "bitwise_right_shift",              Integer, fn::shift_right(a, b))             \
  X(Eq,                           "eq",                               ToBool,  a == b)                            \
  X(Ne,                           "ne",                               ToBool,  a != b)                            \
  X(Lt,                           "lt",                               ToBool,  a < b)                             \
  X(Le,                           "le",                               ToBool,  a <= b)                            \
  X(Gt,                           "gt",                               ToBool,  a > b)                             \
  X(Ge,                           "ge",                               ToBool,  a >= b)                            \
  X(LogicalAnd,                   "logical_and",                      ToBool,  bool(a) && bool(b))                \
  X(LogicalOr,                    "logical_or",                       ToBool,  bool(a) || bool(b))

#define TG_OP_ENUM_ENTRY(NAME, STR, DTYPES, EXPR) NAME,
enum class UnaryOp : uint8_t { TG_UNARY_OPS(TG_OP_ENUM_ENTRY) };
enum class BinaryOp : uint8_t { TG_BINARY_OPS(TG_OP_ENUM_ENTRY) };
#undef TG_OP_ENUM_ENTRY

enum class OpDtypes : uint8_t { Numeric, Float, Integer, ToBool };

#define TG_OP_NAME_CASE(NAME, STR, DTYPES, EXPR) case Op::NAME: return STR;
#define TG_OP_DTYPES_CASE(NAME, STR, DTYPES, EXPR) case Op::NAME: return OpDtypes::DTYPES;
constexpr const char* op_name(UnaryOp op) {
  using Op = UnaryOp;
  switch (op) { TG_UNARY_OPS(TG_OP_NAME_CASE) }
  return "unary";
}
constexpr const char* op_name(BinaryOp op) {
  using Op = BinaryOp;
  switch (op) { TG_BINARY_OPS(TG_OP_NAME_CASE) }
  return "binary";
}
constexpr OpDtypes dtypes_of(UnaryOp op) {
  using Op = UnaryOp;
  switch (op) { TG_UNARY_OPS(TG_OP_DTYPES_CASE) }
  return OpDtypes::Float;
}
constexpr OpDtypes dtypes_of(BinaryOp op) {
  using Op = BinaryOp;
  switch (op) { TG_BINARY_OPS(TG_OP_DTYPES_CASE) }
  return OpDtypes::Numeric;
}
#undef TG_OP_NAME_CASE
#undef TG_OP_DTYPES_CASE

// A unary op whose result keeps an integer input's dtype.
constexpr bool keeps_integer_dtype(UnaryOp op) {
  return dtypes_of(op) == OpDtypes::Numeric || dtypes_of(op) == OpDtypes::Integer;
}
constexpr bool is_comparison_op(BinaryOp op) { return dtypes_of(op) == OpDtypes::ToBool; }  // bool out
constexpr bool is_bitwise_op(BinaryOp op) { return dtypes_of(op) == OpDtypes::Integer; }

namespace fn {

template <class T> HD T neg(T x) { return -x; }
template <class T> HD T abs(T x) { return x < T(0) ? -x : x; }
// exp for float in straight-line code the vectoriser can widen (std::exp is a libm call per
// element): 2^n * e^r with n = round(x log2 e), |r| <= ln2 / 2, e^r by Cephes' degree-7
// polynomial (about 1 ulp). exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN.
// Only the underflow needs a select at the end: the clamps let NaN through (every comparison
// with NaN is false) and NaN stays NaN through the arithmetic; above ln(FLT_MAX) = 88.7228 the
// clamp at 89 keeps n = 128, so p * 2^128 overflows to inf by itself. kCanOverflow = false: the
// caller knows x <= 0 (or NaN), as in exp(x - max x) and exp(-x^2), and the upper clamp goes.
template <bool kCanOverflow = true>
HD float exp_float(float x) {
  float xc = x < -86.5f ? -86.5f : x;
  if constexpr (kCanOverflow) xc = xc > 89.0f ? 89.0f : xc;
  const float shifted = xc * 1.44269504088896341f + 12582912.0f;  // 1.5 * 2^23: rounds to an integer
  const float n = shifted - 12582912.0f;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^(n-1): n reaches 128 just below the overflow. Unsigned, so a NaN's bits (whose y is NaN
  // through p anyway) shift without signed overflow.
  const float scale = bits_to_float((float_to_bits(shifted) - 0x4B400000u + 126u) << 23);
  const float y = (p * scale) * 2.0f;
  // Below -86.5 the true value is under 3e-38: flushed to 0 (and exp(-inf) = 0 exactly).
  return x < -86.5f ? 0.0f : y;
}
// erf for float, straight-line (both branches computed, one selected) so loops vectorise.
//   |x| < 0.5:  the Taylor series 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)), n <= 7
//               (truncation below 1e-9 relative);
//   |x| >= 0.5: erf = 1 - erfc, erfc(a) = exp(-a^2) t Q(t), t = 1 / (1 + a/2), Q a degree-6
//               least-squares fit on a in [0.5, 4] (relative error 6e-8; kernels/fit_float_math.py).
// About 2 ulp from the correctly rounded value; erf(+-inf) = +-1, NaN stays NaN.
HD float erf_float(float x) {
  const float a = x < 0.0f ? -x : x, u = a * a;
  float s = -1.4925650358e-05f;
  s = s * u + 1.2055332982e-04f;
  s = s * u + -8.5483270235e-04f;
  s = s * u + 5.2239776254e-03f;
  s = s * u + -2.6866170645e-02f;
  s = s * u + 1.1283791671e-01f;
  s = s * u + -3.7612638903e-01f;
  s = s * u + 1.1283791671e+00f;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = 1.0507899070e-01f;
  q = q * t + -4.1681946214e-01f;
  q = q * t + 4.7553967053e-01f;
  q = q * t + -2.5981732556e-02f;
  q = q * t + 3.0712455010e-01f;
  q = q * t + 2.7230644081e-01f;
  q = q * t + 2.8276722333e-01f;
  const float r = a < 0.5f ? a * s : 1.0f - exp_float<false>(-u) * t * q;
  return x < 0.0f ? -r : (x == 0.0f ? x : r);  // keeps the sign of -0
}

// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 for float, from one erfc form on the
// whole line (no series branch, so about half erf_float's work):
//   a = |x| / sqrt 2,  erfc(a) = exp(-a^2) t Q(t),  t = 1 / (1 + a/2),  Q of degree 8 fitted on
//   a in [0, 9.5] (relative error 1.4e-7; kernels/fit_float_math.py);
//   x < 0: Phi = erfc(a) / 2, accurate relative to itself (gelu's negative tail keeps its digits,
//          where 1 + erf(x / sqrt 2) would cancel); x >= 0: Phi = 1 - erfc(a) / 2.
// About 4e-7 relative; Phi(-inf) = 0, Phi(inf) = 1, NaN stays NaN.
HD float normal_cdf_float(float x) {
  const float a = (x < 0.0f ? -x : x) * 0.70710678118654752440f;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = -6.1273979431e-02f;
  q = q * t + 2.9449899243e-01f;
  q = q * t + -5.0602635629e-01f;
  q = q * t + 2.9765056064e-01f;
  q = q * t + -3.8789432742e-02f;
  q = q * t + 2.0728548789e-01f;
  q = q * t + 2.4207497623e-01f;
  q = q * t + 2.8249934660e-01f;
  q = q * t + 2.8208026332e-01f;
  const float half_erfc = 0.5f * exp_float<false>(-0.5f * x * x) * t * q;  // e^(-a^2) = e^(-x^2/2)
  return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

// tanh for float, straight-line like erf_float.
//   |x| < 0.625: x P(x^2), P a degree-5 least-squares fit of tanh(x)/x (1e-7 relative);
//   otherwise:   1 - 2 / (exp(2|x|) + 1), which tends to 1 without overflow (exp -> inf gives 1).
HD float tanh_float(float x) {
  const float a = x < 0.0f ? -x : x, u = a * a;
  float p = -5.7722020506e-03f;
  p = p * u + 2.0692378779e-02f;
  p = p * u + -5.3752824676e-02f;
  p = p * u + 1.3331528597e-01f;
  p = p * u + -3.3333277975e-01f;
  p = p * u + 9.9999999726e-01f;
  const float r = a < 0.625f ? a * p : 1.0f - 2.0f / (exp_float(2.0f * a) + 1.0f);
  return x < 0.0f ? -r : (x == 0.0f ? x : r);
}

// The float versions above where the compiler would otherwise call libm per element (on the
// host; CUDA's own erff/tanhf/expf are already fast), std:: for double.
#ifdef __CUDA_ARCH__
template <class T> HD T exp_vec(T x) { return std::exp(x); }
template <class T> HD T exp_nonpositive(T x) { return std::exp(x); }
template <class T> HD T erf_vec(T x) { return std::erf(x); }
template <class T> HD T tanh_vec(T x) { return std::tanh(x); }
template <class T> HD T normal_cdf(T x) { return T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440))); }
#else
template <class T> HD T normal_cdf(T x) { return T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440))); }
template <> HD float normal_cdf(float x) { return normal_cdf_float(x); }
template <class T> HD T exp_vec(T x) { return std::exp(x); }
template <> HD float exp_vec(float x) { return exp_float(x); }
// exp of an x known to be <= 0 (or NaN): x - max, x - logsumexp, -x^2 / 2.
template <class T> HD T exp_nonpositive(T x) { return std::exp(x); }
template <> HD float exp_nonpositive(float x) { return exp_float<false>(x); }
template <class T> HD T erf_vec(T x) { return std::erf(x); }
template <> HD float erf_vec(float x) { return erf_float(x); }
template <class T> HD T tanh_vec(T x) { return std::tanh(x); }
template <> HD float tanh_vec(float x) { return tanh_float(x); }
#endif

// sigmoid(x) = 1 / (1 + e^-x): one exp and one division, no branch. For very negative x, e^-x
// overflows to inf and the quotient is 0, the true value rounded (below 1e-38 in float32);
// for very positive x it is 1; relative error about 2 ulp throughout.
template <class T> HD T sigmoid(T x) { return T(1) / (T(1) + exp_vec(-x)); }
template <class T> HD T relu(T x) { return x > T(0) ? x : T(0); }
// gelu(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))
template <class T> HD T gelu(T x) { return x * normal_cdf(x); }
// tanh form: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
template <class T> HD T gelu_tanh(T x) {
  return T(0.5) * x * (T(1) + tanh_vec(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
}
template <class T> HD T silu(T x) { return x * sigmoid(x); }
// gelu's derivatives, written here only (the op differentiates its composite reference under create_graph):
// erf form:  d gelu / dx = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi)
template <class T> HD T gelu_grad(T x) {
  const T cdf = normal_cdf(x);
  const T pdf = exp_nonpositive(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}
// tanh form: t = tanh u, u = sqrt(2/pi) (x + 0.044715 x^3):
//            d gelu / dx = (1 + t) / 2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
template <class T> HD T gelu_tanh_grad(T x) {
  const T t = tanh_vec(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
  const T du = T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x * x);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}
// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
template <class T> HD T softplus(T x) { return (x > T(0) ? x : T(0)) + std::log1p(std::exp(x > T(0) ? -x : x)); }
// Binary cross-entropy of a probability p against a target t, each log clamped at -100 as
// PyTorch does, so p = 0 or 1 gives a finite loss.
template <class T> HD T binary_cross_entropy(T p, T t) {
  const T log_p = std::log(p), log_q = std::log(T(1) - p);
  return -(t * (log_p > T(-100) ? log_p : T(-100)) + (T(1) - t) * (log_q > T(-100) ? log_q : T(-100)));
}
// The same of p = sigmoid(x), stably: -(t log s(x) + (1 - t) log s(-x)) = (1 - t) x + softplus(-x).
template <class T> HD T binary_cross_entropy_with_logits(T x, T t) { return (T(1) - t) * x + softplus(-x); }
// Classification of floats; an integer or bool is always finite.
template <class T> HD bool is_inf(T x) {
  if constexpr (std::is_floating_point_v<T>) return x == T(INFINITY) || x == T(-INFINITY);
  else return false;
}
template <class T> HD bool is_finite(T x) {
  if constexpr (std::is_floating_point_v<T>) return x == x && !is_inf(x);
  else return true;
}
// Shifts of integers, defined for every count as PyTorch: a count outside [0, bits) shifts every
// bit out (0, or -1 for a negative number shifted right) instead of being undefined in C.
template <class T> HD T shift_left(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return b < T(0) || b >= T(8 * sizeof(T)) ? T(0) : T(static_cast<std::make_unsigned_t<T>>(a) << b);
  } else {
    return a;
  }
}
template <class T> HD T shift_right(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return b < T(0) || b >= T(8 * sizeof(T)) ? T(a < T(0) ? -1 : 0) : T(a >> b);
  } else {
    return a;
  }
}
// hardsigmoid(x) = clamp(x / 6 + 1 / 2, 0, 1); hardswish(x) = x hardsigmoid(x)
template <class T> HD T hardsigmoid(T x) { return x <= T(-3) ? T(0) : x >= T(3) ? T(1) : x / T(6) + T(0.5); }
// selu(x) = scale (x > 0 ? x : alpha (e^x - 1)), the self-normalising constants of Klambauer et al.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717, kSeluScale = 1.0507009873554804934193349852946;
template <class T> HD T selu(T x) { return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * std::expm1(x)); }
template <class T> HD T sign(T x) { return T((T(0) < x) - (x < T(0))); }
// Rounding: integers are their own floor, ceil, round and trunc. round is to nearest, ties to
// even (nearbyint in the default rounding mode), as NumPy and PyTorch.
template <class T> HD T floor(T x) { if constexpr (std::is_integral_v<T>) return x; else return std::floor(x); }
template <class T> HD T ceil(T x) { if constexpr (std::is_integral_v<T>) return x; else return std::ceil(x); }
template <class T> HD T round(T x) { if constexpr (std::is_integral_v<T>) return x; else return std::nearbyint(x); }
template <class T> HD T trunc(T x) { if constexpr (std::is_integral_v<T>) return x; else return std::trunc(x); }
// Division that rounds toward -inf, and the remainder that goes with it (the divisor's sign):
//   a = b floor_divide(a, b) + remainder(a, b)       (Python's // and %)
// fmod is C's: the quotient truncated, the remainder with the dividend's sign.
// Floats follow Python's float divmod (and NumPy's, PyTorch's): from fmod, which is exact, with the
// quotient rounded to the nearest integer of (a - mod) / b, so that 1.0 // 0.1 is 9.0, not 10.0.
// A zero divisor gives inf / NaN for floats; integer ops check for it before the kernel runs (the
// kernel would trap), and b = -1 is its own case: INT64_MIN / -1 overflows (and traps) in C.
template <class T> HD T fmod(T a, T b) {
  if constexpr (std::is_integral_v<T>) return b == T(-1) ? T(0) : b == T(0) ? T(0) : T(a % b);
  else return std::fmod(a, b);
}
template <class T> HD T remainder(T a, T b) {
  const T m = fn::fmod(a, b);
  return m != T(0) && ((m < T(0)) != (b < T(0))) ? T(m + b) : m;
}
template <class T> HD T floor_divide(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == T(-1)) return T(T(0) - static_cast<std::make_unsigned_t<T>>(a));  // wraps, as PyTorch
    if (b == T(0)) return T(0);
    const T q = a / b;
    return (a % b != T(0)) && ((a < T(0)) != (b < T(0))) ? T(q - 1) : q;
  } else {
    if (b == T(0)) return a / b;
    const T mod = std::fmod(a, b);
    T div = (a - mod) / b;
    if (mod != T(0) && ((b < T(0)) != (mod < T(0)))) div -= T(1);
    if (div == T(0)) return std::copysign(T(0), a / b);
    const T floor_div = std::floor(div);
    return div - floor_div > T(0.5) ? floor_div + T(1) : floor_div;
  }
}
template <class T> HD T rsqrt(T x) { return T(1) / std::sqrt(x); }

template <class T> HD T pow(T a, T b) { return std::pow(a, b); }
template <> HD int64_t pow(int64_t a, int64_t b) {  // exponentiation by squaring, as PyTorch
  if (b < 0) return a == 1 ? 1 : (a == -1 ? (b % 2 ? -1 : 1) : 0);
  int64_t r = 1;
  while (b) {
    if (b & 1) r *= a;
    a *= a;
    b >>= 1;
  }
  return r;
}
// maximum/minimum propagate NaN, as NumPy and PyTorch do.
template <class T> HD T maximum(T a, T b) { return (a != a) ? a : (b != b) ? b : (a > b ? a : b); }
template <class T> HD T minimum(T a, T b) { return (a != a) ? a : (b != b) ? b : (a < b ? a : b); }

}  // namespace fn

// The table's expression of the op: apply_unary<UnaryOp::Exp>(x) is fn::exp_vec(x). One
// `if constexpr` per line of the table; only the op's own line is compiled.
#define TG_APPLY_OP(NAME, STR, DTYPES, EXPR) if constexpr (op == Op::NAME) return EXPR; else
template <UnaryOp op, class T>
HD T apply_unary(T x) {
  using Op = UnaryOp;
  TG_UNARY_OPS(TG_APPLY_OP) return T();
}

// Arithmetic ops return T; comparisons and logical ops return bool.
template <BinaryOp op, class T>
HD auto apply_binary(T a, T b) {
  using Op = BinaryOp;
  TG_BINARY_OPS(TG_APPLY_OP) return T();
}
#undef TG_APPLY_OP

}  // namespace tg
