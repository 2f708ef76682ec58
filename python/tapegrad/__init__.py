"""tapegrad: a small reverse-mode autodiff tensor library with a C++ core.

    import tapegrad as tg
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad  # tensor([2., 4., 6.])
"""
from . import _C
from ._C import (  # noqa: F401  (re-exported API)
    Tensor, dtype, device,
    zeros, ones, empty, full, rand, randn, randint, arange, linspace, eye, manual_seed, initial_seed, from_numpy,
    abs, neg, exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, relu, silu, gelu, erf, sign, logical_not,
    bitwise_not, bitwise_and, bitwise_or, bitwise_xor, ShapeError,
    add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logical_and, logical_or, matmul, mm,
    where, masked_fill, clamp, clip,
    sum, mean, amax, amin, max, min, var, std, argmax, argmin, logsumexp,
    reshape, permute, transpose, unsqueeze, squeeze, flatten, broadcast_to, cat, concat, stack, split, chunk,
    clone, detach, nonzero, gather, index_select, index_add, scatter_add, softmax, log_softmax,
    is_grad_enabled,
)
from ._tensor import tensor, zeros_like, ones_like, full_like, empty_like, rand_like, randn_like  # noqa: F401
from .autograd import no_grad, enable_grad, set_grad_enabled, grad  # noqa: F401
from .tape import GradientTape  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from . import cuda, data, nn, optim  # noqa: F401
from .io import save, load  # noqa: F401

float32 = dtype.float32
float64 = dtype.float64
bfloat16 = dtype.bfloat16  # stored in 16 bits, computed in float32; .numpy() gives float32
int64 = dtype.int64
bool = dtype.bool  # noqa: A001  (tg.bool, as torch.bool)
float = float32  # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"
