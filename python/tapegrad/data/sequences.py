"""Keras' ``pad_sequences``: ragged lists of indices -> one rectangular NumPy array.

Returned as NumPy (not a tensor) because that is what the documents' pipeline feeds into
``train_test_split`` and Keras users inspect with NumPy; ``tg.tensor(x)`` converts it.
"""
import numpy as np

_SIDES = ("pre", "post")


def _check_side(name, side):
    if side not in _SIDES:
        raise ValueError(f"pad_sequences: {name} must be 'pre' or 'post', got {side!r}")


def pad_sequences(sequences, maxlen=None, padding="pre", truncating="pre", value=0, dtype="int64"):
    """Pad (or cut) every sequence to ``maxlen`` items; ``maxlen=None`` uses the longest.

    ``padding="pre"`` puts ``value`` before the items, ``"post"`` after. ``truncating="pre"``
    drops items from the start of a too-long sequence (keeping the end), ``"post"`` from the
    end. Items may themselves be arrays of a common shape, which becomes the trailing shape.
    """
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError("pad_sequences: `sequences` must be a list of sequences")
    lengths, item_shape = [], None
    for seq in sequences:
        if not hasattr(seq, "__len__"):
            raise ValueError(f"pad_sequences: `sequences` must be a list of iterables, found {seq!r}")
        lengths.append(len(seq))
        if item_shape is None and len(seq):
            item_shape = np.asarray(seq).shape[1:]
    item_shape = item_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    elif int(maxlen) != maxlen or maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be a non-negative int or None, got {maxlen!r}")
    maxlen = int(maxlen)

    out = np.full((len(lengths), maxlen) + tuple(item_shape), value, dtype=dtype)
    if maxlen == 0:
        return out
    for row, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = np.asarray(seq[-maxlen:] if truncating == "pre" else seq[:maxlen], dtype=dtype)
        if kept.shape[1:] != item_shape:
            raise ValueError(f"pad_sequences: sequence {row} has items of shape {kept.shape[1:]}, "
                             f"expected {item_shape} like the first non-empty sequence")
        if padding == "post":
            out[row, :len(kept)] = kept
        else:
            out[row, maxlen - len(kept):] = kept
    return out
