"""The autograd engine: graph shapes, accumulation, retain/create_graph, grad modes, detach,
deep chains, in-place checks, GradientTape and broadcasting's adjoint."""
import threading

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")


def t64(data, requires_grad=True):
    return tg.tensor(np.asarray(data, dtype=np.float64), requires_grad=requires_grad)


def close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a.numpy() if isinstance(a, tg.Tensor) else a),
                               np.asarray(b.detach().numpy() if hasattr(b, "detach") else b), rtol=1e-10, atol=1e-12, **kw)


# ---- graph structure --------------------------------------------------------------------------

def test_diamond():
    # x -> a, b -> a * b: both paths contribute, d/dx (sin x * exp x) = cos x e^x + sin x e^x
    xv = np.array([0.3, -1.2, 2.0])
    x = t64(xv)
    (tg.sin(x) * tg.exp(x)).sum().backward()
    close(x.grad, np.cos(xv) * np.exp(xv) + np.sin(xv) * np.exp(xv))


def test_shared_subgraph_used_many_times():
    xv = np.array([[0.5, -0.25], [1.5, 2.0]])
    x, xt = t64(xv), torch.tensor(xv, requires_grad=True)
    outs = []
    for lib, v in (("tg", x), ("torch", xt)):
        h = (v * 2.0).tanh()  # shared by three consumers
        y = (h * h).sum() + (h @ h).sum() + h.exp().mean()
        outs.append(y)
        y.backward()
    close(outs[0].detach(), outs[1])
    close(x.grad, xt.grad)


def test_same_tensor_twice_in_one_op():
    x = t64([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    close(x.grad, [2.0, -4.0, 6.0])
    y = t64([1.0, 2.0])
    (y + y + y).sum().backward()
    close(y.grad, [3.0, 3.0])


def test_multiple_outputs_of_split_feed_one_loss():
    xv = np.arange(6.0).reshape(2, 3)
    x = t64(xv)
    a, b = x.split([1, 2], dim=1)
    (a.sum() * 2 + (b * b).sum()).backward()
    expect = np.concatenate([np.full((2, 1), 2.0), 2 * xv[:, 1:]], axis=1)
    close(x.grad, expect)


# ---- accumulation, retain_graph -----------------------------------------------------------------

def test_gradients_accumulate_over_two_backward_calls():
    x = t64([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    close(x.grad, [3.0 + 2.0, 3.0 + 4.0])
    x.grad = None
    (x * 5.0).sum().backward()
    close(x.grad, [5.0, 5.0])


def test_retain_graph_allows_a_second_backward():
    x = t64([0.5, 1.5])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    close(x.grad, 2 * g1)


def test_backward_twice_without_retain_graph_raises():
    x = t64([0.5, 1.5])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time|retain_graph"):
        y.backward()


def test_backward_with_explicit_gradient():
    x = t64([1.0, 2.0, 3.0])
    y = x * x
    y.backward(tg.tensor(np.array([1.0, 0.5, -1.0])))
    close(x.grad, [2.0, 2.0, -6.0])


# ---- higher order --------------------------------------------------------------------------------

def _second_derivative(fn, xv):
    x = t64(xv)
    (g,) = tg.grad(fn(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (gg,) = tg.grad(g.sum(), x)
    xt = torch.tensor(xv, requires_grad=True)
    (gt,) = torch.autograd.grad(fn(xt).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), xt)
    close(g.detach(), gt)
    close(gg, ggt)


def test_second_derivative_tanh():
    _second_derivative(lambda x: x.tanh(), np.array([-1.0, 0.2, 0.7]))


def test_second_derivative_cube():
    xv = np.array([-1.0, 0.5, 2.0])
    _second_derivative(lambda x: x ** 3, xv)
    x = t64(xv)
    (g,) = tg.grad((x ** 3).sum(), x, create_graph=True)
    (gg,) = tg.grad(g.sum(), x)
    close(gg, 6 * xv)


def test_second_derivative_of_a_product():
    av, bv = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    a, b = t64(av), t64(bv)
    y = (a * a * b).sum()  # dy/da = 2ab, d2y/dadb = 2a
    (ga,) = tg.grad(y, a, create_graph=True)
    close(ga.detach(), 2 * av * bv)
    (gb,) = tg.grad(ga.sum(), b)
    close(gb, 2 * av)


def test_backward_create_graph_then_backward_again():
    x = t64([0.3, 0.9])
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    close(x.grad, 6 * np.array([0.3, 0.9]))


# ---- tg.grad ------------------------------------------------------------------------------------

def test_grad_returns_tuple_and_leaves_dot_grad_alone():
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0])
    ga, gb = tg.grad((a * b).sum(), [a, b])
    close(ga, [3.0, 4.0])
    close(gb, [1.0, 2.0])
    assert a.grad is None and b.grad is None


def test_grad_with_grad_outputs():
    x = t64([1.0, 2.0])
    (g,) = tg.grad(x * x, x, grad_outputs=tg.tensor(np.array([1.0, -1.0])))
    close(g, [2.0, -4.0])


def test_grad_unused_input():
    a, b = t64([1.0]), t64([2.0])
    with pytest.raises(RuntimeError, match="not used|allow_unused"):
        tg.grad((a * 2).sum(), [a, b])
    ga, gb = tg.grad((a * 2).sum(), [a, b], allow_unused=True)
    close(ga, [2.0])
    assert gb is None


def test_grad_of_intermediate():
    x = t64([1.0, 2.0])
    h = x * 3.0
    (gh,) = tg.grad((h * h).sum(), h)
    close(gh, 2 * np.array([3.0, 6.0]))


# ---- grad mode ----------------------------------------------------------------------------------

def test_no_grad_records_nothing():
    x = t64([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            z = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_as_decorator_and_restored_after_exception():
    @tg.no_grad()
    def f(x):
        assert not tg.is_grad_enabled()
        return x * 2

    x = t64([1.0])
    assert not f(x).requires_grad
    assert tg.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}
    entered, release = threading.Event(), threading.Event()

    def worker():
        with tg.no_grad():
            entered.set()
            release.wait(5)
            seen["worker"] = tg.is_grad_enabled()

    th = threading.Thread(target=worker)
    th.start()
    entered.wait(5)
    seen["main"] = tg.is_grad_enabled()
    y = t64([1.0]) * 2  # recorded here while the worker is inside no_grad
    release.set()
    th.join()
    assert seen == {"main": True, "worker": False}
    assert y.requires_grad

    def other():
        seen["fresh"] = tg.is_grad_enabled()

    with tg.no_grad():
        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert seen["fresh"] is True


def test_detach():
    x = t64([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), [3.0, 6.0])
    with tg.no_grad():
        d[0] = 10.0  # shares storage with y
    assert y.detach().numpy()[0] == 10.0
    (y.detach() * x).sum().backward()
    close(x.grad, [10.0, 6.0])


def test_requires_grad_propagation_and_is_leaf():
    a = t64([1.0], requires_grad=False)
    b = t64([2.0])
    assert a.is_leaf and b.is_leaf
    assert not (a * 2).requires_grad
    c = a * b
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None


# ---- deep graphs ---------------------------------------------------------------------------------

def test_long_chain_backward_and_teardown():
    x = t64([1.0])
    y = x
    n = 100_000
    for _ in range(n):
        y = y + 1.0
    y.backward()
    close(x.grad, [1.0])
    close(y.detach(), [1.0 + n])
    # and a chain that is never run backward is freed without recursion
    z = x
    for _ in range(n):
        z = z * 1.0
    del z, y


# ---- in-place checks ----------------------------------------------------------------------------

def test_modifying_a_saved_tensor_raises():
    x = t64([1.0, 2.0])
    h = x * 2
    y = h.exp()  # saves its output
    z = (h * h).sum()  # saves h
    with tg.no_grad():
        h += 1
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()
    del y


def test_inplace_on_saved_output_raises():
    x = t64([0.5, 1.5])
    y = x.exp()
    y.mul_(2)  # exp saved y; recorded in-place write
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_recorded_inplace_gives_correct_gradient():
    xv = np.array([1.0, -2.0])
    x, xt = t64(xv), torch.tensor(xv, requires_grad=True)
    for v in (x, xt):
        h = v * 3
        h += v * v
        h *= 2
        h.sum().backward()
    close(x.grad, xt.grad)


def test_inplace_on_leaf_requiring_grad_raises():
    x = t64([1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1
    with tg.no_grad():
        x += 1
    close(x.detach(), [2.0])


# ---- in-place writes into views --------------------------------------------------------------------

def writes_through_views(lib, a, w):
    """b = 2a; b[1] *= w; column 0 of b (through a transposed view) += 5 w[0]; then use b and the
    first view, whose memory the second write changed."""
    b = a * 2
    v = b[1]
    v.mul_(w)
    b.transpose(0, 1)[0].add_(w[0] * 5)
    return (b ** 2).sum() + (v * 3).sum()


def test_in_place_writes_into_views_reach_the_viewed_tensor_like_torch():
    av, wv = np.arange(12.0).reshape(3, 4) / 7, np.array([1.0, -2.0, 3.0, 0.5])
    grads = {}
    for lib in (tg, torch):
        a, w = lib.tensor(av, requires_grad=True), lib.tensor(wv, requires_grad=True)
        writes_through_views(lib, a, w).backward()
        grads[lib] = (a.grad.numpy(), w.grad.numpy())
    for ours, theirs in zip(grads[tg], grads[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_in_place_writes_into_views_pass_gradcheck():
    a = tg.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    w = tg.tensor(np.random.default_rng(1).standard_normal(4), requires_grad=True)
    assert tg.gradcheck(lambda a, w: writes_through_views(tg, a, w), (a, w))


def test_view_of_a_tensor_without_grad_written_with_one_that_has_it():
    buf = tg.zeros(3, 4, dtype=tg.float64)
    w = t64([1.0, 2.0, 3.0, 4.0])
    row = buf[1]
    row.add_(w)
    assert buf.requires_grad and not buf.is_leaf
    c = np.arange(12.0).reshape(3, 4)
    (buf * tg.tensor(c)).sum().backward()
    close(w.grad, c[1])


def test_in_place_write_into_a_view_of_a_leaf_requiring_grad_raises_and_writes_nothing():
    x = t64([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="view of a leaf tensor that requires grad"):
        x[:2].mul_(5)
    close(x.detach(), [1.0, 2.0, 3.0])
    with tg.no_grad():
        x[:2].mul_(5)
    close(x.detach(), [5.0, 10.0, 3.0])


# ---- GradientTape --------------------------------------------------------------------------------

def test_gradient_tape():
    w = t64([[1.0, 2.0], [3.0, 4.0]])
    xv = np.array([[1.0, -1.0]])
    with tg.GradientTape() as tape:
        loss = ((tg.tensor(xv) @ w) ** 2).sum()
    (gw,) = tape.gradient(loss, [w])
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    ((torch.tensor(xv) @ wt) ** 2).sum().backward()
    close(gw, wt.grad)
    assert w.grad is None
    with pytest.raises(RuntimeError):
        tape.gradient(loss, [w])


def test_gradient_tape_persistent_and_single_source():
    x = t64([2.0])
    with tg.GradientTape(persistent=True) as tape:
        y = x * x
        z = y * y
    close(tape.gradient(z, x), [4 * 8.0])
    close(tape.gradient(y, x), [4.0])


def test_gradient_tape_watch():
    x = tg.tensor(np.array([3.0]))  # does not require grad
    with tg.GradientTape() as tape:
        tape.watch(x)
        y = x * x * x
    close(tape.gradient(y, x), [27.0])


def test_gradient_tape_unconnected_source_is_none():
    a, b = t64([1.0]), t64([2.0])
    with tg.GradientTape() as tape:
        y = a * 2
    ga, gb = tape.gradient(y, [a, b])
    close(ga, [2.0])
    assert gb is None


# ---- broadcasting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (2, 2)), ((), (3, 2)), ((2, 1, 3), (5, 3))])
def test_broadcast_gradients_are_reduced_to_input_shape(sa, sb):
    rng = np.random.default_rng(1)
    av, bv = rng.normal(size=sa), rng.normal(size=sb)
    a, b = t64(av), t64(bv)
    at, bt = torch.tensor(av, requires_grad=True), torch.tensor(bv, requires_grad=True)
    (a * b + a).sum().backward()
    (at * bt + at).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    close(a.grad, at.grad)
    close(b.grad, bt.grad)


def test_integer_and_bool_results_do_not_require_grad():
    x = t64([1.0, 2.0])
    assert not (x > 1).requires_grad
    assert not x.argmax().requires_grad
    assert (x.sum()).requires_grad


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_second_derivative_of_gelu_matches_torch(approximate):
    """gelu's backward is a fused op (erf form); it must itself be differentiable."""
    torch = pytest.importorskip("torch")
    values = np.linspace(-3, 3, 13)
    x = tg.tensor(values, requires_grad=True)
    (g,) = tg.grad(tg.gelu(x, approximate).sum(), [x], create_graph=True)
    (gg,) = tg.grad((g * g).sum(), [x])
    tx = torch.tensor(values, requires_grad=True)
    (tg1,) = torch.autograd.grad(torch.nn.functional.gelu(tx, approximate=approximate).sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad((tg1 * tg1).sum(), [tx])
    np.testing.assert_allclose(g.detach().numpy(), tg1.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("exponent", ["int", "float", "tensor"])
def test_gradient_of_x_to_the_zero_is_zero_at_zero_and_infinity(exponent):
    """d(x^0)/dx = 0 everywhere, as PyTorch (n x^(n-1) would give 0 * inf = NaN at 0 and +-inf)."""
    values = [0.0, -0.0, float("inf"), -float("inf"), 2.0, -3.0]
    x = tg.tensor(values, dtype=tg.float64, requires_grad=True)
    n = {"int": 0, "float": 0.0, "tensor": tg.zeros(6, dtype=tg.float64)}[exponent]
    (x ** n).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(6))
    torch = pytest.importorskip("torch")
    xt = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    (xt ** (torch.zeros(6, dtype=torch.float64) if exponent == "tensor" else n)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_grad_with_respect_to_an_intermediate_leaves_the_graph_below_it():
    """tg.grad runs only the nodes that lead to its inputs: the graph below a non-leaf input is
    neither run (no work, no .grad written) nor released, so it can still be differentiated."""
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (gy,) = tg.grad((y * 3).sum(), [y])
    np.testing.assert_array_equal(gy.numpy(), [3.0, 3.0])
    assert x.grad is None
    y.sum().backward()  # y's MulBackward was not released by tg.grad
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
