"""sklearn's ``train_test_split``, for the documents' ``x_train, x_test, y_train, y_test``.

The permutation comes from a private ``numpy.random.Generator(seed)``: a fixed ``seed``
then gives the same split every run without resetting tapegrad's global RNG (which would
silently change, say, the dropout masks of whatever runs next). Sizes follow sklearn
exactly; the shuffled order is not sklearn's (it uses the legacy RandomState).
"""
import math
import numbers

import numpy as np

from ._indexing import common_length, take_rows


def _split_sizes(n, test_size):
    """(n_train, n_test) by sklearn's rules: a float is a fraction rounded up for the test
    part, an int is a count; both parts must be non-empty."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"train_test_split: test_size must be a float or an int, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        if not 0 < test_size < n:
            raise ValueError(f"train_test_split: an int test_size must be in [1, {n - 1}] for {n} "
                             f"samples, got {test_size}")
        n_test = int(test_size)
    else:
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"train_test_split: a float test_size must be in (0, 1), got {test_size}")
        n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train <= 0:
        raise ValueError(f"train_test_split: with {n} samples and test_size={test_size} the train "
                         "set would be empty")
    return n_train, n_test


def train_test_split(*arrays, test_size=0.2, seed=0, shuffle=True):
    """Split each array into train and test rows, the same rows for every array.

    Returns ``[a_train, a_test, b_train, b_test, ...]`` (sklearn's order), each the same kind
    as its input (list, NumPy array or tensor). Without ``shuffle`` the test rows are the last
    ones, as in sklearn.
    """
    n = common_length(arrays, "train_test_split")
    n_train, n_test = _split_sizes(n, test_size)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    # sklearn's ShuffleSplit takes the test rows from the front of the permutation.
    test_rows = order[:n_test] if shuffle else order[n_train:]
    train_rows = order[n_test:] if shuffle else order[:n_train]
    result = []
    for array in arrays:
        result += [take_rows(array, train_rows), take_rows(array, test_rows)]
    return result
