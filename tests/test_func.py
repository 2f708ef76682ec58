"""tg.func against torch.func and finite differences in float64, driven by the op table: jvp of
every differentiable row along random tangents, and the hessian of a weighted sum of its outputs."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from helpers import as_tuple, draw_inputs
from op_specs import OPS, convert

try:
    import torch
    from torch import func as torch_func
except ImportError:
    torch = torch_func = None

SETTINGS = settings(deadline=None, max_examples=3, suppress_health_check=list(HealthCheck), derandomize=True)
ROWS = [op for op in OPS if op.diff and op.gradcheck and "float64" in op.dtypes and op.nargs >= 1]
# Rows where torch.func is the one that is off: its forward mode of scatter_reduce "prod" gives zero
# tangents (central differences agree with tapegrad's, which this file checks first).
TORCH_FUNC_OFF = {"scatter_reduce_prod", "scatter_reduce_prod_exclude_self"}
# x ** zeros_like(x) at x = 0 exactly (its domain draws zeros): the second derivative through
# b a^(b-1) is 0 * inf = NaN in PyTorch's double backward and in tapegrad's (which matches it, as
# test_ops_grad checks), so a jvp built from two backward passes is NaN there too.
DOUBLE_BACKWARD_NAN_AT_ZERO = {"pow_zero_tensor"}


def _floating(outs):
    return [o for o in as_tuple(outs) if o.dtype.is_floating_point]


def _inputs(data, op):
    arrays, params = draw_inputs(data, op, "float64", min_side=1)
    if not all(a.dtype == np.float64 for a in arrays):
        return None, None
    return arrays, params


def _weights(outs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)) for o in outs]


@pytest.mark.parametrize("op", ROWS, ids=[op.name for op in ROWS])
def test_jvp_matches_finite_differences_and_torch(op):
    @SETTINGS
    @given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
    def run(data, seed):
        arrays, params = _inputs(data, op)
        if arrays is None or (op.name in DOUBLE_BACKWARD_NAN_AT_ZERO and any((a == 0).any() for a in arrays)):
            return
        rng = np.random.default_rng(seed)
        tangents = [rng.standard_normal(a.shape) for a in arrays]
        p = convert(params, "tg")
        f = lambda *xs: tuple(_floating(op.tg(*xs, **p)))  # noqa: E731
        out, jt = tg.func.jvp(f, tuple(tg.tensor(a) for a in arrays), tuple(tg.tensor(t) for t in tangents))
        # central differences along the tangent
        eps = 1e-6
        plus = f(*[tg.tensor(np.asarray(a + eps * t)) for a, t in zip(arrays, tangents)])
        minus = f(*[tg.tensor(np.asarray(a - eps * t)) for a, t in zip(arrays, tangents)])
        for k, (j, hi, lo) in enumerate(zip(jt, plus, minus)):
            np.testing.assert_allclose(j.numpy(), (hi.numpy() - lo.numpy()) / (2 * eps), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{op.name}: jvp output {k} against finite differences")
        if torch_func is None or op.torch is None or op.name in TORCH_FUNC_OFF:
            return
        tp = convert(params, "torch")
        g = lambda *xs: tuple(o for o in as_tuple(op.torch(*xs, **tp)) if o.is_floating_point())  # noqa: E731
        try:
            _, want = torch_func.jvp(g, tuple(torch.tensor(a) for a in arrays), tuple(torch.tensor(t) for t in tangents))
        except (RuntimeError, NotImplementedError):  # an op torch.func cannot run forward-mode
            return
        for k, (j, w) in enumerate(zip(jt, want)):
            np.testing.assert_allclose(j.numpy(), w.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"{op.name}: jvp output {k}")

    run()


@pytest.mark.parametrize("op", ROWS, ids=[op.name for op in ROWS])
def test_hessian_matches_torch(op):
    """The hessian of <w, f(x, rest)> in x, the first input: symmetric, and torch.func's."""
    if op.reference is not None and op.name.startswith("attention"):
        pytest.skip("the fused attention rows have their own second-derivative tests")

    @SETTINGS
    @given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
    def run(data, seed):
        arrays, params = _inputs(data, op)
        if arrays is None or arrays[0].size > 12:
            return
        p = convert(params, "tg")
        rest = [tg.tensor(a) for a in arrays[1:]]
        weights = _weights(_floating(op.tg(*[tg.tensor(a) for a in arrays], **p)), seed)

        def scalar(x):
            return sum((o * tg.tensor(w)).sum() for o, w in zip(_floating(op.tg(x, *rest, **p)), weights))
        h = tg.func.hessian(scalar)(tg.tensor(arrays[0])).numpy()
        n = arrays[0].size
        np.testing.assert_allclose(h.reshape(n, n), h.reshape(n, n).T, rtol=1e-8, atol=1e-8, err_msg=f"{op.name}: symmetric")
        if torch_func is None or op.torch is None or op.name in TORCH_FUNC_OFF:
            return
        tp = convert(params, "torch")
        trest = [torch.tensor(a) for a in arrays[1:]]

        def tscalar(x):
            outs = [o for o in as_tuple(op.torch(x, *trest, **tp)) if o.is_floating_point()]
            return sum((o * torch.tensor(w)).sum() for o, w in zip(outs, weights))
        try:
            want = torch_func.hessian(tscalar)(torch.tensor(arrays[0])).numpy()
        except (RuntimeError, NotImplementedError):
            return
        np.testing.assert_allclose(h, want, rtol=1e-10, atol=1e-10, err_msg=f"{op.name}: hessian")

    run()


# ---- the transforms themselves ----------------------------------------------------------------------

def test_grad_value_and_grad_argnums_and_aux():
    f = lambda x, y: ((x * y).sin().sum(), x.shape)  # noqa: E731
    x, y = tg.tensor([0.5, 1.0], dtype=tg.float64), tg.tensor([2.0, -1.0], dtype=tg.float64)
    (value, aux), (gx, gy) = tg.func.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert aux == (2,) and abs(value.item() - float(np.sin([1.0, -1.0]).sum())) < 1e-12
    np.testing.assert_allclose(gx.numpy(), np.cos([1.0, -1.0]) * [2.0, -1.0])
    np.testing.assert_allclose(gy.numpy(), np.cos([1.0, -1.0]) * [0.5, 1.0])
    assert gx.grad_fn is None and not gx.requires_grad  # nothing outside tracks x: a plain result
    with pytest.raises(ValueError, match="one-element"):
        tg.func.grad(lambda x: x * 2)(x)


def test_transforms_compose_and_leave_grad_untouched():
    x = tg.tensor([0.3, -0.7, 1.1], dtype=tg.float64)
    f = lambda x: (x ** 3).sum()  # noqa: E731
    second = lambda v: tg.func.grad(f)(v).sum()  # noqa: E731  (sum of 3 v^2)
    third = tg.func.grad(lambda v: tg.func.grad(second)(v).sum())  # d/dv sum(6 v) = 6
    np.testing.assert_allclose(third(x).numpy(), [6.0] * 3)
    np.testing.assert_allclose(tg.func.hessian(f)(x).numpy(), np.diag(6 * x.numpy()))
    np.testing.assert_allclose(tg.func.jacfwd(lambda v: v ** 2)(x).numpy(), tg.func.jacrev(lambda v: v ** 2)(x).numpy())
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.func.grad(lambda v: (v * v).sum())(w)
    assert w.grad is None


def test_vjp_checks_its_cotangents():
    out, fn = tg.func.vjp(lambda x: x * 2, tg.ones(3))
    with pytest.raises(ValueError, match="cotangent of shape \\(2,\\)"):
        fn(tg.ones(2))
    with pytest.raises(ValueError, match="tangent"):
        tg.func.jvp(lambda x: x, (tg.ones(3),), (tg.ones(2),))
