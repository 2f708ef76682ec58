"""tg.autograd.detect_anomaly: a NaN / inf made by a backward formula is reported with the backward
node, the forward op and the file and line where that op ran; errors inside a backward formula get
that place too. Outside it nothing is checked."""
import inspect
import os
import threading

import numpy as np
import pytest

import tapegrad as tg

HERE = os.path.basename(__file__)


def line_of(marker):
    """The line number of the line of this file that ends with `# marker`."""
    for number, text in enumerate(inspect.getsource(inspect.getmodule(line_of)).splitlines(), 1):
        if text.rstrip().endswith("# " + marker):
            return number
    raise AssertionError(marker)


def safe_sqrt_loss(x):
    # where() masks the forward, not the backward: d sqrt(x)/dx at x < 0 is nan, times 0 is nan.
    y = tg.where(x > 0, x.sqrt(), tg.zeros_like(x))  # forward-sqrt
    return y.sum()


def test_nan_names_the_node_the_op_and_the_line():
    x = tg.tensor([-1.0, 4.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        loss = safe_sqrt_loss(x)
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    message = str(info.value)
    assert "SqrtBackward" in message and "nan" in message
    assert "sqrt, ran at" in message
    assert f'{HERE}", line {line_of("forward-sqrt")}, in safe_sqrt_loss' in message
    assert "y = tg.where(x > 0, x.sqrt()" in message
    assert x.grad is None  # the backward stopped before reaching the leaf


def test_inf_is_reported_and_the_frames_of_tapegrad_are_left_out():
    lin = tg.nn.Linear(2, 2)
    tg.nn.init.zeros_(lin.bias)
    x = tg.zeros(1, 2)
    with tg.autograd.detect_anomaly():
        out = lin(x).abs().sqrt().sum()  # forward-abs-sqrt
        with pytest.raises(RuntimeError) as info:
            out.backward()
    message = str(info.value)
    assert "SqrtBackward returned inf" in message
    assert f"line {line_of('forward-abs-sqrt')}" in message
    assert os.sep + "tapegrad" + os.sep + "nn" not in message


def test_without_it_nothing_is_checked():
    x = tg.tensor([-1.0, 4.0], requires_grad=True)
    safe_sqrt_loss(x).backward()
    assert np.isnan(x.grad.numpy()[0]) and x.grad.numpy()[1] == pytest.approx(0.25)


def test_finite_gradients_are_unchanged():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 3))
    grads = []
    for anomaly in (False, True):
        x = tg.tensor(data, requires_grad=True)
        with tg.autograd.set_detect_anomaly(anomaly):
            loss = (x.tanh() @ x.T).exp().mean()
            (g,) = tg.grad(loss, x, create_graph=True)
            (g * g).sum().backward()  # second order under anomaly detection too
        grads.append((g.detach().numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_an_error_inside_backward_gets_the_forward_line_and_keeps_its_type():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        c = (a * 1).exp()  # forward-exp
        c.mul_(2)  # exp saved its output for backward, and this changes it
        with pytest.raises(RuntimeError) as info:
            c.sum().backward()
    message = str(info.value)
    assert "modified by an in-place operation" in message
    assert "During the backward of ExpBackward" in message
    assert f'{HERE}", line {line_of("forward-exp")}' in message


def test_a_node_recorded_before_it_was_on_says_so():
    x = tg.tensor([0.0], requires_grad=True)
    y = x.sqrt()
    with tg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="before anomaly detection was turned on"):
            y.sum().backward()


def test_check_nan_false_keeps_the_places_but_not_the_check():
    x = tg.tensor([-1.0, 4.0], requires_grad=True)
    with tg.autograd.detect_anomaly(check_nan=False):
        assert tg.autograd.is_anomaly_enabled() and not tg.autograd.is_anomaly_check_nan_enabled()
        safe_sqrt_loss(x).backward()
    assert np.isnan(x.grad.numpy()[0])


def test_state_is_restored_decorator_works_and_it_is_per_thread():
    assert not tg.autograd.is_anomaly_enabled()
    with pytest.raises(KeyError):
        with tg.autograd.detect_anomaly():
            raise KeyError("x")
    assert not tg.autograd.is_anomaly_enabled()

    seen_in_thread = []

    @tg.autograd.detect_anomaly()
    def run():
        worker = threading.Thread(target=lambda: seen_in_thread.append(tg.autograd.is_anomaly_enabled()))
        worker.start()
        worker.join()
        return tg.autograd.is_anomaly_enabled()

    assert run() is True and seen_in_thread == [False]
    assert not tg.autograd.is_anomaly_enabled()
    tg.autograd.set_detect_anomaly(True)
    assert tg.autograd.is_anomaly_enabled()
    tg.autograd.set_detect_anomaly(False)
    assert not tg.autograd.is_anomaly_enabled()
