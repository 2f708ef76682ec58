"""Collectives over MPI for data-parallel training: the processes of one `mpiexec` run each hold
the model, take their share of every batch, and average their gradients.

    mpiexec -n 2 python -m mpi4py train.py        # pip install "tapegrad[distributed]"

    import tapegrad.distributed as dist
    dist.init()
    dist.all_reduce(t, op="mean")                   # in place, on every rank
    model = tg.nn.parallel.DistributedDataParallel(model)

The transport is MPI through mpi4py (the `mpich` wheel brings the runtime). A contiguous CPU
tensor is handed to MPI as its own memory (NumPy's buffer protocol over the storage), so it is
reduced in place without a copy. bfloat16 has no MPI type and NumPy no bfloat16: it travels as
float32 (exact) and is rounded back after a sum. `python -m mpi4py` aborts every rank when one
raises, so a failure ends the run instead of hanging it.
"""
import numpy as np

from . import _C
from .autograd import no_grad

__all__ = ["init", "is_initialized", "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast",
           "all_gather", "Work"]

_comm = None
_MPI_OPS = {"sum": "SUM", "mean": "SUM", "max": "MAX", "min": "MIN"}


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("tapegrad.distributed needs mpi4py and an MPI runtime: pip install 'tapegrad[distributed]' "
                          "(mpi4py and mpich), then run under `mpiexec -n N python -m mpi4py script.py`") from e
    return MPI


def init(comm=None):
    """Joins the process group: MPI's COMM_WORLD, or `comm`. Calling it again is harmless."""
    global _comm
    _comm = comm if comm is not None else _mpi().COMM_WORLD
    return _comm


def is_initialized():
    return _comm is not None


def _group(op):
    if _comm is None:
        raise RuntimeError(f"distributed.{op}: the process group is not initialised; call tapegrad.distributed.init() first")
    return _comm


def get_rank():
    return _group("get_rank").Get_rank()


def get_world_size():
    return _group("get_world_size").Get_size()


def barrier():
    _group("barrier").Barrier()


def _staged(t, op):
    """(the tensor MPI works on, its NumPy view): `t` itself when it is a contiguous CPU tensor of
    a dtype MPI has, else a contiguous copy (float32 for bfloat16 and float16) written back later."""
    if not isinstance(t, _C.Tensor):
        raise TypeError(f"distributed.{op}: expected a tapegrad tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise RuntimeError(f"distributed.{op}: only CPU tensors travel over MPI here, got one on {t.device} "
                           "(docs/distributed.md: the CUDA path)")
    with no_grad():
        staged = t.float() if t.dtype in (_C.dtype.bfloat16, _C.dtype.float16) else t.contiguous()
    array = np.asarray(staged)
    return staged, array.view(np.uint8) if array.dtype == np.bool_ else array


def _write_back(t, staged):
    if staged is not t:
        with no_grad():
            t.copy_(staged)


class Work:
    """A started non-blocking collective; wait() completes it (the result lands in place then)."""

    def __init__(self, request, finish):
        self._request, self._finish = request, finish

    def wait(self):
        if self._request is not None:
            self._request.Wait()
            self._request = None
            self._finish()

    def test(self):
        """Lets MPI progress the collective (without blocking); True once it is complete."""
        if self._request is not None and self._request.Test():
            self._request = None
            self._finish()
        return self._request is None

    def is_completed(self):
        return self._request is None


def all_reduce(t, op="sum", async_op=False):
    """Every rank's `t` becomes the elementwise sum / mean / max / min over the ranks, in place.
    With async_op=True, returns a Work at once (the reduction goes on meanwhile); wait() on it."""
    comm = _group("all_reduce")
    if not isinstance(t, _C.Tensor):
        raise TypeError(f"distributed.all_reduce: expected a tapegrad tensor, got {type(t).__name__}")
    if op not in _MPI_OPS:
        raise ValueError(f"distributed.all_reduce: op must be one of {sorted(_MPI_OPS)}, got {op!r}")
    if op == "mean" and not t.dtype.is_floating_point:
        raise TypeError(f"distributed.all_reduce: op='mean' needs a floating tensor, got {t.dtype}")
    if t.dtype == _C.dtype.bool and op == "sum":
        raise TypeError("distributed.all_reduce: a bool tensor reduces with op='max' (any) or 'min' (all)")
    staged, buffer = _staged(t, "all_reduce")
    MPI = _mpi()
    size = comm.Get_size()

    def finish():
        if op == "mean":
            np.divide(buffer, size, out=buffer)
        _write_back(t, staged)

    if async_op:
        return Work(comm.Iallreduce(MPI.IN_PLACE, buffer, op=getattr(MPI, _MPI_OPS[op])), finish)
    comm.Allreduce(MPI.IN_PLACE, buffer, op=getattr(MPI, _MPI_OPS[op]))
    finish()
    return t


def broadcast(t, src=0):
    """Every rank's `t` becomes rank `src`'s, in place."""
    staged, buffer = _staged(t, "broadcast")
    _group("broadcast").Bcast(buffer, root=src)
    _write_back(t, staged)
    return t


def all_gather(t):
    """[rank 0's t, rank 1's t, ...] on every rank; every rank's `t` has the same shape and dtype."""
    comm = _group("all_gather")
    staged, buffer = _staged(t, "all_gather")
    gathered = np.empty((comm.Get_size(),) + buffer.shape, dtype=buffer.dtype)
    comm.Allgather(buffer, gathered)
    if t.dtype == _C.dtype.bool:
        gathered = gathered.view(np.bool_)
    out = _C.from_numpy(gathered).to(t.dtype)
    return [out[i] for i in range(comm.Get_size())]
