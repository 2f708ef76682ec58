"""GradientTape: TensorFlow's style of asking for gradients, as the documents' examples do.

    with tg.GradientTape() as tape:
        loss = ((model(x) - y) ** 2).mean()
    grads = tape.gradient(loss, model.parameters())

tapegrad records every op of tensors that require grad anyway, so the tape only has to make
sure the variables it is asked about do, and then run tapegrad.grad on the recorded graph.
"""
from . import _C
from .autograd import grad as _grad


class GradientTape:
    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._watched = []
        self._used = False

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def watch(self, tensor):
        """Start recording operations on `tensor` (a leaf that does not require grad yet)."""
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            if not t.requires_grad:
                t.requires_grad_(True)
            self._watched.append(t)

    def gradient(self, target, sources, output_gradients=None):
        """d(target)/d(sources), shaped like `sources` (a tensor, or a list/tuple of them).
        A source that target does not depend on gets None, as in TensorFlow."""
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent tape; "
                               "create the tape with persistent=True to call it again")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        src = [sources] if single else list(sources)
        if not target.requires_grad:
            return None if single else [None] * len(src)
        needs = [s.requires_grad for s in src]
        live = [s for s, n in zip(src, needs) if n]
        found = iter(_grad(target, live, grad_outputs=output_gradients, retain_graph=self.persistent,
                           allow_unused=True) if live else [])
        out = [next(found) if n else None for n in needs]
        return out[0] if single else out
