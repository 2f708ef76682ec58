"""Grad-mode switches, anomaly detection and functional gradients; the engine itself is C++."""
import functools
import os
import traceback

from . import _C


class _GradMode:
    """Context manager and decorator that sets grad mode for the current thread."""

    enabled = True

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self.enabled)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Record nothing for backward inside this block (or decorated function)."""
    enabled = False


class enable_grad(_GradMode):
    """Record for backward again, inside a no_grad block."""
    enabled = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        self.enabled = bool(mode)
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self.enabled)  # usable as a plain function too, as in PyTorch

    def __enter__(self):
        return self


class detect_anomaly:
    """Context manager and decorator: inside it, a backward that produces NaN or inf raises
    RuntimeError naming the backward node, the forward op that made it and the file and line
    where that op ran; an error raised inside a backward formula gets that place appended.

    Every op recorded inside keeps its Python stack, and every gradient is checked, so it is slow:
    a debugging tool. Per thread, as grad mode. check_nan=False keeps the places (for errors)
    without the NaN / inf check.

        with tg.autograd.detect_anomaly():
            loss = model(x).sum()
            loss.backward()
    """

    def __init__(self, check_nan=True):
        self.check_nan = bool(check_nan)

    def __enter__(self):
        self._prev = _C._anomaly_state()
        _C._set_anomaly_enabled(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(*self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """Turns anomaly detection on or off; a plain call or a context manager (restores on exit)."""

    def __init__(self, mode, check_nan=True):
        self._prev = _C._anomaly_state()
        _C._set_anomaly_enabled(bool(mode), bool(check_nan))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(*self._prev)
        return False


def is_anomaly_enabled():
    return _C._anomaly_state()[0]


def is_anomaly_check_nan_enabled():
    return _C._anomaly_state()[1]


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STACK_FRAMES = 12


def _user_stack():
    """The Python stack where an op is being recorded, innermost last, tapegrad's own frames left
    out (called from C++ under anomaly detection)."""
    frames = [f for f in traceback.extract_stack()[:-1] if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
    skipped = len(frames) - _STACK_FRAMES
    text = "".join(traceback.format_list(frames[-_STACK_FRAMES:]))
    return (f"  ... {skipped} outer frames left out\n" if skipped > 0 else "") + text


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (list, tuple)) else [x]


def backward(tensors, grad_tensors=None, retain_graph=False, create_graph=False):
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(tensors)
    _C._backward(tensors, grads, retain_graph or create_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """d(outputs)/d(inputs) (times grad_outputs), without touching any .grad. Returns a tuple."""
    outputs = _as_list(outputs)
    single = not isinstance(inputs, (list, tuple))
    inputs = _as_list(inputs)
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    result = _C._grad(outputs, grads, inputs, retain_graph, create_graph, allow_unused)
    return tuple(result) if not single else (result[0],)
