"""Sizes that do not fit: an element count past int64 raises ValueError, an allocation that cannot
be satisfied MemoryError, a negative size ShapeError, each naming the op and the shape. Nothing
wraps around into a small or negative size (tg.zeros(2**40, 2**40) used to report numel() == 0)."""
import pytest

import tapegrad as tg

BIG = 2 ** 40  # BIG * BIG overflows int64


@pytest.mark.parametrize("make, op", [
    (lambda: tg.zeros(BIG, BIG), "zeros"),
    (lambda: tg.ones((BIG, BIG)), "ones"),
    (lambda: tg.empty(BIG, BIG), "empty"),
    (lambda: tg.rand(BIG, BIG), "rand"),
    (lambda: tg.randn(2 ** 62, 4), "randn"),
    (lambda: tg.full((BIG, BIG), 1.0), "full"),
    (lambda: tg.randint(0, 5, (BIG, BIG)), "randint"),
    (lambda: tg.zeros(0, BIG, BIG), "zeros"),  # no elements, but strides that would overflow
], ids=lambda v: v if isinstance(v, str) else "")
def test_creation_past_int64_raises_value_error(make, op):
    with pytest.raises(ValueError, match=rf"{op}: shape \(.*\) has more elements than an int64 can count"):
        make()


@pytest.mark.parametrize("make, op", [
    (lambda: tg.zeros(3).expand(2 ** 62, 3), "expand"),
    (lambda: tg.zeros(1).expand(BIG, BIG), "expand"),
    (lambda: tg.zeros(0).reshape(0, BIG, BIG), "reshape"),
    (lambda: tg.zeros(0).view(BIG, BIG, -1), "view"),
    (lambda: tg.zeros(2, 3).repeat(2 ** 62, 2), "repeat"),
    (lambda: tg.zeros(2, 3).tile((2 ** 62, 2)), "repeat"),
    (lambda: tg.cat([tg.zeros(1).expand(2 ** 62)] * 2), "cat"),
    (lambda: tg.zeros(1, 1).expand(BIG, 1) + tg.zeros(1, 1).expand(1, BIG), "add"),
    (lambda: tg.where(tg.zeros(1, 1, dtype=tg.bool).expand(BIG, 1), tg.zeros(1, 1).expand(1, BIG), 0.0), "where"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_views_and_results_past_int64_raise_value_error(make, op):
    with pytest.raises(ValueError, match=rf"{op}: .*(int64|cannot reshape)"):
        make()


@pytest.mark.parametrize("make", [
    lambda: tg.zeros(2 ** 47),
    lambda: tg.zeros(2 ** 31, 2 ** 31),
    lambda: tg.arange(0, 2 ** 62),
    lambda: tg.zeros(1).expand(2 ** 62, 1) @ tg.zeros(1, 1),
    lambda: tg.zeros(1).expand(2 ** 50).contiguous(),
])
def test_allocations_that_cannot_be_satisfied_raise_memory_error(make):
    with pytest.raises(MemoryError, match=r"\(|bytes"):
        make()


def test_negative_sizes_raise_shape_error_naming_the_op():
    with pytest.raises(tg.ShapeError, match=r"zeros: negative dimension -1 in shape \(2, -1\)"):
        tg.zeros(2, -1)
    with pytest.raises(tg.ShapeError, match="full: negative dimension"):
        tg.full((-3,), 1.0)


def test_large_but_countable_views_still_work():
    # An expanded view may describe more elements than memory holds; counting them is fine.
    t = tg.zeros(1).expand(2 ** 62)
    assert t.shape == (2 ** 62,) and t.numel() == 2 ** 62
    assert tg.zeros(0, 2 ** 31, 2 ** 31).numel() == 0


HUGE = 2 ** 63 - 1


@pytest.mark.parametrize("make, error, message", [
    (lambda: tg.zeros(4).narrow(0, 2 ** 62, 2 ** 62), IndexError, "narrow: start"),
    (lambda: tg.zeros(4).narrow(0, 2, HUGE), IndexError, "narrow: start 2 and length"),
    (lambda: tg.zeros(4).split([HUGE, HUGE, 6]), ValueError, "split: size"),
    (lambda: tg.zeros(3).repeat_interleave(tg.tensor([2 ** 62, 2 ** 62, 1])), ValueError, "repeat_interleave: size"),
    (lambda: tg.zeros(3).repeat_interleave(2 ** 62), ValueError, "repeat_interleave: size"),
    (lambda: tg.arange(0, 10, 1e-300), ValueError, "arange: .* more elements than an int64 can count"),
    (lambda: tg.zeros(3).diag(HUGE), ValueError, "diag: size"),
    (lambda: tg.zeros(3).diag(2 ** 40), ValueError, "diag: shape"),
    (lambda: tg.nn.functional.interpolate(tg.zeros(1, 1, 4), scale_factor=1e30), ValueError, "interpolate: output sizes"),
    (lambda: tg.nn.functional.pad(tg.zeros(2, 2), (2 ** 62, 2 ** 62)), ValueError, "int64"),
], ids=["narrow-start", "narrow-length", "split", "repeat_interleave-counts", "repeat_interleave-int", "arange", "diag-add",
        "diag-square", "interpolate", "pad"])
def test_size_arithmetic_of_ops_never_wraps(make, error, message):
    with pytest.raises(error, match=message):
        make()
