"""Run under `mpiexec -n N python -m mpi4py`: the collectives of tapegrad.distributed on every
dtype, in place and without copies where the tensor allows. Prints 'collectives ok' per rank."""
import numpy as np

import tapegrad as tg
import tapegrad.distributed as dist

dist.init()
rank, size = dist.get_rank(), dist.get_world_size()
DTYPES = [tg.float32, tg.float64, tg.bfloat16, tg.float16, tg.int64, tg.int32, tg.int16, tg.int8, tg.uint8, tg.bool]


def local(r, dtype):
    """Rank r's tensor: small values every dtype holds exactly."""
    values = (np.arange(6).reshape(2, 3) + r) % 5
    return tg.tensor(values.astype(bool) if dtype == tg.bool else values, dtype=tg.float64).to(dtype)


def every_rank(dtype):
    return [local(r, dtype).double().numpy() for r in range(size)]


for dtype in DTYPES:
    expected = every_rank(dtype)
    if dtype != tg.bool:
        t = local(rank, dtype)
        dist.all_reduce(t, op="sum")
        np.testing.assert_array_equal(t.double().numpy(), np.sum(expected, 0), err_msg=f"sum {dtype}")
    for op, reduce in (("max", np.max), ("min", np.min)):
        t = local(rank, dtype)
        dist.all_reduce(t, op=op)
        np.testing.assert_array_equal(t.double().numpy(), reduce(expected, 0), err_msg=f"{op} {dtype}")
    if dtype.is_floating_point:
        t = local(rank, dtype)
        dist.all_reduce(t, op="mean")
        np.testing.assert_allclose(t.double().numpy(), np.mean(expected, 0), rtol=1e-2, err_msg=f"mean {dtype}")
    t = local(rank, dtype)
    dist.broadcast(t, src=size - 1)
    np.testing.assert_array_equal(t.double().numpy(), expected[-1], err_msg=f"broadcast {dtype}")
    gathered = dist.all_gather(local(rank, dtype))
    assert len(gathered) == size and all(g.dtype == dtype for g in gathered)
    for r in range(size):
        np.testing.assert_array_equal(gathered[r].double().numpy(), expected[r], err_msg=f"all_gather {dtype}")

# Zero-copy: a contiguous float32 tensor is reduced in its own memory.
t = tg.full((1000,), float(rank + 1))
view_before = np.asarray(t)
dist.all_reduce(t)
assert view_before[0] == sum(range(1, size + 1)) and np.shares_memory(view_before, np.asarray(t))
# A strided view is reduced through a copy and written back into the view only.
base = tg.zeros(4, 4)
column = base[:, 1]
column.copy_(tg.full((4,), float(rank)))
dist.all_reduce(column)
assert np.all(base.numpy()[:, 1] == sum(range(size))) and np.all(base.numpy()[:, 0] == 0)
# Non-blocking: the result lands at wait().
t = tg.full((8,), 1.0)
work = dist.all_reduce(t, async_op=True)
work.wait()
assert work.is_completed() and np.all(t.numpy() == size)
# Bad input.
for bad, error in ((lambda: dist.all_reduce(tg.ones(2), op="prod"), ValueError),
                   (lambda: dist.all_reduce(tg.ones(2, dtype=tg.int64), op="mean"), TypeError),
                   (lambda: dist.all_reduce([1.0]), TypeError)):
    try:
        bad()
    except error:
        pass
    else:
        raise AssertionError(f"expected {error.__name__}")
dist.barrier()
print(f"collectives ok on rank {rank} of {size}", flush=True)
