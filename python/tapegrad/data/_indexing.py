"""Row selection that works the same on lists, NumPy arrays and tapegrad tensors.

The split and batch helpers accept all three kinds of array; keeping the per-kind rules in
one place means both helpers agree on lengths, on errors and on what comes back.
"""
import numpy as np

from .._C import Tensor, index_select
from .._tensor import tensor


def num_rows(array, caller):
    """Length along the first axis; a clear error for scalars and 0-d arrays."""
    shape = getattr(array, "shape", None)
    if shape is not None:
        if len(shape) == 0:
            raise ValueError(f"{caller}: cannot split a 0-d array or tensor")
        return int(shape[0])
    try:
        return len(array)
    except TypeError:
        raise TypeError(f"{caller}: expected lists, NumPy arrays or tensors, got {type(array).__name__}") from None


def common_length(arrays, caller):
    """The shared first-axis length of ``arrays``; ValueError naming all lengths if they differ."""
    if not arrays:
        raise ValueError(f"{caller}: at least one array is required")
    lengths = [num_rows(a, caller) for a in arrays]
    if len(set(lengths)) != 1:
        raise ValueError(f"{caller}: all arrays must have the same length, got lengths {lengths}")
    return lengths[0]


def take_rows(array, indices):
    """Rows ``indices`` (a 1-d int64 NumPy array) of ``array``, as the same kind of container.

    Tensors go through ``index_select`` on their own device, so autograd still sees the op.
    """
    if isinstance(array, Tensor):
        return index_select(array, 0, tensor(indices, device=array.device))
    if isinstance(array, np.ndarray):
        return array[indices]
    return [array[int(i)] for i in indices]
