"""The storage dtypes beyond bfloat16: float16 (computed in float32) and int32 / int16 / int8 /
uint8 (computed in int64, wrapped back). Conversions against NumPy's, every row of the op table
against the same op in the compute dtype converted once, PyTorch's promotion table, NumPy memory
sharing, checkpoints and the GPU column."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from helpers import as_tuple, draw_inputs
from op_specs import OPS, convert

try:
    import torch
except ImportError:
    torch = None

SETTINGS = settings(deadline=None, max_examples=4, suppress_health_check=list(HealthCheck), derandomize=True)
SMALL_INTS = [tg.int32, tg.int16, tg.int8, tg.uint8]
NUMPY_OF = {tg.float16: np.float16, tg.int32: np.int32, tg.int16: np.int16, tg.int8: np.int8, tg.uint8: np.uint8}
ALL = [tg.bool, tg.uint8, tg.int8, tg.int16, tg.int32, tg.int64, tg.float16, tg.bfloat16, tg.float32, tg.float64]


# ---- float16 conversions: NumPy's converter is the reference ----------------------------------------

def test_every_float16_pattern_round_trips_exactly():
    patterns = np.arange(1 << 16, dtype=np.uint16)
    values = patterns.view(np.float16)
    ours = tg.from_numpy(values.copy()).float().numpy()
    np.testing.assert_array_equal(ours, values.astype(np.float32))  # NaN == NaN here: array_equal on float32 views
    back = tg.from_numpy(ours).half().numpy()
    finite = ~np.isnan(values)
    np.testing.assert_array_equal(back[finite].view(np.uint16), patterns[finite])
    assert np.isnan(back[~finite]).all()


def test_float32_to_float16_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 1 << 32, 300_000, dtype=np.uint64).astype(np.uint32)
    f = bits.view(np.float32)
    # and the edges: overflow to inf, the largest half, ties, subnormals, the smallest subnormal's half
    edges = np.array([65504, 65519.99, 65520, 1e6, 2.0 ** -24, 2.0 ** -25, 1.5 * 2.0 ** -25, 2.0 ** -14, 1 + 2.0 ** -11,
                      1 + 3 * 2.0 ** -11, 6.1e-5, -0.0, np.inf, -np.inf], np.float32)
    f = np.concatenate([f[np.isfinite(f)], edges])
    with np.errstate(over="ignore"):
        want = f.astype(np.float16)
    np.testing.assert_array_equal(tg.from_numpy(f).half().numpy().view(np.uint16), want.view(np.uint16))


# ---- the op table in the storage dtypes -----------------------------------------------------------------

FLOAT_ROWS = [op for op in OPS if "float32" in op.dtypes]
INT_ROWS = [op for op in OPS if "int64" in op.dtypes]


def _rounded(a, dtype):
    return a.astype(NUMPY_OF[dtype]) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("op", FLOAT_ROWS, ids=[op.name for op in FLOAT_ROWS])
def test_op_in_float16_matches_float32_rounded(op):
    """float16 inputs against float32 ones of the same values: the float32 result rounded once."""
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "float32")
        halves = [_rounded(a, tg.float16) for a in arrays]
        ours = [tg.from_numpy(h.copy()) for h in halves]
        refs = [tg.from_numpy(h.astype(np.float32)) if h.dtype == np.float16 else tg.from_numpy(h.copy()) for h in halves]
        outs = as_tuple(op.tg(*ours, **convert(params, "tg")))
        wants = as_tuple(op.tg(*refs, **convert(params, "tg")))
        rtol, atol = op.bf16_tol
        for i, (o, w) in enumerate(zip(outs, wants)):
            assert o.dtype == (tg.float16 if w.dtype == tg.float32 else w.dtype), f"{op.name} output {i}: {o.dtype}"
            want = w.numpy().astype(np.float16) if w.dtype == tg.float32 else w.numpy()
            np.testing.assert_allclose(o.numpy().astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                       equal_nan=True, err_msg=f"{op.name} output {i}")

    run()


@pytest.mark.parametrize("dtype", SMALL_INTS, ids=str)
@pytest.mark.parametrize("op", INT_ROWS, ids=[op.name for op in INT_ROWS])
def test_op_on_small_integers_matches_int64_wrapped(op, dtype):
    """int32 / int16 / int8 / uint8 inputs against int64 ones of the same values: where the int64
    op keeps int64, the narrow op keeps the narrow dtype and wraps as it does; other results
    (bool, float32, int64 sums) are the same."""
    if dtype == tg.uint8 and op.name in ("pow_int_tensor_negative_exponent", "rpow_int_negative_exponent"):
        pytest.skip("the row builds its negative exponent inside (x * 0 - 2): it wraps to 254 in uint8")

    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "int64")
        narrow = [a.astype(NUMPY_OF[dtype]) if a.dtype == np.int64 else a for a in arrays]
        ours = [tg.from_numpy(np.array(a, order="C")) for a in narrow]
        wide = [tg.from_numpy(a.astype(np.int64)) if a.dtype.kind in "iu" else tg.from_numpy(a.copy()) for a in narrow]
        try:
            wants = as_tuple(op.tg(*wide, **convert(params, "tg")))
        except ZeroDivisionError:
            with pytest.raises(ZeroDivisionError):
                op.tg(*ours, **convert(params, "tg"))
            return
        outs = as_tuple(op.tg(*ours, **convert(params, "tg")))
        for i, (o, w) in enumerate(zip(outs, wants)):
            if w.dtype == tg.int64 and o.dtype == dtype:
                want = w.numpy().astype(NUMPY_OF[dtype])  # wraps, as the narrow op must
            else:
                assert o.dtype == w.dtype, f"{op.name} output {i}: {o.dtype}, int64 inputs gave {w.dtype}"
                want = w.numpy()
            np.testing.assert_array_equal(o.numpy(), want, err_msg=f"{op.name} output {i}")

    run()


# Where tapegrad's uint8 departs from PyTorch's on purpose: PyTorch's any / all of uint8 give uint8
# (a legacy rule; tapegrad gives bool for every dtype), and it casts a negative scalar to uint8
# before % (x % -3 is x % 253 there; tapegrad computes in int64, as for every integer dtype).
UINT8_DEPARTURES = {"any", "all", "mod_negative_scalar"}


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("dtype", SMALL_INTS + [tg.float16], ids=str)
@pytest.mark.parametrize("op", [op for op in INT_ROWS if op.torch is not None], ids=lambda op: op.name)
def test_op_on_storage_dtypes_matches_torch(op, dtype):
    """The same inputs in PyTorch: the result dtype of its promotion rules, and the same values."""
    if dtype == tg.uint8 and op.name in UINT8_DEPARTURES:
        pytest.skip("a deliberate departure from PyTorch's uint8 (UINT8_DEPARTURES)")
    @SETTINGS
    @given(data=st.data())
    def run(data):
        arrays, params = draw_inputs(data, op, "int64" if dtype != tg.float16 else "float32")
        if dtype == tg.float16 and "float32" not in op.dtypes:
            return
        narrow = [a.astype(NUMPY_OF[dtype]) if a.dtype in (np.int64, np.float32) else a for a in arrays]
        ours = [tg.from_numpy(np.array(a, order="C")) for a in narrow]
        theirs = [torch.from_numpy(np.array(a, order="C")) for a in narrow]
        try:
            refs = as_tuple(op.torch(*theirs, **convert(params, "torch")))
        except RuntimeError:  # an op PyTorch does not implement for this dtype on the CPU
            return
        outs = as_tuple(op.tg(*ours, **convert(params, "tg")))
        for i, (o, r) in enumerate(zip(outs, refs)):
            assert str(o.dtype).split(".")[-1] == str(r.dtype).split(".")[-1], f"{op.name} output {i}: {o.dtype} vs {r.dtype}"
            tol = 2e-3 if dtype == tg.float16 else 1e-6 if o.dtype.is_floating_point else 0
            np.testing.assert_allclose(o.numpy().astype(np.float64), r.numpy().astype(np.float64), rtol=tol, atol=tol,
                                       equal_nan=True, err_msg=f"{op.name} output {i}")

    run()


# ---- promotion ----------------------------------------------------------------------------------------

def _tensor_of(dtype, n=2):
    return tg.ones(n, dtype=dtype)


@pytest.mark.parametrize("a, b, want", [
    (tg.uint8, tg.int8, tg.int16), (tg.int8, tg.int16, tg.int16), (tg.int32, tg.int64, tg.int64),
    (tg.uint8, tg.int32, tg.int32), (tg.bool, tg.uint8, tg.uint8), (tg.int8, tg.float16, tg.float16),
    (tg.float16, tg.bfloat16, tg.float32), (tg.float16, tg.float32, tg.float32), (tg.int64, tg.float16, tg.float16),
    (tg.bfloat16, tg.int32, tg.bfloat16),
])
def test_promotion_table(a, b, want):
    assert (_tensor_of(a) + _tensor_of(b)).dtype == want
    assert (_tensor_of(b) * _tensor_of(a)).dtype == want


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_numbers_and_0d_tensors_do_not_widen(dtype):
    x = _tensor_of(dtype)
    if dtype != tg.bool:
        assert (x + 1).dtype == dtype and (x + tg.tensor(1)).dtype == dtype
    assert (x + 1.5).dtype == (dtype if dtype.is_floating_point else tg.float32)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_promotion_matches_torch_for_every_pair():
    for a in ALL:
        for b in ALL:
            ta = torch.ones(2, dtype=getattr(torch, str(a).split(".")[-1]))
            tb = torch.ones(2, dtype=getattr(torch, str(b).split(".")[-1]))
            assert str((_tensor_of(a) + _tensor_of(b)).dtype).split(".")[-1] == str((ta + tb).dtype).split(".")[-1], (a, b)


# ---- NumPy, conversions, checkpoints, the GPU ---------------------------------------------------------

@pytest.mark.parametrize("dtype", [tg.float16] + SMALL_INTS, ids=str)
def test_numpy_shares_memory_both_ways(dtype):
    a = np.arange(6, dtype=NUMPY_OF[dtype]).reshape(2, 3)
    t = tg.from_numpy(a)
    assert t.dtype == dtype and tg.tensor(a).dtype == dtype
    a[0, 0] = 5
    assert t[0, 0].item() == 5
    back = t.numpy()
    back[1, 2] = 7
    assert a[1, 2] == 7 and back.dtype == NUMPY_OF[dtype]


def test_conversion_methods_and_names():
    x = tg.tensor([1.7, -2.2, 300.0])
    assert x.half().dtype == tg.float16 == tg.half
    assert x.int().dtype == tg.int32 == tg.int and x.short().dtype == tg.int16 == tg.short
    assert x.char().dtype == tg.int8 and x.byte().dtype == tg.uint8
    assert x.int().tolist() == [1, -2, 300] and x.to(tg.int8).tolist() == [1, -2, 44]  # 300 wraps as a C cast
    assert tg.zeros(2, dtype=tg.int16).sum().dtype == tg.int64
    assert tg.arange(5, dtype=tg.uint8).tolist() == [0, 1, 2, 3, 4]
    assert isinstance(tg.tensor([3], dtype=tg.int8).item(), int)
    assert tg.tensor([1, 2], dtype=tg.int32)[tg.tensor([1], dtype=tg.int32)].tolist() == [2]  # int32 index tensors


def test_float16_training_step_updates_in_float16():
    w = tg.nn.Parameter(tg.ones(4, dtype=tg.float16)) if hasattr(tg.nn, "Parameter") else tg.ones(4, dtype=tg.float16)
    w.requires_grad_(True)
    opt = tg.optim.Adam([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((w * tg.tensor([1.0, 2.0, 3.0, 4.0], dtype=tg.float16)) ** 2).sum().backward()
        assert w.grad.dtype == tg.float16
        opt.step()
    assert w.dtype == tg.float16 and bool((w < 1).all())


@pytest.mark.parametrize("dtype", [tg.float16] + SMALL_INTS, ids=str)
def test_checkpoints_keep_the_dtype(tmp_path, dtype):
    x = tg.tensor([[1, 2], [3, 4]]).to(dtype)
    tg.save({"x": x}, tmp_path / "c.tg")
    y = tg.load(tmp_path / "c.tg")["x"]
    assert y.dtype == dtype and y.tolist() == x.tolist()


@pytest.mark.parametrize("dtype", [tg.float16] + SMALL_INTS, ids=str)
def test_on_cuda(dtype):
    if not tg.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    x = tg.tensor([[1, 2, 3], [4, 5, 120]]).to(dtype)
    g = x.cuda()
    assert g.dtype == dtype and g.cpu().tolist() == x.tolist()
    np.testing.assert_array_equal((g * 3 + 1).sum(1).cpu().numpy(), (x * 3 + 1).sum(1).numpy())
    np.testing.assert_array_equal((g * 3).cpu().numpy(), (x * 3).numpy())  # wraps on the GPU as on the CPU
    assert g.sort(descending=True).values.cpu().tolist() == x.sort(descending=True).values.tolist()
