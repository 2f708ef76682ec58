"""The basic layers: Linear (= Dense), Embedding, LayerNorm, Dropout and activations. Defaults
and initialisation follow PyTorch, so weights copied across give the same outputs."""
import math

from .. import _C
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x W^T + b; W (out_features, in_features), initialised kaiming-uniform(a=sqrt 5) as in
    PyTorch, b uniform(+-1/sqrt(in_features)). `activation` (a name or callable) is applied after,
    for the Keras-style Dense(units, activation=...) of the documents."""

    def __init__(self, in_features, out_features, bias=True, activation=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_C.empty(out_features, in_features, dtype=dtype))
        self.bias = Parameter(_C.empty(out_features, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.activation = _activation(activation)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        return self.activation(y) if self.activation else y

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


Dense = Linear


def _activation(a):
    if a is None or callable(a):
        return a
    table = {"relu": _C.relu, "sigmoid": _C.sigmoid, "tanh": _C.tanh, "gelu": _C.gelu, "silu": _C.silu,
             "softmax": lambda x: _C.softmax(x, -1), "linear": None}
    if a not in table:
        raise ValueError(f"unknown activation '{a}'")
    return table[a]


class Embedding(Module):
    """A lookup table: indices (...) -> vectors (..., embedding_dim); weight ~ N(0, 1), the
    padding row zero and never updated."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} embeddings")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx % num_embeddings if padding_idx is not None else None
        self.weight = Parameter(_C.randn(num_embeddings, embedding_dim, dtype=dtype))
        if self.padding_idx is not None:
            from ..autograd import no_grad
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(_C.ones(*self.normalized_shape, dtype=dtype))
            self.bias = Parameter(_C.zeros(*self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class _Activation(Module):
    fn = None

    def forward(self, x):
        return type(self).fn(x)


class ReLU(_Activation):
    fn = staticmethod(_C.relu)


class Sigmoid(_Activation):
    fn = staticmethod(_C.sigmoid)


class Tanh(_Activation):
    fn = staticmethod(_C.tanh)


class SiLU(_Activation):
    fn = staticmethod(_C.silu)


class ReLU6(_Activation):
    fn = staticmethod(_C.relu6)


class SELU(_Activation):
    fn = staticmethod(_C.selu)


class Softsign(_Activation):
    fn = staticmethod(_C.softsign)


class Mish(_Activation):
    fn = staticmethod(_C.mish)


class LogSigmoid(_Activation):
    fn = staticmethod(_C.logsigmoid)


class Hardsigmoid(_Activation):
    fn = staticmethod(_C.hardsigmoid)


class Hardswish(_Activation):
    fn = staticmethod(_C.hardswish)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return _C.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return _C.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class CELU(ELU):
    def forward(self, x):
        return _C.celu(x, self.alpha)


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return _C.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)
