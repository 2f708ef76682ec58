"""tg.optim against torch.optim: 100 float64 steps on the same small MLP regression must give the
same parameters; plus apply_gradients, state_dict round trips, zero_grad, skipped parameters and
argument checks."""
import copy

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny problems: torch's thread pool only adds contention (seconds per test)

STEPS = 100
REL = 1e-6


def data(seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((32, 4))
    y = np.sin(x @ r.standard_normal((4, 1))) + 0.1 * r.standard_normal((32, 1))
    params = [r.standard_normal((8, 4)) * 0.5, r.standard_normal(8) * 0.1,
              r.standard_normal((1, 8)) * 0.5, r.standard_normal(1) * 0.1]
    return x, y, params


def loss_tg(params, x, y):
    w1, b1, w2, b2 = params
    h = tg.tanh(x @ w1.mT + b1)
    d = h @ w2.mT + b2 - y
    return (d * d).mean()


def loss_torch(params, x, y):
    w1, b1, w2, b2 = params
    h = torch.tanh(x @ w1.T + b1)
    return ((h @ w2.T + b2 - y) ** 2).mean()


def make_tg(arrays):
    return [tg.tensor(a.copy(), requires_grad=True) for a in arrays]


def make_torch(arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def run_tg(opt_cls, kw, steps=STEPS, seed=0):
    x, y, init = data(seed)
    params = make_tg(init)
    opt = opt_cls(params, **kw)
    xt, yt = tg.tensor(x), tg.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss_tg(params, xt, yt).backward()
        opt.step()
    return params, opt


def run_torch(opt_cls, kw, steps=STEPS, seed=0):
    x, y, init = data(seed)
    params = make_torch(init)
    opt = opt_cls(params, **kw)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss_torch(params, xt, yt).backward()
        opt.step()
    return params, opt


def assert_params_match(tg_params, torch_params, rel=REL):
    for i, (a, b) in enumerate(zip(tg_params, torch_params)):
        got, want = a.detach().numpy(), b.detach().numpy()
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel * np.abs(want).max(), err_msg=f"param {i}")


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, betas=(0.85, 0.99))),
    ("RMSprop", dict(lr=0.005)),
    # (alpha=0.9 with lr=0.005 is chaotic on this problem: a 1e-13 change of the initial weights
    # moves torch's own result by 3e-4 after 100 steps; lr=0.002 is well conditioned)
    ("RMSprop", dict(lr=0.002, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.002, momentum=0.9)),
    ("RMSprop", dict(lr=0.005, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.002, momentum=0.5, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                                                  for n, kw in CONFIGS])
def test_matches_torch_after_100_steps(name, kw):
    tp, _ = run_tg(getattr(tg.optim, name), kw)
    pp, _ = run_torch(getattr(torch.optim, name), kw)
    x, y, init = data()
    moved = max(np.abs(p.detach().numpy() - a).max() for p, a in zip(pp, init))
    assert moved > 1e-3  # the problem actually trains
    assert_params_match(tp, pp)


def test_loss_decreases():
    x, y, _ = data()
    first = None
    for name, kw in [("SGD", dict(lr=0.1)), ("Adam", dict(lr=0.01)), ("RMSprop", dict(lr=0.005))]:
        params, _ = run_tg(getattr(tg.optim, name), kw)
        _, _, init = data()
        first = float(loss_tg(make_tg(init), tg.tensor(x), tg.tensor(y)).item())
        last = float(loss_tg(params, tg.tensor(x), tg.tensor(y)).item())
        assert last < 0.7 * first, name


def test_param_groups_match_torch():
    x, y, init = data()
    tp, pp = make_tg(init), make_torch(init)
    opt_t = tg.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.01}], lr=0.1, momentum=0.9)
    opt_p = torch.optim.SGD([{"params": pp[:2]}, {"params": pp[2:], "lr": 0.01}], lr=0.1, momentum=0.9)
    for _ in range(30):
        opt_t.zero_grad()
        loss_tg(tp, tg.tensor(x), tg.tensor(y)).backward()
        opt_t.step()
        opt_p.zero_grad()
        loss_torch(pp, torch.tensor(x), torch.tensor(y)).backward()
        opt_p.step()
    assert opt_t.param_groups[1]["lr"] == 0.01 and opt_t.param_groups[0]["lr"] == 0.1
    assert_params_match(tp, pp)


def test_learning_rate_alias():
    a, _ = run_tg(tg.optim.Adam, dict(lr=0.02), steps=5)
    b, _ = run_tg(tg.optim.Adam, dict(learning_rate=0.02), steps=5)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                     ("AdamW", dict(lr=0.01)), ("RMSprop", dict(lr=0.005, momentum=0.5))])
def test_apply_gradients_equals_backward_and_step(name, kw):
    x, y, init = data()
    xt, yt = tg.tensor(x), tg.tensor(y)
    pa, pb = make_tg(init), make_tg(init)
    oa, ob = getattr(tg.optim, name)(pa, **kw), getattr(tg.optim, name)(pb, **kw)
    for _ in range(10):
        with tg.GradientTape() as tape:
            loss = loss_tg(pa, xt, yt)
        grads = tape.gradient(loss, pa)
        oa.apply_gradients(zip(grads, pa))
        ob.zero_grad()
        loss_tg(pb, xt, yt).backward()
        ob.step()
    for p, q in zip(pa, pb):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_apply_gradients_with_tg_grad_and_subset():
    x, y, init = data()
    params = make_tg(init)
    opt = tg.optim.SGD(params, lr=0.1)
    loss = loss_tg(params, tg.tensor(x), tg.tensor(y))
    grads = tg.grad([loss], params)
    sentinel = tg.ones(1, dtype=tg.float64)
    params[3].grad = sentinel
    opt.apply_gradients(zip(grads[:2], params[:2]))
    for i in range(2):
        np.testing.assert_allclose(params[i].detach().numpy(), init[i] - 0.1 * grads[i].numpy(), rtol=1e-15)
    for i in (2, 3):  # not in the list: unchanged, and their .grad is left as it was
        np.testing.assert_array_equal(params[i].detach().numpy(), init[i])
    assert params[3].grad is sentinel or np.array_equal(params[3].grad.numpy(), [1.0])


def _clone_state(sd):
    def clone(v):
        return v.clone() if isinstance(v, tg.Tensor) else copy.deepcopy(v)
    return {"state": {i: {k: clone(v) for k, v in e.items()} for i, e in sd["state"].items()},
            "param_groups": copy.deepcopy(sd["param_groups"])}


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                     ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                     ("RMSprop", dict(lr=0.005, momentum=0.5))])
def test_state_dict_round_trip_continues_identically(name, kw):
    x, y, init = data()
    xt, yt = tg.tensor(x), tg.tensor(y)
    cls = getattr(tg.optim, name)
    pa = make_tg(init)
    oa = cls(pa, **kw)

    def step(opt, params):
        opt.zero_grad()
        loss_tg(params, xt, yt).backward()
        opt.step()

    for _ in range(10):
        step(oa, pa)
    saved = _clone_state(oa.state_dict())
    pb = make_tg([p.detach().numpy() for p in pa])
    ob = cls(pb, lr=123.0)  # the loaded groups bring back the real hyper-parameters
    ob.load_state_dict(saved)
    assert ob.param_groups[0]["lr"] == kw["lr"]
    for _ in range(10):
        step(oa, pa)
        step(ob, pb)
    for p, q in zip(pa, pb):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    # and a fresh optimizer without the state diverges (the state matters)
    pc = make_tg([p.detach().numpy() for p in pb])
    oc, od = cls(pc, **kw), cls(make_tg([p.detach().numpy() for p in pb]), **kw)
    od.load_state_dict(_clone_state(ob.state_dict()))
    step(oc, pc)
    step(ob, pb)
    assert not all(np.array_equal(p.detach().numpy(), q.detach().numpy()) for p, q in zip(pc, pb))


def test_state_dict_layout_like_torch():
    _, ot = run_tg(tg.optim.Adam, dict(lr=0.01), steps=3)
    _, op = run_torch(torch.optim.Adam, dict(lr=0.01), steps=3)
    st, sp = ot.state_dict(), op.state_dict()
    assert set(st) == {"state", "param_groups"}
    assert sorted(st["state"]) == sorted(sp["state"])
    for i in sp["state"]:
        assert {"exp_avg", "exp_avg_sq", "step"} <= set(st["state"][i])
        np.testing.assert_allclose(st["state"][i]["exp_avg"].numpy(), sp["state"][i]["exp_avg"].numpy(),
                                   rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(st["state"][i]["exp_avg_sq"].numpy(), sp["state"][i]["exp_avg_sq"].numpy(),
                                   rtol=1e-9, atol=1e-18)
        assert int(st["state"][i]["step"]) == int(sp["state"][i]["step"]) == 3
    assert [g["params"] for g in st["param_groups"]] == [g["params"] for g in sp["param_groups"]]
    assert st["param_groups"][0]["lr"] == 0.01 and tuple(st["param_groups"][0]["betas"]) == (0.9, 0.999)


def test_load_state_dict_mismatched_groups_raises():
    _, ot = run_tg(tg.optim.SGD, dict(lr=0.1, momentum=0.9), steps=2)
    other = tg.optim.SGD(make_tg(data()[2][:3]), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError):
        other.load_state_dict(ot.state_dict())


def test_zero_grad():
    params, opt = run_tg(tg.optim.SGD, dict(lr=0.1), steps=1)
    x, y, _ = data()
    loss_tg(params, tg.tensor(x), tg.tensor(y)).backward()
    opt.zero_grad(set_to_none=False)
    for p in params:
        assert p.grad is not None and np.all(p.grad.numpy() == 0)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    before = [p.detach().numpy().copy() for p in params]
    opt.step()  # nothing has a gradient: nothing moves
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
                                     ("Adam", dict(lr=0.01, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                     ("RMSprop", dict(lr=0.005, momentum=0.5, weight_decay=0.1))])
def test_params_without_grad_are_skipped_like_torch(name, kw):
    """The second layer gets a gradient only every third step; in between it must not move (no weight
    decay, no momentum, no step count), exactly as PyTorch skips grad-None parameters."""
    x, y, init = data()
    tp, pp = make_tg(init), make_torch(init)
    ot, op = getattr(tg.optim, name)(tp, **kw), getattr(torch.optim, name)(pp, **kw)
    for i in range(30):
        ot.zero_grad()
        op.zero_grad()
        loss_tg(tp, tg.tensor(x), tg.tensor(y)).backward()
        loss_torch(pp, torch.tensor(x), torch.tensor(y)).backward()
        if i % 3:
            tp[2].grad = None
            tp[3].grad = None
            pp[2].grad = None
            pp[3].grad = None
        ot.step()
        op.step()
    assert_params_match(tp, pp)


def test_never_touched_param_keeps_value_and_has_no_state():
    x, y, init = data()
    params = make_tg(init)
    spare = tg.tensor(np.ones(3), requires_grad=True)
    opt = tg.optim.Adam(params + [spare], lr=0.01, weight_decay=0.5)
    for _ in range(5):
        opt.zero_grad()
        loss_tg(params, tg.tensor(x), tg.tensor(y)).backward()
        opt.step()
    np.testing.assert_array_equal(spare.detach().numpy(), np.ones(3))
    assert 4 not in opt.state_dict()["state"]


@pytest.mark.parametrize("make", [
    lambda p: tg.optim.SGD(p, lr=-0.1),
    lambda p: tg.optim.SGD(p, lr=0.1, momentum=-0.5),
    lambda p: tg.optim.SGD(p, lr=0.1, weight_decay=-1.0),
    lambda p: tg.optim.SGD(p, lr=0.1, nesterov=True),
    lambda p: tg.optim.Adam(p, lr=-1e-3),
    lambda p: tg.optim.Adam(p, betas=(1.0, 0.999)),
    lambda p: tg.optim.Adam(p, betas=(0.9, -0.1)),
    lambda p: tg.optim.Adam(p, eps=-1e-8),
    lambda p: tg.optim.Adam(p, weight_decay=-0.1),
    lambda p: tg.optim.AdamW(p, lr=-1.0),
    lambda p: tg.optim.AdamW(p, betas=(0.9, 1.5)),
    lambda p: tg.optim.RMSprop(p, lr=-0.01),
    lambda p: tg.optim.RMSprop(p, alpha=-0.1),
    lambda p: tg.optim.RMSprop(p, eps=-1.0),
    lambda p: tg.optim.RMSprop(p, momentum=-0.1),
    lambda p: tg.optim.RMSprop(p, weight_decay=-0.1),
    lambda p: tg.optim.SGD([], lr=0.1),
])
def test_bad_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make([tg.zeros(2, requires_grad=True)])


def test_bad_params_raise():
    with pytest.raises(TypeError):
        tg.optim.SGD(tg.zeros(2, requires_grad=True), lr=0.1)
    x = tg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError):
        tg.optim.SGD([x * 2], lr=0.1)  # not a leaf
