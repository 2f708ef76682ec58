"""The one table of ops that drives the forward, gradient (and device) tests.

Each row (OpSpec) names an op and gives:
  tg      -- the tapegrad callable, tg(*tensors, **params)
  np      -- the NumPy reference,   np(*arrays, **params)   (computed in float64 for float inputs)
  torch   -- the PyTorch reference, torch(*tensors, **params), or None
  nargs   -- number of tensor inputs
  domain  -- input-value hints: one string, or one per input ("real", "positive", "nonzero",
             "grid" (a coarse grid, so that comparisons and ties happen), "exponent", "unit",
             "symmetric_unit" (-0.9, 0.9), "above_one" (1.2, 3), "wide" (-8, 8),
             "special" (NaN, +-inf, 0 and ordinary values))
  dtypes  -- the dtypes it accepts: a name, or a tuple of names (one per input) for mixed rows
  diff    -- whether it is differentiable (gradcheck + comparison with torch's backward)
  gradcheck -- False where a gradient is zero by definition rather than the derivative (padding_idx)
  reference -- for a fused op, its composite reference (the same function in ordinary ops, called
             like tg), which the fused kernels must match in value and gradient
  case    -- case(min_side) -> hypothesis strategy of (list of input shapes, params dict)
  large   -- the size knob: fixed (list of input shapes, params) cases big enough to reach every
             kernel path (vector loops and their tails, multi-block grids, split column sums, each
             row kind of the softmax / layer_norm / cross_entropy kernels, tensor-core GEMM tiles)
  bf16_tol -- (rtol, atol) of the bfloat16 column: the op on bfloat16 inputs against float32 on the
             same (rounded) values, rounded once; ops that round intermediate results get more

Index arrays inside params (gather's index, a bool mask, an int-tensor key) are wrapped in
Arr so that each library receives its own tensor type.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
import conv_reference as CR

try:
    import torch
except ImportError:  # the torch columns are skipped by the tests
    torch = None

MAX_DIMS = 3
MAX_SIDE = 3


# ---- arrays inside params ------------------------------------------------------------------------

@dataclass(frozen=True)
class Arr:
    """An index/mask array carried in params; converted to each library's type."""
    a: np.ndarray = field(compare=False)

    def __repr__(self):
        return f"Arr({self.a.dtype}, {self.a.tolist()!r})"


def convert(obj, lib):
    """Arr -> np array / tg tensor / torch tensor, recursively through tuples and dicts."""
    if isinstance(obj, Arr):
        if lib == "np":
            return obj.a
        if lib == "tg":
            return tg.tensor(obj.a)
        return torch.from_numpy(obj.a.copy())
    if isinstance(obj, tuple):
        return tuple(convert(o, lib) for o in obj)
    if isinstance(obj, dict):
        return {k: convert(v, lib) for k, v in obj.items()}
    return obj


# ---- input values -------------------------------------------------------------------------------

def make_array(shape, dtype, domain, rng):
    """Random values of `dtype` in `domain`, away from kinks and singularities."""
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype == "int64":
        if domain in ("positive", "nonzero"):
            v = rng.integers(1, 6, shape)
            v = v * rng.choice([-1, 1], shape) if domain == "nonzero" else v
        elif domain == "exponent":
            v = rng.integers(0, 4, shape)
        else:
            v = rng.integers(-5, 6, shape)
        return np.asarray(v, dtype=np.int64)
    if domain == "positive":
        v = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        v = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif domain == "grid":
        v = rng.integers(-4, 5, shape) / 2.0
    elif domain == "with_zeros":  # a third of the values exactly 0
        v = np.where(rng.random(shape) < 1 / 3, 0.0, rng.uniform(-2.0, 2.0, shape))
    elif domain == "exponent":
        v = rng.uniform(-1.5, 2.5, shape)
    elif domain == "unit":  # probabilities, away from 0 and 1
        v = rng.uniform(0.05, 0.95, shape)
    elif domain == "symmetric_unit":  # inside (-1, 1), away from its ends (asin, atanh; tan's poles)
        v = rng.uniform(-0.9, 0.9, shape)
    elif domain == "above_one":  # acosh, away from its branch point at 1
        v = rng.uniform(1.2, 3.0, shape)
    elif domain == "wide":  # past the knees of hardtanh, relu6, hardsigmoid and hardswish
        v = rng.uniform(-8.0, 8.0, shape)
    elif domain == "special":  # NaN, +inf, -inf and 0 among ordinary values
        v = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, 1.5, -2.5]), shape)
    else:
        v = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(v, dtype=np.float32 if dtype == "float32" else np.float64)


# ---- shape strategies -----------------------------------------------------------------------------

def shapes(min_side=0, min_dims=0, max_dims=MAX_DIMS):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=MAX_SIDE)


def unary_case(min_side):
    return shapes(min_side).map(lambda s: ([s], {}))


def broadcast_case(n=2):
    def case(min_side):
        return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=MAX_DIMS, min_side=min_side,
                                                 max_side=MAX_SIDE).map(lambda b: (list(b.input_shapes), {}))
    return case


def loss_case(min_side):
    """An input and a target of one shape, and a reduction."""
    return st.tuples(shapes(min_side), st.sampled_from(["none", "mean", "sum"])).map(
        lambda c: ([c[0], c[0]], {"reduction": c[1]}))


def with_0d_second(min_side):
    return shapes(min_side).map(lambda s: ([s, ()], {}))


@st.composite
def _dims(draw, ndim, tuples=True, allow_none=True):
    """dim=None | int | tuple of distinct ints (negative allowed)."""
    options = []
    if allow_none:
        options.append(st.none())
    n = max(ndim, 1)
    options.append(st.integers(-n, n - 1))
    if tuples and ndim > 0:
        options.append(st.lists(st.integers(0, ndim - 1), unique=True, min_size=1, max_size=ndim)
                       .flatmap(lambda ds: st.tuples(*[st.sampled_from([d, d - ndim]) for d in ds])))
    return draw(st.one_of(*options))


def reduce_case(tuples=True, nonempty=False, allow_none=True, grad_side=1):
    def case(min_side):
        @st.composite
        def c(draw):
            # grad_side: the smallest side when differentiating (var needs 2 values: n - 1 > 0)
            grad = grad_side > 1 and min_side > 0
            s = draw(shapes(max(min_side, 1) * (grad_side if grad else 1) if nonempty else min_side,
                            min_dims=1 if grad else 0))
            return [s], {"dim": draw(_dims(s.__len__(), tuples, allow_none)), "keepdim": draw(st.booleans())}
        return c()
    return case


def dim_case(min_dims=1, nonempty=False):
    def case(min_side):
        @st.composite
        def c(draw):
            s = draw(shapes(max(min_side, 1) if nonempty else min_side, min_dims=min_dims))
            return [s], {"dim": draw(st.integers(-len(s), len(s) - 1))}
        return c()
    return case


def linear_case(min_side, bias=True):
    """x (..., in), weight (out, in), bias (out,) (or no bias)."""
    @st.composite
    def c(draw):
        lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=min_side, max_side=MAX_SIDE))
        n_in, n_out = draw(st.integers(min_side, MAX_SIDE)), draw(st.integers(min_side, MAX_SIDE))
        return [lead + (n_in,), (n_out, n_in)] + ([(n_out,)] if bias else []), {}
    return c()


@st.composite
def _matmul_shapes(draw, min_side):
    side = st.integers(min_side, MAX_SIDE)
    m, k, n = draw(side), draw(side), draw(side)
    kind = draw(st.sampled_from(["mm", "vv", "mv", "vm", "batched", "bcast", "batch_v", "v_batch", "batch_w"]))
    if kind == "mm":
        return [(m, k), (k, n)]
    if kind == "vv":
        return [(k,), (k,)]
    if kind == "mv":
        return [(m, k), (k,)]
    if kind == "vm":
        return [(k,), (k, n)]
    b = draw(side)
    if kind == "batched":
        return [(b, m, k), (b, k, n)]
    if kind == "bcast":  # leading dims broadcast: (2, 1, m, k) @ (b, k, n)
        return [(2, 1, m, k), (b, k, n)]
    if kind == "batch_v":
        return [(b, m, k), (k,)]
    if kind == "v_batch":
        return [(k,), (b, k, n)]
    return [(b, m, k), (k, n)]  # batch_w: a shared weight


def matmul_case(min_side):
    return _matmul_shapes(min_side).map(lambda s: (s, {}))


@st.composite
def _reshape_params(draw, min_side, minus_one=True):
    s = draw(shapes(min_side))
    n = int(np.prod(s))
    cands = [(n,), tuple(reversed(s)), (1, n), tuple(s) + (1,), ()] if n == 1 else [(n,), tuple(reversed(s)), (1, n),
                                                                                    tuple(s) + (1,)]
    if minus_one:
        cands.append((-1,))
        if len(s) >= 1 and s[0] > 0:
            cands.append((s[0], -1))
    if n > 0 and n % 2 == 0:
        cands.append((2, n // 2))
    return [s], {"shape": draw(st.sampled_from(cands))}


def reshape_case(min_side):
    return _reshape_params(min_side)


def flatten_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        a = draw(st.integers(0, len(s) - 1))
        b = draw(st.integers(a, len(s) - 1))
        return [s], {"start_dim": draw(st.sampled_from([a, a - len(s)])), "end_dim": draw(st.sampled_from([b, b - len(s)]))}
    return c()


def transpose_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        n = len(s)
        return [s], {"dim0": draw(st.integers(-n, n - 1)), "dim1": draw(st.integers(-n, n - 1))}
    return c()


def permute_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s], {"dims": tuple(draw(st.permutations(range(len(s)))))}
    return c()


def unsqueeze_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s], {"dim": draw(st.integers(-len(s) - 1, len(s)))}
    return c()


def squeeze_case(min_side):
    @st.composite
    def c(draw):
        s = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=max(min_side, 1), max_side=2))
        return [s], {"dim": draw(_dims(len(s)))}
    return c()


def expand_case(min_side):
    @st.composite
    def c(draw):
        s = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
        lead = draw(st.lists(st.integers(min_side, MAX_SIDE), max_size=2))
        target = list(lead)
        for d in s:
            target.append(draw(st.integers(min_side, MAX_SIDE)) if d == 1 else d)
        return [s], {"shape": tuple(target)}
    return c()


@st.composite
def _basic_key(draw, s):
    """A key of ints (negative too), slices with steps, None and at most one Ellipsis."""
    items = []
    d = 0
    used_ellipsis = False
    while d < len(s) and draw(st.booleans()):
        kind = draw(st.sampled_from(["int", "slice", "none", "ellipsis"] if not used_ellipsis else ["int", "slice", "none"]))
        if kind == "int":
            if s[d] == 0:
                continue
            items.append(draw(st.integers(-s[d], s[d] - 1)))
            d += 1
        elif kind == "slice":
            lim = s[d] + 2
            items.append(slice(draw(st.none() | st.integers(-lim, lim)), draw(st.none() | st.integers(-lim, lim)),
                               draw(st.none() | st.integers(1, 3))))
            d += 1
        elif kind == "none":
            items.append(None)
        else:
            items.append(Ellipsis)
            used_ellipsis = True
            d = len(s)  # the rest of the key applies to trailing dims: keep it short
    if draw(st.booleans()):
        items.append(None)
    return tuple(items) if len(items) != 1 or draw(st.booleans()) else items[0]


def basic_index_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s], {"key": draw(_basic_key(s))}
    return c()


def int_tensor_index_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(max(min_side, 1), min_dims=1))
        idx_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
        idx = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-s[0], s[0] - 1)))
        form = draw(st.sampled_from(["first", "second", "two", "ellipsis", "nested"] if len(s) >= 2
                                    else ["first", "nested"]))
        if form == "nested" and idx.size == 0:
            form = "first"
        if form == "first":
            key = Arr(idx)
        elif form == "nested":  # a tuple (or list) inside the key is an integer index: x[(1, 0, -1), ...]
            seq = idx.reshape(-1).tolist()
            inner = tuple(seq) if draw(st.booleans()) else seq
            key = (inner,) if len(s) == 1 else draw(st.sampled_from([(inner,), (inner, slice(None)),
                                                                     (slice(None), tuple(v % s[1] for v in seq))]))
        elif form == "second":
            idx2 = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-s[1], s[1] - 1)))
            key = (slice(None), Arr(idx2))
        elif form == "two":
            idx2 = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, s[1] - 1)))
            key = (Arr(idx), Arr(idx2))
        else:
            idx2 = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, s[-1] - 1)))
            key = (Ellipsis, Arr(idx2))
        return [s], {"key": key}
    return c()


def bool_mask_index_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        k = draw(st.integers(1, len(s)))
        mask = draw(hnp.arrays(np.bool_, s[:k]))
        return [s], {"key": Arr(mask) if draw(st.booleans()) else (Arr(mask), Ellipsis)}
    return c()


def cat_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        dim = draw(st.integers(-len(s), len(s) - 1))
        out = []
        for _ in range(3):
            t = list(s)
            t[dim] = draw(st.integers(min_side, MAX_SIDE))
            out.append(tuple(t))
        return out, {"dim": dim}
    return c()


def stack_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s, s, s], {"dim": draw(st.integers(-len(s) - 1, len(s)))}
    return c()


def split_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        dim = draw(st.integers(-len(s), len(s) - 1))
        n = s[dim]
        if draw(st.booleans()) or n == 0:
            size = draw(st.integers(1, 3))
        else:
            cuts = sorted(draw(st.lists(st.integers(0, n), max_size=2)))
            bounds = [0] + cuts + [n]
            size = [b - a for a, b in zip(bounds, bounds[1:])]
        return [s], {"size": size, "dim": dim}
    return c()


def chunk_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(max(min_side, 1), min_dims=1))
        return [s], {"chunks": draw(st.integers(1, 4)), "dim": draw(st.integers(-len(s), len(s) - 1))}
    return c()


def narrow_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        dim = draw(st.integers(-len(s), len(s) - 1))
        start = draw(st.integers(0, s[dim]))
        return [s], {"dim": dim, "start": start, "length": draw(st.integers(0, s[dim] - start))}
    return c()


def _shape_and_dim(draw, min_side):
    """A shape of at least one dim, every side >= 1 (an index needs something to point at), and a dim."""
    s = draw(shapes(max(min_side, 1), min_dims=1))
    return s, draw(st.integers(-len(s), len(s) - 1))


def flip_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        return [s], {"dims": draw(_dims(len(s), allow_none=False))}
    return c()


def roll_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        dims = draw(st.one_of(st.none(), st.integers(-max(len(s), 1), max(len(s), 1) - 1)) if s else st.none())
        return [s], {"shifts": draw(st.integers(-5, 5)), "dims": dims}
    return c()


def vectors_case(min_side):
    return st.integers(max(min_side, 1), 5).map(lambda n: ([(n,), (n,)], {}))


def inner_case(min_side):
    @st.composite
    def c(draw):
        n = draw(st.integers(max(min_side, 1), 4))
        lead = lambda: tuple(draw(st.lists(st.integers(1, 3), max_size=2)))  # noqa: E731
        return [lead() + (n,), lead() + (n,)], {}
    return c()


def diagonal_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=2))
        d1 = draw(st.integers(0, len(s) - 1))
        d2 = draw(st.sampled_from([d for d in range(len(s)) if d != d1]))
        return [s], {"offset": draw(st.integers(-2, 2)), "dim1": d1, "dim2": d2 - len(s)}
    return c()


def take_along_case(min_side):
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        dim %= len(s)
        ishape = list(s)
        ishape[dim] = draw(st.integers(1, 4))
        ishape = [1 if draw(st.booleans()) and d != dim else v for d, v in enumerate(ishape)]  # broadcast over x
        idx = draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(0, s[dim] - 1)))
        return [s], {"dim": dim, "indices": Arr(idx)}
    return c()


def _np_take_along(x, indices, dim):
    shape = np.broadcast_shapes(tuple(1 if d == dim else v for d, v in enumerate(x.shape)),
                                tuple(1 if d == dim else v for d, v in enumerate(indices.shape)))
    xs = np.broadcast_to(x, tuple(x.shape[d] if d == dim else v for d, v in enumerate(shape)))
    ix = np.broadcast_to(indices, tuple(indices.shape[d] if d == dim else v for d, v in enumerate(shape)))
    return np.take_along_axis(xs, ix, axis=dim)


# ---- ordering and running reductions ---------------------------------------------------------------

def _np_vector_norm(o):
    def f(x, axis=None, keepdims=False):
        a = np.abs(x)
        if o in (math.inf, -math.inf):
            return (np.max if o > 0 else np.min)(a, axis=axis, keepdims=keepdims)
        return np.sum(a ** o, axis=axis, keepdims=keepdims) ** (1 / o)
    return f


def k_case(first_k):
    """A shape of at least one dim, a dim and k in [first_k, size of dim] (topk: 0, kthvalue: 1)."""
    def case(min_side):
        @st.composite
        def c(draw):
            s, dim = _shape_and_dim(draw, min_side)
            return [s], {"dim": dim, "k": draw(st.integers(first_k, s[dim]))}
        return c()
    return case


def line_case(min_side):
    """A nonempty shape of at least one dim, a dim and keepdim (median, mode)."""
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        return [s], {"dim": dim, "keepdim": draw(st.booleans())}
    return c()


def _np_stable_order(x, dim, descending=False):
    return np.argsort(-x if descending else x, axis=dim, kind="stable")


def _np_sort(x, dim, descending):
    i = _np_stable_order(x, dim, descending)
    return np.take_along_axis(x, i, dim), i


def _np_topk(x, dim, k):
    i = np.take(_np_stable_order(x, dim, True), np.arange(k), axis=dim)
    return np.take_along_axis(x, i, dim), i


def _np_picked(x, dim, keepdim, position):
    """(values, indices) at `position` of each stably sorted line along dim."""
    i = np.take(_np_stable_order(x, dim), [position], axis=dim)
    v = np.take_along_axis(x, i, dim)
    return (v, i) if keepdim else (v.squeeze(dim), i.squeeze(dim))


def _np_mode(x, dim, keepdim):
    """The most frequent value of each line (the smallest of ties) and its last position."""
    lines = np.moveaxis(x, dim, -1)
    values, index = np.empty(lines.shape[:-1], x.dtype), np.empty(lines.shape[:-1], np.int64)
    for at in np.ndindex(lines.shape[:-1]):
        line = lines[at]
        u, counts = np.unique(line, return_counts=True)
        values[at] = u[np.argmax(counts)]
        index[at] = np.flatnonzero(line == values[at])[-1]
    if keepdim:
        return np.expand_dims(values, dim), np.expand_dims(index, dim)
    return values, index


def _np_running_extreme(x, dim, is_max):
    """cummax / cummin: values and the last position of each running extreme (no NaN here)."""
    lines = np.moveaxis(x, dim, -1)
    index = np.zeros(lines.shape, np.int64)
    for at in np.ndindex(lines.shape[:-1]):
        best = 0
        for j in range(lines.shape[-1]):
            if (lines[at][j] >= lines[at][best]) if is_max else (lines[at][j] <= lines[at][best]):
                best = j
            index[at + (j,)] = best
    index = np.moveaxis(index, -1, dim)
    return np.take_along_axis(x, index, dim), index


def _np_logcumsumexp(x, dim):
    return np.logaddexp.accumulate(x, axis=dim) if x.ndim else x


def _np_prod(x, dim, keepdim):
    r = np.prod(x, axis=dim, keepdims=keepdim) if x.ndim else np.prod(x)
    return r.astype(np.int64) if x.dtype.kind in "bi" else r


def _torch_prod(x, dim, keepdim):
    if dim is None:
        r = torch.prod(x)
        return r.reshape((1,) * x.ndim) if keepdim else r
    return torch.prod(x, dim, keepdim=keepdim)


# ---- einsum: equations by number of operands; each letter gets a drawn size ------------------------

EINSUM_EQUATIONS = {
    1: ["ij->ji", "ii->i", "ii", "ij->", "ijk->kj", "iji->j", "...i->...", "i...->...i", "ij->j"],
    2: ["ij,jk->ik", "ij,jk", "bij,bjk->bik", "i,i->", "i,j->ij", "ij,ij->ij", "bhqd,bhkd->bhqk", "ijk,jil->kl",
        "...ij,...jk->...ik", "ij,j", "i,ii->i", "ab,cd->abcd"],
    3: ["ij,jk,kl->il", "i,i,i->", "bi,bj,bk->bijk", "ij,j,i"],
}


def _einsum_shapes(equation, sizes, ellipsis):
    shapes = []
    for term in equation.split("->")[0].split(","):
        letters = term.replace("...", "")
        shape = tuple(sizes[c] for c in letters)
        if "..." in term:
            before = term.index("...")
            shape = shape[:before] + ellipsis.pop(0) + shape[before:]
        shapes.append(shape)
    return shapes


def einsum_case(n_operands):
    def case(min_side):
        @st.composite
        def c(draw):
            equation = draw(st.sampled_from(EINSUM_EQUATIONS[n_operands]))
            sizes = {ch: draw(st.integers(max(min_side, 1) if ch in "ijk" else min_side, 3))
                     for ch in sorted(set(equation) - set(",->."))}
            # "..." dims broadcast against each other: a 1 in one operand meets a size in the other
            batch = draw(st.lists(st.integers(1, 3), max_size=2))
            ellipsis = [tuple(batch), tuple(1 if draw(st.booleans()) else b for b in batch)[draw(st.integers(0, len(batch))):]]
            return _einsum_shapes(equation, sizes, ellipsis), {"equation": equation}
        return c()
    return case


# ---- writing by masks and along a dim, repeats, grids, resizing -----------------------------------------

def _mask_for(draw, s, broadcast=True):
    mshape = tuple(1 if broadcast and draw(st.booleans()) else v for v in s)
    return draw(hnp.arrays(np.bool_, mshape))


def masked_select_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s], {"mask": Arr(_mask_for(draw, s))}
    return c()


def masked_scatter_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        return [s, (int(np.prod(s)) + draw(st.integers(0, 2)),)], {"mask": Arr(_mask_for(draw, s))}
    return c()


def _np_masked_scatter(x, source, mask):
    out = x.copy()
    m = np.broadcast_to(mask, x.shape)
    out[m] = source[:m.sum()]
    return out


def scatter_case(unique, with_src=True):
    """x, (src), dim and an index no larger than x (outside dim) and src; with `unique`, the index
    names each position of a line at most once (so every src element lands: gradcheckable)."""
    def case(min_side):
        @st.composite
        def c(draw):
            s, dim = _shape_and_dim(draw, min_side)
            dim %= len(s)
            ishape = tuple(draw(st.integers(1, v)) if d != dim else draw(st.integers(1, v if unique else 4))
                           for d, v in enumerate(s))
            rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
            if unique:
                lines = np.moveaxis(np.empty(ishape, np.int64), dim, -1)
                for at in np.ndindex(lines.shape[:-1]):
                    lines[at] = rng.permutation(s[dim])[:ishape[dim]]
                index = np.ascontiguousarray(np.moveaxis(lines, -1, dim))
            else:
                index = rng.integers(0, s[dim], ishape)
            src_shape = ishape  # PyTorch's backward fails for a src larger than the index
            return ([s, src_shape] if with_src else [s]), {"dim": dim, "index": Arr(index)}
        return c()
    return case


def _np_scatter_reduce(x, src, dim, index, reduce="sum", include_self=True):
    out = x.astype(np.float64).copy()
    hits = {}
    for at in np.ndindex(index.shape):
        target = list(at)
        target[dim] = index[at]
        hits.setdefault(tuple(target), []).append(src[at])
    for target, vals in hits.items():
        vals = ([x[target]] if include_self else []) + vals
        out[target] = {"sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max, "amin": np.min,
                       "set": lambda v: v[-1]}[reduce](vals)
    return out.astype(x.dtype)


def repeat_interleave_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side, min_dims=1))
        dim = draw(st.one_of(st.none(), st.integers(-len(s), len(s) - 1)))
        n = int(np.prod(s)) if dim is None else s[dim]
        repeats = draw(st.one_of(st.integers(0, 3), hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)).map(Arr)))
        return [s], {"repeats": repeats, "dim": dim}
    return c()


def _np_repeat_interleave(x, repeats, dim):
    return np.repeat(x, repeats, axis=dim)


def meshgrid_case(min_side):
    @st.composite
    def c(draw):
        n = draw(st.integers(1, 3))
        return [(draw(st.integers(min_side, 3)),) for _ in range(n)], {"indexing": draw(st.sampled_from(["ij", "xy"]))}
    return c()


def interpolate_case(min_side):
    @st.composite
    def c(draw):
        spatial = draw(st.integers(1, 2))
        s = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(draw(st.integers(1, 4)) for _ in range(spatial))
        mode = draw(st.sampled_from(["nearest", "linear" if spatial == 1 else "bilinear"]))
        params = {"mode": mode, "align_corners": None if mode == "nearest" else draw(st.booleans())}
        if draw(st.booleans()):
            params["size"] = tuple(draw(st.integers(1, 5)) for _ in range(spatial))
        else:
            params["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2.0, 3.0]))
            if any(int(v * params["scale_factor"]) < 1 for v in s[2:]):
                params["scale_factor"] = 2.0
        return [s], params
    return c()


def _np_interpolate(x, mode, align_corners, size=None, scale_factor=None):
    """PyTorch's coordinate rules, one spatial dim at a time."""
    out = x.astype(np.float64)
    for k in range(x.ndim - 2):
        d, n_in = 2 + k, x.shape[2 + k]
        n_out = size[k] if size is not None else int(np.floor(n_in * scale_factor))
        scale = 1 / scale_factor if scale_factor is not None else n_in / n_out
        dst = np.arange(n_out, dtype=np.float64)
        if mode == "nearest":
            out = np.take(out, np.minimum(np.floor(dst * scale).astype(np.int64), n_in - 1), axis=d)
            continue
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w = (src - i0).reshape([-1 if a == d else 1 for a in range(x.ndim)])
        out = np.take(out, i0, axis=d) * (1 - w) + np.take(out, i1, axis=d) * w
    return out.astype(x.dtype)


# ---- 1-d transposed convolution, pooling with indices, unique over a dim ---------------------------------

def conv_transpose1d_case(min_side):
    @st.composite
    def c(draw):
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        p = draw(st.integers(0, (d * (k - 1)) // 2))
        e = draw(st.integers(0, max(s, d) - 1))
        groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        n = draw(st.integers(max(1, math.ceil((2 * p - d * (k - 1) - e) / s) + 1), 4))
        shapes = [(draw(st.integers(max(1, min_side), 2)), groups * cg, n), (groups * cg, og, k), (groups * og,)]
        return shapes, {"stride": s, "padding": p, "output_padding": e, "dilation": d, "groups": groups}
    return c()


def _np_conv_transpose1d(x, w, b, stride, padding, output_padding, dilation, groups):
    return CR.np_conv_transpose2d(x[:, :, None], w[:, :, None], b, (1, stride), (0, padding), (0, output_padding), groups,
                                  (1, dilation))[:, :, 0]


def _np_max_pool2d_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(values, flat (H, W) positions of each window's first maximum), by walking the windows."""
    values = CR.np_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    kh, kw = CR._pair(kernel_size)
    sh, sw = CR._pair(kernel_size if stride is None else stride)
    ph, pw = CR._pair(padding)
    dh, dw = CR._pair(dilation)
    H, W = x.shape[2:]
    index = np.zeros(values.shape, np.int64)
    for n, ch, oh, ow in np.ndindex(values.shape):
        best = None
        for i in range(kh):
            for j in range(kw):
                h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                if 0 <= h < H and 0 <= w < W and (best is None or x[n, ch, h, w] > x[n, ch][best]):
                    best = (h, w)
        index[n, ch, oh, ow] = best[0] * W + best[1]
    return values, index


def unique_dim_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(max(min_side, 1), min_dims=1))  # PyTorch refuses more than one empty dim
        return [s], {"dim": draw(st.integers(-len(s), len(s) - 1))}
    return c()


def _np_unique_dim(x, dim):
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True, axis=dim)
    return values, inverse.reshape(-1), counts


def _np_diagonal(x, offset, dim1, dim2):
    return np.diagonal(x, offset, dim1, dim2 % x.ndim).copy()


def repeat_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        # at least one count (PyTorch's repeat() takes no empty list)
        reps = tuple(draw(st.lists(st.integers(0 if min_side == 0 else 1, 3), min_size=max(len(s), 1), max_size=len(s) + 1)))
        return [s], {"reps": reps}
    return c()


def triangle_case(min_side):
    @st.composite
    def c(draw):
        return [draw(shapes(min_side, min_dims=2))], {"diagonal": draw(st.integers(-2, 2))}
    return c()


_NP_PAD_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_case(mode):
    def case(min_side):
        @st.composite
        def c(draw):
            # PyTorch pads at most ndim - 1 trailing dims except with constants (a batch dim first)
            s = draw(shapes(max(min_side, 1), min_dims=1 if mode == "constant" else 2))
            padded = s[-2:] if mode == "constant" else s[max(1, len(s) - 2):]
            widths = []
            for side in reversed(padded):  # the last dim first, as F.pad reads them
                most = {"reflect": side - 1, "circular": side}.get(mode, 2)
                widths += [draw(st.integers(0, most)), draw(st.integers(0, most))]
            return [s], {"pad": tuple(widths), "mode": mode}
        return c()
    return case


def _np_pad(x, pad, mode="constant", value=0.0):
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (max(pad[2 * k], 0), max(pad[2 * k + 1], 0))
    kw = {"constant_values": value} if mode == "constant" else {}
    y = np.pad(x, pairs, mode=_NP_PAD_MODE[mode], **kw)
    for k in range(len(pad) // 2):  # negative widths trim
        d, (lo, hi) = x.ndim - 1 - k, (pad[2 * k], pad[2 * k + 1])
        y = np.take(y, np.arange(max(-lo, 0), y.shape[d] - max(-hi, 0)), axis=d)
    return y


def channels_case(min_side, groups=False):
    """x (N, C, *) with N * prod(*) > 1 (a batch statistic needs two values), and (C,) weight and bias."""
    @st.composite
    def c(draw):
        g = draw(st.integers(1, 3)) if groups else 1
        ch = g * draw(st.integers(1, 2))
        rest = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
        n = draw(st.integers(2, 3))
        return [(n, ch) + rest, (ch,), (ch,)], ({"num_groups": g} if groups else {})
    return c()


def _np_batch_norm(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


def _np_group_norm(x, w, b, num_groups, eps=1e-5):
    g = x.reshape(x.shape[0], num_groups, -1)
    y = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


def gather_case(min_side):
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        # Outside `dim` the index may be smaller than the input (PyTorch's rule), never larger.
        ishape = [draw(st.integers(min(min_side, n), n)) for n in s]
        ishape[dim] = draw(st.integers(min_side, 4))
        idx = draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(0, s[dim] - 1)))
        return [s], {"dim": dim, "index": Arr(idx)}
    return c()


def index_select_case(min_side):
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        idx = draw(hnp.arrays(np.int64, (draw(st.integers(min_side, 4)),), elements=st.integers(0, s[dim] - 1)))
        return [s], {"dim": dim, "index": Arr(idx)}
    return c()


def where_case(min_side):
    @st.composite
    def c(draw):
        b = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=MAX_DIMS, min_side=min_side,
                                                   max_side=MAX_SIDE))
        cond = draw(hnp.arrays(np.bool_, b.input_shapes[0]))
        return list(b.input_shapes[1:]), {"cond": Arr(cond)}
    return c()


def masked_fill_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        k = draw(st.integers(0, len(s)))  # the mask covers the trailing k dims, each full or 1
        mshape = tuple(draw(st.sampled_from([1, d])) for d in s[len(s) - k:])
        return [s], {"mask": Arr(draw(hnp.arrays(np.bool_, mshape))), "value": draw(st.sampled_from([-1.5, 0.0, 3]))}
    return c()


def clamp_case(min_side):
    @st.composite
    def c(draw):
        s = draw(shapes(min_side))
        lo, hi = draw(st.sampled_from([(-0.7, 0.9), (None, 0.3), (-0.2, None), (1, 3)]))
        return [s], {"lo": lo, "hi": hi}
    return c()


# ---- cases of the nn functions -------------------------------------------------------------------

def _lead_and_trailing(draw, min_side, max_trailing=2):
    """(shape, trailing): leading dims (any size) and 1..max_trailing trailing dims of size >= 1."""
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=min_side, max_side=MAX_SIDE))
    trailing = draw(hnp.array_shapes(min_dims=1, max_dims=max_trailing, min_side=1, max_side=MAX_SIDE))
    return lead + trailing, trailing


def layer_norm_case(min_side):
    @st.composite
    def c(draw):
        s, norm = _lead_and_trailing(draw, min_side)
        return [s], {"normalized_shape": norm}
    return c()


def layer_norm_affine_case(min_side):
    @st.composite
    def c(draw):
        s, norm = _lead_and_trailing(draw, min_side)
        return [s, norm, norm], {}
    return c()


IGNORE_INDICES = (-100, 1)  # the default, and one that is also a class


def cross_entropy_case(min_side):
    """Logits (C,), (N, C) or (N, C, d) with class targets, some ignored (never all: a mean over no
    rows is NaN, which central differences cannot check)."""
    @st.composite
    def c(draw):
        C = draw(st.integers(1, 4))
        form = draw(st.sampled_from(["vector", "rows", "spatial"]))
        n = draw(st.integers(max(min_side, 1), 3))
        shape = {"vector": (C,), "rows": (n, C), "spatial": (n, C, 2)}[form]
        tshape = {"vector": (), "rows": (n,), "spatial": (n, 2)}[form]
        ignore = draw(st.sampled_from(IGNORE_INDICES))
        target = draw(hnp.arrays(np.int64, tshape, elements=st.sampled_from(list(range(C)) + [ignore])))
        target.reshape(-1)[0] = draw(st.sampled_from([k for k in range(C) if k != ignore] or [0]))
        return [shape], {"target": Arr(target), "ignore_index": ignore,
                         "reduction": draw(st.sampled_from(["none", "mean", "sum"]))}
    return c()


def cross_entropy_probs_case(min_side):
    @st.composite
    def c(draw):
        shape = draw(st.sampled_from([(3,), (2, 4), (2, 3, 2)]))
        return [shape, shape], {"reduction": draw(st.sampled_from(["none", "mean", "sum"]))}
    return c()


def embedding_case(min_side, padding=False):
    """padding_idx's row gets no gradient by definition (not the derivative): its row skips gradcheck
    (PyTorch, which has the same rule, checks its gradient)."""
    @st.composite
    def c(draw):
        V, D = draw(st.integers(1, 4)), draw(st.integers(max(min_side, 1), 3))
        ishape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=min_side, max_side=MAX_SIDE))
        idx = draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, V - 1)))
        return [(V, D)], {"indices": Arr(idx), "padding_idx": draw(st.sampled_from([0, V - 1])) if padding else None}
    return c()


def dropout_case(min_side):
    return st.tuples(shapes(min_side), st.sampled_from([0.25, 0.5, 0.8])).map(lambda c: ([c[0]], {"p": c[1]}))


def attention_case(min_side, masked=None):
    """q (..., L, E), k (..., S, E), v (..., S, Ev) sharing a batch; a bool mask (L, S) keeping at
    least one key per query (a fully masked row is NaN), a float mask (L, S) added to the scores,
    or the causal rule."""
    @st.composite
    def c(draw):
        batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=min_side, max_side=2))
        L, S = draw(st.integers(max(min_side, 1), 4)), draw(st.integers(max(min_side, 1), 4))
        E, Ev = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        params = {"scale": draw(st.sampled_from([None, 0.5]))}
        if masked == "bool":
            mask = draw(hnp.arrays(np.bool_, (L, S)))
            mask[:, 0] = True
            params["attn_mask"] = Arr(mask)
        elif masked == "float":
            # quarters: exact in bfloat16, so the bfloat16 column's inputs are the float32 ones
            params["attn_mask"] = Arr(draw(hnp.arrays(np.int64, (L, S), elements=st.integers(-8, 8))) / 4.0)
        else:
            params["is_causal"] = draw(st.booleans())
        return [batch + (L, E), batch + (S, E), batch + (S, Ev)], params
    return c()


def lstm_cell_case(min_side):
    @st.composite
    def c(draw):
        B, H = draw(st.integers(min_side, 3)), draw(st.integers(1, 3))
        return [(B, 4 * H), (B, H)], {}
    return c()


def index_add_case(min_side):
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        n = draw(st.integers(min_side, 4))  # repeated indices add up
        idx = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, s[dim] - 1)))
        src = list(s)
        src[dim] = n
        return [s, tuple(src)], {"dim": dim, "index": Arr(idx)}
    return c()


def scatter_add_case(min_side):
    @st.composite
    def c(draw):
        s, dim = _shape_and_dim(draw, min_side)
        ishape = list(s)
        ishape[dim] = draw(st.integers(min_side, 4))
        idx = draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(0, s[dim] - 1)))
        return [s, tuple(ishape)], {"dim": dim, "index": Arr(idx)}
    return c()


# ---- large inputs (the size knob) ----------------------------------------------------------------
# Fixed cases, drawn once, sized to reach the paths small hypothesis shapes never do: an odd length
# past 2^16 (vector loops and their scalar tail, grids of many blocks), a 2-D input that the tests
# also hand over in Fortran order (strided reads), tall column sums (split over row blocks), more
# leading elements than a grid dimension holds, and every row kind of the row kernels.

_LARGE = np.random.default_rng(20261203)
ROWS = ((5, 37), (4, 128), (3, 1000), (3, 1025), (2, 4096), (2, 8000), (2, 12000), (2, 20001))
LARGE_UNARY = (([(100003,)], {}), ([(300, 257)], {}))
LARGE_BINARY = (([(4, 1, 5000), (3, 5000)], {}), ([(300, 257), (300, 257)], {}), ([(100003,), ()], {}))


def large_reduce(tuples=True, none=True):
    dims = [((7, 3000), 1, True), ((5000, 37), 0, False), ((20000, 3), 0, True), ((70000, 4, 2), 1, False),
            ((3, 2000, 40), 1, False)]
    if none:
        dims.append(((100003,), None, False))
    if tuples:
        dims.append(((4, 50, 60), (0, 2), True))
    return tuple(([s], {"dim": d, "keepdim": k}) for s, d, k in dims)


def large_rows(params=lambda cols: {"dim": -1}, inputs=lambda rows, cols: [(rows, cols)]):
    return tuple((inputs(r, c), params(c)) for r, c in ROWS)


def _large_index(high, shape):
    return Arr(_LARGE.integers(0, high, shape))


def _large_cross_entropy():
    out = []
    for r, c in ROWS:
        target = _LARGE.integers(0, c, r)
        target[1] = -100  # an ignored row
        out.append(([(r, c)], {"target": Arr(target), "ignore_index": -100, "reduction": "mean"}))
    return tuple(out)


def _large_mask(shape):
    mask = _LARGE.random(shape) < 0.7
    mask[:, 0] = True
    return Arr(mask)


LARGE_LOSS = (([(100003,), (100003,)], {"reduction": "mean"}), ([(300, 257), (300, 257)], {"reduction": "none"}))
LARGE_MATMUL = (([(37, 70), (70, 19)], {}), ([(128, 256), (256, 64)], {}), ([(3, 65, 33), (33, 130)], {}),
                ([(1000,), (1000, 300)], {}),
                # a long inner dim and a small output: the CPU GEMM splits K over the threads
                ([(70, 1100), (1100, 45)], {}), ([(307, 2100), (2100, 33)], {}),
                # narrow products (N <= 16) take 16-wide tiles on AVX-512: whole and edge tiles
                ([(300, 200), (200, 16)], {}), ([(133, 90), (90, 13)], {}), ([(4, 70, 64), (4, 64, 8)], {}))
LARGE_ATTENTION = (([(2, 100, 64), (2, 77, 64), (2, 77, 64)], {"is_causal": True}),
                   ([(2, 64, 32), (2, 130, 32), (2, 130, 48)], {"scale": 0.3}))


# ---- NumPy references ----------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _np_gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _axis(dim):
    return dim


def _np_reduce(fn):
    def f(x, dim, keepdim):
        if x.ndim == 0:
            return fn(x, axis=None, keepdims=False)
        return fn(x, axis=_axis(dim), keepdims=keepdim)
    return f


def _np_logsumexp(x, axis=None, keepdims=False):
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _np_var(x, axis=None, keepdims=False):
    n = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = x - np.mean(x, axis=axis, keepdims=True)
        return np.sum(d * d, axis=axis, keepdims=keepdims) / max(n - 1, 0)


def _np_mean(x, axis=None, keepdims=False):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(x, axis=axis, keepdims=keepdims)


def _values(r):
    """max / min's values: the named tuple's first field over one dim, the tensor itself otherwise."""
    return r.values if isinstance(r, tuple) else r


def _np_extreme_with_index(value_fn, index_fn):
    def f(x, dim, keepdim):
        if x.ndim == 0:
            return x, np.asarray(0)
        return value_fn(x, axis=dim, keepdims=keepdim), index_fn(x, axis=dim, keepdims=keepdim)
    return f


def _np_argext(fn):
    def f(x, dim, keepdim):
        if dim is None:
            r = fn(x.reshape(-1))
            return np.reshape(r, (1,) * x.ndim) if keepdim else np.asarray(r)
        if x.ndim == 0:
            return np.asarray(0)
        return fn(x, axis=dim, keepdims=keepdim)
    return f


def _np_reduction(loss, reduction):
    """A loss reduced as the nn losses do ('mean' of no elements is NaN, as in PyTorch)."""
    if reduction == "none":
        return loss
    with np.errstate(invalid="ignore"):
        return np.asarray(loss.sum() / loss.size if reduction == "mean" else loss.sum(), dtype=loss.dtype)


def _np_softmax(x, dim):
    e = np.exp(x - np.max(x, axis=dim, keepdims=True)) if x.size else x
    return e / np.sum(e, axis=dim, keepdims=True) if x.size else x


def _np_log_softmax(x, dim):
    if not x.size:
        return x
    m = np.max(x, axis=dim, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True))


def _np_squeeze(x, dim):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    if x.ndim == 0:
        return x
    axes = tuple(d % x.ndim for d in dims if x.shape[d] == 1)
    return np.squeeze(x, axis=axes)


def _np_transpose(x, dim0, dim1):
    return np.swapaxes(x, dim0, dim1)


def _np_flatten(x, start_dim, end_dim):
    a, b = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:a] + (-1 if x.size else int(np.prod(x.shape[a:b + 1])),) + x.shape[b + 1:])


def _np_split(x, size, dim):
    n = x.shape[dim]
    if isinstance(size, int):
        bounds = list(range(size, n, size))
    else:
        bounds = list(np.cumsum(size)[:-1])
    return tuple(np.split(x, bounds, axis=dim))


def _np_chunk(x, chunks, dim):
    n = x.shape[dim]
    size = max(1, -(-n // chunks))
    return _np_split(x, size, dim)


def _np_gather(x, dim, index):
    # outside `dim` the index reads the leading part of x's dims
    part = tuple(slice(None) if d == dim % x.ndim else slice(0, n) for d, n in enumerate(index.shape))
    return np.take_along_axis(x[part], index, axis=dim)


def _np_clamp(x, lo, hi):
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return out


def _np_masked_fill(x, mask, value):
    return np.where(mask, np.asarray(value, dtype=x.dtype), x)


def _np_layer_norm(x, w=None, b=None, normalized_shape=None, eps=1e-5):
    k = len(normalized_shape) if normalized_shape is not None else w.ndim
    axes = tuple(range(x.ndim - k, x.ndim))
    if x.size == 0:
        return x
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y if w is None else y * w + b


def _np_cross_entropy(x, target, ignore_index, reduction):
    class_dim = 0 if x.ndim == 1 else 1
    lsm = _np_log_softmax(x, class_dim)
    valid = target != ignore_index
    picked = np.take_along_axis(lsm, np.expand_dims(np.where(valid, target, 0), class_dim), class_dim)
    loss = np.where(valid, -np.squeeze(picked, class_dim), 0.0)
    if reduction == "none":
        return loss
    return np.asarray(loss.sum() if reduction == "sum" else loss.sum() / valid.sum())


def _np_cross_entropy_probs(x, t, reduction):
    loss = -(_np_log_softmax(x, 0 if x.ndim == 1 else 1) * t).sum(axis=0 if x.ndim == 1 else 1)
    return _np_reduction(loss, reduction)


def _np_philox(seed, counters):
    """Philox4x32-10 (Salmon et al., SC 2011) of 64-bit counters under a 64-bit key: (n, 4) uint32.
    The reference of tapegrad's random streams (kernels/philox.h), written from the paper."""
    m = np.uint64(0xFFFFFFFF)
    c0, c1 = counters & m, counters >> np.uint64(32)
    c2, c3 = np.zeros_like(c0), np.zeros_like(c0)
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c2, c1, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, (p0 >> np.uint64(32)) ^ c3 ^ k1, p1 & m, p0 & m
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & m, (k1 + np.uint64(0xBB67AE85)) & m
    return np.stack([c0, c1, c2, c3], axis=-1)


DROPOUT_SEED = 1234


def _tg_dropout(x, p):
    tg.manual_seed(DROPOUT_SEED)  # each call draws the same mask (gradcheck calls it many times)
    return TGF.dropout(x, p)


def _np_dropout(x, p):
    """Element e keeps when the uniform of output e % 4 of Philox counter e // 4 (24 bits) is >= p."""
    n = x.size
    bits = _np_philox(DROPOUT_SEED, np.arange((n + 3) // 4, dtype=np.uint64)).reshape(-1)[:n]
    u = (bits >> np.uint64(8)).astype(np.float64) / 16777216.0
    return x * (u >= p).reshape(x.shape) / (1 - p)


def _np_attention(q, k, v, scale=None, is_causal=False, attn_mask=None):
    s = (q @ np.swapaxes(k, -1, -2)) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    L, S = s.shape[-2:]
    if attn_mask is not None and attn_mask.dtype.kind == "f":
        s = s + attn_mask
    else:
        keep = np.tril(np.ones((L, S), dtype=bool)) if is_causal else attn_mask
        if keep is not None:
            s = np.where(keep, s, -np.inf)
    return _np_softmax(s, -1) @ v if s.size else np.zeros(s.shape[:-1] + v.shape[-1:])


def _torch_attention_math(q, k, v, scale=None, is_causal=False, attn_mask=None):
    """PyTorch's attention in ordinary ops: its fused CPU kernel has no double backward."""
    s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        attn_mask = torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    if attn_mask is not None:
        s = s + attn_mask.to(q.dtype) if attn_mask.dtype != torch.bool else s.masked_fill(~attn_mask, -math.inf)
    return torch.softmax(s, -1) @ v


def _np_lstm_cell(gates, c):
    i, f, g, o = np.split(gates, 4, axis=1)
    c_next = _np_sigmoid(f) * c + _np_sigmoid(i) * np.tanh(g)
    return _np_sigmoid(o) * np.tanh(c_next), c_next


def _torch_lstm_cell(gates, c):
    i, f, g, o = gates.chunk(4, 1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


def _np_index_add(base, src, dim, index):
    out = base.copy()
    np.add.at(out, (slice(None),) * (dim % base.ndim) + (index,), src)
    return out


def _np_scatter_add(base, src, dim, index):
    out = base.copy()
    d = dim % base.ndim
    coords = list(np.indices(index.shape, sparse=True))
    coords[d] = index
    np.add.at(out, tuple(coords), src)
    return out


# ---- the table ------------------------------------------------------------------------------------

@dataclass
class OpSpec:
    name: str
    tg: Callable
    np: Callable
    torch: Optional[Callable]
    nargs: int
    domain: object = "real"
    dtypes: tuple = ("float32", "float64")
    diff: bool = True
    case: Callable = unary_case
    atol32: float = 1e-5  # extra slack for float32 (long sums, transcendental functions)
    contiguous_only: bool = False  # view() needs a layout it can view
    large: tuple = ()
    gradcheck: bool = True  # False where a gradient is zero by definition rather than the derivative
    torch_twice: Optional[Callable] = None  # a PyTorch reference for double backward, where op.torch's is not
    reference: Optional[Callable] = None  # a fused op's composite reference (tg._C.reference): its oracle
    bf16_tol: tuple = (1e-2, 1e-3)  # one bfloat16 rounding is at most 2^-9 relative; most rows round once or twice

    def domain_of(self, i):
        return self.domain if isinstance(self.domain, str) else self.domain[i]

    def input_dtypes(self, dtype):
        return dtype if isinstance(dtype, tuple) else (dtype,) * self.nargs

    def __repr__(self):
        return self.name


TGF = tg.nn.functional
REF = tg._C.reference
F = ("float32", "float64")
FI = ("float32", "float64", "int64")
FIB = ("float32", "float64", "int64", "bool")
T = torch
TF = torch.nn.functional if torch is not None else None


def unary(name, tgf, npf, torchf, domain="real", dtypes=FI, diff=True, **kw):
    return OpSpec(name, tgf, npf, torchf, 1, domain, dtypes, diff, unary_case, large=LARGE_UNARY, **kw)


def binary(name, tgf, npf, torchf, domain="real", dtypes=FI, diff=True, case=broadcast_case(), **kw):
    return OpSpec(name, tgf, npf, torchf, 2, domain, dtypes, diff, case, large=LARGE_BINARY, **kw)


def _t(fn):
    """A torch reference, or None where torch is missing."""
    return fn if torch is not None else None


OPS = [
    # -- arithmetic (broadcasting, python scalars on either side) --
    binary("add", lambda a, b: a + b, np.add, _t(lambda a, b: a + b), dtypes=FIB),
    binary("sub", lambda a, b: a - b, np.subtract, _t(lambda a, b: a - b)),
    binary("mul", lambda a, b: a * b, np.multiply, _t(lambda a, b: a * b), dtypes=FIB),
    binary("div", lambda a, b: a / b, lambda a, b: np.true_divide(a, b), _t(lambda a, b: a / b),
           domain=("real", "nonzero")),
    binary("pow", lambda a, b: a ** b, lambda a, b: np.power(a, b), _t(lambda a, b: a ** b),
           domain=("positive", "exponent")),
    binary("tg.add", tg.add, np.add, _t(torch.add) if T else None),
    binary("tg.pow", tg.pow, np.power, _t(torch.pow) if T else None, domain=("positive", "exponent")),
    unary("add_int_scalar", lambda x: x + 2, lambda x: x + 2, _t(lambda x: x + 2)),
    unary("radd_float_scalar", lambda x: 1.5 + x, lambda x: 1.5 + x, _t(lambda x: 1.5 + x)),
    unary("rsub_int_scalar", lambda x: 3 - x, lambda x: 3 - x, _t(lambda x: 3 - x)),
    unary("mul_int_scalar", lambda x: x * 2, lambda x: x * 2, _t(lambda x: x * 2)),
    unary("mul_float_scalar", lambda x: x * 0.5, lambda x: x * 0.5, _t(lambda x: x * 0.5)),
    unary("rmul_bool_scalar", lambda x: True * x, lambda x: 1 * x, _t(lambda x: True * x)),
    unary("div_int_scalar", lambda x: x / 4, lambda x: x / 4, _t(lambda x: x / 4)),
    unary("rdiv_float_scalar", lambda x: 1.0 / x, lambda x: 1.0 / x, _t(lambda x: 1.0 / x), domain="nonzero"),
    unary("pow_int_scalar", lambda x: x ** 2, lambda x: x ** 2, _t(lambda x: x ** 2)),
    unary("pow_float_scalar", lambda x: x ** 1.5, lambda x: x ** 1.5, _t(lambda x: x ** 1.5), domain="positive", dtypes=F),
    unary("rpow_scalar", lambda x: 2.0 ** x, lambda x: 2.0 ** x, _t(lambda x: 2.0 ** x)),
    # x ** 0 is the constant 1: its gradient is 0 everywhere, also at x = 0 (where n x^(n-1) is 0 * inf)
    unary("pow_zero_scalar", lambda x: x ** 0, lambda x: x ** 0, _t(lambda x: x ** 0), domain="with_zeros", dtypes=F),
    unary("pow_zero_tensor", lambda x: x ** tg.zeros_like(x), lambda x: x ** np.zeros_like(x),
          _t(lambda x: x ** torch.zeros_like(x)), domain="with_zeros", dtypes=F),
    unary("pow_int_tensor_negative_exponent", lambda x: x ** (x * 0 - 2),
          lambda x: np.where(np.abs(x) == 1, 1, 0).astype(np.int64),
          _t(lambda x: x ** (x * 0 - 2)), domain="nonzero",
          dtypes=("int64",), diff=False),
    unary("rpow_int_negative_exponent", lambda x: 2 ** -x.abs(), lambda x: np.where(x == 0, 1, 0).astype(np.int64),
          _t(lambda x: 2 ** -x.abs()), dtypes=("int64",), diff=False),
    # -- mixed dtypes (PyTorch promotion: 0-d tensors and numbers do not upcast dimensioned tensors) --
    OpSpec("add_f32_f64_0d", lambda a, b: a + b, np.add, _t(lambda a, b: a + b), 2, dtypes=(("float32", "float64"),),
           diff=False, case=with_0d_second,
           large=LARGE_BINARY[2:]),
    OpSpec("mul_i64_f64_0d", lambda a, b: a * b, np.multiply, _t(lambda a, b: a * b), 2,
           dtypes=(("int64", "float64"),), diff=False, case=with_0d_second,
           large=LARGE_BINARY[2:]),
    OpSpec("add_f32_f64", lambda a, b: a + b, np.add, _t(lambda a, b: a + b), 2, dtypes=(("float32", "float64"),),
           diff=False, case=broadcast_case(),
           large=LARGE_BINARY[:2]),
    OpSpec("mul_i64_f32", lambda a, b: a * b, np.multiply, _t(lambda a, b: a * b), 2, dtypes=(("int64", "float32"),),
           diff=False, case=broadcast_case(),
           large=LARGE_BINARY[:2]),
    OpSpec("add_bool_i64", lambda a, b: a + b, np.add, _t(lambda a, b: a + b), 2, dtypes=(("bool", "int64"),),
           diff=False, case=broadcast_case(),
           large=LARGE_BINARY[:2]),
    # -- matmul --
    OpSpec("matmul", lambda a, b: a @ b, np.matmul, _t(lambda a, b: a @ b), 2, dtypes=FI, case=matmul_case, atol32=1e-4,
           large=LARGE_MATMUL),
    OpSpec("tg.matmul", tg.matmul, np.matmul, _t(torch.matmul) if T else None, 2, dtypes=F, case=matmul_case,
           atol32=1e-4,
           large=LARGE_MATMUL),
    OpSpec("linear", TGF.linear, lambda x, w, b: x @ w.T + b, _t(TF.linear) if T else None, 3, dtypes=F,
           case=linear_case, atol32=1e-4,
           bf16_tol=(1e-2, 1e-2),  # the product rounds before the bias joins: 2^-9 |bias| where they cancel
           # the bias in each GEMM path's epilogue: blocked with edge tiles, split K (K >= 1024),
           # column blocks past NC = 2048, a 3-d input
           large=(([(64, 300), (200, 300), (200,)], {}), ([(2, 37, 1100), (45, 1100), (45,)], {}),
                  ([(20, 16), (2100, 16), (2100,)], {}))),
    OpSpec("linear_nobias", lambda x, w: TGF.linear(x, w), lambda x, w: x @ w.T,
           _t(lambda x, w: TF.linear(x, w)) if T else None, 2, dtypes=F, case=lambda min_side: linear_case(min_side, bias=False),
           atol32=1e-4,
           large=(([(64, 300), (200, 300)], {}), ([(3, 1100), (70, 1100)], {}))),
    # -- unary --
    unary("neg", lambda x: -x, np.negative, _t(lambda x: -x)),
    unary("abs", tg.abs, np.abs, _t(torch.abs) if T else None),
    unary("exp", tg.exp, np.exp, _t(torch.exp) if T else None),
    unary("log", tg.log, np.log, _t(torch.log) if T else None, domain="positive"),
    unary("sqrt", tg.sqrt, np.sqrt, _t(torch.sqrt) if T else None, domain="positive"),
    unary("rsqrt", tg.rsqrt, lambda x: 1 / np.sqrt(x), _t(torch.rsqrt) if T else None, domain="positive"),
    unary("sin", tg.sin, np.sin, _t(torch.sin) if T else None),
    unary("cos", tg.cos, np.cos, _t(torch.cos) if T else None),
    unary("tanh", tg.tanh, np.tanh, _t(torch.tanh) if T else None),
    unary("sigmoid", tg.sigmoid, _np_sigmoid, _t(torch.sigmoid) if T else None),
    unary("relu", tg.relu, lambda x: np.maximum(x, 0), _t(torch.relu) if T else None),
    unary("gelu", tg.gelu, _np_gelu, _t(TF.gelu) if T else None, dtypes=F, reference=REF.gelu),
    unary("gelu_tanh", lambda x: tg.gelu(x, approximate="tanh"), _np_gelu_tanh,
          _t(lambda x: TF.gelu(x, approximate="tanh")), dtypes=F, reference=lambda x: REF.gelu(x, "tanh")),
    unary("softplus", TGF.softplus, lambda x: np.logaddexp(0, x), _t(TF.softplus) if T else None, dtypes=F),
    unary("silu", tg.silu, lambda x: x * _np_sigmoid(x), _t(TF.silu) if T else None, dtypes=F),
    unary("method.exp", lambda x: x.exp(), np.exp, _t(lambda x: x.exp())),
    unary("erf", tg.erf, _erf, _t(torch.erf) if T else None, dtypes=F),
    unary("sign", tg.sign, np.sign, _t(torch.sign) if T else None, domain="nonzero"),  # away from the step at 0
    unary("logical_not", tg.logical_not, np.logical_not, _t(torch.logical_not) if T else None, dtypes=FIB, diff=False),
    # -- activations (tapegrad.nn.functional): one functor each, a parameter as a broadcast number --
    unary("leaky_relu", TGF.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), _t(TF.leaky_relu) if T else None,
          domain="nonzero", dtypes=F),
    unary("leaky_relu_slope", lambda x: TGF.leaky_relu(x, negative_slope=0.2), lambda x: np.where(x > 0, x, 0.2 * x),
          _t(lambda x: TF.leaky_relu(x, negative_slope=0.2)), domain="nonzero", dtypes=F),
    unary("elu", lambda x: TGF.elu(x, alpha=1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x)),
          _t(lambda x: TF.elu(x, alpha=1.5)), dtypes=F),
    # PyTorch's float64 celu and hardsigmoid gradients use float32 constants (alpha, 1/6), 3e-8 off:
    # their torch columns are the same functions in exact torch ops
    unary("celu", lambda x: TGF.celu(x, alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)),
          _t(lambda x: torch.where(x > 0, x, 0.7 * torch.expm1(x / 0.7))), dtypes=F),
    unary("selu", TGF.selu, lambda x: 1.0507009873554804934 * np.where(x > 0, x, 1.6732632423543772848 * np.expm1(x)),
          _t(TF.selu) if T else None, dtypes=F),
    unary("softsign", TGF.softsign, lambda x: x / (1 + np.abs(x)), _t(TF.softsign) if T else None, dtypes=F),
    unary("mish", TGF.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), _t(TF.mish) if T else None, dtypes=F),
    unary("logsigmoid", TGF.logsigmoid, lambda x: -np.logaddexp(0, -x), _t(TF.logsigmoid) if T else None, dtypes=F),
    unary("hardsigmoid", TGF.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1),
          _t(lambda x: torch.clamp(x / 6 + 0.5, 0, 1)), domain="wide", dtypes=F),
    unary("hardswish", TGF.hardswish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), _t(TF.hardswish) if T else None,
          domain="wide", dtypes=F),
    unary("hardtanh", lambda x: TGF.hardtanh(x, -2.0, 3.0), lambda x: np.clip(x, -2.0, 3.0),
          _t(lambda x: TF.hardtanh(x, -2.0, 3.0)), domain="wide", dtypes=F),
    unary("relu6", TGF.relu6, lambda x: np.clip(x, 0, 6), _t(TF.relu6) if T else None, domain="wide", dtypes=F),
    # -- logarithms and exponentials, trigonometric and hyperbolic functions (integers in float32) --
    unary("log2", tg.log2, np.log2, _t(torch.log2) if T else None, domain="positive"),
    unary("log10", tg.log10, np.log10, _t(torch.log10) if T else None, domain="positive"),
    unary("log1p", tg.log1p, np.log1p, _t(torch.log1p) if T else None, domain="positive"),
    unary("expm1", tg.expm1, np.expm1, _t(torch.expm1) if T else None),
    unary("exp2", tg.exp2, np.exp2, _t(torch.exp2) if T else None),
    unary("tan", tg.tan, np.tan, _t(torch.tan) if T else None, domain="symmetric_unit", dtypes=F),
    unary("asin", tg.asin, np.arcsin, _t(torch.asin) if T else None, domain="symmetric_unit", dtypes=F),
    unary("acos", tg.acos, np.arccos, _t(torch.acos) if T else None, domain="symmetric_unit", dtypes=F),
    unary("atan", tg.atan, np.arctan, _t(torch.atan) if T else None),
    unary("sinh", tg.sinh, np.sinh, _t(torch.sinh) if T else None),
    unary("cosh", tg.cosh, np.cosh, _t(torch.cosh) if T else None),
    unary("asinh", tg.asinh, np.arcsinh, _t(torch.asinh) if T else None),
    unary("acosh", tg.acosh, np.arccosh, _t(torch.acosh) if T else None, domain="above_one", dtypes=F),
    unary("atanh", tg.atanh, np.arctanh, _t(torch.atanh) if T else None, domain="symmetric_unit", dtypes=F),
    unary("reciprocal", tg.reciprocal, lambda x: 1.0 / x, _t(torch.reciprocal) if T else None, domain="nonzero"),
    unary("square", tg.square, np.square, _t(torch.square) if T else None),
    unary("method.log1p", lambda x: x.log1p(), np.log1p, _t(lambda x: x.log1p()), domain="positive"),
    # -- rounding: integers are their own; round is to nearest, ties to even ("grid" has the ties) --
    unary("floor", tg.floor, np.floor, _t(torch.floor) if T else None),
    unary("ceil", tg.ceil, np.ceil, _t(torch.ceil) if T else None),
    unary("round", tg.round, np.round, _t(torch.round) if T else None),
    unary("round_ties", tg.round, np.round, _t(torch.round) if T else None, domain="grid", diff=False),
    unary("trunc", tg.trunc, np.trunc, _t(torch.trunc) if T else None),
    unary("frac", tg.frac, lambda x: x - np.trunc(x), _t(torch.frac) if T else None, dtypes=F),
    # -- division with rounding (Python's // and %, C's fmod), with scalars on either side --
    binary("floor_divide", lambda a, b: a // b, np.floor_divide, _t(lambda a, b: a // b), domain=("real", "nonzero"),
           diff=False),
    binary("remainder", lambda a, b: a % b, np.remainder, _t(lambda a, b: a % b), domain=("real", "nonzero")),
    binary("fmod", tg.fmod, np.fmod, _t(torch.fmod) if T else None, domain=("real", "nonzero")),
    binary("floor_divide_grid", lambda a, b: a // b, np.floor_divide, _t(lambda a, b: a // b), domain=("grid", "nonzero"),
           diff=False),  # exact multiples: a // b lands on the quotient, a % b on 0
    binary("remainder_grid", lambda a, b: a % b, np.remainder, _t(lambda a, b: a % b), domain=("grid", "nonzero"),
           diff=False),
    unary("floordiv_scalar", lambda x: x // 3, lambda x: np.floor_divide(x, 3), _t(lambda x: x // 3), diff=False),
    unary("rfloordiv_scalar", lambda x: 7 // x, lambda x: np.floor_divide(7, x), _t(lambda x: 7 // x), domain="nonzero",
          diff=False),
    unary("mod_scalar", lambda x: x % 3, lambda x: np.remainder(x, 3), _t(lambda x: x % 3)),
    unary("rmod_scalar", lambda x: 7 % x, lambda x: np.remainder(7, x), _t(lambda x: torch.full_like(x, 7) % x),
          domain="nonzero"),  # PyTorch's number % tensor has no backward; its tensor % tensor does
    unary("mod_negative_scalar", lambda x: x % -3, lambda x: np.remainder(x, -3), _t(lambda x: x % -3)),
    # -- two-argument float functions (integers in float32) --
    binary("atan2", tg.atan2, np.arctan2, _t(torch.atan2) if T else None, domain=("real", "nonzero")),
    binary("copysign", tg.copysign, np.copysign, _t(torch.copysign) if T else None, domain=("nonzero", "nonzero")),
    # -- dtype conversions (the cast kernels; a float -> int cast truncates toward zero, as C does) --
    unary("to_float64", lambda x: x.to(tg.float64), lambda x: x.astype(np.float64), _t(lambda x: x.to(torch.float64)),
          dtypes=FIB),
    unary("long", lambda x: x.long(), lambda x: x.astype(np.int64), _t(lambda x: x.long()), dtypes=FIB, diff=False),
    OpSpec("narrow", lambda x, dim, start, length: x.narrow(dim, start, length),
           lambda x, dim, start, length: np.take(x, np.arange(start, start + length), axis=dim),
           _t(lambda x, dim, start, length: x.narrow(dim, start, length)), 1, dtypes=FIB, case=narrow_case,
           large=(([(300, 257)], {"dim": 1, "start": 3, "length": 200}),)),
    OpSpec("tg.narrow", lambda x, dim, start, length: tg.narrow(x, dim, start, length),
           lambda x, dim, start, length: np.take(x, np.arange(start, start + length), axis=dim),
           _t(lambda x, dim, start, length: torch.narrow(x, dim, start, length)), 1, dtypes=F, case=narrow_case),
    # -- elementwise two-input / selection --
    binary("maximum", tg.maximum, np.maximum, _t(torch.maximum) if T else None),
    binary("minimum", tg.minimum, np.minimum, _t(torch.minimum) if T else None),
    OpSpec("clamp", lambda x, lo, hi: tg.clamp(x, min=lo, max=hi), _np_clamp,
           _t(lambda x, lo, hi: torch.clamp(x, min=lo, max=hi)), 1, dtypes=F, case=clamp_case,
           large=(([(100003,)], {"lo": -0.7, "hi": 0.9}), ([(300, 257)], {"lo": None, "hi": 0.3}))),
    OpSpec("where", lambda a, b, cond: tg.where(cond, a, b), lambda a, b, cond: np.where(cond, a, b),
           _t(lambda a, b, cond: torch.where(cond, a, b)), 2, dtypes=FI, case=where_case,
           large=(([(4, 1, 5000), (3, 5000)], {"cond": Arr(_LARGE.random((3, 1)) < 0.5)}),)),
    OpSpec("masked_fill", lambda x, mask, value: x.masked_fill(mask, value), _np_masked_fill,
           _t(lambda x, mask, value: x.masked_fill(mask, value)), 1, dtypes=F, case=masked_fill_case,
           large=(([(300, 257)], {"mask": Arr(_LARGE.random(257) < 0.5), "value": -1.5}),)),
    # -- comparisons (bool results, no gradient) --
    binary("eq", lambda a, b: a == b, np.equal, _t(lambda a, b: a == b), domain="grid", dtypes=FIB, diff=False),
    binary("ne", lambda a, b: a != b, np.not_equal, _t(lambda a, b: a != b), domain="grid", dtypes=FIB, diff=False),
    binary("lt", lambda a, b: a < b, np.less, _t(lambda a, b: a < b), domain="grid", dtypes=FI, diff=False),
    binary("le", lambda a, b: a <= b, np.less_equal, _t(lambda a, b: a <= b), domain="grid", dtypes=FI, diff=False),
    binary("gt", lambda a, b: a > b, np.greater, _t(lambda a, b: a > b), domain="grid", dtypes=FI, diff=False),
    binary("ge", lambda a, b: a >= b, np.greater_equal, _t(lambda a, b: a >= b), domain="grid", dtypes=FI, diff=False),
    unary("gt_scalar", lambda x: x > 0.5, lambda x: x > 0.5, _t(lambda x: x > 0.5), domain="grid", diff=False),
    # -- bitwise (integers keep their dtype; on bools they are logical) --
    binary("bitwise_and", lambda a, b: a & b, np.bitwise_and, _t(lambda a, b: a & b), dtypes=("int64", "bool"),
           diff=False),
    binary("bitwise_or", lambda a, b: a | b, np.bitwise_or, _t(lambda a, b: a | b), dtypes=("int64", "bool"),
           diff=False),
    binary("bitwise_xor", lambda a, b: a ^ b, np.bitwise_xor, _t(lambda a, b: a ^ b), dtypes=("int64", "bool"),
           diff=False),
    binary("tg.bitwise_and", tg.bitwise_and, np.bitwise_and, _t(torch.bitwise_and) if T else None,
           dtypes=("int64", "bool"), diff=False),
    unary("bitwise_and_int_scalar", lambda x: x & 6, lambda x: x & 6, _t(lambda x: x & 6), dtypes=("int64",),
          diff=False),
    unary("bitwise_or_bool_scalar", lambda x: x | True, lambda x: x | True, _t(lambda x: x | True),
          dtypes=("int64", "bool"), diff=False),
    OpSpec("bitwise_and_bool_i64", lambda a, b: a & b, np.bitwise_and, _t(lambda a, b: a & b), 2,
           dtypes=(("bool", "int64"),), diff=False, case=broadcast_case(),
           large=LARGE_BINARY[:2]),
    unary("bitwise_not", lambda x: ~x, np.invert, _t(lambda x: ~x), dtypes=("int64", "bool"), diff=False),
    unary("tg.bitwise_not", tg.bitwise_not, np.invert, _t(torch.bitwise_not) if T else None,
          dtypes=("int64", "bool"), diff=False),
    # -- bitwise shifts of integers (counts 0..3 from "exponent") --
    binary("bitwise_left_shift", lambda a, b: a << b, np.left_shift, _t(lambda a, b: a << b), domain=("real", "exponent"),
           dtypes=("int64",), diff=False),
    binary("bitwise_right_shift", lambda a, b: a >> b, np.right_shift, _t(lambda a, b: a >> b),
           domain=("real", "exponent"), dtypes=("int64",), diff=False),
    # -- float classification and repair --
    unary("isnan", tg.isnan, np.isnan, _t(torch.isnan) if T else None, domain="special", dtypes=FIB, diff=False),
    unary("isinf", tg.isinf, np.isinf, _t(torch.isinf) if T else None, domain="special", dtypes=FIB, diff=False),
    unary("isfinite", tg.isfinite, np.isfinite, _t(torch.isfinite) if T else None, domain="special", dtypes=FIB,
          diff=False),
    # the default replacements are the dtype's extremes: NumPy's reference runs in float64, so float64 only
    unary("nan_to_num", tg.nan_to_num, np.nan_to_num, _t(torch.nan_to_num) if T else None, domain="special",
          dtypes=("float64",), diff=False),
    unary("nan_to_num_values", lambda x: x.nan_to_num(nan=1.0, posinf=2.0, neginf=-3.0),
          lambda x: np.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-3.0),
          _t(lambda x: x.nan_to_num(nan=1.0, posinf=2.0, neginf=-3.0)), domain="special", diff=False),
    unary("nan_to_num_grad", tg.nan_to_num, np.nan_to_num, _t(torch.nan_to_num) if T else None, dtypes=F),
    binary("isclose", lambda a, b: tg.isclose(a, b, rtol=0.1, atol=0.2), lambda a, b: np.isclose(a, b, 0.1, 0.2),
           _t(lambda a, b: torch.isclose(a, b, rtol=0.1, atol=0.2)), domain="grid", dtypes=F, diff=False),
    binary("isclose_special", lambda a, b: tg.isclose(a, b, equal_nan=True), lambda a, b: np.isclose(a, b, equal_nan=True),
           _t(lambda a, b: torch.isclose(a, b, equal_nan=True)), domain="special", dtypes=F, diff=False),
    OpSpec("lerp", tg.lerp, lambda a, b, w: a + w * (b - a), _t(torch.lerp) if T else None, 3, dtypes=F,
           case=broadcast_case(3), bf16_tol=(3e-2, 3e-2)),  # three ops, each rounded to bfloat16
    unary("lerp_number", lambda x: x.lerp(x * 2 + 1, 0.25), lambda x: x + 0.25 * (x + 1), _t(lambda x: x.lerp(x * 2 + 1, 0.25)),
          dtypes=F),
    # -- moving elements around (composites of index_select, expand, cat, where: no kernel of their own,
    #    so no large cases; those ops' rows have them) --
    OpSpec("flip", lambda x, dims: x.flip(dims), lambda x, dims: np.flip(x, dims),
           _t(lambda x, dims: torch.flip(x, dims if isinstance(dims, tuple) else (dims,))), 1, dtypes=FIB, case=flip_case),
    OpSpec("roll", lambda x, shifts, dims: tg.roll(x, shifts, dims), lambda x, shifts, dims: np.roll(x, shifts, dims),
           _t(lambda x, shifts, dims: torch.roll(x, shifts, dims)), 1, dtypes=FIB, case=roll_case),
    OpSpec("repeat", lambda x, reps: x.repeat(*reps), lambda x, reps: np.tile(x, reps), _t(lambda x, reps: x.repeat(*reps)),
           1, dtypes=FIB, case=repeat_case),
    OpSpec("tile", lambda x, reps: tg.tile(x, reps[1:]), lambda x, reps: np.tile(x, reps[1:]),
           _t(lambda x, reps: torch.tile(x, reps[1:])), 1, dtypes=FIB, case=repeat_case),
    OpSpec("tril", lambda x, diagonal: x.tril(diagonal), lambda x, diagonal: np.tril(x, diagonal),
           _t(lambda x, diagonal: x.tril(diagonal)), 1, dtypes=FIB, case=triangle_case),
    OpSpec("triu", lambda x, diagonal: tg.triu(x, diagonal), lambda x, diagonal: np.triu(x, diagonal),
           _t(lambda x, diagonal: torch.triu(x, diagonal)), 1, dtypes=FIB, case=triangle_case),
    *[OpSpec(f"pad_{mode}", TGF.pad, _np_pad, _t(TF.pad) if T else None, 1, dtypes=F, case=pad_case(mode))
      for mode in ("constant", "reflect", "replicate", "circular")],
    OpSpec("pad_trim_value", lambda x: TGF.pad(x, (-1, 2), value=1.5), lambda x: _np_pad(x, (-1, 2), value=1.5),
           _t(lambda x: TF.pad(x, (-1, 2), value=1.5)), 1, dtypes=F,
           case=lambda m: shapes(max(m, 2), min_dims=1).map(lambda s: ([s], {}))),
    # -- batch and group normalisation (the batch's statistics) --
    OpSpec("batch_norm", lambda x, w, b: TGF.batch_norm(x, None, None, w, b, training=True), _np_batch_norm,
           _t(lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True)), 3, dtypes=F, case=channels_case,
           atol32=1e-4, large=(([(8, 3, 40, 33), (3,), (3,)], {}),),
           # ours runs in float32 and rounds once (within 1e-3 of float64 on bfloat16 inputs); PyTorch's
           # bfloat16 batch_norm rounds its intermediate results and strays by up to 0.06 at 2 samples
           bf16_tol=(6e-2, 6e-2)),
    OpSpec("group_norm", lambda x, w, b, num_groups: TGF.group_norm(x, num_groups, w, b), _np_group_norm,
           _t(lambda x, w, b, num_groups: TF.group_norm(x, num_groups, w, b)), 3, dtypes=F, atol32=1e-4,
           case=lambda m: channels_case(m, groups=True),
           large=(([(4, 6, 30, 31), (6,), (6,)], {"num_groups": 3}),)),
    # -- convolution and pooling (references: direct loops over the taps, conv_reference.py) --
    OpSpec("conv2d", TGF.conv2d, CR.np_conv2d, _t(TF.conv2d) if T else None, 3, dtypes=F, case=CR.conv2d_case, atol32=1e-4,
           bf16_tol=(2e-2, 2e-2),  # unfold's values and the GEMM's product rounded, then the bias added and rounded
           large=(([(3, 4, 20, 17), (6, 4, 3, 3), (6,)], {"stride": 2, "padding": 1}),
                  ([(2, 6, 9, 40), (9, 2, 2, 5), (9,)], {"groups": 3, "dilation": (2, 1), "padding": "same"}))),
    OpSpec("conv2d_nobias", lambda x, w, **p: TGF.conv2d(x, w, **p), lambda x, w, **p: CR.np_conv2d(x, w, **p),
           _t(lambda x, w, **p: TF.conv2d(x, w, **p)), 2, dtypes=F, atol32=1e-4, bf16_tol=(2e-2, 2e-2),
           case=lambda m: CR.conv2d_case(m).map(lambda c: (c[0][:2], c[1]))),
    OpSpec("conv1d", TGF.conv1d, CR.np_conv1d, _t(TF.conv1d) if T else None, 3, dtypes=F, case=CR.conv1d_case, atol32=1e-4,
           bf16_tol=(2e-2, 2e-2), large=(([(4, 3, 301), (5, 3, 4), (5,)], {"stride": 3, "padding": 2}),)),
    OpSpec("conv_transpose2d", TGF.conv_transpose2d, CR.np_conv_transpose2d, _t(TF.conv_transpose2d) if T else None, 3,
           dtypes=F, case=CR.conv_transpose2d_case, atol32=1e-4, bf16_tol=(2e-2, 2e-2),
           large=(([(2, 4, 11, 13), (4, 3, 3, 3), (3,)], {"stride": 2, "padding": 1, "output_padding": 1}),)),
    OpSpec("max_pool2d", TGF.max_pool2d, CR.np_max_pool2d, _t(TF.max_pool2d) if T else None, 1, dtypes=F,
           case=CR.pool2d_case, large=(([(3, 5, 33, 30)], {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),)),
    OpSpec("conv_transpose1d", TGF.conv_transpose1d, _np_conv_transpose1d, _t(TF.conv_transpose1d) if T else None, 3,
           dtypes=F, case=conv_transpose1d_case, atol32=1e-4, bf16_tol=(2e-2, 2e-2)),
    OpSpec("max_pool2d_indices", lambda x, **p: tuple(TGF.max_pool2d(x, return_indices=True, **p)), _np_max_pool2d_indices,
           _t(lambda x, **p: tuple(TF.max_pool2d(x, return_indices=True, **p))), 1, dtypes=F, case=CR.pool2d_case,
           large=(([(3, 5, 33, 30)], {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),)),
    OpSpec("max_pool1d_indices", lambda x: tuple(TGF.max_pool1d(x, 3, 2, 1, return_indices=True)),
           lambda x: tuple(a[:, :, 0] for a in _np_max_pool2d_indices(x[:, :, None], (1, 3), (1, 2), (0, 1))),
           _t(lambda x: tuple(TF.max_pool1d(x, 3, 2, 1, return_indices=True))), 1, dtypes=F,
           case=lambda m: st.tuples(st.integers(max(m, 1), 2), st.integers(1, 2), st.integers(2, 9)).map(lambda s: ([s], {}))),
    OpSpec("avg_pool2d", TGF.avg_pool2d, CR.np_avg_pool2d, _t(TF.avg_pool2d) if T else None, 1, dtypes=F,
           case=lambda m: CR.pool2d_case(m, average=True),
           large=(([(3, 5, 33, 30)], {"kernel_size": (3, 2), "stride": 2, "padding": 1, "ceil_mode": True,
                                      "count_include_pad": False}),)),
    OpSpec("max_pool1d", lambda x: TGF.max_pool1d(x, 3, 2, 1), lambda x: CR.np_max_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1))[:, :, 0],
           _t(lambda x: TF.max_pool1d(x, 3, 2, 1)), 1, dtypes=F,
           case=lambda m: st.tuples(st.integers(max(m, 1), 2), st.integers(1, 2), st.integers(2, 9)).map(lambda s: ([s], {}))),
    OpSpec("avg_pool1d", lambda x: TGF.avg_pool1d(x, 2), lambda x: CR.np_avg_pool2d(x[:, :, None], (1, 2))[:, :, 0],
           _t(lambda x: TF.avg_pool1d(x, 2)), 1, dtypes=F,
           case=lambda m: st.tuples(st.integers(max(m, 1), 2), st.integers(1, 2), st.integers(2, 9)).map(lambda s: ([s], {}))),
    OpSpec("adaptive_avg_pool2d", TGF.adaptive_avg_pool2d, CR.np_adaptive_avg_pool2d, _t(TF.adaptive_avg_pool2d) if T else None,
           1, dtypes=F, case=CR.adaptive_pool_case),
    OpSpec("unfold", TGF.unfold, CR.np_unfold, _t(TF.unfold) if T else None, 1, dtypes=F, case=CR.unfold_case,
           large=(([(2, 3, 40, 31)], {"kernel_size": 3, "dilation": 1, "padding": 1, "stride": 1}),)),
    OpSpec("fold", TGF.fold, CR.np_fold, _t(TF.fold) if T else None, 1, dtypes=F, case=CR.fold_case,
           large=(([(2, 27, 1240)], {"output_size": (40, 31), "kernel_size": 3, "dilation": 1, "padding": 1, "stride": 1}),)),
    # -- small ops written as other ops (composite.cpp) --
    OpSpec("var_mean", lambda x, dim, keepdim: tg.var_mean(x, dim, keepdim=keepdim),
           lambda x, dim, keepdim: (_np_reduce(_np_var)(x, dim, keepdim), _np_reduce(_np_mean)(x, dim, keepdim)),
           _t(lambda x, dim, keepdim: torch.var_mean(x, dim, keepdim=keepdim)), 1, dtypes=F,
           case=reduce_case(nonempty=True, grad_side=2)),
    OpSpec("std_mean", lambda x, dim, keepdim: tg.std_mean(x, dim, correction=0, keepdim=keepdim),
           lambda x, dim, keepdim: (_np_reduce(np.std)(x, dim, keepdim), _np_reduce(np.mean)(x, dim, keepdim)),
           _t(lambda x, dim, keepdim: torch.std_mean(x, dim, correction=0, keepdim=keepdim)), 1, dtypes=F,
           case=reduce_case(nonempty=True, grad_side=2)),
    OpSpec("count_nonzero", lambda x, dim, keepdim: tg.count_nonzero(x, dim),
           lambda x, dim, keepdim: np.count_nonzero(x, axis=dim), _t(lambda x, dim, keepdim: torch.count_nonzero(x, dim)),
           1, domain="with_zeros", dtypes=FIB, diff=False, case=reduce_case()),
    OpSpec("dot", tg.dot, np.dot, _t(torch.dot) if T else None, 2, dtypes=FI, case=vectors_case),
    OpSpec("outer", tg.outer, np.outer, _t(torch.outer) if T else None, 2, dtypes=FI, case=vectors_case),
    OpSpec("inner", tg.inner, np.inner, _t(torch.inner) if T else None, 2, dtypes=F, case=inner_case),
    OpSpec("movedim", lambda x: tg.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), _t(lambda x: torch.movedim(x, 0, -1)),
           1, dtypes=FIB, case=lambda m: shapes(m, min_dims=1).map(lambda s: ([s], {}))),
    OpSpec("diagonal", lambda x, offset, dim1, dim2: x.diagonal(offset, dim1, dim2), _np_diagonal,
           _t(lambda x, offset, dim1, dim2: x.diagonal(offset, dim1, dim2)), 1, dtypes=FIB, case=diagonal_case),
    OpSpec("diag_vector", lambda x: tg.diag(x, 1), lambda x: np.diag(x, 1), _t(lambda x: torch.diag(x, 1)), 1, dtypes=FI,
           case=lambda m: shapes(m, min_dims=1, max_dims=1).map(lambda s: ([s], {}))),
    OpSpec("take_along_dim", lambda x, dim, indices: tg.take_along_dim(x, indices, dim), lambda x, dim, indices: _np_take_along(x, indices, dim),
           _t(lambda x, dim, indices: torch.take_along_dim(x, indices, dim)), 1, dtypes=FIB, case=take_along_case),
    # -- products, running reductions and ordering (scan.cpp, sort.cpp); ties keep their order --
    OpSpec("prod", lambda x, dim, keepdim: x.prod(dim, keepdim=keepdim), _np_prod, _t(_torch_prod), 1, domain="with_zeros",
           dtypes=FIB, case=reduce_case(tuples=False),
           large=(([(64, 40)], {"dim": 1, "keepdim": False}), ([(40, 64)], {"dim": 0, "keepdim": True}))),
    OpSpec("cumprod", lambda x, dim: x.cumprod(dim), lambda x, dim: np.cumprod(x, axis=dim).astype(
           np.int64 if x.dtype.kind in "bi" else x.dtype), _t(lambda x, dim: torch.cumprod(x, dim)), 1, domain="with_zeros",
           dtypes=FIB, case=dim_case(), large=(([(300, 37)], {"dim": 0}), ([(37, 300)], {"dim": 1}))),
    OpSpec("logcumsumexp", lambda x, dim: x.logcumsumexp(dim), _np_logcumsumexp, _t(lambda x, dim: torch.logcumsumexp(x, dim)),
           1, dtypes=F, case=dim_case(), large=(([(300, 257)], {"dim": 0}), ([(300, 257)], {"dim": 1}))),
    OpSpec("cummax", lambda x, dim: tuple(tg.cummax(x, dim)), lambda x, dim: _np_running_extreme(x, dim, True),
           _t(lambda x, dim: tuple(torch.cummax(x, dim))), 1, domain="real", dtypes=FI, case=dim_case(),
           large=(([(300, 257)], {"dim": 0}),)),
    OpSpec("cummin", lambda x, dim: tuple(x.cummin(dim)), lambda x, dim: _np_running_extreme(x, dim, False),
           _t(lambda x, dim: tuple(torch.cummin(x, dim))), 1, domain="real", dtypes=FI, case=dim_case()),
    OpSpec("sort", lambda x, dim: tuple(x.sort(dim)), lambda x, dim: _np_sort(x, dim, False),
           _t(lambda x, dim: tuple(torch.sort(x, dim=dim, stable=True))), 1, domain="real", dtypes=FI, case=dim_case(),
           # rows sorted in shared memory and (past 4,096 float32 elements) in global memory on the GPU
           large=(([(64, 1000)], {"dim": 1}), ([(5000, 3)], {"dim": 0}))),
    OpSpec("sort_descending", lambda x, dim: tuple(tg.sort(x, dim, descending=True)), lambda x, dim: _np_sort(x, dim, True),
           _t(lambda x, dim: tuple(torch.sort(x, dim=dim, descending=True, stable=True))), 1, domain="real", dtypes=FI,
           case=dim_case()),
    OpSpec("argsort", lambda x, dim: x.argsort(dim), lambda x, dim: _np_stable_order(x, dim),
           _t(lambda x, dim: torch.argsort(x, dim=dim, stable=True)), 1, domain="grid", dtypes=FIB, diff=False,
           case=dim_case()),
    # topk / kthvalue / median on distinct values: PyTorch's own order among ties is unspecified
    OpSpec("topk", lambda x, dim, k: tuple(x.topk(k, dim)), lambda x, dim, k: _np_topk(x, dim, k),
           _t(lambda x, dim, k: tuple(torch.topk(x, k, dim))), 1, case=k_case(0),
           large=(([(8, 3000)], {"dim": 1, "k": 10}),)),
    OpSpec("topk_smallest", lambda x, dim, k: tuple(tg.topk(x, k, dim, largest=False)),
           lambda x, dim, k: tuple(np.take(a, np.arange(k), axis=dim) for a in _np_sort(x, dim, False)),
           _t(lambda x, dim, k: tuple(torch.topk(x, k, dim, largest=False))), 1, case=k_case(0)),
    OpSpec("kthvalue", lambda x, dim, k: tuple(x.kthvalue(k, dim)), lambda x, dim, k: _np_picked(x, dim, False, k - 1),
           _t(lambda x, dim, k: tuple(torch.kthvalue(x, k, dim))), 1, case=k_case(1)),
    OpSpec("median", lambda x, dim, keepdim: tuple(x.median(dim, keepdim=keepdim)),
           lambda x, dim, keepdim: _np_picked(x, dim, keepdim, (x.shape[dim] - 1) // 2),
           _t(lambda x, dim, keepdim: tuple(torch.median(x, dim, keepdim=keepdim))), 1, case=line_case),
    OpSpec("median_all", lambda x: tg.median(x), lambda x: np.sort(x.reshape(-1))[(x.size - 1) // 2],
           _t(torch.median) if T else None, 1, case=lambda m: shapes(max(m, 1)).map(lambda s: ([s], {}))),
    OpSpec("mode", lambda x, dim, keepdim: tuple(x.mode(dim, keepdim=keepdim)), _np_mode,
           _t(lambda x, dim, keepdim: tuple(torch.mode(x, dim, keepdim=keepdim))), 1, domain="grid", dtypes=FI,
           case=line_case,
           gradcheck=False),  # ties decide the mode: a nudged tie changes it (compared with torch's gradient)
    OpSpec("unique", lambda x: tuple(tg.unique(x, return_inverse=True, return_counts=True)),
           lambda x: tuple(a.reshape(x.shape) if k == 1 else a for k, a in
                           enumerate(np.unique(x, return_inverse=True, return_counts=True))),
           _t(lambda x: tuple(torch.unique(x, return_inverse=True, return_counts=True))), 1, domain="grid",
           dtypes=FIB, diff=False, case=unary_case),
    OpSpec("unique_dim", lambda x, dim: tuple(tg.unique(x, return_inverse=True, return_counts=True, dim=dim)),
           _np_unique_dim, _t(lambda x, dim: tuple(torch.unique(x, return_inverse=True, return_counts=True, dim=dim))), 1,
           domain="grid", dtypes=FIB, diff=False, case=unique_dim_case),
    # -- einsum (einsum.cpp): diagonals, sums and batched GEMMs --
    *[OpSpec(f"einsum{n}", lambda *xs, equation: tg.einsum(equation, *xs), lambda *xs, equation: np.einsum(equation, *xs),
             _t(lambda *xs, equation: torch.einsum(equation, *xs)), n, case=einsum_case(n), atol32=1e-4)
      for n in (1, 2, 3)],
    OpSpec("einsum_large", lambda a, b: tg.einsum("bij,bjk->bik", a, b), lambda a, b: np.einsum("bij,bjk->bik", a, b),
           _t(lambda a, b: torch.einsum("bij,bjk->bik", a, b)), 2, case=lambda m: st.just(([(2, 3, 4), (2, 4, 5)], {})),
           atol32=1e-4, large=(([(4, 70, 90), (4, 90, 60)], {}),)),
    # -- norms: the 2-norm's gradient is 0 at a zero vector (PyTorch's subgradient) --
    OpSpec("norm", lambda x, dim, keepdim: x.norm(dim=dim, keepdim=keepdim),
           lambda x, dim, keepdim: _np_reduce(_np_vector_norm(2))(x, dim, keepdim),
           _t(lambda x, dim, keepdim: torch.linalg.vector_norm(x, 2, dim, keepdim)), 1, case=reduce_case(nonempty=True),
           large=large_reduce()),
    *[OpSpec(f"vector_norm_{name}", lambda x, dim, keepdim, o=o: tg.linalg.vector_norm(x, o, dim, keepdim),
             lambda x, dim, keepdim, o=o: _np_reduce(_np_vector_norm(o))(x, dim, keepdim),
             _t(lambda x, dim, keepdim, o=o: torch.linalg.vector_norm(x, o, dim, keepdim)), 1, domain="nonzero",
             case=reduce_case(tuples=False, nonempty=True))
      for name, o in (("1", 1), ("3", 3), ("inf", math.inf), ("neg_inf", -math.inf), ("half", 0.5))],
    OpSpec("normalize", lambda x: TGF.normalize(x, dim=-1), lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12),
           _t(lambda x: TF.normalize(x, dim=-1)), 1, case=lambda m: shapes(max(m, 1), min_dims=1).map(lambda s: ([s], {}))),
    # -- writing by masks and along a dim (scatter.cpp), repeats and grids (rearrange.cpp), resizing --
    OpSpec("masked_select", lambda x, mask: tg.masked_select(x, mask),
           lambda x, mask: np.broadcast_to(x, np.broadcast_shapes(x.shape, mask.shape))[
               np.broadcast_to(mask, np.broadcast_shapes(x.shape, mask.shape))],
           _t(lambda x, mask: torch.masked_select(x, mask)), 1, dtypes=FIB, case=masked_select_case),
    OpSpec("masked_scatter", lambda x, source, mask: x.masked_scatter(mask, source), _np_masked_scatter,
           _t(lambda x, source, mask: x.masked_scatter(mask, source)), 2, dtypes=FI, case=masked_scatter_case),
    OpSpec("scatter", lambda x, src, dim, index: x.scatter(dim, index, src),
           lambda x, src, dim, index: _np_scatter_reduce(x, src, dim, index, "set", False),
           _t(lambda x, src, dim, index: x.scatter(dim, index, src)), 2, dtypes=FI, case=scatter_case(unique=True)),
    OpSpec("scatter_value", lambda x, dim, index: tg.scatter(x, dim, index, value=-1.5),
           lambda x, dim, index: _np_scatter_reduce(x, np.full(index.shape, -1.5), dim, index, "set", False),
           _t(lambda x, dim, index: torch.scatter(x, dim, index, value=-1.5)), 1, case=scatter_case(True, with_src=False)),
    *[OpSpec(f"scatter_reduce_{r}{'' if inc else '_exclude_self'}",
             lambda x, src, dim, index, r=r, inc=inc: x.scatter_reduce(dim, index, src, r, include_self=inc),
             lambda x, src, dim, index, r=r, inc=inc: _np_scatter_reduce(x, src, dim, index, r, inc),
             _t(lambda x, src, dim, index, r=r, inc=inc: x.scatter_reduce(dim, index, src, r, include_self=inc)), 2,
             case=scatter_case(unique=False))
      for r in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)],
    OpSpec("repeat_interleave", lambda x, repeats, dim: tg.repeat_interleave(x, repeats, dim), _np_repeat_interleave,
           _t(lambda x, repeats, dim: torch.repeat_interleave(x, repeats, dim)), 1, dtypes=FIB, case=repeat_interleave_case),
    *[OpSpec(f"meshgrid{n}", lambda *xs, indexing: tg.meshgrid(*xs, indexing=indexing),
             lambda *xs, indexing: tuple(np.meshgrid(*xs, indexing=indexing)),
             _t(lambda *xs, indexing: torch.meshgrid(*xs, indexing=indexing)), n, dtypes=FI,
             case=lambda m, n=n: meshgrid_case(m).filter(lambda c, n=n: len(c[0]) == n))
      for n in (1, 2, 3)],
    OpSpec("interpolate", lambda x, **p: TGF.interpolate(x, **p), _np_interpolate,
           _t(lambda x, **p: TF.interpolate(x, **p)), 1, case=interpolate_case,
           large=(([(2, 3, 40, 31)], {"mode": "bilinear", "align_corners": False, "size": (57, 20)}),)),
    # -- running sums (bools counted as int64; float32 accumulated in float64) --
    OpSpec("cumsum", lambda x, dim: x.cumsum(dim), lambda x, dim: np.cumsum(x, axis=dim),
           _t(lambda x, dim: torch.cumsum(x, dim)), 1, dtypes=FIB, case=dim_case(),
           large=(([(100003,)], {"dim": 0}), ([(300, 257)], {"dim": 0}), ([(300, 257)], {"dim": 1}))),
    # -- reductions --
    OpSpec("any", lambda x, dim, keepdim: x.any(dim=dim, keepdim=keepdim), _np_reduce(np.any),
           _t(lambda x, dim, keepdim: torch.any(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)),
           1, domain="with_zeros", dtypes=FIB, diff=False, case=reduce_case()),
    OpSpec("all", lambda x, dim, keepdim: x.all(dim=dim, keepdim=keepdim), _np_reduce(np.all),
           _t(lambda x, dim, keepdim: torch.all(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)),
           1, domain="with_zeros", dtypes=FIB, diff=False, case=reduce_case()),
    OpSpec("sum", lambda x, dim, keepdim: x.sum(dim=dim, keepdim=keepdim), _np_reduce(np.sum),
           _t(lambda x, dim, keepdim: x.sum(dim=dim, keepdim=keepdim) if dim is not None else
              (x.sum() if not keepdim else x.sum(dim=tuple(range(x.ndim)), keepdim=True))),
           1, dtypes=FIB, case=reduce_case(),
           large=large_reduce()),
    OpSpec("tg.sum", lambda x, dim, keepdim: tg.sum(x, dim, keepdim), _np_reduce(np.sum),
           _t(lambda x, dim, keepdim: torch.sum(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)),
           1, dtypes=F, case=reduce_case(),
           large=large_reduce()),
    OpSpec("mean", lambda x, dim, keepdim: x.mean(dim=dim, keepdim=keepdim), _np_reduce(_np_mean),
           _t(lambda x, dim, keepdim: torch.mean(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)),
           1, dtypes=F, case=reduce_case(),
           large=large_reduce()),
    OpSpec("var", lambda x, dim, keepdim: x.var(dim=dim, keepdim=keepdim), _np_reduce(_np_var),
           _t(lambda x, dim, keepdim: torch.var(x, dim=None if dim is None else dim, keepdim=keepdim)),
           1, dtypes=F, case=reduce_case(nonempty=True, grad_side=2),
           large=large_reduce()),
    OpSpec("max", lambda x, dim, keepdim: _values(x.max(dim=dim, keepdim=keepdim)), _np_reduce(np.max),
           _t(lambda x, dim, keepdim: torch.amax(x, dim=() if dim is None else dim, keepdim=keepdim)),
           1, dtypes=FI, case=reduce_case(nonempty=True),
           large=large_reduce()),
    OpSpec("min", lambda x, dim, keepdim: _values(tg.min(x, dim, keepdim)), _np_reduce(np.min),
           _t(lambda x, dim, keepdim: torch.amin(x, dim=() if dim is None else dim, keepdim=keepdim)),
           1, dtypes=FI, case=reduce_case(nonempty=True),
           large=large_reduce()),
    # max / min over one dim: (values, indices) as PyTorch, the gradient to the first extreme alone
    OpSpec("max_dim", lambda x, dim, keepdim: tuple(x.max(dim, keepdim=keepdim)), _np_extreme_with_index(np.max, np.argmax),
           _t(lambda x, dim, keepdim: tuple(torch.max(x, dim, keepdim=keepdim))), 1, dtypes=FI,
           case=reduce_case(tuples=False, nonempty=True, allow_none=False), large=large_reduce(tuples=False, none=False)),
    OpSpec("min_dim", lambda x, dim, keepdim: tuple(tg.min(x, dim=dim, keepdim=keepdim)),
           _np_extreme_with_index(np.min, np.argmin), _t(lambda x, dim, keepdim: tuple(torch.min(x, dim, keepdim=keepdim))),
           1, dtypes=FI, case=reduce_case(tuples=False, nonempty=True, allow_none=False)),
    OpSpec("argmax", lambda x, dim, keepdim: x.argmax(dim=dim, keepdim=keepdim), _np_argext(np.argmax),
           _t(lambda x, dim, keepdim: torch.argmax(x, dim=dim, keepdim=keepdim)),
           1, domain="grid", dtypes=FI, diff=False, case=reduce_case(tuples=False, nonempty=True),
           large=large_reduce(tuples=False)),
    OpSpec("argmin", lambda x, dim, keepdim: tg.argmin(x, dim=dim, keepdim=keepdim), _np_argext(np.argmin),
           _t(lambda x, dim, keepdim: torch.argmin(x, dim=dim, keepdim=keepdim)),
           1, domain="grid", dtypes=FI, diff=False, case=reduce_case(tuples=False, nonempty=True),
           large=large_reduce(tuples=False)),
    OpSpec("logsumexp", lambda x, dim, keepdim: x.logsumexp(dim=dim, keepdim=keepdim), _np_reduce(_np_logsumexp),
           _t(lambda x, dim, keepdim: torch.logsumexp(x, dim=tuple(range(x.ndim)) if dim is None else dim,
                                                      keepdim=keepdim)),
           1, dtypes=F, case=reduce_case(),
           large=large_reduce(),  # an empty reduction gives -inf
           bf16_tol=(1e-2, 1e-2)),  # PyTorch rounds log(sum exp(x - max)) before it adds the max back
    # -- shape --
    OpSpec("reshape", lambda x, shape: x.reshape(shape), lambda x, shape: np.reshape(x, shape),
           _t(lambda x, shape: x.reshape(shape)), 1, dtypes=FIB, case=reshape_case,
           large=(([(300, 257)], {"shape": (257, 300)}),)),
    OpSpec("tg.reshape", lambda x, shape: tg.reshape(x, shape), lambda x, shape: np.reshape(x, shape),
           _t(lambda x, shape: torch.reshape(x, shape)), 1, dtypes=F, case=reshape_case),
    OpSpec("view", lambda x, shape: x.view(*shape), lambda x, shape: np.reshape(x, shape),
           _t(lambda x, shape: x.view(shape)), 1, dtypes=FI, case=reshape_case, contiguous_only=True),
    OpSpec("flatten", lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim), _np_flatten,
           _t(lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim)), 1, dtypes=FI, case=flatten_case),
    OpSpec("transpose", lambda x, dim0, dim1: x.transpose(dim0, dim1), _np_transpose,
           _t(lambda x, dim0, dim1: x.transpose(dim0, dim1)), 1, dtypes=FIB, case=transpose_case,
           large=(([(300, 257)], {"dim0": 0, "dim1": 1}), ([(20, 30, 40)], {"dim0": 0, "dim1": 2}))),
    OpSpec("permute", lambda x, dims: x.permute(*dims), lambda x, dims: np.transpose(x, dims),
           _t(lambda x, dims: x.permute(dims)), 1, dtypes=FI, case=permute_case,
           large=(([(20, 30, 40)], {"dims": (2, 0, 1)}),)),
    OpSpec("tg.permute", lambda x, dims: tg.permute(x, dims), lambda x, dims: np.transpose(x, dims),
           _t(lambda x, dims: torch.permute(x, dims)), 1, dtypes=F, case=permute_case),
    OpSpec("T", lambda x: x.T, lambda x: x.T, _t(lambda x: x.permute(tuple(reversed(range(x.ndim)))))
           , 1, dtypes=FI, case=unary_case),
    OpSpec("unsqueeze", lambda x, dim: x.unsqueeze(dim), lambda x, dim: np.expand_dims(x, dim),
           _t(lambda x, dim: x.unsqueeze(dim)), 1, dtypes=FIB, case=unsqueeze_case),
    OpSpec("squeeze", lambda x, dim: x.squeeze(dim), _np_squeeze,
           _t(lambda x, dim: x.squeeze() if dim is None else x.squeeze(dim)), 1, dtypes=FI, case=squeeze_case),
    OpSpec("expand", lambda x, shape: x.expand(*shape), lambda x, shape: np.broadcast_to(x, shape),
           _t(lambda x, shape: x.expand(shape)), 1, dtypes=FIB, case=expand_case,
           large=(([(1, 5000)], {"shape": (30, 5000)}),)),
    OpSpec("broadcast_to", lambda x, shape: tg.broadcast_to(x, shape), lambda x, shape: np.broadcast_to(x, shape),
           _t(lambda x, shape: torch.broadcast_to(x, shape)), 1, dtypes=F, case=expand_case),
    # -- indexing --
    OpSpec("index_basic", lambda x, key: x[key], lambda x, key: x[key], _t(lambda x, key: x[key]), 1, dtypes=FIB,
           case=basic_index_case,
           large=(([(300, 257)], {"key": (slice(1, None, 3), slice(None, -5, 2))}),)),
    OpSpec("index_int_tensor", lambda x, key: x[key], lambda x, key: x[key], _t(lambda x, key: x[key]), 1, dtypes=FI,
           case=int_tensor_index_case,
           large=(([(1000, 16)], {"key": _large_index(1000, 5000)}), ([(300, 257)], {"key": (slice(None), _large_index(257, (4, 60)))}))),
    OpSpec("index_bool_mask", lambda x, key: x[key], lambda x, key: x[key], _t(lambda x, key: x[key]), 1, dtypes=FI,
           case=bool_mask_index_case,
           large=(([(300, 257)], {"key": Arr(_LARGE.random((300, 257)) < 0.5)}),)),
    # -- joining / splitting / gathering --
    OpSpec("cat", lambda a, b, c, dim: tg.cat([a, b, c], dim), lambda a, b, c, dim: np.concatenate([a, b, c], dim),
           _t(lambda a, b, c, dim: torch.cat([a, b, c], dim)), 3, dtypes=FIB, case=cat_case,
           large=(([(1000, 300), (1000, 7), (1000, 64)], {"dim": 1}),)),
    OpSpec("stack", lambda a, b, c, dim: tg.stack([a, b, c], dim), lambda a, b, c, dim: np.stack([a, b, c], dim),
           _t(lambda a, b, c, dim: torch.stack([a, b, c], dim)), 3, dtypes=FI, case=stack_case,
           large=(([(300, 257)] * 3, {"dim": 1}),)),
    OpSpec("split", lambda x, size, dim: x.split(size, dim), _np_split,
           _t(lambda x, size, dim: x.split(size, dim)), 1, dtypes=FI, case=split_case,
           large=(([(1000, 300)], {"size": 37, "dim": 1}),)),
    OpSpec("tg.split", lambda x, size, dim: tg.split(x, size, dim), _np_split,
           _t(lambda x, size, dim: torch.split(x, size, dim)), 1, dtypes=F, case=split_case),
    OpSpec("chunk", lambda x, chunks, dim: x.chunk(chunks, dim), _np_chunk,
           _t(lambda x, chunks, dim: x.chunk(chunks, dim)), 1, dtypes=FI, case=chunk_case),
    OpSpec("gather", lambda x, dim, index: x.gather(dim, index), _np_gather,
           _t(lambda x, dim, index: x.gather(dim, index)), 1, dtypes=FIB, case=gather_case,
           large=(([(1000, 64)], {"dim": 1, "index": _large_index(64, (1000, 16))}),)),
    OpSpec("index_select", lambda x, dim, index: tg.index_select(x, dim, index),
           lambda x, dim, index: np.take(x, index, axis=dim),
           _t(lambda x, dim, index: torch.index_select(x, dim, index)), 1, dtypes=FI, case=index_select_case,
           large=(([(5000, 8)], {"dim": 0, "index": _large_index(5000, 3000)}),)),
    # -- pointwise losses --
    OpSpec("mse_loss", lambda x, t, reduction: TGF.mse_loss(x, t, reduction=reduction),
           lambda x, t, reduction: _np_reduction((x - t) ** 2, reduction),
           _t(lambda x, t, reduction: TF.mse_loss(x, t, reduction=reduction)), 2, dtypes=F, case=loss_case,
           large=LARGE_LOSS),
    OpSpec("binary_cross_entropy", lambda p, t, reduction: TGF.binary_cross_entropy(p, t, reduction=reduction),
           lambda p, t, reduction: _np_reduction(-(t * np.log(p) + (1 - t) * np.log(1 - p)), reduction),
           _t(lambda p, t, reduction: TF.binary_cross_entropy(p, t, reduction=reduction)), 2, domain="unit", dtypes=F,
           case=loss_case,
           large=LARGE_LOSS),
    OpSpec("binary_cross_entropy_with_logits",
           lambda x, t, reduction: TGF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
           lambda x, t, reduction: _np_reduction((1 - t) * x + np.logaddexp(0, -x), reduction),
           _t(lambda x, t, reduction: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction)), 2,
           domain=("real", "unit"), dtypes=F, case=loss_case,
           large=LARGE_LOSS),
    # -- softmax family --
    OpSpec("softmax", lambda x, dim: tg.softmax(x, dim), _np_softmax, _t(lambda x, dim: torch.softmax(x, dim)), 1,
           dtypes=F, case=dim_case(),
           reference=lambda x, dim: REF.softmax(x, dim),
           large=large_rows() + (([(64, 1000)], {"dim": 0}),)),
    OpSpec("log_softmax", lambda x, dim: x.log_softmax(dim), _np_log_softmax,
           _t(lambda x, dim: torch.log_softmax(x, dim)), 1, dtypes=F, case=dim_case(),
           reference=lambda x, dim: REF.log_softmax(x, dim),
           large=large_rows() + (([(64, 1000)], {"dim": 0}),)),
    # -- nn functions: normalisation, losses, lookups, attention, recurrent cells --
    OpSpec("layer_norm", lambda x, normalized_shape: TGF.layer_norm(x, normalized_shape),
           lambda x, normalized_shape: _np_layer_norm(x, normalized_shape=normalized_shape),
           _t(lambda x, normalized_shape: TF.layer_norm(x, normalized_shape)), 1, dtypes=F, case=layer_norm_case,
           atol32=1e-4,
           reference=lambda x, normalized_shape: REF.layer_norm(x, normalized_shape),
           large=large_rows(lambda cols: {"normalized_shape": (cols,)})),
    OpSpec("layer_norm_affine", lambda x, w, b: TGF.layer_norm(x, w.shape, w, b), _np_layer_norm,
           _t(lambda x, w, b: TF.layer_norm(x, w.shape, w, b)), 3, dtypes=F, case=layer_norm_affine_case, atol32=1e-4,
           reference=lambda x, w, b: REF.layer_norm(x, w.shape, w, b),
           large=large_rows(lambda cols: {}, lambda rows, cols: [(rows, cols), (cols,), (cols,)])),
    OpSpec("cross_entropy", lambda x, target, ignore_index, reduction: TGF.cross_entropy(x, target, ignore_index,
                                                                                         reduction),
           _np_cross_entropy,
           _t(lambda x, target, ignore_index, reduction: TF.cross_entropy(x, target, ignore_index=ignore_index,
                                                                          reduction=reduction)), 1,
           dtypes=F, case=cross_entropy_case,
           reference=lambda x, target, ignore_index, reduction: REF.cross_entropy(x, target, ignore_index, reduction),
           large=_large_cross_entropy()),
    OpSpec("cross_entropy_probs", lambda x, t, reduction: TGF.cross_entropy(x, t, reduction=reduction),
           _np_cross_entropy_probs, _t(lambda x, t, reduction: TF.cross_entropy(x, t, reduction=reduction)), 2,
           domain=("real", "unit"), dtypes=F, case=cross_entropy_probs_case,
           large=large_rows(lambda cols: {"reduction": "mean"}, lambda rows, cols: [(rows, cols)] * 2)),
    OpSpec("embedding", lambda w, indices, padding_idx: TGF.embedding(indices, w, padding_idx),
           lambda w, indices, padding_idx: w[indices],
           _t(lambda w, indices, padding_idx: TF.embedding(indices, w, padding_idx)), 1, dtypes=F, case=embedding_case,
           large=(([(5000, 64)], {"indices": _large_index(5000, (32, 128)), "padding_idx": None}),)),
    OpSpec("embedding_padding", lambda w, indices, padding_idx: TGF.embedding(indices, w, padding_idx),
           lambda w, indices, padding_idx: w[indices],
           _t(lambda w, indices, padding_idx: TF.embedding(indices, w, padding_idx)), 1, dtypes=F, gradcheck=False,
           case=lambda m: embedding_case(m, padding=True),
           large=(([(5000, 64)], {"indices": _large_index(5000, (32, 128)), "padding_idx": 7}),)),
    # the mask of a fixed seed, against Philox written in NumPy (PyTorch's generator differs: no torch column)
    OpSpec("dropout", _tg_dropout, _np_dropout, None, 1, dtypes=F, case=dropout_case,
           large=(([(100003,)], {"p": 0.3}),)),
    OpSpec("scaled_dot_product_attention", TGF.scaled_dot_product_attention, _np_attention,
           _t(lambda q, k, v, **kw: TF.scaled_dot_product_attention(q, k, v, **kw)), 3, dtypes=F, case=attention_case, atol32=1e-4,
           torch_twice=_t(_torch_attention_math), reference=REF.scaled_dot_product_attention,
           large=LARGE_ATTENTION),
    OpSpec("scaled_dot_product_attention_mask", TGF.scaled_dot_product_attention, _np_attention,
           _t(lambda q, k, v, **kw: TF.scaled_dot_product_attention(q, k, v, **kw)), 3, dtypes=F,
           case=lambda m: attention_case(m, masked="bool"), atol32=1e-4,
           torch_twice=_t(_torch_attention_math), reference=REF.scaled_dot_product_attention,
           large=(([(2, 100, 64), (2, 77, 64), (2, 77, 64)], {"attn_mask": _large_mask((100, 77))}),)),
    # an additive mask has the scores' dtype (PyTorch's rule)
    OpSpec("scaled_dot_product_attention_float_mask",
           lambda q, k, v, attn_mask, **kw: TGF.scaled_dot_product_attention(q, k, v, attn_mask.to(q.dtype), **kw),
           _np_attention,
           _t(lambda q, k, v, attn_mask, **kw: TF.scaled_dot_product_attention(q, k, v, attn_mask.to(q.dtype), **kw)),
           3, dtypes=F, case=lambda m: attention_case(m, masked="float"), atol32=1e-4,
           torch_twice=_t(_torch_attention_math), reference=lambda q, k, v, attn_mask, **kw: REF.scaled_dot_product_attention(q, k, v, attn_mask.to(q.dtype), **kw),
           large=(([(2, 100, 64), (2, 77, 64), (2, 77, 64)], {"attn_mask": Arr(_LARGE.integers(-8, 9, (100, 77)) / 4.0)}),)),
    OpSpec("lstm_cell", lambda gates, c: tuple(tg._C._lstm_cell(gates, c)), _np_lstm_cell, _t(_torch_lstm_cell), 2,
           dtypes=F, case=lstm_cell_case,
           reference=lambda gates, c: tuple(REF.lstm_cell(gates, c)),
           large=(([(64, 512), (64, 128)], {}),)),
    OpSpec("index_add", lambda base, src, dim, index: base.index_add(dim, index, src), _np_index_add,
           _t(lambda base, src, dim, index: base.index_add(dim, index, src)), 2, dtypes=F, case=index_add_case,
           large=(([(1000, 32), (5000, 32)], {"dim": 0, "index": _large_index(1000, 5000)}),),
           bf16_tol=(1e-2, 1e-2)),  # PyTorch rounds after each add of a repeated index
    OpSpec("scatter_add", lambda base, src, dim, index: base.scatter_add(dim, index, src), _np_scatter_add,
           _t(lambda base, src, dim, index: base.scatter_add(dim, index, src)), 2, dtypes=F, case=scatter_add_case,
           large=(([(300, 200), (600, 200)], {"dim": 0, "index": _large_index(300, (600, 200))}),)),
]

OPS_BY_NAME = {op.name: op for op in OPS}
assert len(OPS_BY_NAME) == len(OPS), "op names must be unique"


def cases(differentiable_only=False):
    """(op, dtype) pairs for pytest.mark.parametrize."""
    out = []
    for op in OPS:
        if differentiable_only and not op.diff:
            continue
        for dt in op.dtypes:
            out.append((op, dt))
    return out
