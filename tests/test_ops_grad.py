"""Gradients of every differentiable op in the table: float64 tg.gradcheck (analytic Jacobian
against central differences), and forward + backward against PyTorch on the same inputs."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from helpers import (as_tuple, convert, draw_inputs, large_cases, large_id, large_inputs, tg_inputs, to_cuda,
                     tolerance)
from op_specs import OPS

SETTINGS = settings(deadline=None, max_examples=6, suppress_health_check=list(HealthCheck), derandomize=True)

DIFF = [op for op in OPS if op.diff and "float64" in op.dtypes]


def test_every_differentiable_row_is_checked():
    assert {op.name for op in OPS if op.diff} == {op.name for op in DIFF}


GRADCHECK = [op for op in DIFF if op.gradcheck]


@pytest.mark.parametrize("op", GRADCHECK, ids=[op.name for op in GRADCHECK])
def test_gradcheck(op):
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float64", min_side=1)
        inputs = tg_inputs(arrays, requires_grad=True)
        p = convert(params, "tg")
        assert tg.gradcheck(lambda *xs: op.tg(*xs, **p), inputs, eps=1e-6, atol=1e-5, rtol=1e-3)

    run()


@pytest.mark.parametrize("op", DIFF, ids=[op.name for op in DIFF])
def test_forward_backward_match_torch(op):
    torch = pytest.importorskip("torch")
    if op.torch is None:
        pytest.skip("no PyTorch reference for this row")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float64", min_side=0)
        layout = "c" if op.contiguous_only else data.draw(st.sampled_from(["c", "f"]), label="layout")
        xs = tg_inputs(arrays, layout, requires_grad=True)
        ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
        outs = as_tuple(op.tg(*xs, **convert(params, "tg")))
        refs = as_tuple(op.torch(*ts, **convert(params, "torch")))
        assert len(outs) == len(refs)
        rng = np.random.default_rng(0)
        loss_tg, loss_torch = None, None
        for o, r in zip(outs, refs):
            assert tuple(o.shape) == tuple(r.shape)
            np.testing.assert_allclose(o.detach().numpy(), r.detach().numpy(), rtol=1e-9, atol=1e-11)
            w = rng.uniform(-1, 1, tuple(r.shape))
            lt = (o * tg.tensor(w)).sum()
            lr = (r * torch.from_numpy(w)).sum()
            loss_tg = lt if loss_tg is None else loss_tg + lt
            loss_torch = lr if loss_torch is None else loss_torch + lr
        assert loss_tg.requires_grad
        loss_tg.backward()
        loss_torch.backward()
        for i, (x, t) in enumerate(zip(xs, ts)):
            assert x.grad is not None, f"{op.name}: input {i} got no gradient"
            assert x.grad.shape == x.shape and x.grad.dtype == tg.float64
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10,
                                       err_msg=f"{op.name}: gradient of input {i}")

    run()


@pytest.mark.parametrize("op", DIFF, ids=[op.name for op in DIFF])
def test_double_backward_matches_torch(op):
    """create_graph: the gradient is itself differentiable. With w, u fixed random weights, the
    gradient of sum(u * d<w, out>/dx) matches PyTorch's double backward (fused ops take the
    derivative of their composite reference here)."""
    torch = pytest.importorskip("torch")
    if op.torch is None:
        pytest.skip("no PyTorch reference for this row")

    @settings(deadline=None, max_examples=4, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float64", min_side=1)
        xs = tg_inputs(arrays, requires_grad=True)
        ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
        outs = as_tuple(op.tg(*xs, **convert(params, "tg")))
        refs = as_tuple((op.torch_twice or op.torch)(*ts, **convert(params, "torch")))
        rng = np.random.default_rng(1)
        ws = [rng.uniform(-1, 1, tuple(r.shape)) for r in refs]
        us = [rng.uniform(-1, 1, a.shape) for a in arrays]
        grads = tg.grad(sum((o * tg.tensor(w)).sum() for o, w in zip(outs, ws)), xs, create_graph=True,
                        allow_unused=True)
        tgrads = torch.autograd.grad(sum((r * torch.from_numpy(w)).sum() for r, w in zip(refs, ws)), ts,
                                     create_graph=True, allow_unused=True)
        # A gradient that is not itself differentiable has a zero second derivative (PyTorch marks
        # some constant gradients as differentiable: only the values are compared).
        second = [(g * tg.tensor(u)).sum() for g, u in zip(grads, us) if g is not None and g.requires_grad]
        tsecond = [(g * torch.from_numpy(u)).sum() for g, u in zip(tgrads, us) if g is not None and g.requires_grad]
        if second:
            sum(second).backward()
        if tsecond:
            sum(tsecond).backward()
        for k, (x, t) in enumerate(zip(xs, ts)):
            want = np.zeros(x.shape) if t.grad is None else t.grad.numpy(force=True)
            got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10,
                                       err_msg=f"{op.name}: second derivative, input {k}")

    run()


FUSED = [op for op in DIFF if op.reference is not None]


@pytest.mark.parametrize("op", FUSED, ids=[op.name for op in FUSED])
def test_fused_gradient_matches_its_composite_reference(op):
    """The fused backward kernels against autograd through the composite reference (float64)."""
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float64", min_side=0)
        p = convert(params, "tg")
        grads = []
        for fn in (op.tg, op.reference):
            xs = tg_inputs(arrays, requires_grad=True)
            _weighted_loss(as_tuple(fn(*xs, **p))).backward()
            grads.append([x.grad for x in xs])
        for k, (g, r) in enumerate(zip(*grads)):
            assert g is not None and r is not None, f"{op.name}: input {k} got no gradient"
            np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-9, atol=1e-11,
                                       err_msg=f"{op.name}: gradient of input {k}")

    run()


def _weighted_loss(outs, device="cpu"):
    """sum_k <w_k, out_k> with fixed random weights w_k: every output element gets its own gradient."""
    rng = np.random.default_rng(0)
    return sum((o * tg.tensor(rng.uniform(-1, 1, tuple(o.shape)), dtype=o.dtype, device=device)).sum() for o in outs)


LARGE_DIFF = large_cases(DIFF, dtypes=("float32", "float64"))


@pytest.mark.parametrize("op, dtype, i", large_cases(DIFF, dtypes=("float64",)),
                         ids=[large_id(c) for c in large_cases(DIFF, dtypes=("float64",))])
def test_large_gradients_match_torch(op, dtype, i):
    """The size knob in the backward: each row's large cases against PyTorch's gradients."""
    torch = pytest.importorskip("torch")
    if op.torch is None:
        pytest.skip("no PyTorch reference for this row")
    arrays, params = large_inputs(op, dtype, i)
    xs = tg_inputs(arrays, requires_grad=True)
    ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    outs = as_tuple(op.tg(*xs, **convert(params, "tg")))
    refs = as_tuple(op.torch(*ts, **convert(params, "torch")))
    _weighted_loss(outs).backward()
    rng = np.random.default_rng(0)
    sum((r * torch.from_numpy(rng.uniform(-1, 1, tuple(r.shape)))).sum() for r in refs).backward()
    for k, (x, t) in enumerate(zip(xs, ts)):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=f"{op.name}: gradient of input {k} (large case {i})")


def _check_gradients_on_cuda(op, arrays, params, tol, what):
    """Forward + backward on the GPU against the CPU, on the same inputs and weights."""
    p = convert(params, "tg")
    grads = {}
    for device in ("cpu", "cuda"):
        xs = [x.to(device).detach().requires_grad_() for x in tg_inputs(arrays)]
        _weighted_loss(as_tuple(op.tg(*xs, **(p if device == "cpu" else to_cuda(p)))), device).backward()
        grads[device] = [x.grad for x in xs]
    for k, (g, c) in enumerate(zip(grads["cuda"], grads["cpu"])):
        assert g.is_cuda and g.dtype == c.dtype and g.shape == c.shape, f"{op.name}: gradient {k}"
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), equal_nan=True, **tol,
                                   err_msg=f"{op.name}: gradient of input {k} on cuda{what}")


@pytest.mark.parametrize("op, dtype, i", LARGE_DIFF, ids=[large_id(c) for c in LARGE_DIFF])
def test_large_gradients_on_cuda_match_cpu(op, dtype, i):
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    arrays, params = large_inputs(op, dtype, i)
    _check_gradients_on_cuda(op, arrays, params, tolerance(dtype, op), f" (large case {i})")


@pytest.mark.parametrize("op", DIFF, ids=[op.name for op in DIFF])
def test_gradients_on_cuda_match_cpu(op):
    """Every differentiable row, float64, forward + backward on the GPU against the CPU: the
    backward formulas are tensor ops, so this runs the device kernels they use."""
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float64", min_side=1)
        _check_gradients_on_cuda(op, arrays, params, tolerance("float64"), "")

    run()


@pytest.mark.parametrize("op", [o for o in DIFF if "float32" in o.dtypes][:12], ids=lambda o: o.name)
def test_float32_gradients_stay_float32(op):
    @settings(deadline=None, max_examples=3, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32", min_side=1)
        xs = tg_inputs(arrays, requires_grad=True)
        sum(o.sum() for o in as_tuple(op.tg(*xs, **convert(params, "tg")))).backward()
        for x in xs:
            assert x.grad is not None and x.grad.dtype == tg.float32 and x.grad.shape == x.shape

    run()
