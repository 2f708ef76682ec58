"""Mini-batches over aligned arrays: the training loop's ``for xb, yb in ...``.

Shuffling order:
- ``seed=None`` draws from tapegrad's global RNG, so one ``tg.manual_seed(s)`` at the top of
  a script fixes the batch order along with the weights' initialisation and dropout;
- an int ``seed`` uses a private ``numpy.random.Generator(seed)``, reproducible on its own
  and without resetting the global tapegrad RNG behind the caller's back.

Batches of NumPy arrays and numeric lists come out as tapegrad tensors; tensors are indexed
with ``index_select`` (differentiable, same device); lists that are not numeric (e.g. raw
sentences) come out as lists.
"""
import numpy as np

from .. import _C
from .._tensor import tensor
from ._indexing import common_length, take_rows


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")


def _global_permutation(n):
    """A permutation of range(n) from tapegrad's seeded RNG (float64 keys make ties rare;
    a stable argsort makes the result the same on every NumPy)."""
    return _C.rand(n, dtype=_C.dtype.float64).numpy().argsort(kind="stable")


def _as_batch(rows):
    """Rows taken from one input, as what the loop body receives."""
    if isinstance(rows, _C.Tensor):
        return rows
    if isinstance(rows, list):
        numeric = np.asarray(rows) if rows else np.zeros((0,), dtype=np.int64)
        if numeric.dtype.kind not in "biuf":
            return rows
        rows = numeric
    return tensor(rows)


def _check_shard(rank, world_size, op):
    if not (isinstance(world_size, (int, np.integer)) and world_size >= 1 and isinstance(rank, (int, np.integer))
            and 0 <= rank < world_size):
        raise ValueError(f"{op}: rank must be in [0, world_size) and world_size >= 1, got rank={rank!r}, "
                         f"world_size={world_size!r}")


def _shard(order, rank, world_size):
    """Rank `rank`'s share of `order`: every world_size-th sample from position `rank`, after the
    order is padded (by wrapping around) to a multiple of world_size, so every rank gets as many
    samples, hence as many batches (DDP needs every rank to run each backward). The shards are
    disjoint except for those few padding samples. PyTorch's DistributedSampler does the same."""
    if world_size == 1:
        return order
    padding = -len(order) % world_size
    if padding and len(order):
        order = np.concatenate([order, np.resize(order, padding)])
    return order[rank::world_size]


def _iterate(arrays, order, batch_size, drop_last):
    n = len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        rows = order[start:start + batch_size]
        batch = tuple(_as_batch(take_rows(a, rows)) for a in arrays)
        yield batch[0] if len(batch) == 1 else batch


def batches(*arrays, batch_size, shuffle=True, seed=None, drop_last=False, rank=0, world_size=1):
    """One pass over ``arrays`` in mini-batches of ``batch_size`` rows (the last may be
    smaller unless ``drop_last``). Yields one batch for a single array, else a tuple.

    With ``world_size`` > 1, the batches of process ``rank`` of a data-parallel run: every rank
    draws the same order (give the same ``seed`` everywhere, or the same ``tg.manual_seed``) and
    takes its own shard of it (see ``_shard``)."""
    _check_batch_size(batch_size)
    _check_shard(rank, world_size, "batches")
    n = common_length(arrays, "batches")
    if not shuffle:
        order = np.arange(n)
    elif seed is None:
        order = _global_permutation(n)
    else:
        order = np.random.default_rng(seed).permutation(n)
    yield from _iterate(arrays, _shard(order, rank, world_size), batch_size, drop_last)


class BatchIterator:
    """A reusable ``batches``: every ``iter()`` is a new epoch with a new shuffle.

    With an int ``seed`` the sequence of epochs is reproducible (epoch k always has the same
    order) while epochs still differ from each other, like a seeded PyTorch DataLoader.
    """

    def __init__(self, *arrays, batch_size, shuffle=True, seed=None, drop_last=False, rank=0, world_size=1):
        _check_batch_size(batch_size)
        _check_shard(rank, world_size, "BatchIterator")
        self.rank, self.world_size = rank, world_size
        self.arrays = arrays
        self.num_samples = common_length(arrays, "BatchIterator")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _epoch_order(self):
        if not self.shuffle:
            return np.arange(self.num_samples)
        if self._rng is None:
            return _global_permutation(self.num_samples)
        return self._rng.permutation(self.num_samples)

    def __iter__(self):
        order = _shard(self._epoch_order(), self.rank, self.world_size)
        return _iterate(self.arrays, order, self.batch_size, self.drop_last)

    def __len__(self):
        """Number of batches per epoch (of this rank's shard)."""
        samples = -(-self.num_samples // self.world_size) if self.num_samples else 0
        full, rest = divmod(samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)
