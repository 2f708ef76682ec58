"""Comparing a peer's result with tapegrad's, elementwise, in np.allclose's sense:
|peer - tapegrad| <= atol + rtol * |peer|. A failure says where and by how much, so a report
names the element a kernel got wrong, not only that one did."""
import numpy as np


def _where_worst(excess, shape):
    index = np.unravel_index(int(np.argmax(excess)), shape) if excess.size else ()
    return tuple(int(i) for i in index)


def compare(expected, actual, rtol, atol):
    """expected: tapegrad's arrays; actual: a peer's (lists from peers.to_numpy). Returns None
    when every array agrees, else one line per array that does not."""
    if len(expected) != len(actual):
        return [f"{len(actual)} outputs, tapegrad gave {len(expected)}"]
    problems = []
    for i, (mine, theirs) in enumerate(zip(expected, actual)):
        label = f"output {i}" if len(expected) > 1 else "output"
        if mine.shape != theirs.shape:
            problems.append(f"{label}: shape {theirs.shape}, tapegrad gave {mine.shape}")
            continue
        a, b = mine.astype(np.float64), theirs.astype(np.float64)
        close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            continue
        diff = np.abs(a - b)
        diff[np.isnan(diff)] = np.inf  # NaN on one side only: the worst possible error
        # the element that most exceeds its own tolerance, not merely the largest difference
        at = _where_worst(np.where(close, -np.inf, diff - (atol + rtol * np.abs(b))), a.shape)
        rel = diff / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
        problems.append(
            f"{label} {tuple(a.shape)}: {int((~close).sum())} of {a.size} elements differ; at {at} tapegrad "
            f"{a[at]:.7g} vs {b[at]:.7g} (|diff| {diff[at]:.3g}); max |diff| {diff.max():.3g}, "
            f"max rel {rel[~close].max():.3g}; tolerance rtol {rtol:g} atol {atol:g}")
    return problems or None
