"""Numerical gradient checking: the analytic gradient (from backward) against central
differences, (f(x + eps) - f(x - eps)) / (2 eps), element by element. Use float64 inputs."""
import numpy as np

from . import _C
from .autograd import grad as _grad, no_grad


def _as_tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True if fn's gradients with respect to every input that requires grad match central
    differences; otherwise raises (or returns False with raise_exception=False)."""
    inputs = _as_tuple(inputs)
    diff = [t for t in inputs if isinstance(t, _C.Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    for t in diff:
        if t.dtype != _C.dtype.float64:
            raise TypeError(f"gradcheck: inputs should be float64 for a meaningful check, got {t.dtype}")
    outputs = _as_tuple(fn(*inputs))
    for k, out in enumerate(outputs):
        if not isinstance(out, _C.Tensor) or not out.dtype.is_floating_point:
            continue
        n_out = out.numel()
        # Analytic Jacobian, one output element at a time (reverse mode gives rows).
        analytic = [np.zeros((n_out, t.numel())) for t in diff]
        for i in range(n_out):
            seed = np.zeros(n_out)
            seed[i] = 1.0
            g_out = _C.from_numpy(seed.reshape(out.shape).astype(np.float64)) if out.ndim else \
                _C._scalar_tensor(1.0, _C.dtype.float64)
            if out.requires_grad:
                gs = _grad([out], diff, grad_outputs=[g_out], retain_graph=True, allow_unused=True)
                for j, g in enumerate(gs):
                    if g is not None:
                        analytic[j][i] = g.numpy().reshape(-1)
        # Numerical Jacobian, one input element at a time.
        for j, t in enumerate(diff):
            data = t.detach().numpy()  # shares memory: perturb in place
            flat = data.reshape(-1) if data.flags.c_contiguous else None
            if flat is None:
                raise ValueError("gradcheck: inputs must be contiguous")
            numeric = np.zeros((n_out, t.numel()))
            for e in range(t.numel()):
                orig = flat[e]
                with no_grad():
                    flat[e] = orig + eps
                    plus = _as_tuple(fn(*inputs))[k].numpy().astype(np.float64).reshape(-1).copy()
                    flat[e] = orig - eps
                    minus = _as_tuple(fn(*inputs))[k].numpy().astype(np.float64).reshape(-1).copy()
                    flat[e] = orig
                numeric[:, e] = (plus - minus) / (2 * eps)
            if not np.allclose(analytic[j], numeric, atol=atol, rtol=rtol):
                if not raise_exception:
                    return False
                worst = np.abs(analytic[j] - numeric).max()
                raise AssertionError(f"gradcheck: Jacobian mismatch for output {k} with respect to input {j} "
                                     f"(max abs difference {worst:.3g})\nanalytic:\n{analytic[j]}\nnumerical:\n{numeric}")
    return True
