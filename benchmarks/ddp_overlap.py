"""How much of DistributedDataParallel's all-reduce hides behind the backward. Run with

    OMP_NUM_THREADS=1 mpiexec -n 2 python -m mpi4py benchmarks/ddp_overlap.py [--quick]

On each rank: the masked-LM training step of the benchmark suite (per-rank batch B/ranks) timed
alone (no communication), wrapped in DDP, and the all-reduce of its gradients timed alone
(blocking, bucket by bucket). Hidden fraction = 1 - (DDP step - plain step) / all-reduce time.
Rank 0 prints the table (median of the timed steps)."""
import argparse
import statistics
import time

import tapegrad as tg
import tapegrad.distributed as dist
from tapegrad.bench import masked_lm


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        dist.barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bucket-mb", type=float, default=4)
    args = ap.parse_args()
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    base = masked_lm.QUICK if args.quick else masked_lm.FULL
    shape = masked_lm.Shape(batch=base.batch // world, tokens=base.tokens, vocab=base.vocab, dim=base.dim,
                            heads=base.heads, layers=base.layers)
    repeat = 5 if args.quick else 15
    batch = masked_lm.masked_batch(shape, seed=rank)

    _, plain_step, _ = masked_lm.build(tg, shape, batch)
    plain = median_ms(plain_step, repeat)

    model, _, _ = masked_lm.build(tg, shape, batch)
    ddp = tg.nn.parallel.DistributedDataParallel(model, bucket_mb=args.bucket_mb)
    opt = tg.optim.Adam(ddp.parameters(), lr=1e-3)
    ids, positions, targets = (tg.tensor(a) for a in batch)

    def ddp_step():
        loss = tg.nn.functional.cross_entropy(ddp(ids, positions), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()

    wrapped = median_ms(ddp_step, repeat)
    reduce_alone = median_ms(lambda: [dist.all_reduce(b.flat, op="mean") for b in ddp._buckets], repeat)
    grad_mb = sum(b.flat.numel() * b.flat.dtype.itemsize for b in ddp._buckets) / 2 ** 20
    hidden = 1 - (wrapped - plain) / reduce_alone
    if rank == 0:
        print(f"{world} ranks x {tg.get_num_threads()} thread(s), masked-LM {shape.label()} per rank, "
              f"{grad_mb:.1f} MB of gradients in {len(ddp._buckets)} buckets of <= {args.bucket_mb} MB")
        print("| step | ms |\n|---|---|")
        print(f"| plain step (no communication) | {plain:.1f} |\n| DDP step | {wrapped:.1f} |\n"
              f"| all-reduce of the gradients alone | {reduce_alone:.1f} |")
        print(f"all-reduce hidden behind the backward: {hidden:.0%}")


if __name__ == "__main__":
    main()
