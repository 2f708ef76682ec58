"""How much of DistributedDataParallel's all-reduce hides behind the backward. Run with

    OMP_NUM_THREADS=1 mpiexec -n 2 python -m mpi4py benchmarks/ddp_overlap.py [--quick]

On each rank: the masked-LM training step of the benchmark suite (per-rank batch B/ranks) timed
alone (no communication); the same step followed by the buckets' all-reduces (what DDP does,
without overlap); the DDP step (all-reduces started during the backward); and the all-reduces
alone. Hidden = (sequential - DDP) / (sequential - plain): the share of what communication adds
to a step that overlapping saves. Rank 0 prints the table (medians)."""
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

    def sequential_step():  # the same work with no overlap: the whole backward, then the buckets' all-reduces
        with ddp.no_sync():
            loss = tg.nn.functional.cross_entropy(ddp(ids, positions), targets)
            opt.zero_grad()
            loss.backward()
        with tg.no_grad():
            for bucket in ddp._buckets:
                for i, p in enumerate(bucket.params):
                    bucket.slot(i).copy_(p.grad.reshape(-1))
                dist.all_reduce(bucket.flat, op="mean")
                for i, p in enumerate(bucket.params):
                    p.grad.copy_(bucket.slot(i).reshape(tuple(p.shape)))
        opt.step()

    wrapped = median_ms(ddp_step, repeat)
    sequential = median_ms(sequential_step, repeat)
    reduce_alone = median_ms(lambda: [dist.all_reduce(b.flat, op="mean") for b in ddp._buckets], repeat)
    grad_mb = sum(b.flat.numel() * b.flat.dtype.itemsize for b in ddp._buckets) / 2 ** 20
    # What overlap saved, out of what the reductions cost when they follow the backward
    hidden = (sequential - wrapped) / max(sequential - plain, 1e-9)
    if rank == 0:
        print(f"{world} ranks x {tg.get_num_threads()} thread(s), masked-LM {shape.label()} per rank, "
              f"{grad_mb:.1f} MB of gradients in {len(ddp._buckets)} buckets of <= {args.bucket_mb} MB")
        print("| step | ms |\n|---|---|")
        print(f"| plain step (no communication) | {plain:.1f} |\n"
              f"| the same step, then the buckets' all-reduces (no overlap) | {sequential:.1f} |\n"
              f"| DDP step (all-reduces during the backward) | {wrapped:.1f} |\n"
              f"| the all-reduces alone | {reduce_alone:.1f} |")
        print(f"communication hidden behind the backward: {hidden:.0%} "
              f"(of the {sequential - plain:.1f} ms the reductions add when they follow it)")


if __name__ == "__main__":
    main()
