"""tapegrad: a small reverse-mode autodiff tensor library with a C++ core.

    import tapegrad as tg
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad  # tensor([2., 4., 6.])
"""
from typing import TYPE_CHECKING

from . import _C
from ._C import (  # noqa: F401  (re-exported API)
    Tensor, dtype, device, ShapeError,
    zeros, ones, empty, full, rand, randn, randint, arange, linspace, eye, manual_seed, initial_seed, from_numpy,
    from_dlpack,
    where, reshape, permute, transpose, unsqueeze, squeeze, flatten,
    broadcast_to, cat, concat, stack, split, chunk, clone, detach, nonzero, is_grad_enabled,
    set_num_threads, get_num_threads,
)
# Every math function bound both as tg.f(x) and as x.f() (bindings/functions.cpp's both()):
# exp, tanh, gelu, sum, softmax, ... A new op is exported by its binding.
globals().update({name: getattr(_C, name) for name in _C._functions})
if TYPE_CHECKING:  # the same names, as type checkers and editors read them (from the stubs' __all__)
    from ._C import *  # noqa: F401,F403
from ._tensor import tensor, zeros_like, ones_like, full_like, empty_like, rand_like, randn_like  # noqa: F401
from .autograd import no_grad, enable_grad, set_grad_enabled, grad  # noqa: F401
from .tape import GradientTape  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from . import cuda, data, distributed, func, linalg, nn, optim, viz  # noqa: F401
from .io import save, load  # noqa: F401

float32 = dtype.float32
float64 = dtype.float64
bfloat16 = dtype.bfloat16  # stored in 16 bits, computed in float32; .numpy() gives float32
float16 = dtype.float16  # stored in 16 bits, computed in float32
int64 = dtype.int64
int32 = dtype.int32  # int32, int16, int8 and uint8 are stored narrow and computed in int64
int16 = dtype.int16
int8 = dtype.int8
uint8 = dtype.uint8
bool = dtype.bool  # noqa: A001  (tg.bool, as torch.bool)
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001  (as torch.int)
short = int16
half = float16

__version__ = "0.1.0"
