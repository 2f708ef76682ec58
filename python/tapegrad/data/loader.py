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


def _iterate(arrays, n, order, batch_size, drop_last):
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        rows = order[start:start + batch_size]
        batch = tuple(_as_batch(take_rows(a, rows)) for a in arrays)
        yield batch[0] if len(batch) == 1 else batch


def batches(*arrays, batch_size, shuffle=True, seed=None, drop_last=False):
    """One pass over ``arrays`` in mini-batches of ``batch_size`` rows (the last may be
    smaller unless ``drop_last``). Yields one batch for a single array, else a tuple."""
    _check_batch_size(batch_size)
    n = common_length(arrays, "batches")
    if not shuffle:
        order = np.arange(n)
    elif seed is None:
        order = _global_permutation(n)
    else:
        order = np.random.default_rng(seed).permutation(n)
    yield from _iterate(arrays, n, order, batch_size, drop_last)


class BatchIterator:
    """A reusable ``batches``: every ``iter()`` is a new epoch with a new shuffle.

    With an int ``seed`` the sequence of epochs is reproducible (epoch k always has the same
    order) while epochs still differ from each other, like a seeded PyTorch DataLoader.
    """

    def __init__(self, *arrays, batch_size, shuffle=True, seed=None, drop_last=False):
        _check_batch_size(batch_size)
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
        return _iterate(self.arrays, self.num_samples, self._epoch_order(), self.batch_size, self.drop_last)

    def __len__(self):
        """Number of batches per epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)
