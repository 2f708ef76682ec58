"""The CPU reduction kernels' paths against NumPy: rows (inner == 1), a few long rows cut into
chunks, and a middle dim (columns), each with the values that break a vectorised max: rows of
-inf or +inf only, NaN first, last or alone, and integer rows."""
import zlib

import numpy as np
import pytest

import tapegrad as tg

# (outer, r, inner) shapes, one per kernel path; the long row (2 * 32768 + 5) is cut in chunks.
SHAPES = [(7, 33, 1), (2, 2 * 32768 + 5, 1), (3, 9, 300), (1, 17, 5)]

EXTREMES = {
    "amax": (lambda t, d: t.amax(d), lambda a, d: np.max(a, axis=d)),
    "amin": (lambda t, d: t.amin(d), lambda a, d: np.min(a, axis=d)),
    "argmax": (lambda t, d: t.argmax(d), lambda a, d: np.argmax(a, axis=d)),
    "argmin": (lambda t, d: t.argmin(d), lambda a, d: np.argmin(a, axis=d)),
}


def _special(shape, dtype, seed):
    """Random values with whole reduced lines of -inf and +inf, and NaN first, last and in the middle."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    outer, r, inner = shape
    lines = [(o, i) for o in range(outer) for i in range(inner)]
    picks = rng.permutation(len(lines))
    kinds = ["-inf", "+inf", "nan0", "nanlast", "nanmid", "ties"]
    for kind, p in zip(kinds, picks):
        o, i = lines[p]
        if kind == "-inf":
            a[o, :, i] = -np.inf
        elif kind == "+inf":
            a[o, :, i] = np.inf
        elif kind == "nan0":
            a[o, 0, i] = np.nan
        elif kind == "nanlast":
            a[o, -1, i] = np.nan
        elif kind == "nanmid":
            a[o, r // 2, i] = np.nan
        else:  # the first of equal extremes is the index
            a[o, :, i] = 1.0
    return a


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(EXTREMES))
def test_extremes_with_inf_and_nan_match_numpy(shape, dtype, name):
    ours, ref = EXTREMES[name]
    a = _special(shape, dtype, seed=zlib.crc32(f"{shape}{dtype}{name}".encode()))
    got = ours(tg.tensor(a), 1).numpy()
    want = ref(a, 1)
    np.testing.assert_array_equal(got, want, err_msg=f"{name} over dim 1 of {shape} {dtype}")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(EXTREMES))
def test_integer_extremes_match_numpy(shape, name):
    ours, ref = EXTREMES[name]
    a = np.random.default_rng(5).integers(-1000, 1000, size=shape, dtype=np.int64)
    a[0, :, 0] = np.iinfo(np.int64).min  # a line of the lowest value: the max is that value
    np.testing.assert_array_equal(ours(tg.tensor(a), 1).numpy(), ref(a, 1))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_sums_match_numpy(shape, dtype):
    rng = np.random.default_rng(9)
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    got = tg.tensor(a).sum(1).numpy()
    want = a.astype(np.float64).sum(1)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * shape[1])


def test_sum_over_everything_does_not_depend_on_the_thread_count():
    a = np.random.default_rng(3).standard_normal(3 * 32768 + 11).astype(np.float32)
    before = tg.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            tg.set_num_threads(n)
            results.append(tg.tensor(a).sum().item())
    finally:
        tg.set_num_threads(before)
    assert results[0] == results[1]
    np.testing.assert_allclose(results[0], a.astype(np.float64).sum(), rtol=1e-6)
