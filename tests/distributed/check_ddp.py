"""Run under `mpiexec -n N python -m mpi4py`: DistributedDataParallel on N ranks, each taking its
share of every batch, ends with the same parameters (to 1e-6 in float64; in practice 1e-13) as one
process training on the concatenated batches. Checked with several buckets, with gradient
accumulation under no_sync(), and with a parameter the forward does not use. Prints 'ddp ok'."""
import numpy as np

import tapegrad as tg
import tapegrad.distributed as dist

dist.init()
rank, size = dist.get_rank(), dist.get_world_size()
PER_RANK, STEPS = 8, 20


class Net(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = tg.nn.Linear(5, 16)
        self.out = tg.nn.Linear(16, 3)
        self.unused = tg.nn.Linear(3, 3)  # never called: its bucket must complete anyway

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


def make(seed):
    tg.manual_seed(seed + rank)  # different on every rank: DDP's broadcast must make them equal
    return Net().double()


rng = np.random.default_rng(0)  # the same data on every rank
xs = rng.standard_normal((STEPS, size * PER_RANK, 5))
ys = rng.standard_normal((STEPS, size * PER_RANK, 3))


def train(model, shard):
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(STEPS):
        x, y = xs[step], ys[step]
        if shard:
            x, y = x[rank * PER_RANK:(rank + 1) * PER_RANK], y[rank * PER_RANK:(rank + 1) * PER_RANK]
        opt.zero_grad()
        tg.nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y)).backward()
        opt.step()
    return model


reference = make(0)
with tg.no_grad():  # the reference starts from rank 0's weights, as DDP does
    for p in reference.parameters():
        dist.broadcast(p, src=0)
reference_params = [p.detach().numpy().copy() for p in train(reference, shard=False).parameters()]

for bucket_mb, accumulate in ((25, 1), (0.0002, 1), (0.0002, 2)):
    model = tg.nn.parallel.DistributedDataParallel(make(0), bucket_mb=bucket_mb)
    assert len(model._buckets) >= (1 if bucket_mb == 25 else 3), len(model._buckets)
    # no_sync must wrap the forward too, as in PyTorch: the reduction is armed by the forward
    if accumulate > 1:
        opt = tg.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(STEPS):
            x, y = xs[step][rank * PER_RANK:(rank + 1) * PER_RANK], ys[step][rank * PER_RANK:(rank + 1) * PER_RANK]
            opt.zero_grad()
            halves = list(zip(np.array_split(x, 2), np.array_split(y, 2)))
            with model.no_sync():
                tg.nn.functional.mse_loss(model(tg.tensor(halves[0][0])), tg.tensor(halves[0][1])).mul(0.5).backward()
            tg.nn.functional.mse_loss(model(tg.tensor(halves[1][0])), tg.tensor(halves[1][1])).mul(0.5).backward()
            opt.step()
    else:
        train(model, shard=True)
    for name_p, ref in zip(model.module.named_parameters(), reference_params):
        name, p = name_p
        if name.startswith("unused"):
            assert p.grad is None or np.all(p.grad.numpy() == 0), name
            continue
        np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-6, atol=1e-9,
                                   err_msg=f"{name}, bucket_mb={bucket_mb}, accumulate={accumulate}")

try:
    tg.nn.parallel.DistributedDataParallel(Net(), bucket_mb=25)(tg.ones(2, 5).float()).sum().backward()
except Exception as e:  # noqa: BLE001
    raise AssertionError(f"float32 DDP step failed: {e}")
dist.barrier()
print(f"ddp ok on rank {rank} of {size}", flush=True)
