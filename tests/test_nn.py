"""tg.nn layers against torch.nn: Module bookkeeping, state_dict layout, and, with the weights of a
PyTorch layer copied across, equal outputs and equal gradients of inputs and of every parameter."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tapegrad as tg
import tapegrad.nn as nn

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny problems: torch's thread pool only adds contention (seconds per test)

RTOL, ATOL = 1e-9, 1e-11


def rng(seed=0):
    return np.random.default_rng(seed)


def close(got, want, rtol=RTOL, atol=ATOL, what=""):
    g = got.numpy() if isinstance(got, tg.Tensor) else np.asarray(got)
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def pair(a, requires_grad=True):
    a = np.ascontiguousarray(a)
    rg = requires_grad and a.dtype.kind == "f"
    return tg.tensor(a.copy(), requires_grad=rg), torch.tensor(a.copy(), requires_grad=rg)


def copy_weights(tg_mod, pt_mod):
    """PyTorch's state_dict, through NumPy, into the tapegrad module (strict)."""
    sd = {k: tg.tensor(v.detach().numpy().copy()) for k, v in pt_mod.state_dict().items()}
    tg_mod.load_state_dict(sd)
    for k, v in tg_mod.state_dict().items():
        close(v, pt_mod.state_dict()[k], rtol=0, atol=0, what=f"copied {k}")


def backprop_both(outs_t, outs_p, seed=1):
    """Random weighting of every output, summed, backward in both libraries."""
    r = rng(seed)
    lt, lp = 0, 0
    for ot, op in zip(outs_t, outs_p):
        close(ot, op, what="forward")
        w = r.standard_normal(tuple(op.shape))
        lt = lt + (ot * tg.tensor(w)).sum()
        lp = lp + (op * torch.tensor(w)).sum()
    lt.backward()
    lp.backward()


def compare_param_grads(tg_mod, pt_mod, rtol=RTOL, atol=ATOL):
    pt_params = dict(pt_mod.named_parameters())
    names = [n for n, _ in tg_mod.named_parameters()]
    assert names == list(pt_params), (names, list(pt_params))
    for name, p in tg_mod.named_parameters():
        want = pt_params[name].grad
        if want is None:
            assert p.grad is None or np.all(p.grad.numpy() == 0), name
            continue
        assert p.grad is not None, f"{name} got no gradient"
        close(p.grad, want, rtol, atol, what=f"grad of {name}")


def state_keys_match(tg_mod, pt_mod):
    tk = [(k, tuple(v.shape)) for k, v in tg_mod.state_dict().items()]
    pk = [(k, tuple(v.shape)) for k, v in pt_mod.state_dict().items()]
    assert tk == pk


# ================================================================ Module mechanics
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(tg.ones(4))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(tg.zeros(1))
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)
        self.not_a_param = tg.zeros(3)  # a plain tensor attribute is not registered

    def forward(self, x):
        return self.head(self.block(x)) + self.alpha


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.scale = torch.nn.Parameter(torch.ones(4))
        self.drop = torch.nn.Dropout(0.5)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.zeros(1))
        self.block = TorchBlock()
        self.head = torch.nn.Linear(4, 2, bias=False)


def test_named_parameters_order_and_names_like_torch():
    net, ref = Net(), TorchNet()
    names = [n for n, _ in net.named_parameters()]
    assert names == [n for n, _ in ref.named_parameters()]
    assert names == ["alpha", "block.scale", "block.fc.weight", "block.fc.bias", "head.weight"]
    params = list(net.parameters())
    assert [id(p) for p in params] == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert [tuple(p.shape) for p in params] == [tuple(p.shape) for p in ref.parameters()]
    assert list(net.state_dict()) == list(ref.state_dict())


def test_children_and_modules():
    net = Net()
    kids = list(net.children())
    assert len(kids) == 2 and isinstance(kids[0], Block) and isinstance(kids[1], nn.Linear)
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.drop", "head"]


def test_shared_parameter_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.Linear(2, 2)
            self.b.weight = self.a.weight

    names = [n for n, _ in Tied().named_parameters()]
    assert names == ["a.weight", "a.bias", "b.bias"]


def test_reassign_and_delete_attribute():
    net = Net()
    net.head = nn.Linear(4, 5)
    assert tuple(dict(net.named_parameters())["head.weight"].shape) == (5, 4)
    assert "head.bias" in dict(net.named_parameters())
    del net.alpha
    assert "alpha" not in dict(net.named_parameters())
    with pytest.raises(AttributeError):
        net.alpha


def test_train_eval_propagate():
    net = Net()
    assert net.training and net.block.drop.training
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    x = tg.randn(5, 3)
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())  # dropout is off in eval
    net.train()
    assert all(m.training for m in net.modules())
    net.block.train(False)
    assert net.training and not net.block.training and not net.block.drop.training


def test_zero_grad():
    net = Net()
    net(tg.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    for p in net.parameters():
        assert p.grad is not None and np.all(p.grad.numpy() == 0)
    net(tg.randn(4, 3)).sum().backward()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_parameter():
    p = nn.Parameter(tg.tensor([1.0, 2.0]))
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    q = nn.Parameter(tg.tensor([1.0]), requires_grad=False)
    assert not q.requires_grad
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    y = x * 2
    p2 = nn.Parameter(y)
    assert p2.is_leaf and p2.requires_grad
    np.testing.assert_array_equal(p2.numpy(), [6.0, 8.0])
    (p2 * p2).sum().backward()
    np.testing.assert_allclose(p2.grad.numpy(), [12.0, 16.0])
    assert x.grad is None  # the Parameter is detached from y's graph
    assert nn.Parameter(np.array([1.0, 2.0])).dtype == tg.float64


def test_state_dict_detached_and_load_preserves_identity():
    net = Net()
    sd = net.state_dict()
    assert all(not v.requires_grad for v in sd.values())
    before = {n: id(p) for n, p in net.named_parameters()}
    new = {k: tg.full(tuple(v.shape), 0.5) for k, v in sd.items()}
    missing, unexpected = net.load_state_dict(new)
    assert list(missing) == [] and list(unexpected) == []
    for n, p in net.named_parameters():
        assert id(p) == before[n] and p.requires_grad and p.is_leaf
        assert np.all(p.numpy() == 0.5)


def test_load_state_dict_strict_key_errors():
    net = Net()
    sd = dict(net.state_dict())
    del sd["head.weight"]
    with pytest.raises((KeyError, RuntimeError), match="head.weight"):
        net.load_state_dict(sd)
    sd = dict(net.state_dict())
    sd["extra.weight"] = tg.zeros(2)
    with pytest.raises((KeyError, RuntimeError), match="extra.weight"):
        net.load_state_dict(sd)


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    sd = dict(net.state_dict())
    del sd["alpha"]
    sd["bogus"] = tg.zeros(1)
    sd["head.weight"] = tg.ones(2, 4)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert list(missing) == ["alpha"] and list(unexpected) == ["bogus"]
    assert np.all(net.head.weight.numpy() == 1)


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_shape_error(strict):
    net = Net()
    sd = dict(net.state_dict())
    sd["block.fc.weight"] = tg.zeros(3, 4)
    with pytest.raises((ValueError, RuntimeError), match="block.fc.weight"):
        net.load_state_dict(sd, strict=strict)


def test_double_casts_parameters():
    net = Net().double()
    assert all(p.dtype == tg.float64 for p in net.parameters())
    assert net(tg.randn(2, 3, dtype=tg.float64)).dtype == tg.float64


def test_sequential():
    seq = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    ref = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).double()
    assert list(seq.state_dict()) == list(ref.state_dict())
    seq.double()
    copy_weights(seq, ref)
    xt, xp = pair(rng(1).standard_normal((4, 3)))
    backprop_both([seq(xt)], [ref(xp)])
    close(xt.grad, xp.grad)
    compare_param_grads(seq, ref)
    seq2 = nn.Sequential([nn.Linear(2, 2)])
    seq2.add(nn.Tanh())
    assert len(seq2) == 2 and isinstance(list(seq2)[1], nn.Tanh)


# ================================================================ layers vs PyTorch
CONV_LAYERS = [
    ("Conv2d", (4, 6, 3), {"stride": 2, "padding": 1}, (2, 4, 9, 8)),
    ("Conv2d", (4, 6, (2, 3)), {"padding": "same", "dilation": 2, "groups": 2, "bias": False}, (2, 4, 7, 9)),
    ("Conv1d", (3, 5, 4), {"stride": 2, "padding": 1}, (2, 3, 11)),
    ("ConvTranspose2d", (4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 4, 5, 6)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 9, 8)),
    ("AvgPool2d", (2,), {"count_include_pad": False, "padding": 1}, (2, 3, 9, 8)),
    ("MaxPool1d", (2,), {}, (2, 3, 9)),
    ("AvgPool1d", (3,), {"stride": 2}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, (2, 3, 9, 8)),
    ("Flatten", (), {}, (2, 3, 4, 5)),
    ("Unflatten", (1, (2, 2)), {}, (3, 4, 5)),
    ("Identity", (), {}, (2, 3)),
    ("GroupNorm", (2, 4), {}, (3, 4, 5, 2)),
]


@pytest.mark.parametrize("name, shape", [("BatchNorm2d", (4, 3, 5, 6)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 7))])
def test_batch_norm_layers_track_statistics_as_torch(name, shape):
    """Training steps move the running statistics as PyTorch's (momentum and the cumulative average
    of momentum=None); evaluation normalises with them; gradients match in both modes."""
    for momentum in (0.1, None):
        ref = getattr(torch.nn, name)(3, momentum=momentum).double()
        layer = getattr(nn, name)(3, momentum=momentum).double()
        state_keys_match(layer, ref)
        copy_weights(layer, ref)
        for step in range(3):
            xt, xp = pair(rng(step).standard_normal(shape) * 2 + 1)
            backprop_both([layer(xt)], [ref(xp)])
            close(xt.grad, xp.grad, what=f"{name} training step {step}")
        close(layer.running_mean, ref.running_mean, what="running_mean")
        close(layer.running_var, ref.running_var, what="running_var")
        assert int(layer.num_batches_tracked) == int(ref.num_batches_tracked) == 3
        assert layer.num_batches_tracked.dtype == tg.int64
        layer.eval(), ref.eval()
        xt, xp = pair(rng(7).standard_normal(shape))
        backprop_both([layer(xt)], [ref(xp)])
        close(xt.grad, xp.grad, what=f"{name} evaluation")
        compare_param_grads(layer, ref)


@pytest.mark.parametrize("name, args, kwargs, shape", CONV_LAYERS, ids=[c[0] + str(i) for i, c in enumerate(CONV_LAYERS)])
def test_conv_and_pool_layers_match_torch(name, args, kwargs, shape):
    ref = getattr(torch.nn, name)(*args, **kwargs).double()
    layer = getattr(nn, name)(*args, **kwargs)
    state_keys_match(layer, ref)
    if list(ref.parameters()):
        layer.double()
        copy_weights(layer, ref)
    xt, xp = pair(rng(11).standard_normal(shape))
    backprop_both([layer(xt)], [ref(xp)])
    close(xt.grad, xp.grad, what=name)
    compare_param_grads(layer, ref)


def test_conv2d_initialisation_matches_torch_bounds():
    """kaiming-uniform(a=sqrt 5) weights and uniform(+-1/sqrt(fan_in)) bias: both within 1/sqrt(fan_in)."""
    conv = nn.Conv2d(8, 16, 3, groups=2)
    bound = 1 / math.sqrt(4 * 9)
    for p in (conv.weight, conv.bias):
        v = p.numpy()
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.5 * bound


ACTIVATION_LAYERS = [
    ("ReLU6", {}), ("SELU", {}), ("Softsign", {}), ("Mish", {}), ("LogSigmoid", {}), ("Hardsigmoid", {}),
    ("Hardswish", {}), ("LeakyReLU", {"negative_slope": 0.3}), ("ELU", {"alpha": 0.5}), ("CELU", {"alpha": 2.0}),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
]


@pytest.mark.parametrize("name, kwargs", ACTIVATION_LAYERS, ids=[n for n, _ in ACTIVATION_LAYERS])
def test_activation_layers_match_torch(name, kwargs):
    layer, ref = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert list(layer.parameters()) == [] and layer.extra_repr() == ref.extra_repr()
    xt, xp = pair(rng(9).uniform(-7, 7, (3, 50)))
    backprop_both([layer(xt)], [ref(xp)])
    # PyTorch's float64 Hardsigmoid and CELU gradients use float32 constants (1/6, alpha): 3e-8 off
    close(xt.grad, xp.grad, rtol=1e-7 if name in ("Hardsigmoid", "CELU") else RTOL, what=name)


def test_linear_matches_torch():
    ref = torch.nn.Linear(5, 3).double()
    lin = nn.Linear(5, 3, dtype=tg.float64)
    state_keys_match(lin, ref)
    copy_weights(lin, ref)
    xt, xp = pair(rng(2).standard_normal((2, 4, 5)))
    backprop_both([lin(xt)], [ref(xp)])
    close(xt.grad, xp.grad)
    compare_param_grads(lin, ref)


def test_linear_without_bias_and_dense_alias():
    assert nn.Dense is nn.Linear
    ref = torch.nn.Linear(4, 2, bias=False).double()
    lin = nn.Linear(4, 2, bias=False, dtype=tg.float64)
    assert lin.bias is None
    state_keys_match(lin, ref)
    copy_weights(lin, ref)
    xt, xp = pair(rng(3).standard_normal((3, 4)))
    backprop_both([lin(xt)], [ref(xp)])
    compare_param_grads(lin, ref)


def test_dense_activation():
    d = nn.Dense(3, 2, activation="sigmoid", dtype=tg.float64)
    x = tg.tensor(rng(4).standard_normal((4, 3)))
    close(d(x), 1 / (1 + np.exp(-(x.numpy() @ d.weight.numpy().T + d.bias.numpy()))))


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_matches_torch(padding_idx):
    ref = torch.nn.Embedding(7, 4, padding_idx=padding_idx).double()
    emb = nn.Embedding(7, 4, padding_idx=padding_idx, dtype=tg.float64)
    state_keys_match(emb, ref)
    if padding_idx is not None:
        assert np.all(emb.weight.numpy()[padding_idx] == 0)
    copy_weights(emb, ref)
    idx = np.array([[1, 2, 6, 1], [0, 1, 2, 2]])
    backprop_both([emb(tg.tensor(idx))], [ref(torch.tensor(idx))])
    compare_param_grads(emb, ref)
    if padding_idx is not None:
        assert np.all(emb.weight.grad.numpy()[padding_idx] == 0)


def test_embedding_negative_padding_idx():
    emb = nn.Embedding(5, 2, padding_idx=-1)
    assert emb.padding_idx == 4 and np.all(emb.weight.numpy()[4] == 0)
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)


def test_layernorm_matches_torch():
    ref = torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        ref.weight.copy_(torch.randn(6))
        ref.bias.copy_(torch.randn(6))
    ln = nn.LayerNorm(6, dtype=tg.float64)
    state_keys_match(ln, ref)
    copy_weights(ln, ref)
    xt, xp = pair(rng(5).standard_normal((2, 3, 6)) * 4 + 2)
    backprop_both([ln(xt)], [ref(xp)])
    close(xt.grad, xp.grad, rtol=1e-8, atol=1e-10)
    compare_param_grads(ln, ref, rtol=1e-8, atol=1e-10)


def test_layernorm_no_affine():
    ln = nn.LayerNorm(4, elementwise_affine=False)
    assert list(ln.parameters()) == []
    ref = torch.nn.LayerNorm(4, elementwise_affine=False)
    x = rng(6).standard_normal((3, 4))
    close(ln(tg.tensor(x)), ref(torch.tensor(x)), rtol=1e-8, atol=1e-10)


def _mha_pair(E=8, H=2, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True, bias=bias).double()
    with torch.no_grad():  # torch zeroes the biases; make them matter
        for n, p in ref.named_parameters():
            if "bias" in n:
                p.copy_(torch.randn(p.shape) * 0.5)
    mha = nn.MultiHeadAttention(E, H, bias=bias, dtype=tg.float64)
    state_keys_match(mha, ref)
    copy_weights(mha, ref)
    mha.eval()
    ref.eval()
    return mha, ref


@pytest.mark.parametrize("cross", [False, True])
def test_mha_matches_torch(cross):
    mha, ref = _mha_pair()
    r = rng(7)
    q = r.standard_normal((2, 3, 8))
    kv = r.standard_normal((2, 5, 8)) if cross else None
    qt, qp = pair(q)
    if cross:
        kt, kp = pair(kv)
        vt, vp = pair(r.standard_normal((2, 5, 8)))
        out_t = mha(qt, kt, vt)
        out_p, _ = ref(qp, kp, vp, need_weights=False)
    else:
        out_t = mha(qt)
        out_p, _ = ref(qp, qp, qp, need_weights=False)
    backprop_both([out_t], [out_p])
    close(qt.grad, qp.grad)
    if cross:
        close(kt.grad, kp.grad)
        close(vt.grad, vp.grad)
    compare_param_grads(mha, ref)


def test_mha_no_bias():
    mha, ref = _mha_pair(bias=False)
    xt, xp = pair(rng(8).standard_normal((2, 4, 8)))
    backprop_both([mha(xt)], [ref(xp, xp, xp, need_weights=False)[0]])
    compare_param_grads(mha, ref)


@pytest.mark.parametrize("mask_kind", ["bool2d", "bool3d", "float2d"])
def test_mha_attn_mask(mask_kind):
    mha, ref = _mha_pair()
    r = rng(9)
    B, L, H = 2, 4, 2
    if mask_kind == "bool2d":
        mask = np.triu(np.ones((L, L), dtype=bool), 1)  # True = NOT allowed (causal)
    elif mask_kind == "bool3d":
        mask = r.random((B * H, L, L)) < 0.4
        mask[:, :, 0] = False
    else:
        mask = r.standard_normal((L, L))
    xt, xp = pair(r.standard_normal((B, L, 8)))
    out_t = mha(xt, attn_mask=tg.tensor(mask))
    out_p, _ = ref(xp, xp, xp, attn_mask=torch.tensor(mask), need_weights=False)
    backprop_both([out_t], [out_p])
    close(xt.grad, xp.grad)
    compare_param_grads(mha, ref)


def test_mha_attn_mask_true_means_blocked():
    """Changing a key that every query is forbidden to see changes nothing."""
    mha, _ = _mha_pair()
    x = rng(10).standard_normal((1, 4, 8))
    mask = np.zeros((4, 4), dtype=bool)
    mask[:, 2] = True
    y1 = mha(tg.tensor(x), attn_mask=tg.tensor(mask)).numpy()
    x2 = x.copy()
    x2[0, 2] += 10.0
    y2 = mha(tg.tensor(x2), attn_mask=tg.tensor(mask)).numpy()
    np.testing.assert_allclose(np.delete(y1, 2, axis=1), np.delete(y2, 2, axis=1), rtol=1e-12, atol=1e-12)


def test_mha_key_padding_mask_and_weights():
    mha, ref = _mha_pair()
    r = rng(11)
    x = r.standard_normal((2, 5, 8))
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[0, 3:] = True
    kpm[1, 1] = True
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    xt, xp = pair(x)
    out_t, w_t = mha(xt, attn_mask=tg.tensor(causal), key_padding_mask=tg.tensor(kpm), need_weights=True)
    out_p, w_p = ref(xp, xp, xp, attn_mask=torch.tensor(causal), key_padding_mask=torch.tensor(kpm),
                     need_weights=True)
    assert tuple(w_t.shape) == (2, 5, 5)
    close(w_t, w_p)
    np.testing.assert_allclose(w_t.numpy().sum(-1), 1.0, rtol=1e-12)
    assert np.all(w_t.numpy()[0, :, 3:] == 0)
    backprop_both([out_t, w_t], [out_p, w_p])
    close(xt.grad, xp.grad)
    compare_param_grads(mha, ref)


def test_mha_need_weights_are_head_average():
    mha, ref = _mha_pair(H=4)
    x = rng(12).standard_normal((2, 3, 8))
    _, w_t = mha(tg.tensor(x), need_weights=True)
    _, w_p = ref(torch.tensor(x), torch.tensor(x), torch.tensor(x), need_weights=True)
    _, w_heads = ref(torch.tensor(x), torch.tensor(x), torch.tensor(x), need_weights=True,
                     average_attn_weights=False)
    close(w_t, w_p)
    close(w_t, w_heads.mean(1))


def test_mha_need_weights_in_training_are_the_dropped_out_weights_that_were_applied():
    """As in PyTorch: with dropout in training mode the returned weights are after dropout, so
    with one head each is 0 or the eval-mode weight / (1 - p), and they produced the output."""
    tg.manual_seed(3)
    mha = tg.nn.MultiHeadAttention(8, 1, dropout=0.5)
    x = tg.tensor(rng(14).standard_normal((2, 5, 8)).astype(np.float32))
    mha.eval()
    _, w_eval = mha(x, need_weights=True)
    mha.train()
    out, w_train = mha(x, need_weights=True)
    ratio = w_train.numpy() / w_eval.numpy()
    assert np.all(np.isclose(ratio, 0.0) | np.isclose(ratio, 2.0, rtol=1e-5))
    assert 0 < np.isclose(ratio, 0.0).mean() < 1
    v = mha._project(x, 2)[:, 0]  # (B, S, E): one head
    np.testing.assert_allclose(out.numpy(), mha.out_proj(w_train @ v).numpy(), rtol=1e-5, atol=1e-6)


def test_mha_fully_padded_sequence_like_torch():
    """need_weights=False: PyTorch gives a zero attention output (so out_proj's bias) for a batch
    entry whose keys are all padding."""
    mha, ref = _mha_pair()
    x = rng(13).standard_normal((2, 3, 8))
    kpm = np.zeros((2, 3), dtype=bool)
    kpm[1] = True
    out_t = mha(tg.tensor(x), key_padding_mask=tg.tensor(kpm))
    out_p, _ = ref(torch.tensor(x), torch.tensor(x), torch.tensor(x), key_padding_mask=torch.tensor(kpm),
                   need_weights=False)
    close(out_t, out_p)


def test_mha_bad_shapes_raise():
    mha = nn.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError):
        nn.MultiHeadAttention(8, 3)
    with pytest.raises(ValueError):
        mha(tg.randn(3, 8))
    with pytest.raises(ValueError):
        mha(tg.randn(2, 3, 8), key_padding_mask=tg.zeros(2, 4, dtype=tg.bool))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_matches_torch(norm_first):
    torch.manual_seed(1)
    ref = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation="gelu",
                                           batch_first=True, norm_first=norm_first).double()
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if "bias" in n or "norm" in n:
                p.add_(torch.randn(p.shape) * 0.3)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation="gelu",
                                       norm_first=norm_first, dtype=tg.float64)
    state_keys_match(layer, ref)
    copy_weights(layer, ref)
    layer.eval()  # dropout 0.1 must switch off everywhere, down to the attention's
    ref.eval()
    r = rng(14)
    xt, xp = pair(r.standard_normal((2, 5, 8)))
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[1, 3:] = True
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    out_t = layer(xt, src_mask=tg.tensor(causal), src_key_padding_mask=tg.tensor(kpm))
    out_p = ref(xp, src_mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(kpm))
    backprop_both([out_t], [out_p])
    close(xt.grad, xp.grad, rtol=1e-8, atol=1e-10)
    compare_param_grads(layer, ref, rtol=1e-8, atol=1e-10)


def test_transformer_encoder_layer_dropout_in_train_mode():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5)
    x = tg.randn(2, 4, 8)
    tg.manual_seed(0)
    a = layer(x).numpy()
    tg.manual_seed(0)
    b = layer(x).numpy()
    c = layer(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(b, c)
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_torch(num_layers, with_state):
    torch.manual_seed(2)
    ref = torch.nn.LSTM(3, 4, num_layers=num_layers, batch_first=True).double()
    lstm = nn.LSTM(3, 4, num_layers=num_layers, batch_first=True, dtype=tg.float64)
    state_keys_match(lstm, ref)
    copy_weights(lstm, ref)
    r = rng(15)
    xt, xp = pair(r.standard_normal((2, 5, 3)))
    if with_state:
        ht, hp = pair(r.standard_normal((num_layers, 2, 4)))
        ct, cp = pair(r.standard_normal((num_layers, 2, 4)))
        out_t, (hn_t, cn_t) = lstm(xt, (ht, ct))
        out_p, (hn_p, cn_p) = ref(xp, (hp, cp))
    else:
        out_t, (hn_t, cn_t) = lstm(xt)
        out_p, (hn_p, cn_p) = ref(xp)
    backprop_both([out_t, hn_t, cn_t], [out_p, hn_p, cn_p])
    close(xt.grad, xp.grad)
    if with_state:
        close(ht.grad, hp.grad)
        close(ct.grad, cp.grad)
    compare_param_grads(lstm, ref)


def test_lstm_init_range_and_errors():
    lstm = nn.LSTM(3, 16)
    bound = 1 / math.sqrt(16)
    for p in lstm.parameters():
        a = np.abs(p.numpy())
        assert a.max() <= bound and a.max() > 0.8 * bound
    with pytest.raises(ValueError):
        lstm(tg.randn(2, 5, 4))
    with pytest.raises(ValueError):
        nn.LSTM(3, 4, batch_first=False)


# ================================================================ init
def _big(*shape):
    return nn.Parameter(tg.empty(*shape, dtype=tg.float64))


def test_init_uniform_ranges():
    w = _big(200, 300)
    nn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / (200 + 300))
    a = w.numpy()
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    np.testing.assert_allclose(a.std(), bound / math.sqrt(3), rtol=0.02)
    nn.init.kaiming_uniform_(w)  # a=0, leaky_relu -> gain sqrt(2), fan_in = 300
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    a = w.numpy()
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert w.requires_grad and w.is_leaf and w.grad is None
    nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))
    assert np.abs(w.numpy()).max() <= 5 / 3 * math.sqrt(6 / 500)


def test_init_std_like_torch():
    shape = (256, 400)
    for name, kw in [("normal_", dict(mean=0.5, std=2.0)), ("xavier_normal_", {}), ("kaiming_normal_", {}),
                     ("xavier_uniform_", {}), ("kaiming_uniform_", dict(a=math.sqrt(5)))]:
        w = _big(*shape)
        getattr(nn.init, name)(w, **kw)
        ref = getattr(torch.nn.init, name)(torch.empty(shape, dtype=torch.float64), **kw)
        a = w.numpy()
        np.testing.assert_allclose(a.std(), ref.std().item(), rtol=0.03, err_msg=name)
        np.testing.assert_allclose(a.mean(), ref.mean().item(), atol=0.03 * ref.std().item() + 1e-3, err_msg=name)


def test_init_constants():
    w = _big(3, 4)
    nn.init.zeros_(w)
    assert np.all(w.numpy() == 0)
    nn.init.ones_(w)
    assert np.all(w.numpy() == 1)
    nn.init.constant_(w, 2.5)
    assert np.all(w.numpy() == 2.5)
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(_big(5))


def test_default_inits_match_torch_ranges():
    lin = nn.Linear(64, 32)
    bound = 1 / math.sqrt(64)
    assert np.abs(lin.weight.numpy()).max() <= bound and np.abs(lin.weight.numpy()).max() > 0.9 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    emb = nn.Embedding(500, 40)
    np.testing.assert_allclose(emb.weight.numpy().std(), 1.0, rtol=0.05)
    mha = nn.MultiHeadAttention(16, 2)
    assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)
    assert np.abs(mha.in_proj_weight.numpy()).max() <= math.sqrt(6 / (16 + 48))


def test_manual_seed_reproduces_init():
    tg.manual_seed(5)
    a = nn.Linear(4, 3).weight.numpy().copy()
    tg.manual_seed(5)
    b = nn.Linear(4, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)


# ================================================================ clip_grad_norm_
@pytest.mark.parametrize("max_norm", [0.1, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    r = rng(16)
    grads = [r.standard_normal((3, 4)), r.standard_normal(5), r.standard_normal((2, 2))]
    tps = [tg.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    pps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, p, g in zip(tps, pps, grads):
        t.grad = tg.tensor(g.copy())
        p.grad = torch.tensor(g.copy())
    extra = tg.zeros(3, requires_grad=True)  # no grad: skipped
    n_t = nn.utils.clip_grad_norm_(tps + [extra], max_norm)
    n_p = torch.nn.utils.clip_grad_norm_(pps, max_norm)
    np.testing.assert_allclose(float(n_t.item()), n_p.item(), rtol=1e-12)
    for t, p in zip(tps, pps):
        close(t.grad, p.grad, rtol=1e-12, atol=0)
    assert extra.grad is None
    if max_norm > 1:
        for t, g in zip(tps, grads):
            np.testing.assert_array_equal(t.grad.numpy(), g)


def test_clip_grad_norm_accepts_generator():
    lin = nn.Linear(3, 2)
    (lin(tg.randn(4, 3)) * 100).sum().backward()
    total = nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    assert float(total.item()) > 1.0
    norm = math.sqrt(sum(float((p.grad.double() * p.grad.double()).sum().item()) for p in lin.parameters()))
    np.testing.assert_allclose(norm, 1.0, rtol=1e-5)


def test_clip_grad_norm_single_tensor_like_torch():
    g = rng(17).standard_normal((3, 2))
    t = tg.tensor(np.zeros((3, 2)), requires_grad=True)
    t.grad = tg.tensor(g.copy())
    p = torch.zeros((3, 2), dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(g.copy())
    n_t = nn.utils.clip_grad_norm_(t, 0.5)
    n_p = torch.nn.utils.clip_grad_norm_(p, 0.5)
    np.testing.assert_allclose(float(n_t.item()), n_p.item(), rtol=1e-12)
    close(t.grad, p.grad, rtol=1e-12, atol=0)


@settings(deadline=None, max_examples=10)
@given(max_norm=st.floats(0.01, 10.0), scale=st.floats(0.01, 10.0), seed=st.integers(0, 1000))
def test_clip_grad_norm_property(max_norm, scale, seed):
    g = rng(seed).standard_normal(7) * scale
    t = tg.tensor(np.zeros(7), requires_grad=True)
    t.grad = tg.tensor(g.copy())
    p = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(g.copy())
    nn.utils.clip_grad_norm_([t], max_norm)
    torch.nn.utils.clip_grad_norm_([p], max_norm)
    close(t.grad, p.grad, rtol=1e-12, atol=1e-15)
