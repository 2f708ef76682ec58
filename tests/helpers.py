"""Shared pieces of the op-table tests: building inputs and comparing results."""
import zlib

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


def large_inputs(op, dtype, i):
    """(numpy arrays, params) of the i-th large case of `op` (op.large) at `dtype`, seeded by the
    row's name so that every run sees the same values."""
    shapes, params = op.large[i]
    rng = np.random.default_rng([zlib.crc32(op.name.encode()), i])
    arrays = [make_array(s, dt, op.domain_of(k), rng) for k, (s, dt) in enumerate(zip(shapes, op.input_dtypes(dtype)))]
    return arrays, params


def large_cases(ops, dtypes=None):
    """(op, dtype, i) for every large case of `ops` (at the row's dtypes, or those of `dtypes` it takes)."""
    return [(op, dt, i) for op in ops for dt in op.dtypes if dtypes is None or dt in dtypes
            for i in range(len(op.large))]


def large_id(case):
    op, dt, i = case
    return f"{op.name}-{'+'.join(dt) if isinstance(dt, tuple) else dt}-{i}"


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


__all__ = ["convert", "DTYPE_NAMES", "NP_DTYPES", "dtype_name", "as_tuple", "draw_inputs", "large_inputs",
           "large_cases", "large_id", "reference_inputs", "tolerance", "assert_matches", "tg_inputs", "to_cuda", "assert_close", "check_against_torch", "BF16_ULP",
           "bf16_bits", "bf16_pair"]


def assert_close(got, want, rtol=1e-9, atol=1e-11, what=""):
    """Two results (tapegrad, PyTorch or NumPy) of one shape and close values, NaN where NaN."""
    got, want = (np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for v in (got, want))
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def check_against_torch(tg_fn, torch_fn, arrays, grad_of=None, rtol=1e-9, atol=1e-11, seed=1):
    """Runs a tapegrad and a PyTorch function on the same arrays and compares the output and,
    through a random weighting of it, the gradient of every float input (or of those listed in
    grad_of; the others do not require grad). Returns the tapegrad inputs, for further checks."""
    import torch
    idx = range(len(arrays)) if grad_of is None else grad_of
    wants = [i in idx and a.dtype.kind == "f" for i, a in enumerate(arrays)]
    xs = [tg.tensor(np.ascontiguousarray(a), requires_grad=w) for a, w in zip(arrays, wants)]
    ts = [torch.tensor(np.ascontiguousarray(a), requires_grad=w) for a, w in zip(arrays, wants)]
    out, ref = tg_fn(*xs), torch_fn(*ts)
    assert_close(out, ref, rtol, atol, "forward")
    w = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    (out * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if t.requires_grad:
            assert x.grad is not None, f"input {i} got no gradient"
            assert_close(x.grad, t.grad, rtol, atol, f"gradient of input {i}")
    return xs


BF16_ULP = 2.0 ** -7  # one unit in the last place of a bfloat16 in [1, 2), relative


def bf16_bits(t):
    """The 16-bit patterns of a bfloat16 tensor (on any device)."""
    return (t.cpu().float().numpy().view(np.uint32) >> 16).astype(np.uint16)


def bf16_pair(shape, seed=0, scale=1.0):
    """The same random bfloat16 values on the CPU and on the GPU."""
    a = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    c = tg.tensor(a).to(tg.bfloat16)
    return c, c.cuda()


def to_cuda(obj):
    """An op's params with their tensors (index arrays, masks) moved to the GPU."""
    if isinstance(obj, tg.Tensor):
        return obj.to("cuda")
    if isinstance(obj, tuple):
        return tuple(to_cuda(o) for o in obj)
    if isinstance(obj, dict):
        return {k: to_cuda(v) for k, v in obj.items()}
    return obj
