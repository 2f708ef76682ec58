"""Gradient utilities."""
from .. import _C
from ..autograd import no_grad


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scales all gradients together so that their global L2 norm is at most max_norm.
    Returns the norm before clipping (a 0-d tensor)."""
    if norm_type != 2.0:
        raise ValueError("clip_grad_norm_: only the L2 norm (norm_type=2) is supported")
    if isinstance(parameters, _C.Tensor):  # one tensor, as PyTorch accepts (iterating it would give its rows)
        parameters = [parameters]
    grads = [p.grad for p in (parameters if isinstance(parameters, (list, tuple)) else list(parameters))
             if p.grad is not None]
    if not grads:
        return _C.zeros(())
    with no_grad():
        total = _C.sqrt(sum((g.double() * g.double()).sum() for g in grads))
        if not total.is_cuda:
            scale = max_norm / (total.item() + 1e-6)
            if scale < 1.0:
                for g in grads:
                    g.mul_(scale)
            return total
        # On a GPU the factor stays there (min(1, max_norm / norm) as a 0-d tensor): reading the
        # norm on the host would make every training step wait for its backward pass.
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        by_dtype = {}  # the factor converted once per gradient dtype
        for g in grads:
            if g.dtype not in by_dtype:
                by_dtype[g.dtype] = scale.to(g.dtype)
            g.mul_(by_dtype[g.dtype])
    return total
