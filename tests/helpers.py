"""Shared pieces of the op-table tests: building inputs and comparing results."""
import numpy as np
from hypothesis import strategies as st

import tapegrad as tg
from op_specs import convert, make_array

DTYPE_NAMES = {"float32": tg.float32, "float64": tg.float64, "int64": tg.int64, "bool": tg.bool}
NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}


def dtype_name(d):
    """'float32' for tg.float32 / torch.float32 / np.float32."""
    s = str(d)
    for name in ("float32", "float64", "int64", "bool"):
        if s.endswith(name) or s.endswith("." + name):
            return name
    return s


def as_tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def draw_inputs(data, op, dtype, min_side=0):
    """(numpy arrays, params) for one example of `op` at `dtype`."""
    shapes, params = data.draw(op.case(min_side), label="shapes, params")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    arrays = [make_array(s, dt, op.domain_of(i), rng) for i, (s, dt) in enumerate(zip(shapes, op.input_dtypes(dtype)))]
    return arrays, params


def reference_inputs(arrays):
    """NumPy references run in float64 for float inputs."""
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def tolerance(dtype_name_, op=None):
    if dtype_name_ == "float32":
        return dict(rtol=1e-4, atol=op.atol32 if op is not None else 1e-5)
    return dict(rtol=1e-9, atol=1e-11)


def assert_matches(out, ref, op=None, what=""):
    """out (a tg tensor) equals the NumPy value ref in shape and (within the dtype's tolerance) value."""
    ref = np.asarray(ref)
    assert isinstance(out, tg.Tensor), f"{what}: expected a tapegrad Tensor, got {type(out)}"
    assert tuple(out.shape) == ref.shape, f"{what}: shape {tuple(out.shape)} != reference {ref.shape}"
    got = out.numpy()
    assert got.shape == ref.shape
    name = dtype_name(out.dtype)
    if name in ("int64", "bool"):
        np.testing.assert_array_equal(got, ref.astype(got.dtype), err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), equal_nan=True,
                                   err_msg=what, **tolerance(name, op))


def tg_inputs(arrays, layout="c", requires_grad=False):
    """tapegrad tensors for `arrays`; layout "f" hands over Fortran-ordered (strided) views."""
    out = []
    for a in arrays:
        if layout == "f" and a.ndim >= 2:
            t = tg.from_numpy(np.asfortranarray(a))
        else:
            t = tg.tensor(a)
        if requires_grad:
            t.requires_grad_(True)
        out.append(t)
    return out


__all__ = ["convert", "DTYPE_NAMES", "NP_DTYPES", "dtype_name", "as_tuple", "draw_inputs", "reference_inputs",
           "tolerance", "assert_matches", "tg_inputs"]


def to_cuda(obj):
    """An op's params with their tensors (index arrays, masks) moved to the GPU."""
    if isinstance(obj, tg.Tensor):
        return obj.to("cuda")
    if isinstance(obj, tuple):
        return tuple(to_cuda(o) for o in obj)
    if isinstance(obj, dict):
        return {k: to_cuda(v) for k, v in obj.items()}
    return obj
