// The activation functions of neural networks beyond relu, gelu, silu and softplus (unary.cpp):
// each forward is one elementwise pass (its functor in kernels/functors.h; a parameter such as
// leaky_relu's slope travels as the second operand of a binary functor, a number broadcast over
// x), each backward is tensor ops, so it differentiates again.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// A number next to x, in x's dtype rules (broadcast by the op that meets it).
Tensor number(double v, const Tensor& x) { return wrap_scalar(v, x); }

// y = f(x) with dx = dy * derivative(x, y).
Tensor activation(UnaryOp op, const char* node, const Tensor& x, Tensor (*derivative)(const Tensor& x, const Tensor& y)) {
  Tensor y = unary_op(op, x);
  if (should_record({&x}))
    record(node, {x}, {y}, {x, y}, [derivative](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] * derivative(c.saved(0), c.saved(1))};
    });
  return y;
}

// y = f(x; p) for a number p, with dx = dy * derivative(x, y, p).
Tensor activation(BinaryOp op, const char* node, const Tensor& x, double p,
                  Tensor (*derivative)(const Tensor& x, const Tensor& y, double p)) {
  TG_CHECK(is_floating(x.dtype()), TypeError, op_name(op), ": expected a floating-point tensor, got ", dtype_name(x.dtype()),
           " of shape ", shape_str(x.shape()));
  Tensor y;
  {
    GradModeGuard no_grad(false);
    y = binary_op(op, x, wrap_scalar(p, x));
  }
  if (should_record({&x}))
    record(node, {x}, {y}, {x, y}, [derivative, p](const BackwardContext& c, const TensorList& g) {
      return TensorList{g[0] * derivative(c.saved(0), c.saved(1), p)};
    });
  return y;
}

}  // namespace

// leaky_relu(x) = x > 0 ? x : slope x;  d/dx = x > 0 ? 1 : slope
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return activation(BinaryOp::LeakyRelu, "LeakyReluBackward", x, negative_slope, [](const Tensor& x, const Tensor&, double slope) {
    return where(gt(x, number(0.0, x)), ones_like(x), number(slope, x));  // a tensor arm: x's dtype, not a number's
  });
}

// elu(x) = x > 0 ? x : alpha (e^x - 1);  d/dx = x > 0 ? 1 : alpha e^x = y + alpha
Tensor elu(const Tensor& x, double alpha) {
  return activation(BinaryOp::Elu, "EluBackward", x, alpha, [](const Tensor& x, const Tensor& y, double alpha) {
    return where(gt(x, number(0.0, x)), number(1.0, x), y + alpha);
  });
}

// celu(x) = x > 0 ? x : alpha (e^(x / alpha) - 1);  d/dx = x > 0 ? 1 : e^(x / alpha)
Tensor celu(const Tensor& x, double alpha) {
  TG_CHECK(alpha != 0, ValueError, "celu: alpha must not be 0 (it divides x), input of shape ", shape_str(x.shape()));
  return activation(BinaryOp::Celu, "CeluBackward", x, alpha, [](const Tensor& x, const Tensor&, double alpha) {
    return where(gt(x, number(0.0, x)), number(1.0, x), exp(x / alpha));
  });
}

// selu(x) = scale (x > 0 ? x : alpha (e^x - 1));  d/dx = scale (x > 0 ? 1 : alpha e^x)
Tensor selu(const Tensor& x) {
  return activation(UnaryOp::Selu, "SeluBackward", x, [](const Tensor& x, const Tensor&) {
    return where(gt(x, number(0.0, x)), number(fn::kSeluScale, x), exp(x) * (fn::kSeluScale * fn::kSeluAlpha));
  });
}

// softsign(x) = x / (1 + |x|);  d/dx = 1 / (1 + |x|)^2
Tensor softsign(const Tensor& x) {
  return activation(UnaryOp::Softsign, "SoftsignBackward", x, [](const Tensor& x, const Tensor&) {
    const Tensor d = abs(x) + 1.0;
    return reciprocal(d * d);
  });
}

// mish(x) = x tanh(softplus(x));  d/dx = t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))
Tensor mish(const Tensor& x) {
  return activation(UnaryOp::Mish, "MishBackward", x, [](const Tensor& x, const Tensor&) {
    const Tensor t = tanh(softplus(x));
    return t + x * sigmoid(x) * (1.0 - t * t);
  });
}

// logsigmoid(x) = log(1 / (1 + e^-x)) = -softplus(-x);  d/dx = sigmoid(-x)
Tensor logsigmoid(const Tensor& x) {
  return activation(UnaryOp::LogSigmoid, "LogSigmoidBackward", x, [](const Tensor& x, const Tensor&) { return sigmoid(-x); });
}

// hardsigmoid(x) = clamp(x / 6 + 1/2, 0, 1);  d/dx = 1/6 on (-3, 3), else 0
Tensor hardsigmoid(const Tensor& x) {
  return activation(UnaryOp::Hardsigmoid, "HardsigmoidBackward", x, [](const Tensor& x, const Tensor&) {
    const Tensor inside = logical_and(gt(x, number(-3.0, x)), lt(x, number(3.0, x)));
    return where(inside, number(1.0 / 6.0, x), zeros_like(x));
  });
}

// hardswish(x) = x hardsigmoid(x);  d/dx = 0 below -3, x / 3 + 1/2 on [-3, 3], 1 above (PyTorch's)
Tensor hardswish(const Tensor& x) {
  return activation(UnaryOp::Hardswish, "HardswishBackward", x, [](const Tensor& x, const Tensor&) {
    return where(lt(x, number(-3.0, x)), number(0.0, x),
                 where(le(x, number(3.0, x)), x / 3.0 + 0.5, number(1.0, x)));
  });
}

// hardtanh(x) = clamp(x, min, max), gradient 1 between them; relu6 = hardtanh(x, 0, 6)
Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  TG_CHECK(min_val <= max_val, ValueError, "hardtanh: min_val (", min_val, ") must not exceed max_val (", max_val,
           "), input of shape ", shape_str(x.shape()));
  return clamp(x, min_val, max_val);
}
Tensor relu6(const Tensor& x) { return hardtanh(x, 0.0, 6.0); }

}  // namespace tg
