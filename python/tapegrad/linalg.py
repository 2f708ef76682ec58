"""tapegrad.linalg: norms, as torch.linalg (the vector norms; of matrices, the Frobenius norm)."""
import math

from . import _C


def vector_norm(x, ord=2, dim=None, keepdim=False):
    """(sum |x|^ord)^(1/ord) over dim (every dim when None); ord = inf / -inf: max / min |x|; 0: the
    number of nonzero elements."""
    return _C.vector_norm(x, float(ord), dim, keepdim)


def norm(x, ord=None, dim=None, keepdim=False):
    """torch.linalg.norm for what tapegrad computes: ord=None (the 2-norm of the elements: the
    vector 2-norm, or a matrix's Frobenius norm), 'fro', and vector ords over one dim or a 1-d x."""
    if ord is None or ord == "fro":
        if ord == "fro" and dim is None and x.dim() < 2:
            raise ValueError(f"linalg.norm: ord='fro' needs a matrix, got shape {tuple(x.shape)}")
        return _C.vector_norm(x, 2.0, dim, keepdim)
    vector = isinstance(dim, int) or (dim is None and x.dim() == 1) or (isinstance(dim, (tuple, list)) and len(dim) == 1)
    if not vector or isinstance(ord, str):
        raise ValueError(f"linalg.norm: ord={ord!r} over a matrix is not supported (None, 'fro' and vector ords are); "
                         f"shape {tuple(x.shape)}, dim {dim}")
    return _C.vector_norm(x, float(ord), dim, keepdim)


inf = math.inf
