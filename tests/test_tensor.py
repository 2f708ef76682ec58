"""Tensor creation, conversion to and from NumPy, Python protocols, repr, views and versions."""
import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")


# ---- tensor(): dtype inference as PyTorch ----------------------------------------------------------

@pytest.mark.parametrize("data, dtype", [
    (1.5, tg.float32), ([1.0, 2.0], tg.float32), ([[1, 2], [3, 4]], tg.int64), (3, tg.int64), (True, tg.bool),
    ([True, False], tg.bool), ([1, 2.5], tg.float32),
    (np.array([1.0, 2.0]), tg.float64), (np.array([1.0], dtype=np.float32), tg.float32),
    (np.array([1, 2], dtype=np.int64), tg.int64), (np.array([1, 2], dtype=np.int32), tg.int32),
    (np.array([True]), tg.bool),
])
def test_tensor_dtype_inference(data, dtype):
    t = tg.tensor(data)
    assert t.dtype == dtype
    ref = torch.tensor(data)
    assert str(t.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    assert t.shape == tuple(ref.shape)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_tensor_scalar_is_0d():
    t = tg.tensor(2.5)
    assert t.shape == () and t.ndim == 0 and t.numel() == 1
    assert t.item() == 2.5
    assert tg.tensor(np.float64(1.0)).shape == ()


def test_tensor_explicit_dtype_and_requires_grad():
    t = tg.tensor([1, 2], dtype=tg.float64, requires_grad=True)
    assert t.dtype == tg.float64 and t.requires_grad and t.is_leaf
    np.testing.assert_array_equal(t.detach().numpy(), [1.0, 2.0])


def test_tensor_copies_numpy_input():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a)
    a[0] = 9.0
    assert t.numpy()[0] == 1.0


# ---- factories ------------------------------------------------------------------------------------

def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).dtype == tg.float32
    np.testing.assert_array_equal(tg.zeros(2, 3).numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(tg.ones((4,), dtype=tg.int64).numpy(), np.ones(4, dtype=np.int64))
    f = tg.full((2, 2), 7)
    assert f.dtype == tg.int64 and (f.numpy() == 7).all()
    assert tg.full((2,), 1.5).dtype == tg.float32
    assert tg.empty(3, 0).shape == (3, 0)
    np.testing.assert_array_equal(tg.arange(5).numpy(), np.arange(5))
    assert tg.arange(5).dtype == tg.int64
    np.testing.assert_allclose(tg.arange(0, 1, 0.25).numpy(), np.arange(0, 1, 0.25))
    assert tg.arange(0, 1, 0.25).dtype == tg.float32
    np.testing.assert_array_equal(tg.arange(2, 11, 3).numpy(), np.arange(2, 11, 3))
    np.testing.assert_allclose(tg.linspace(-1, 1, 5).numpy(), np.linspace(-1, 1, 5), rtol=1e-6)
    assert tg.linspace(0, 1, 7).numpy()[-1] == 1.0
    for start, end, steps in [(5, 10, 1), (-2.5, 3, 1), (5, 10, 2), (3, -1, 4), (0, 1, 0)]:  # one step is its start
        np.testing.assert_allclose(tg.linspace(start, end, steps).numpy(), np.linspace(start, end, steps, dtype=np.float32))
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(tg.eye(2, 3).numpy(), np.eye(2, 3))
    x = tg.ones(2, 3, dtype=tg.float64)
    assert tg.zeros_like(x).dtype == tg.float64 and tg.ones_like(x).shape == (2, 3)


def test_random_factories_and_seed():
    tg.manual_seed(123)
    a, b, c = tg.rand(1000), tg.randn(1000), tg.randint(0, 10, (1000,))
    tg.manual_seed(123)
    a2, b2, c2 = tg.rand(1000), tg.randn(1000), tg.randint(0, 10, (1000,))
    for x, y in ((a, a2), (b, b2), (c, c2)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(tg.rand(1000).numpy(), a.numpy())  # the stream moves on
    assert a.dtype == tg.float32 and c.dtype == tg.int64
    av, bv, cv = a.numpy(), b.numpy(), c.numpy()
    assert 0 <= av.min() and av.max() < 1 and abs(av.mean() - 0.5) < 0.05
    assert abs(bv.mean()) < 0.15 and abs(bv.std() - 1) < 0.1
    assert cv.min() >= 0 and cv.max() <= 9 and len(np.unique(cv)) == 10
    assert tg.rand(2, 3, dtype=tg.float64).dtype == tg.float64


# ---- NumPy interop -------------------------------------------------------------------------------

def test_from_numpy_shares_memory_both_ways():
    a = np.arange(6.0).reshape(2, 3)
    t = tg.from_numpy(a)
    assert t.dtype == tg.float64 and t.shape == (2, 3)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    with tg.no_grad():
        t[1, 2] = -5.0
    assert a[1, 2] == -5.0
    n = t.numpy()
    n[0, 1] = 42.0
    assert a[0, 1] == 42.0


def test_numpy_shares_memory_with_tensor():
    t = tg.zeros(3)
    n = t.numpy()
    n[1] = 2.0
    assert t.tolist() == [0.0, 2.0, 0.0]
    with tg.no_grad():
        t += 1
    np.testing.assert_array_equal(n, [1.0, 3.0, 1.0])


def test_item_tolist_len_iter_array():
    t = tg.tensor([[1, 2], [3, 4]])
    assert len(t) == 2
    assert t.tolist() == [[1, 2], [3, 4]]
    assert isinstance(tg.tensor(3).item(), int) and isinstance(tg.tensor(3.5).item(), float)
    assert tg.tensor(True).item() is True
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4]
    np.testing.assert_array_equal(np.asarray(t), [[1, 2], [3, 4]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(TypeError):
        len(tg.tensor(1.0))
    with pytest.raises(TypeError):
        iter(tg.tensor(1.0))
    with pytest.raises((ValueError, RuntimeError)):
        tg.tensor([1.0, 2.0]).item()


@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.5, -3.0], None), ([[1.0, 2.0], [3.0, 4.0]], None), ([1, 2, 3], None), ([True, False], None),
    ([1.5, 2.0], "float64"), (2.0, None), ([], None), ([0.1234567, 100.5], None),
])
def test_repr_matches_pytorch(data, dtype):
    t = tg.tensor(data, dtype=getattr(tg, dtype) if dtype else None)
    ref = torch.tensor(data, dtype=getattr(torch, dtype) if dtype else None)
    assert repr(t) == repr(ref).replace("torch.", "tapegrad.")


def test_repr_shows_grad_info():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<MulBackward" in repr(x * 2)


# ---- views and contiguity --------------------------------------------------------------------------

def test_views_share_storage():
    t = tg.arange(12, dtype=tg.float32).reshape(3, 4)
    r, tr, s = t.reshape(4, 3), t.transpose(0, 1), t[1:, ::2]
    with tg.no_grad():
        t[1, 2] = 100.0
    assert r[2, 0].item() == 100.0  # flat index 6
    assert tr[2, 1].item() == 100.0
    assert s[0, 1].item() == 100.0
    assert s.shape == (2, 2) and not s.is_contiguous()
    assert tr.data_ptr() == t.data_ptr() and r.data_ptr() == t.data_ptr()
    assert t[1].data_ptr() == t.data_ptr() + 4 * 4


def test_contiguous_copies_only_when_needed():
    t = tg.arange(6, dtype=tg.float32).reshape(2, 3)
    assert t.is_contiguous() and t.contiguous().data_ptr() == t.data_ptr()
    tt = t.T
    assert not tt.is_contiguous()
    c = tt.contiguous()
    assert c.is_contiguous() and c.data_ptr() != t.data_ptr()
    np.testing.assert_array_equal(c.numpy(), t.numpy().T)
    assert c.stride() == (2, 1) and tt.stride() == (1, 3)
    # reshape of a non-viewable layout copies; of a viewable one it does not
    assert t.reshape(3, 2).data_ptr() == t.data_ptr()
    np.testing.assert_array_equal(tt.reshape(6).numpy(), t.numpy().T.reshape(6))


def test_expand_is_a_zero_stride_view():
    t = tg.tensor([[1.0], [2.0]])
    e = t.expand(2, 3)
    assert e.stride()[1] == 0 and e.data_ptr() == t.data_ptr()
    np.testing.assert_array_equal(e.numpy(), [[1, 1, 1], [2, 2, 2]])


# ---- __setitem__ ----------------------------------------------------------------------------------

def test_setitem_under_no_grad():
    w = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    with tg.no_grad():
        w[0, 1] = 5.0
        w[1] = tg.tensor(np.array([1.0, 2.0, 3.0]))
        w[:, 0] = -1.0
    np.testing.assert_array_equal(w.detach().numpy(), [[-1, 5, 0], [-1, 2, 3]])
    assert w.is_leaf and w.requires_grad


def test_setitem_recorded_gradient_flows_to_value():
    v = tg.tensor(np.array([2.0, 3.0]), requires_grad=True)
    base = tg.tensor(np.array([1.0, 1.0, 1.0, 1.0]), requires_grad=True)
    x = base * 1.0
    x[1:3] = v * v
    (x * tg.tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [2 * 2.0 * 2.0, 3 * 2 * 3.0])
    np.testing.assert_allclose(base.grad.numpy(), [1.0, 0.0, 0.0, 4.0])  # overwritten positions get none


def test_setitem_advanced_and_mask():
    t = tg.zeros(5)
    t[tg.tensor([0, 3])] = 1.0
    t[t > 0.5] = 2.0
    np.testing.assert_array_equal(t.numpy(), [2, 0, 0, 2, 0])
    v = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = tg.zeros(4, dtype=tg.float64)
    x[tg.tensor([3, 1])] = v
    (x * tg.tensor(np.array([1.0, 10.0, 100.0, 1000.0]))).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [1000.0, 10.0])


# ---- versions ------------------------------------------------------------------------------------

def test_inplace_ops_bump_the_version():
    t = tg.zeros(3)
    v0 = t._version()
    with tg.no_grad():
        t += 1
    v1 = t._version()
    t.mul_(2)
    t[0] = 5.0
    t.zero_()
    v2 = t._version()
    assert v0 < v1 < v2 and v2 - v1 >= 3
    view = t[1:]
    view.add_(1)
    assert t._version() > v2  # views share the counter
    np.testing.assert_array_equal(t.numpy(), [0, 1, 1])


def test_grad_setter_checks_shape():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.grad = tg.tensor([0.5, 0.5])
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.5])
    with pytest.raises(ValueError):
        x.grad = tg.tensor([1.0, 2.0, 3.0])


# ---- indexing with sequences in every position, and what a negative step does -----------------------

@pytest.mark.parametrize("key", [
    ((0, 1), ...), (..., (0, 1)), ([2, 0], slice(None), 1), (slice(None), [1, 1, 0]), (1, [0, 2], [1, 3]),
    ([[0, 1], [2, 2]], ...), (None, [0, 2]), ([0, 2], None, [1, 2]), ((0, 2), slice(1, None), (3, 0)),
    ([True, False, True], ...), (..., [True, False, True, True]),
], ids=repr)
def test_tuple_and_list_indices_in_every_position(key):
    """Lists and tuples inside the key are integer (or bool) index arrays in any position, as in
    NumPy and PyTorch; the gradient lands where the values came from."""
    a = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) if len(key) == 3 else np.arange(12.0).reshape(3, 4)
    x = tg.tensor(a, requires_grad=True)
    y = x[key]
    np.testing.assert_array_equal(y.numpy(), a[key])
    assert tuple(y.shape) == tuple(torch.tensor(a)[key].shape)
    y.sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, key, 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_negative_step_raises_as_pytorch():
    """PyTorch raises for a negative slice step ("step must be greater than zero"); so does
    tapegrad, with a ValueError naming the step (flip() is the copy that reverses)."""
    with pytest.raises(ValueError, match="step must be positive, got -1"):
        tg.arange(5)[::-1]
    with pytest.raises(ValueError):
        torch.arange(5)[::-1]
    assert tg.arange(5).flip(0).tolist() == [4, 3, 2, 1, 0]
