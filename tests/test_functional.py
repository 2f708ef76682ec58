"""tg.nn.functional where the op table (tests/op_specs.py) does not reach: extreme and degenerate
inputs (saturated logits, all-ignored targets, fully masked attention rows), options the table rows
do not draw (weights, pos_weight), modules, dropout's statistics, and attention's double backward
and composite reference, against torch.nn.functional on the same float64 inputs."""
import math

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F
from helpers import assert_close as close, check_against_torch

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny problems: torch's thread pool only adds contention (seconds per test)
TF = torch.nn.functional



def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- softmax / log_softmax
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_extreme_logits(fn):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [800.0, 799.0, -800.0]])
    tgs = check_against_torch(lambda a: getattr(F, fn)(a, -1), lambda a: getattr(TF, fn)(a, -1), [x])
    assert np.isfinite(tgs[0].grad.numpy()).all()


# ---------------------------------------------------------------- cross_entropy
def test_cross_entropy_target_out_of_range_raises():
    x = tg.tensor(rng(62).standard_normal((2, 4)))
    with pytest.raises(IndexError):
        F.cross_entropy(x, tg.tensor(np.array([0, 7])))


def test_cross_entropy_large_vocabulary_float32():
    r = rng(8)
    V = 30_000
    x = (r.standard_normal((3, V)) * 4).astype(np.float32)
    y = r.integers(0, V, 3)
    t = tg.tensor(x, requires_grad=True)
    p = torch.tensor(x, requires_grad=True)
    lt, lp = F.cross_entropy(t, tg.tensor(y)), TF.cross_entropy(p, torch.tensor(y))
    lt.backward()
    lp.backward()
    assert lt.dtype == tg.float32
    close(lt, lp, rtol=1e-5, atol=1e-5)
    close(t.grad, p.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_extreme_logits(reduction):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]])
    y = np.array([1, 1, 2, 0])
    tgs = check_against_torch(lambda a, t: F.cross_entropy(a, t, reduction=reduction),
                              lambda a, t: TF.cross_entropy(a, t, reduction=reduction), [x, y])
    assert np.isfinite(tgs[0].grad.numpy()).all()


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = rng(9).standard_normal((3, 4))
    y = np.full(3, -100)
    t, p = tg.tensor(x), torch.tensor(x)
    lt = F.cross_entropy(t, tg.tensor(y))
    lp = TF.cross_entropy(p, torch.tensor(y))
    assert math.isnan(lp.item())
    assert math.isnan(lt.item())
    for red in ("sum", "none"):
        close(F.cross_entropy(t, tg.tensor(y), reduction=red), TF.cross_entropy(p, torch.tensor(y), reduction=red))


def test_cross_entropy_loss_module():
    r = rng(12)
    x, y = r.standard_normal((5, 3)), r.integers(0, 3, 5)
    got = tg.nn.CrossEntropyLoss(reduction="sum")(tg.tensor(x), tg.tensor(y))
    close(got, torch.nn.CrossEntropyLoss(reduction="sum")(torch.tensor(x), torch.tensor(y)))


# ---------------------------------------------------------------- layer_norm's weight and bias
# The kernel applies weight and bias itself and sums their gradients over the rows; the op table
# draws both together. Here: each alone, a 2-d normalized shape, a parameter of another dtype
# (ordinary promoting ops apply it), gradients for the parameters only, and no rows at all.
@pytest.mark.parametrize("params", ["weight", "bias", "both", "neither"])
def test_layer_norm_affine_parts_match_torch(params):
    r = rng(70)
    has_w, has_b = params in ("weight", "both"), params in ("bias", "both")
    arrays = [r.standard_normal((5, 3, 4))] + [r.standard_normal((3, 4)) for _ in range(has_w + has_b)]

    def run(F_, x, *p):
        return F_.layer_norm(x, (3, 4), p[0] if has_w else None, p[-1] if has_b else None)

    check_against_torch(lambda *a: run(F, *a), lambda *a: run(TF, *a), arrays)


def test_layer_norm_parameter_of_another_dtype_promotes():
    r = rng(71)
    x = r.standard_normal((6, 8)).astype(np.float32)
    w = r.standard_normal(8)  # float64
    xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    y = F.layer_norm(xt, 8, wt, None)
    xp, wp = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yp = TF.layer_norm(xp, (8,)) * wp
    assert y.dtype == tg.float64
    close(y, yp, rtol=1e-5, atol=1e-6, what="forward")
    y.sum().backward()
    yp.sum().backward()
    close(wt.grad, wp.grad, rtol=1e-5, atol=1e-5, what="weight gradient")
    close(xt.grad, xp.grad, rtol=1e-4, atol=1e-5, what="input gradient")


def test_layer_norm_gradients_of_parameters_alone_and_of_no_rows():
    r = rng(72)
    x, w, b = r.standard_normal((300, 16)), r.standard_normal(16), r.standard_normal(16)
    check_against_torch(lambda x, w, b: F.layer_norm(x, 16, w, b), lambda x, w, b: TF.layer_norm(x, (16,), w, b),
                        [x, w, b], grad_of=[1, 2])
    wt, bt = tg.tensor(w, requires_grad=True), tg.tensor(b, requires_grad=True)
    F.layer_norm(tg.zeros((0, 16), dtype=tg.float64), 16, wt, bt).sum().backward()
    assert np.array_equal(wt.grad.numpy(), np.zeros(16)) and np.array_equal(bt.grad.numpy(), np.zeros(16))


def test_layer_norm_parameter_gradients_do_not_depend_on_the_thread_count():
    r = rng(73)
    x, g = r.standard_normal((4096, 64)).astype(np.float32), r.standard_normal((4096, 64)).astype(np.float32)
    before, grads = tg.get_num_threads(), []
    try:
        for n in (1, 2):
            tg.set_num_threads(n)
            w = tg.tensor(np.ones(64, np.float32), requires_grad=True)
            (F.layer_norm(tg.tensor(x), 64, w, None) * tg.tensor(g)).sum().backward()
            grads.append(w.grad.numpy())
    finally:
        tg.set_num_threads(before)
    assert np.array_equal(grads[0], grads[1])


# ---------------------------------------------------------------- embedding, gelu
def test_embedding_out_of_range_raises():
    w = tg.randn(4, 2)
    with pytest.raises(IndexError):
        F.embedding(tg.tensor([1, 4]), w)


# ---------------------------------------------------------------- dropout
def test_dropout_identity_when_not_training():
    x = tg.tensor(rng(17).standard_normal((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.7, training=False)
    close(y, x.detach())
    y.sum().backward()
    close(x.grad, np.ones((4, 5)))
    m = tg.nn.Dropout(0.7)
    m.eval()
    close(m(x), x.detach())


def test_dropout_scaling_and_gradient():
    p = 0.3
    x = tg.tensor(rng(18).standard_normal((200, 50)) + 5.0, requires_grad=True)
    tg.manual_seed(0)
    y = F.dropout(x, p, training=True)
    yn, xn = y.numpy(), x.detach().numpy()
    kept = yn != 0
    np.testing.assert_allclose(yn[kept], xn[kept] / (1 - p), rtol=1e-12)
    frac = 1 - kept.mean()
    assert abs(frac - p) < 0.03, frac
    y.backward(tg.ones_like(y))
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-12)


def test_dropout_same_seed_same_mask():
    x = tg.ones(50, 40)
    tg.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    tg.manual_seed(123)
    b = F.dropout(x, 0.5).numpy()
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("offset", [0, 2**32 - 7, 2**40 + 3])
@pytest.mark.parametrize("n", [1, 63, 64, 200, 1027])
def test_dropout_mask_is_the_philox_stream(dtype, offset, n):
    """Element e keeps when 24 bits of output e % 4 of counter offset + e // 4 are >= p 2^24: the
    vector kernel (16 counters at a time, the low counter word carrying into the high one past
    2^32) and the scalar ends give the stream's numbers exactly."""
    from op_specs import _np_philox
    p, seed = 0.37, 99
    tg._C._set_rng_state(seed, offset)
    x = tg.ones(n, dtype=getattr(tg, dtype))
    y = F.dropout(x, p).numpy()
    counters = np.uint64(offset) + np.arange((n + 3) // 4, dtype=np.uint64)
    bits = _np_philox(seed, counters).reshape(-1)[:n]
    kept = (bits >> np.uint64(8)).astype(np.float64) / 16777216.0 >= p
    np.testing.assert_array_equal(y != 0, kept)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-7)
    assert tg._C._rng_state() == (seed, offset + (n + 3) // 4)


def test_dropout_extremes():
    x = tg.tensor(rng(19).standard_normal((3, 4)))
    close(F.dropout(x, 0.0), x)
    assert np.all(F.dropout(x, 1.0).numpy() == 0)


def test_gelu_module():
    x = rng(22).standard_normal(8)
    close(tg.nn.GELU("tanh")(tg.tensor(x)), torch.nn.GELU("tanh")(torch.tensor(x)))


# ---------------------------------------------------------------- scaled_dot_product_attention
def _qkv(seed=23, B=2, H=2, L=3, S=4, E=5, Ev=3):
    r = rng(seed)
    return [r.standard_normal((B, H, L, E)), r.standard_normal((B, H, S, E)), r.standard_normal((B, H, S, Ev))]


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_fully_masked_row_like_torch(kind):
    """A query that may attend nothing: PyTorch's SDPA gives a zero output row and zero gradients."""
    keep = np.ones((3, 4), dtype=bool)
    keep[1] = False
    mask = keep if kind == "bool" else np.where(keep, 0.0, -np.inf)
    m_t, m_p = tg.tensor(mask), torch.tensor(mask)
    tgs = check_against_torch(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m_t),
                              lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=m_p), _qkv())
    for t in tgs:
        assert np.isfinite(t.grad.numpy()).all()
    assert np.all(tgs[0].grad.numpy()[:, :, 1] == 0)


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "float"])
def test_sdpa_is_twice_differentiable_like_torch(kind):
    """create_graph through the fused op takes the composite reference's derivative: the gradient
    of (dL/dq . w) matches PyTorch's double backward, for every mask rule (a dead row included)."""
    keep = np.ones((3, 4), dtype=bool)
    keep[:, 3] = False
    keep[1] = False
    mask = {"none": None, "causal": None, "bool": keep, "float": np.where(keep, 0.0, -np.inf)}[kind]
    kw_t = {"is_causal": kind == "causal", "attn_mask": None if mask is None else tg.tensor(mask)}
    kw_p = {"is_causal": kind == "causal", "attn_mask": None if mask is None else torch.tensor(mask)}
    arrays = _qkv(seed=31)
    r = rng(32)
    w_out, w_grad = r.standard_normal((2, 2, 3, 3)), [r.standard_normal(a.shape) for a in arrays]
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ps = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_t = F.scaled_dot_product_attention(*xs, **kw_t)
    out_p = TF.scaled_dot_product_attention(*ps, **kw_p)
    g_t = tg.grad((out_t * tg.tensor(w_out)).sum(), list(xs), create_graph=True)
    g_p = torch.autograd.grad((out_p * torch.tensor(w_out)).sum(), list(ps), create_graph=True)
    for a, b in zip(g_t, g_p):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-11)
    sum(((g * tg.tensor(w)).sum() for g, w in zip(g_t, w_grad)), tg.tensor(0.0, dtype=tg.float64)).backward()
    sum((g * torch.tensor(w)).sum() for g, w in zip(g_p, w_grad)).backward()
    for x, p_ in zip(xs, ps):
        np.testing.assert_allclose(x.grad.numpy(), p_.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_sdpa_equals_its_composite_reference():
    """The fused op and attention_weights @ v (the composite reference) agree, and a mask that
    requires grad takes the composite and gets its gradient."""
    arrays = _qkv(seed=33)
    q, k, v = (tg.tensor(a) for a in arrays)
    mask = tg.tensor(rng(34).standard_normal((3, 4)), requires_grad=True)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.detach())
    np.testing.assert_allclose(fused.numpy(), (F.attention_weights(q, k, mask.detach()) @ v).numpy(), rtol=1e-12)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(out.numpy(), fused.numpy(), rtol=1e-12)
    out.sum().backward()
    m_p = torch.tensor(mask.detach().numpy(), requires_grad=True)
    TF.scaled_dot_product_attention(*(torch.tensor(a) for a in arrays), attn_mask=m_p).sum().backward()
    np.testing.assert_allclose(mask.grad.numpy(), m_p.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_sdpa_with_dropout_is_differentiable_once():
    q, k, v = (tg.tensor(a, requires_grad=True) for a in _qkv(seed=35))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    (gq,) = tg.grad(out.sum(), [q], create_graph=False)
    assert gq.shape == q.shape
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    with pytest.raises(NotImplementedError, match="dropout"):
        tg.grad(out.sum(), [q], create_graph=True)


# ---------------------------------------------------------------- losses
def test_mse_loss_shape_mismatch_raises():
    with pytest.raises(ValueError):
        F.mse_loss(tg.zeros(3), tg.zeros(3, 1))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_with_weight(reduction):
    r = rng(28)
    p = r.uniform(0.05, 0.95, (4, 3))
    t = r.random((4, 3))
    w = r.random((4, 3))
    check_against_torch(lambda a, b, c: F.binary_cross_entropy(a, b, weight=c, reduction=reduction),
                        lambda a, b, c: TF.binary_cross_entropy(a, b, weight=c, reduction=reduction), [p, t, w],
                        grad_of=[0])


def test_binary_cross_entropy_saturated_probabilities():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    for red in ("none", "sum", "mean"):
        a, b = tg.tensor(p), tg.tensor(t)
        got = F.binary_cross_entropy(a, b, reduction=red)
        want = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction=red)
        assert np.isfinite(got.numpy()).all()
        close(got, want)


def test_binary_cross_entropy_with_logits_pos_weight():
    r = rng(31)
    x, t, pw = r.standard_normal((4, 3)) * 3, r.random((4, 3)), r.random(3) * 3
    check_against_torch(lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, pos_weight=c),
                        lambda a, b, c: TF.binary_cross_entropy_with_logits(a, b, pos_weight=c), [x, t, pw],
                        grad_of=[0, 1])


def test_binary_cross_entropy_with_logits_extreme():
    x = np.array([1e4, -1e4, 1e4, -1e4, 800.0, -800.0, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.7, 0.5])
    tgs = check_against_torch(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"),
                              lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction="none"), [x, t])
    assert np.isfinite(tgs[0].grad.numpy()).all()


def test_bad_reduction_raises():
    with pytest.raises(ValueError):
        F.mse_loss(tg.zeros(2), tg.zeros(2), reduction="avg")


# ---------------------------------------------------------------- the README's extreme inputs
_INF = np.inf
EXTREMES = {
    "cross_entropy +-1e4 logits": (lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
                                   [np.array([[1e4, -1e4, 0.0]]), np.array([1])]),
    "cross_entropy all ignored": (lambda x, t: F.cross_entropy(x, t, ignore_index=1),
                                  lambda x, t: TF.cross_entropy(x, t, ignore_index=1),
                                  [np.array([[1e4, -1e4, 0.0]]), np.array([1])]),
    "cross_entropy -inf at the target": (lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
                                         [np.array([[-_INF, 0.0, 1.0]]), np.array([0])]),
    "softmax all -inf": (lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1), [np.full((2, 3), -_INF)]),
    "log_softmax -inf entries": (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1),
                                 [np.array([[-_INF, 0.0, 1.0]])]),
    "binary_cross_entropy p = 0, 1": (lambda p, t: F.binary_cross_entropy(p, t),
                                      lambda p, t: TF.binary_cross_entropy(p, t),
                                      [np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0])]),
    "binary_cross_entropy_with_logits +-1e4": (lambda x, t: F.binary_cross_entropy_with_logits(x, t),
                                               lambda x, t: TF.binary_cross_entropy_with_logits(x, t),
                                               [np.array([1e4, -1e4, 0.0]), np.array([1.0, 0.0, 1.0])]),
    "softplus +-1e4": (F.softplus, TF.softplus, [np.array([1e4, -1e4, 0.0])]),
    "sigmoid +-1e4": (F.sigmoid, torch.sigmoid, [np.array([1e4, -1e4, 0.0])]),
    "layer_norm constant row": (lambda x: F.layer_norm(x, 3), lambda x: TF.layer_norm(x, (3,)), [np.ones((2, 3))]),
    "gelu +-inf": (F.gelu, TF.gelu, [np.array([_INF, -_INF, 1e4])]),
}


@pytest.mark.parametrize("name", list(EXTREMES))
def test_extreme_inputs_match_torch(name):
    """Every row of the README's table: the same loss and input gradient as PyTorch, inf and NaN
    included (a plain sum weights the output so NaN/inf positions line up exactly)."""
    tg_fn, torch_fn, arrays = EXTREMES[name]
    xs = [tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    y_tg, y_torch = tg_fn(*xs), torch_fn(*ts)
    close(y_tg, y_torch, rtol=1e-7, atol=1e-9, what=f"{name}: forward")
    y_tg.sum().backward()
    y_torch.sum().backward()
    close(xs[0].grad, ts[0].grad, rtol=1e-7, atol=1e-9, what=f"{name}: gradient")


def test_bce_gradient_is_finite_at_the_edges():
    p = tg.tensor([0.0, 1.0], requires_grad=True)
    F.binary_cross_entropy(p, tg.tensor([1.0, 0.0])).backward()
    assert np.all(np.isfinite(p.grad.numpy())) and p.grad.numpy()[0] < -1e10 < 1e10 < p.grad.numpy()[1]
