"""Hooks with PyTorch's semantics: on tensors (replacing gradients, also in tg.autograd.grad), on
leaves after accumulation, and on modules before and after forward; each removable."""
import numpy as np
import pytest

import tapegrad as tg

try:
    import torch
except ImportError:
    torch = None


def _run(lib, x_data):
    """A small graph with hooks on a leaf, a non-leaf used twice and a replaced gradient; returns
    what the hooks saw and the final gradients."""
    seen = []
    x = lib.tensor(x_data, requires_grad=True)
    y = x * 2
    h = y.register_hook(lambda g: seen.append(("y", g.detach().numpy().copy())) or g * 10)
    z = (y * y).sum() + y.sum()
    x.register_hook(lambda g: seen.append(("x", g.detach().numpy().copy())))
    z.backward()
    h.remove()
    return seen, x.grad.numpy()


def test_tensor_hooks_see_and_replace_gradients():
    seen, grad = _run(tg, [1.0, -2.0])
    # dz/dy = 2y + 1 = [5, -7]; the hook makes it [50, -70]; dx = 2 * that
    assert [name for name, _ in seen] == ["y", "x"]
    np.testing.assert_allclose(seen[0][1], [5.0, -7.0])
    np.testing.assert_allclose(seen[1][1], [100.0, -140.0])
    np.testing.assert_allclose(grad, [100.0, -140.0])
    if torch is not None:
        t_seen, t_grad = _run(torch, [1.0, -2.0])
        np.testing.assert_allclose(grad, t_grad)
        assert [n for n, _ in seen] == [n for n, _ in t_seen]


def test_removed_hooks_do_not_run_and_grad_sees_hooks():
    x = tg.tensor([3.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    (x * x).sum().backward()
    assert calls == [] and x.grad.item() == 6.0
    y = x * 1.0
    y.register_hook(lambda g: g * 0 + 1)
    (gx,) = tg.autograd.grad((y * y).sum(), x)
    assert gx.item() == 1.0  # the replaced gradient flows on to x


def test_post_accumulate_grad_hook_runs_after_grad_is_set():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    grads = []
    w.register_post_accumulate_grad_hook(lambda t: grads.append(t.grad.numpy().copy()))
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_allclose(grads, [[3.0, 3.0], [6.0, 6.0]])
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_hook_errors_reach_python():
    x = tg.tensor([1.0], requires_grad=True)
    x.register_hook(lambda g: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        (x * 2).sum().backward()
    y = tg.tensor([1.0], requires_grad=True)
    y.register_hook(lambda g: tg.ones(3))
    with pytest.raises(ValueError, match="register_hook.*shape \\(3,\\).*\\(1,\\)"):
        (y * 2).sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.ones(2).register_hook(lambda g: g)


def test_module_forward_hooks():
    layer = tg.nn.Linear(2, 2)
    seen = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: seen.append(args[0].sum().item()) or out + 1)
    out = layer(tg.ones(1, 2))
    assert seen == [0.0]
    np.testing.assert_allclose(out.detach().numpy(), layer.bias.detach().numpy()[None] + 1, rtol=1e-6)
    pre.remove()
    post.remove()
    np.testing.assert_allclose(layer(tg.ones(1, 2)).detach().numpy(),
                               (tg.ones(1, 2) @ layer.weight.T + layer.bias).detach().numpy(), rtol=1e-6)
