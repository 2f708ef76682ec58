"""tg.bfloat16 on the CPU: conversions (round to nearest even, NaN and inf), every float row of the
op table against float32 rounded through bfloat16, gradients, PyTorch's promotion rules, a small
training loop, and PyTorch's own bfloat16 results when torch is installed."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from helpers import as_tuple, draw_inputs, large_cases, large_id, large_inputs, tg_inputs, to_cuda
from op_specs import OPS, convert

BF16 = tg.bfloat16
SETTINGS = settings(deadline=None, max_examples=8, suppress_health_check=list(HealthCheck), derandomize=True)
RTOL, ATOL = 1e-2, 1e-3  # one bfloat16 rounding is at most 2^-9 relative; these tests round once or twice


# ---- a reference for the conversion, from the bit layout ------------------------------------------

def bf16_value(bits):
    """The exact value of bfloat16 bit patterns (uint32 holding 16 bits), as float64; the pattern
    one past the largest finite value is 2^128 (where rounding up to inf starts)."""
    bits = bits.astype(np.int64)
    sign = np.where(bits >> 15, -1.0, 1.0)
    exponent, mantissa = (bits >> 7) & 0xFF, (bits & 0x7F).astype(np.float64)
    normal = np.ldexp(1.0 + mantissa / 128.0, exponent - 127)
    subnormal = np.ldexp(mantissa / 128.0, -126)
    return sign * np.where(exponent == 0, subnormal, normal)


def round_to_bf16_reference(f32):
    """float32 -> nearest bfloat16 (ties to the even pattern), by comparing the two neighbours'
    distances in float64: an independent statement of what the C++ bit trick computes."""
    u = f32.view(np.uint32)
    low = u >> 16
    high = low + 1
    x = f32.astype(np.float64)
    d_low, d_high = np.abs(x - bf16_value(low)), np.abs(bf16_value(high) - x)
    pick_high = (d_high < d_low) | ((d_high == d_low) & (low % 2 == 1))
    rounded = np.where(pick_high, high, low).astype(np.uint32) << 16
    return rounded.view(np.float32)


def to_bf16(a):
    """A float32 array rounded through tapegrad's bfloat16, back as float32."""
    return tg.tensor(np.asarray(a, np.float32)).to(BF16).numpy()


# ---- conversions ------------------------------------------------------------------------------------

def test_every_bfloat16_value_round_trips_exactly():
    patterns = np.arange(1 << 16, dtype=np.uint32)
    values = (patterns << 16).view(np.float32)
    back = to_bf16(values)
    finite = ~np.isnan(values)
    assert np.array_equal(back[finite].view(np.uint32), values[finite].view(np.uint32))  # -0 and inf included
    assert np.isnan(back[~finite]).all()


def test_rounding_is_to_nearest_even_on_random_floats():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    f = bits.view(np.float32)
    f = f[np.isfinite(f)]
    np.testing.assert_array_equal(to_bf16(f).view(np.uint32), round_to_bf16_reference(f).view(np.uint32))


def test_ties_round_to_the_even_pattern():
    # 1 + 2^-8 lies halfway between 1 (even mantissa) and 1 + 2^-7 (odd): rounds down to 1.
    # 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
    ties = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 2 ** -130 * 1.5], np.float32)
    np.testing.assert_array_equal(to_bf16(ties), np.array([1.0, 1 + 2 ** -6, -1.0, 2 ** -130 * 1.5], np.float32))
    # just above a tie rounds up
    assert to_bf16(np.nextafter(np.float32(1 + 2 ** -8), np.float32(2)))[()] == np.float32(1 + 2 ** -7)


def test_nan_inf_and_overflow():
    big = np.finfo(np.float32).max
    out = to_bf16(np.array([np.nan, -np.nan, np.inf, -np.inf, big, -big, 3.3895314e38], np.float32))
    assert np.isnan(out[:2]).all()
    np.testing.assert_array_equal(out[2:6], [np.inf, -np.inf, np.inf, -np.inf])  # beyond the largest bf16: inf
    assert out[6] == np.float32(3.3895314e38)  # the largest finite bfloat16 stays
    nan_payload = np.array([0x7F800001], np.uint32).view(np.float32)  # a NaN whose payload is in the dropped bits
    assert np.isnan(to_bf16(nan_payload)).all()


def test_python_api():
    x = tg.tensor([1.0, 2.5, 3.14159], dtype=BF16)
    assert x.dtype == BF16 and str(BF16) == "tapegrad.bfloat16" and BF16.is_floating_point and BF16.itemsize == 2
    assert x.numpy().dtype == np.float32  # NumPy has no bfloat16
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.5, 3.140625])
    assert x[2].item() == 3.140625 and isinstance(x[2].item(), float)
    assert repr(x) == "tensor([1.0000, 2.5000, 3.1406], dtype=tapegrad.bfloat16)"
    assert tg.tensor(x).dtype == BF16 and tg.tensor(np.float64(1.5), dtype=BF16).dtype == BF16
    assert tg.ones(2, 3).bfloat16().dtype == BF16 and tg.ones(2).to(BF16).float().dtype == tg.float32
    for make in (lambda: tg.zeros(2, dtype=BF16), lambda: tg.ones(2, dtype=BF16), lambda: tg.full((2,), 7.0, dtype=BF16),
                 lambda: tg.empty(2, dtype=BF16), lambda: tg.eye(2, dtype=BF16), lambda: tg.arange(0, 4, dtype=BF16),
                 lambda: tg.linspace(0, 1, 3, dtype=BF16), lambda: tg.rand(2, dtype=BF16), lambda: tg.randn(2, dtype=BF16),
                 lambda: tg.zeros_like(x), lambda: tg.full_like(x, 2.0)):
        assert make().dtype == BF16
    np.testing.assert_array_equal(tg.full((2,), 1.00390625, dtype=BF16).numpy(), [1.0, 1.0])  # a tie, to even


def test_random_numbers_are_the_float32_ones_rounded():
    tg.manual_seed(5)
    a = tg.randn(1000)
    tg.manual_seed(5)
    b = tg.randn(1000, dtype=BF16)
    np.testing.assert_array_equal(b.numpy(), to_bf16(a.numpy()))


# ---- promotion (PyTorch's) --------------------------------------------------------------------------

@pytest.mark.parametrize("make_other, expected", [
    (lambda: tg.ones(3, dtype=BF16), BF16),
    (lambda: tg.ones(3), tg.float32),
    (lambda: tg.ones(3, dtype=tg.float64), tg.float64),
    (lambda: tg.ones(3, dtype=tg.int64), BF16),
    (lambda: tg.ones(3, dtype=tg.bool), BF16),
    (lambda: tg.tensor(2.0), BF16),  # a 0-d float32 tensor does not upcast
    (lambda: 1.5, BF16),
    (lambda: 2, BF16),
])
def test_promotion(make_other, expected):
    x = tg.ones(3, dtype=BF16)
    other = make_other()
    assert (x + other).dtype == expected and (other * x).dtype == expected
    assert (x < other).dtype == tg.bool


def test_python_float_is_not_rounded_before_the_op():
    # 3 * 1.005 = 3.015 rounds to 3.015625; with 1.005 first rounded to 1.0078125 the product 3.0234375 would
    # round to 3.03125 (a tie, to even).
    assert (tg.tensor([3.0], dtype=BF16) * 1.005).item() == 3.015625


# ---- the op table, in bfloat16 ----------------------------------------------------------------------

FLOAT_ROWS = [op for op in OPS if "float32" in op.dtypes]


def _float_dtype_of(name):
    return {"float32": BF16}.get(name, name)


def _bf16_and_reference_inputs(arrays):
    """The inputs as bfloat16 tensors, and the same (already rounded) values as float32 tensors."""
    rounded = [to_bf16(a) if a.dtype.kind == "f" else a for a in arrays]
    ours = [tg.tensor(r, dtype=BF16) if r.dtype.kind == "f" else tg.tensor(r) for r in rounded]
    return ours, tg_inputs(rounded)


def _check_bf16_outputs(outs, refs, op, what):
    """bfloat16 results against float32 (or CPU) references: float32 -> bfloat16, rounded once."""
    assert len(outs) == len(refs), what
    rtol, atol = op.bf16_tol
    for i, (o, r) in enumerate(zip(outs, refs)):
        assert o.dtype == (BF16 if r.dtype in (tg.float32, BF16) else r.dtype), f"{what} output {i}: dtype {o.dtype}"
        assert tuple(o.shape) == tuple(r.shape), f"{what} output {i}"
        expected = to_bf16(r.float().cpu().numpy()) if r.dtype in (tg.float32, BF16) else r.cpu().numpy()
        np.testing.assert_allclose(o.cpu().numpy(), expected, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{what} output {i}")


@pytest.mark.parametrize("op", FLOAT_ROWS, ids=[op.name for op in FLOAT_ROWS])
def test_op_in_bfloat16_matches_float32_rounded(op):
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32")
        ours, ref_inputs = _bf16_and_reference_inputs(arrays)
        outs = as_tuple(op.tg(*ours, **convert(params, "tg")))
        _check_bf16_outputs(outs, as_tuple(op.tg(*ref_inputs, **convert(params, "tg"))), op, op.name)

    run()


@pytest.mark.parametrize("op", FLOAT_ROWS, ids=[op.name for op in FLOAT_ROWS])
def test_op_in_bfloat16_matches_torch(op):
    """PyTorch's bfloat16 computes in float32 and rounds once too: the same values, within a rounding."""
    torch = pytest.importorskip("torch")
    if op.torch is None:
        pytest.skip("no PyTorch reference for this row")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32")
        ours, _ = _bf16_and_reference_inputs(arrays)
        theirs = [torch.from_numpy(t.numpy() if t.dtype == BF16 else t.numpy().copy()) for t in ours]
        theirs = [t.to(torch.bfloat16) if o.dtype == BF16 else t for t, o in zip(theirs, ours)]
        outs = as_tuple(op.tg(*ours, **convert(params, "tg")))
        refs = as_tuple(op.torch(*theirs, **convert(params, "torch")))
        rtol, atol = op.bf16_tol
        for i, (o, r) in enumerate(zip(outs, refs)):
            assert str(o.dtype).split(".")[-1] == str(r.dtype).split(".")[-1], f"{op.name} output {i}: {o.dtype}"
            np.testing.assert_allclose(o.numpy(), r.float().numpy() if r.is_floating_point() else r.numpy(),
                                       rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{op.name} output {i}")

    run()


@pytest.mark.parametrize("op", FLOAT_ROWS, ids=[op.name for op in FLOAT_ROWS])
def test_op_in_bfloat16_on_cuda_matches_cpu(op):
    """The bfloat16 column on the GPU: the same op on the same bfloat16 inputs as on the CPU."""
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32")
        ours, _ = _bf16_and_reference_inputs(arrays)
        p = convert(params, "tg")
        outs = as_tuple(op.tg(*[t.cuda() for t in ours], **to_cuda(p)))
        assert all(o.is_cuda for o in outs)
        _check_bf16_outputs(outs, as_tuple(op.tg(*ours, **p)), op, f"{op.name} on cuda")

    run()


LARGE_BF16 = large_cases(FLOAT_ROWS, dtypes=("float32",))


@pytest.mark.parametrize("op, dtype, i", LARGE_BF16, ids=[large_id(c) for c in LARGE_BF16])
def test_large_inputs_in_bfloat16(op, dtype, i):
    """The size knob in bfloat16: against float32 on the CPU and, where there is a GPU, on it."""
    arrays, params = large_inputs(op, dtype, i)
    ours, ref_inputs = _bf16_and_reference_inputs(arrays)
    p = convert(params, "tg")
    outs = as_tuple(op.tg(*ours, **p))
    _check_bf16_outputs(outs, as_tuple(op.tg(*ref_inputs, **p)), op, f"{op.name} (large case {i})")
    if tg.cuda.is_available():
        _check_bf16_outputs(as_tuple(op.tg(*[t.cuda() for t in ours], **to_cuda(p))), outs, op,
                            f"{op.name} on cuda (large case {i})")


DIFF_ROWS = [op for op in FLOAT_ROWS if op.diff]


@pytest.mark.parametrize("op", DIFF_ROWS, ids=[op.name for op in DIFF_ROWS])
def test_gradients_in_bfloat16(op):
    """bfloat16 leaves get bfloat16 gradients, close to float32's (the backward rounds every step)."""
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32", min_side=1)
        ours, ref_inputs = _bf16_and_reference_inputs(arrays)
        grads = []
        for inputs in (ours, ref_inputs):
            for t in inputs:
                t.requires_grad_(True)
            outs = [o for o in as_tuple(op.tg(*inputs, **convert(params, "tg"))) if o.requires_grad]
            if not outs:
                return
            sum(o.float().sum() for o in outs).backward()
            grads.append([t.grad for t in inputs])
        for i, (g, r) in enumerate(zip(*grads)):
            assert g.dtype == BF16, f"{op.name}: gradient {i} has dtype {g.dtype}"
            np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=3e-2, atol=3e-2, err_msg=f"{op.name} gradient {i}")

    run()


# ---- the rest of the API in bfloat16 -----------------------------------------------------------------

def test_dropout_drops_what_float32_drops():
    x = tg.randn(64, 64)
    tg.manual_seed(3)
    ref = tg.nn.functional.dropout(x, 0.3)
    tg.manual_seed(3)
    out = tg.nn.functional.dropout(x.to(BF16), 0.3)
    assert out.dtype == BF16
    np.testing.assert_array_equal(out.numpy() == 0, ref.numpy() == 0)
    np.testing.assert_allclose(out.numpy(), to_bf16(ref.numpy()), rtol=RTOL)


def test_matmul_accumulates_in_float32():
    # 4096 terms of 1 + 2^-8: each product is exact in float32; a bfloat16 accumulator would stall at 256.
    a = tg.full((1, 4096), 1.0, dtype=BF16)
    b = tg.full((4096, 1), 1.0, dtype=BF16)
    assert (a @ b).item() == 4096.0
    assert tg.ones(4096, dtype=BF16).sum().item() == 4096.0


def test_in_place_ops_keep_bfloat16():
    y = tg.zeros(3, dtype=BF16)
    y += 1.5
    y[1] = 5
    y[tg.tensor([2])] = 2.5
    y.mul_(2)
    assert y.dtype == BF16
    np.testing.assert_array_equal(y.numpy(), [3.0, 10.0, 5.0])


@pytest.mark.parametrize("make_opt", [
    lambda ps: tg.optim.SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: tg.optim.Adam(ps, lr=0.02),
    lambda ps: tg.optim.AdamW(ps, lr=0.02),
    lambda ps: tg.optim.RMSprop(ps, lr=0.01),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_training_loop_in_bfloat16_decreases_the_loss(make_opt):
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 8)).astype(np.float32)
    y_np = x_np @ rng.standard_normal((8, 1)).astype(np.float32) + 0.5
    x, y = tg.tensor(x_np, dtype=BF16), tg.tensor(y_np, dtype=BF16)
    model = tg.nn.Linear(8, 1).to(BF16)
    opt = make_opt(list(model.parameters()))
    losses = []
    for _ in range(150):
        loss = tg.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert loss.dtype == BF16
    assert all(p.dtype == BF16 and p.grad.dtype == BF16 for p in model.parameters())
    assert losses[-1] < 0.1 * losses[0], losses[::15]


def test_optimizer_updates_smaller_than_a_bfloat16_step_are_not_lost_in_the_state():
    # Adam's moments live in float32: its first step has size lr whatever the gradient's scale.
    p = tg.nn.Parameter(tg.ones(4, dtype=BF16))
    opt = tg.optim.Adam([p], lr=0.25)
    p.grad = tg.full((4,), 1e-3, dtype=BF16)
    opt.step()
    np.testing.assert_array_equal(p.numpy(), np.full(4, 0.75, np.float32))
    assert opt.state_dict()["state"][0]["exp_avg"].dtype == tg.float32


# ---- what bfloat16 cannot do --------------------------------------------------------------------------

def test_integer_only_ops_reject_bfloat16():
    with pytest.raises(TypeError, match="index"):
        [0, 1][tg.tensor(1.0, dtype=BF16)]
    with pytest.raises(TypeError, match="embedding: indices must be integers, got bfloat16"):
        tg.nn.functional.embedding(tg.ones(2, dtype=BF16), tg.ones(2, 2))


# ---- PyTorch's bfloat16, where installed ---------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


def test_conversion_matches_torch():
    torch = _torch()
    rng = np.random.default_rng(2)
    f = rng.integers(0, 1 << 32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f = f[~np.isnan(f)]
    theirs = torch.from_numpy(f.copy()).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(to_bf16(f).view(np.uint32), theirs.view(np.uint32))


def test_gradients_match_torch_bfloat16():
    torch = _torch()
    rng = np.random.default_rng(4)
    x_np, w_np = rng.standard_normal((8, 6)).astype(np.float32), rng.standard_normal((3, 6)).astype(np.float32)
    x, w = tg.tensor(x_np, dtype=BF16), tg.tensor(w_np, dtype=BF16, requires_grad=True)
    tx, tw = torch.from_numpy(x_np).to(torch.bfloat16), torch.from_numpy(w_np).to(torch.bfloat16).requires_grad_()
    tg.nn.functional.linear(x, w).tanh().sum().backward()
    torch.nn.functional.linear(tx, tw).tanh().sum().backward()
    assert w.grad.dtype == BF16
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.float().numpy(), rtol=3e-2, atol=3e-2)
