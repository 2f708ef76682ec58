"""Tensor creation from Python data, and the parts of Tensor that are presentation only
(repr, iteration). Arithmetic never happens here."""
import builtins

import numpy as np

from . import _C
from ._C import Tensor, dtype as _dtype

_FROM_NUMPY = {np.dtype(np.float32): _dtype.float32, np.dtype(np.float64): _dtype.float64,
               np.dtype(np.float16): _dtype.float16, np.dtype(np.int64): _dtype.int64, np.dtype(np.int32): _dtype.int32,
               np.dtype(np.int16): _dtype.int16, np.dtype(np.int8): _dtype.int8, np.dtype(np.uint8): _dtype.uint8,
               np.dtype(np.bool_): _dtype.bool}
_TO_NUMPY = {v: k for k, v in _FROM_NUMPY.items()}


def _numpy_of(data, dtype):
    """The NumPy array for `data`, with PyTorch's dtype inference: NumPy arrays keep their dtype
    (the unsigned ints wider than uint8 become int64, float128 float64); Python floats become
    float32, ints int64, bools bool."""
    if isinstance(data, Tensor):
        arr = data.detach().numpy()
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(np.float32)
        if arr.dtype == object:
            raise TypeError(f"tensor: cannot build a tensor from {type(data).__name__} data "
                            "(ragged nesting or non-numeric items)")
    if dtype is not None:  # bfloat16 goes through float32 (NumPy has none); tensor() rounds it
        return np.asarray(arr, dtype=_TO_NUMPY.get(dtype, np.float32), order="C")  # keeps 0-d arrays 0-d
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype not in _FROM_NUMPY:
        arr = arr.astype(np.float64)
    elif kind in "iu" and arr.dtype not in _FROM_NUMPY:
        arr = arr.astype(np.int64)
    elif kind not in "fiub":
        raise TypeError(f"tensor: unsupported data type {arr.dtype}; tapegrad has float16, bfloat16, float32, "
                        "float64, uint8, int8, int16, int32, int64 and bool")
    return np.asarray(arr, order="C")


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, a scalar, a NumPy array or a tensor)."""
    if dtype is None and isinstance(data, Tensor):
        dtype = data.dtype  # a bfloat16 tensor stays bfloat16 (its numpy() is float32)
    arr = _numpy_of(data, dtype)
    t = _C.from_numpy(arr.copy() if arr is data or (isinstance(data, np.ndarray) and np.shares_memory(arr, data)) else arr)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if str(device) != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _like(fn):
    def make(input, dtype=None, device=None, requires_grad=False):
        return fn(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)
    make.__name__ = fn.__name__ + "_like"
    make.__doc__ = f"Like {fn.__name__}(), with the shape (and by default dtype and device) of `input`."
    return make


zeros_like = _like(_C.zeros)
ones_like = _like(_C.ones)
empty_like = _like(_C.empty)
rand_like = _like(_C.rand)
randn_like = _like(_C.randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return _C.full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                   requires_grad=requires_grad)


def _repr(self):
    """PyTorch's format: tensor([...], dtype=..., grad_fn=<...>)."""
    arr = self.detach().numpy()
    if self.dtype.is_floating_point:
        # PyTorch: whole numbers print as "1.", anything else with 4 fixed decimals ("2.5000").
        finite = arr[np.isfinite(arr)]
        whole = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        body = np.array2string(arr, separator=", ", prefix="tensor(", precision=4,
                               floatmode="maxprec_equal" if whole else "fixed", suppress_small=False)
    else:
        body = np.array2string(arr, separator=", ", prefix="tensor(")
    extras = []
    if self.dtype not in (_dtype.float32, _dtype.int64, _dtype.bool):
        extras.append(f"dtype={self.dtype}")
    if str(self.device) != "cpu":
        extras.append(f"device='{self.device}'")
    if self.grad_fn is not None:
        extras.append(f"grad_fn={self.grad_fn!r}")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in builtins.range(self.shape[0]))


def _format(self, spec):
    if self.ndim == 0:
        return format(self.item(), spec)
    return format(_repr(self), spec)


Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.__iter__ = _iter
Tensor.__format__ = _format
Tensor.__array_priority__ = 1000  # NumPy defers `array op tensor` to the tensor's reflected op
Tensor.new_tensor = lambda self, data, dtype=None, requires_grad=False: tensor(data, dtype or self.dtype, self.device, requires_grad)
