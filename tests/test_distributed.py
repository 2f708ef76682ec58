"""tapegrad.distributed and DistributedDataParallel, run with two MPI processes (mpiexec from the
mpich wheel, mpi4py): collectives on every dtype, DDP equal to one process on the concatenated
batches, and a failing rank ending the run instead of hanging it. Skipped where mpi4py or
mpiexec is missing (pip install '.[distributed]'). The single-process errors are checked here."""
import os
import shutil
import subprocess
import sys

import pytest

import tapegrad as tg
import tapegrad.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import mpi4py  # noqa: F401
    MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
except ImportError:
    MPIEXEC = None
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpi4py / mpiexec not installed (pip install '.[distributed]')")


def mpirun(script, ranks=2, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", os.path.join(HERE, "distributed", script)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_mpi
def test_collectives_on_two_ranks():
    run = mpirun("check_collectives.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("collectives ok") == 2


@needs_mpi
def test_ddp_on_two_ranks_equals_one_process_on_the_whole_batch():
    run = mpirun("check_ddp.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ddp ok") == 2


@needs_mpi
def test_a_failing_rank_ends_the_run_with_an_error():
    run = mpirun("check_failure.py", timeout=120)  # the timeout is the backstop: a hang fails the test
    assert run.returncode != 0
    assert "rank 1 fails on purpose" in run.stderr and "unreachable" not in run.stdout


def test_without_init_the_calls_say_so():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="not initialised.*init\\(\\)"):
        dist.all_reduce(tg.ones(2))
    with pytest.raises(RuntimeError, match="DistributedDataParallel.*not initialised"):
        tg.nn.parallel.DistributedDataParallel(tg.nn.Linear(2, 2))
