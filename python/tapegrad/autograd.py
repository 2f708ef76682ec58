"""Grad-mode switches and functional gradients; the engine itself is C++."""
import functools

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
