"""Data-parallel training: DistributedDataParallel wraps a module so that every rank's backward
ends with the gradients averaged over the ranks (tapegrad.distributed, MPI underneath).

How the gradients travel, as in PyTorch's DDP:
- at construction, rank 0's parameters and buffers are broadcast, so every rank starts equal;
- the parameters are cut into buckets of about `bucket_mb` megabytes, in reverse order of
  `parameters()` (the order the backward tends to finish them in), one flat buffer per bucket;
- a post-accumulate-grad hook on each parameter (run by the C++ engine as soon as that .grad is
  final) copies the gradient into its bucket; when a bucket is full its all-reduce starts, non-
  blocking, while the backward goes on computing the rest (buckets start in index order on every
  rank, as MPI requires); the hook of the last parameter waits for them all and writes the
  averages back into the .grad tensors, so `optimizer.step()` sees averaged gradients;
- parameters the forward did not use (found by walking the output's graph) count as ready with a
  zero gradient, so their buckets still complete;
- inside `with ddp.no_sync():` nothing is reduced: gradients accumulate locally, and the next
  backward outside it reduces the accumulated sums.
"""
import contextlib

import numpy as np

from .. import _C, distributed
from ..autograd import no_grad
from .module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p.numel() for p in params]).tolist()
        self.flat = _C.zeros(self.offsets[-1], dtype=params[0].dtype)
        self.pending = 0
        self.work = None

    def slot(self, i):
        return self.flat[self.offsets[i]:self.offsets[i + 1]]


class DistributedDataParallel(Module):
    def __init__(self, module, bucket_mb=25, broadcast_buffers=True):
        super().__init__()
        distributed._group("DistributedDataParallel")  # a clear error when init() was not called
        self.module = module
        with no_grad():
            for _, p in module.named_parameters():
                distributed.broadcast(p, src=0)
            if broadcast_buffers:
                for _, b in module.named_buffers():
                    distributed.broadcast(b, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets, self._slot_of = [], {}
        limit, current, size = bucket_mb * 2 ** 20, [], 0
        for p in reversed(params):
            if current and (size + p.numel() * p.dtype.itemsize > limit or p.dtype != current[0].dtype):
                self._buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p.numel() * p.dtype.itemsize
        if current:
            self._buckets.append(_Bucket(current))
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                self._slot_of[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._gradient_ready)
        self._params = params
        self._require_sync = True
        self._armed = False
        self._next_to_launch = 0

    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        if self._require_sync and _C.is_grad_enabled():
            self._arm(out)
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside this block keep their gradients local (accumulating them)."""
        previous, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = previous

    # ---- one backward's reduction -------------------------------------------------------------

    def _arm(self, out):
        """Before the backward of `out`: every bucket waits for its parameters, but the parameters
        the forward did not use are ready already (with a zero gradient)."""
        self._armed, self._next_to_launch = True, 0
        for bucket in self._buckets:
            bucket.pending, bucket.work = len(bucket.params), None
        used = _leaves_reached(out)
        for p in self._params:
            if id(p) not in used:
                b, i = self._slot_of[id(p)]
                self._buckets[b].slot(i).zero_()
                self._count_ready(b)

    def _gradient_ready(self, p):
        if not self._armed or id(p) not in self._slot_of:
            return
        b, i = self._slot_of[id(p)]
        with no_grad():
            self._buckets[b].slot(i).copy_(p.grad.reshape(-1))
        self._count_ready(b)

    def _count_ready(self, b):
        self._buckets[b].pending -= 1
        # start every full bucket whose predecessors have started (the same order on every rank)
        while self._next_to_launch < len(self._buckets) and self._buckets[self._next_to_launch].pending == 0:
            bucket = self._buckets[self._next_to_launch]
            bucket.work = distributed.all_reduce(bucket.flat, op="mean", async_op=True)
            self._next_to_launch += 1
        if self._next_to_launch == len(self._buckets):
            self._finish()

    def _finish(self):
        self._armed = False
        with no_grad():
            for bucket in self._buckets:
                bucket.work.wait()
                for i, p in enumerate(bucket.params):
                    averaged = bucket.slot(i).reshape(tuple(p.shape))
                    if p.grad is None:
                        p.grad = averaged.clone()
                    else:
                        p.grad.copy_(averaged)


def _leaves_reached(out):
    """ids of the leaf tensors the backward of `out` (a tensor, or a tuple / list / dict of them)
    will reach: a walk of the graph from their grad_fns."""
    roots = []
    stack = [out]
    while stack:
        x = stack.pop()
        if isinstance(x, _C.Tensor):
            if x.grad_fn is not None:
                roots.append(x.grad_fn)
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    # Node wrappers are kept alive in `seen_nodes` so that id() names each node once.
    used, seen, seen_nodes, todo = set(), set(), [], roots
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        seen_nodes.append(fn)
        leaf = fn.variable
        if leaf is not None:
            used.add(id(leaf))
        todo.extend(child for child, _ in fn.next_functions if child is not None)
    return used
