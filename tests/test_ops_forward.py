"""Forward values, shapes and dtypes of every op in the table, against NumPy (values) and PyTorch
(dtype promotion), on hypothesis-drawn shapes that include size-0 and size-1 dims and broadcasting."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from helpers import (as_tuple, assert_matches, convert, draw_inputs, dtype_name, large_cases, large_id, large_inputs,
                     reference_inputs, tg_inputs, to_cuda)
from op_specs import OPS, cases

SETTINGS = settings(deadline=None, max_examples=12, suppress_health_check=list(HealthCheck), derandomize=True)


def _id(case):
    op, dt = case
    return f"{op.name}-{'+'.join(dt) if isinstance(dt, tuple) else dt}"


ALL = cases()


@pytest.mark.parametrize("case", ALL, ids=[_id(c) for c in ALL])
def test_forward_matches_numpy(case):
    op, dtype = case

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, dtype)
        layout = "c" if op.contiguous_only else data.draw(st.sampled_from(["c", "f"]), label="layout")
        out = op.tg(*tg_inputs(arrays, layout), **convert(params, "tg"))
        with np.errstate(all="ignore"):
            ref = op.np(*reference_inputs(arrays), **convert(params, "np"))
        outs, refs = as_tuple(out), as_tuple(ref)
        assert len(outs) == len(refs), f"{op.name}: {len(outs)} outputs, reference has {len(refs)}"
        for i, (o, r) in enumerate(zip(outs, refs)):
            assert_matches(o, r, op, f"{op.name} output {i}")
        # inputs are left untouched
        for a, t in zip(arrays, tg_inputs(arrays)):
            np.testing.assert_array_equal(t.numpy(), a)

    run()


@pytest.mark.parametrize("case", ALL, ids=[_id(c) for c in ALL])
def test_forward_dtype_and_shape_match_torch(case):
    torch = pytest.importorskip("torch")
    op, dtype = case
    if op.torch is None:
        pytest.skip("no PyTorch reference for this row")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, dtype)
        out = op.tg(*tg_inputs(arrays), **convert(params, "tg"))
        ref = op.torch(*[torch.from_numpy(a.copy()) for a in arrays], **convert(params, "torch"))
        for i, (o, r) in enumerate(zip(as_tuple(out), as_tuple(ref))):
            assert dtype_name(o.dtype) == dtype_name(r.dtype), \
                f"{op.name} output {i}: dtype {o.dtype} != torch's {r.dtype} (inputs {[a.dtype for a in arrays]})"
            assert tuple(o.shape) == tuple(r.shape), f"{op.name} output {i}: shape {o.shape} != torch's {tuple(r.shape)}"
            np.testing.assert_allclose(o.numpy().astype(np.float64), r.numpy().astype(np.float64), rtol=1e-4,
                                       atol=1e-4, equal_nan=True, err_msg=f"{op.name} output {i}")

    run()


LARGE = large_cases(OPS)


@pytest.mark.parametrize("op, dtype, i", LARGE, ids=[large_id(c) for c in LARGE])
def test_large_inputs_match_numpy(op, dtype, i):
    """The size knob: each row's large cases, contiguous and (2-D and up) in Fortran order."""
    arrays, params = large_inputs(op, dtype, i)
    with np.errstate(all="ignore"):
        refs = as_tuple(op.np(*reference_inputs(arrays), **convert(params, "np")))
    for layout in ("c",) if op.contiguous_only else ("c", "f"):
        outs = as_tuple(op.tg(*tg_inputs(arrays, layout), **convert(params, "tg")))
        assert len(outs) == len(refs)
        for k, (o, r) in enumerate(zip(outs, refs)):
            assert_matches(o, r, op, f"{op.name} output {k} (large case {i}, layout {layout})")


FUSED = [op for op in OPS if op.reference is not None]
FUSED_CASES = [(op, dt) for op in FUSED for dt in op.dtypes]
FUSED_LARGE = large_cases(FUSED)


def _assert_same(outs, refs, op, what):
    assert len(outs) == len(refs), what
    for k, (o, r) in enumerate(zip(outs, refs)):
        assert o.dtype == r.dtype and o.device == r.device, f"{what} output {k}"
        assert_matches(o, r.cpu().numpy(), op, f"{what} output {k}")


@pytest.mark.parametrize("case", FUSED_CASES, ids=[_id(c) for c in FUSED_CASES])
def test_fused_op_matches_its_composite_reference(case):
    """The oracle: each fused kernel against the same function in ordinary ops (tg._C.reference)."""
    op, dtype = case

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, dtype)
        p = convert(params, "tg")
        _assert_same(as_tuple(op.tg(*tg_inputs(arrays), **p)), as_tuple(op.reference(*tg_inputs(arrays), **p)), op,
                     op.name)

    run()


@pytest.mark.parametrize("op, dtype, i", FUSED_LARGE, ids=[large_id(c) for c in FUSED_LARGE])
def test_fused_op_matches_its_composite_reference_at_size(op, dtype, i):
    arrays, params = large_inputs(op, dtype, i)
    p = convert(params, "tg")
    _assert_same(as_tuple(op.tg(*tg_inputs(arrays), **p)), as_tuple(op.reference(*tg_inputs(arrays), **p)), op,
                 f"{op.name} (large case {i})")


@pytest.mark.parametrize("op, dtype, i", FUSED_LARGE, ids=[large_id(c) for c in FUSED_LARGE])
def test_fused_op_on_cuda_matches_its_composite_reference(op, dtype, i):
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    arrays, params = large_inputs(op, dtype, i)
    p = to_cuda(convert(params, "tg"))
    xs = [t.cuda() for t in tg_inputs(arrays)]
    _assert_same(as_tuple(op.tg(*xs, **p)), as_tuple(op.reference(*xs, **p)), op, f"{op.name} on cuda (large case {i})")


def test_every_design_op_is_in_the_table():
    names = {op.name for op in OPS}
    required = {"add", "sub", "mul", "div", "pow", "matmul", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos",
                "tanh", "sigmoid", "relu", "gelu", "gelu_tanh", "silu", "maximum", "minimum", "clamp", "where",
                "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "sum", "mean", "var", "max", "min", "argmax",
                "argmin", "logsumexp", "reshape", "view", "flatten", "transpose", "permute", "T", "unsqueeze",
                "squeeze", "expand", "broadcast_to", "index_basic", "index_int_tensor", "index_bool_mask", "cat",
                "stack", "split", "chunk", "gather", "index_select", "softmax", "log_softmax"}
    assert required <= names, sorted(required - names)


# ---- explicit promotion rules (PyTorch's, as DESIGN.md promises) ----------------------------------

@pytest.mark.parametrize("make, expected", [
    (lambda: tg.tensor([1, 2]) * 2, tg.int64),
    (lambda: tg.tensor([1, 2]) * 0.5, tg.float32),
    (lambda: 0.5 * tg.tensor([1, 2]), tg.float32),
    (lambda: tg.tensor([1.0], dtype=tg.float32) + tg.tensor(2.0, dtype=tg.float64), tg.float32),
    (lambda: tg.tensor([1.0], dtype=tg.float32) + tg.tensor([2.0], dtype=tg.float64), tg.float64),
    (lambda: tg.tensor([1.0], dtype=tg.float64) * 3, tg.float64),
    (lambda: tg.tensor([1.0], dtype=tg.float32) * np.float64(3.0), tg.float32),
    (lambda: tg.tensor([1, 2]) / 2, tg.float32),
    (lambda: tg.tensor([1, 2]) / tg.tensor([2, 2]), tg.float32),
    (lambda: tg.tensor([True, False]) + 1, tg.int64),
    (lambda: tg.tensor([True]) * 1.5, tg.float32),
    (lambda: tg.tensor([1, 2]) + tg.tensor(1.5, dtype=tg.float64), tg.float64),  # 0-d brings a higher category
    (lambda: tg.tensor([True, False]) + tg.tensor([True, True]), tg.bool),
    (lambda: tg.tensor([True, False]) * tg.tensor([True, True]), tg.bool),
    (lambda: tg.tensor(1, dtype=tg.int64) + tg.tensor(1.5, dtype=tg.float64), tg.float64),
    (lambda: tg.tensor([1.0]) < 2, tg.bool),
    (lambda: tg.tensor([1, 2]) == tg.tensor([1.0, 3.0]), tg.bool),
    (lambda: tg.tensor([1, 2]).sum(), tg.int64),
    (lambda: tg.tensor([True, True]).sum(), tg.int64),
    (lambda: tg.exp(tg.tensor([1, 2])), tg.float32),
    (lambda: tg.tensor([1.0, 2.0]).argmax(), tg.int64),
])
def test_promotion(make, expected):
    assert make().dtype == expected


# ---- every row on CUDA, against the CPU result (skips without a GPU) ---------------------------------

@pytest.mark.parametrize("case", ALL, ids=[_id(c) for c in ALL])
def test_forward_on_cuda_matches_cpu(case):
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    op, dtype = case

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, dtype)
        layout = "c" if op.contiguous_only else data.draw(st.sampled_from(["c", "f"]), label="layout")
        cpu_params = convert(params, "tg")
        ref = as_tuple(op.tg(*tg_inputs(arrays, layout), **cpu_params))
        out = as_tuple(op.tg(*[t.to("cuda") for t in tg_inputs(arrays, layout)], **to_cuda(cpu_params)))
        assert len(out) == len(ref)
        for i, (o, r) in enumerate(zip(out, ref)):
            assert o.is_cuda, f"{op.name} output {i} is on {o.device}"
            assert o.dtype == r.dtype and tuple(o.shape) == tuple(r.shape)
            assert_matches(o, r.numpy(), op, f"{op.name} output {i} on cuda")

    run()


@pytest.mark.parametrize("op, dtype, i", LARGE, ids=[large_id(c) for c in LARGE])
def test_large_inputs_on_cuda_match_cpu(op, dtype, i):
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    arrays, params = large_inputs(op, dtype, i)
    cpu_params = convert(params, "tg")
    for layout in ("c",) if op.contiguous_only else ("c", "f"):
        ref = as_tuple(op.tg(*tg_inputs(arrays, layout), **cpu_params))
        out = as_tuple(op.tg(*[t.to("cuda") for t in tg_inputs(arrays, layout)], **to_cuda(cpu_params)))
        assert len(out) == len(ref)
        for k, (o, r) in enumerate(zip(out, ref)):
            assert o.is_cuda and o.dtype == r.dtype and tuple(o.shape) == tuple(r.shape), f"{op.name} output {k}"
            assert_matches(o, r.numpy(), op, f"{op.name} output {k} on cuda (large case {i}, layout {layout})")


# float32 sums accumulate in float64 along every axis, so a long reduction rounds once: the result
# is the float64 sum rounded to float32 (a float32 running sum down 5,000 rows was ~50 ulp off).
@pytest.mark.parametrize("shape, dim", [((5000, 37), 0), ((37, 5000), 1), ((6, 3000, 70), 1), ((20000, 3), 0)])
def test_float32_sums_round_once(shape, dim):
    x = (np.random.default_rng(7).standard_normal(shape) * 100 + 3).astype(np.float32)
    want = x.astype(np.float64).sum(axis=dim).astype(np.float32)
    np.testing.assert_array_equal(tg.tensor(x).sum(dim).numpy(), want)
    # the mean divides the rounded sum: one more rounding, at most an ulp
    np.testing.assert_allclose(tg.tensor(x).mean(dim).numpy(), x.astype(np.float64).mean(axis=dim), rtol=2.4e-7)


def test_zero_dim_gather_scatter_and_max_over_dim_match_torch():
    """A 0-d tensor is a line of one element for gather, scatter_add and max / min over dim 0 (these
    once read past the end of an empty shape)."""
    torch = pytest.importorskip("torch")
    x = tg.tensor(2.5, requires_grad=True)
    assert tg.gather(x, 0, tg.tensor(0)).item() == torch.gather(torch.tensor(2.5), 0, torch.tensor(0)).item()
    got = tg.scatter_add(tg.tensor(1.0), -1, tg.tensor(0), tg.tensor(2.0))
    assert got.shape == () and got.item() == torch.scatter_add(torch.tensor(1.0), -1, torch.tensor(0), torch.tensor(2.0)).item()
    values, indices = x.max(0)
    assert values.shape == () and values.item() == 2.5 and indices.item() == 0
    values.backward()
    assert x.grad.item() == 1.0
    assert tuple(x.min(-1, keepdim=True).values.shape) == tuple(torch.tensor(2.5).min(-1, keepdim=True).values.shape)
    assert x.cumsum(0).shape == () and x.cumsum(-1).item() == 2.5
