"""Ordering and running extremes where the spec table's random inputs do not go: ties, NaN,
bfloat16 and the named results. Each case is checked against a plain-Python reference and, where
it is installed, against PyTorch."""
import math

import numpy as np
import pytest

import tapegrad as tg

try:
    import torch
except ImportError:
    torch = None

NAN = float("nan")
LINES = [
    [1.0, 3.0, 3.0, 2.0, NAN, 5.0, NAN],
    [2.0, 2.0, 1.0, 1.0, 2.0],
    [NAN, 1.0, NAN, 0.0],
    [-math.inf, 4.0, math.inf, 4.0, -math.inf],
]


def running_extreme_reference(line, is_max):
    """PyTorch's cummax / cummin: a later equal value and every NaN take over."""
    best, out = 0, []
    for j, v in enumerate(line):
        b = line[best]
        if math.isnan(v) or (not math.isnan(b) and (v >= b if is_max else v <= b)):
            best = j
        out.append(best)
    return out


def sort_reference(line, descending):
    """Stable order, NaN the largest value."""
    key = (lambda j: (not math.isnan(line[j]), -line[j] if not math.isnan(line[j]) else 0)) if descending else \
          (lambda j: (math.isnan(line[j]), line[j] if not math.isnan(line[j]) else 0))
    return sorted(range(len(line)), key=key)


def same(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("is_max", [True, False])
def test_running_extreme_ties_and_nan(line, is_max):
    values, indices = (tg.cummax if is_max else tg.cummin)(tg.tensor(line), 0)
    want = running_extreme_reference(line, is_max)
    assert indices.tolist() == want
    assert same(values.numpy(), [line[i] for i in want])
    if torch is not None:
        t = (torch.cummax if is_max else torch.cummin)(torch.tensor(line), 0)
        assert indices.tolist() == t.indices.tolist()


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_with_nan_largest(line, descending):
    values, indices = tg.sort(tg.tensor(line), descending=descending)
    want = sort_reference(line, descending)
    assert indices.tolist() == want
    assert same(values.numpy(), [line[i] for i in want])
    if torch is not None:
        t = torch.sort(torch.tensor(line), descending=descending, stable=True)
        assert indices.tolist() == t.indices.tolist()


def test_median_of_a_line_with_nan_is_nan():
    x = tg.tensor([[3.0, NAN, 1.0], [3.0, 2.0, 1.0]])
    values, indices = x.median(1)
    assert math.isnan(values[0].item()) and values[1].item() == 2.0
    assert indices.tolist() == [1, 1]
    assert math.isnan(tg.median(x).item())


def test_mode_prefers_the_smallest_value_and_its_last_position():
    x = tg.tensor([[3, 1, 2, 1, 3, 0], [1, 1, 1, 2, 2, 2]])
    values, indices = tg.mode(x)
    assert values.tolist() == [1, 1] and indices.tolist() == [3, 2]


def test_sort_bfloat16_and_bool_keep_their_dtype():
    x = tg.tensor([0.5, -1.0, 2.0, 0.25]).to(tg.bfloat16)
    values, indices = x.sort()
    assert values.dtype == tg.bfloat16 and indices.tolist() == [1, 3, 0, 2]
    b = tg.tensor([True, False, True, False])
    assert b.sort().values.tolist() == [False, False, True, True]
    assert b.argsort(descending=True).tolist() == [0, 2, 1, 3]


def test_results_are_named_tuples_and_0d_inputs_work():
    r = tg.topk(tg.tensor([1.0, 5.0, 3.0]), 2)
    assert r.values.tolist() == [5.0, 3.0] and r.indices.tolist() == [1, 2]
    v, i = tg.kthvalue(tg.tensor(4.0), 1)
    assert v.item() == 4.0 and i.item() == 0 and v.dim() == 0
    assert tg.cumprod(tg.tensor(3.0), 0).item() == 3.0


def test_dtype_argument_converts_first():
    x = tg.tensor([1, 2, 3])
    assert x.cumsum(0, dtype=tg.float64).dtype == tg.float64
    assert tg.prod(x, dtype=tg.float32).item() == 6.0
    assert tg.tensor([True, True, False]).prod().dtype == tg.int64


def test_unique_with_everything():
    values = tg.unique(tg.tensor([[2, 7], [2, 1]]))
    assert values.tolist() == [1, 2, 7]
    values, inverse, counts = tg.unique(tg.tensor([[2, 7], [2, 1]]), return_inverse=True, return_counts=True)
    assert inverse.tolist() == [[1, 2], [1, 0]] and counts.tolist() == [1, 2, 1]
    empty = tg.unique(tg.zeros(0))
    assert empty.shape == (0,)


def test_prod_gradient_with_zeros():
    """prod's gradient is the product of the other elements, also where one or two are zero."""
    x = tg.tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]], requires_grad=True)
    x.prod(1).sum().backward()
    assert x.grad.tolist() == [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]]
