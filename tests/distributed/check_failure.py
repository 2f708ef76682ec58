"""Run under `mpiexec -n 2 python -m mpi4py`: rank 1 raises while rank 0 waits in a collective.
mpi4py's runner aborts the whole job, so mpiexec exits non-zero instead of hanging."""
import tapegrad as tg
import tapegrad.distributed as dist

dist.init()
if dist.get_rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
dist.all_reduce(tg.ones(4))  # rank 0 would wait here forever without the abort
print("unreachable: the all-reduce completed", flush=True)
