"""python -m tapegrad.bench: the suite's command line (the package docstring lists examples).

Exit status: 0 when every case ran and agreed with its peers; 1 when any case failed its check
or raised (the table is printed in full either way); 2 for a usage error, including --device
cuda where tapegrad sees no GPU (asking for GPU rows and getting none is a failure to notice,
not an empty success).
"""
import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

import tapegrad as tg

from . import environment
from .cases import all_cases
from .limits import measure_limits
from .peers import has_torch, torch
from .report import print_limits
from .runner import Settings, run_and_report


def _parser():
    ap = argparse.ArgumentParser(prog="python -m tapegrad.bench",
                                 description="tapegrad beside NumPy and PyTorch: each case checked, then timed.")
    ap.add_argument("--list", action="store_true", help="print the cases by group and run nothing")
    ap.add_argument("--only", metavar="REGEX", help="run the cases whose names match (re.search)")
    ap.add_argument("--quick", action="store_true", help="small sizes and short timings (a smoke run)")
    ap.add_argument("--threads", type=int, metavar="N",
                    help="threads for tapegrad, PyTorch and NumPy's BLAS (default: tapegrad's current count)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="the CPU cases or the GPU cases")
    ap.add_argument("--json", metavar="PATH", help="also write the run (versions, limits, rows) as JSON")
    return ap


def _blas_threads_differ(threads):
    return threads is not None and os.environ.get("OPENBLAS_NUM_THREADS") != str(threads)


def _rerun_with_blas_threads(threads, argv):
    """NumPy's BLAS reads its thread count from the environment once, as it loads -- which
    importing tapegrad has already done. So --threads runs the suite again in a fresh interpreter
    with OPENBLAS_NUM_THREADS (and MKL's) set, and returns its exit status."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.call([sys.executable, "-m", "tapegrad.bench", *argv], env=env)


def _print_list(cases, device):
    by_group = defaultdict(list)
    for case in cases:
        by_group[case.group].append(case.name)
    print(f"{len(cases)} {device} cases in {len(by_group)} groups (--only REGEX selects by name):")
    for group, names in by_group.items():
        print(f"{group}:")
        for name in names:
            print(f"  {name}")


def _header(device, settings, record):
    v, t = record["versions"], record["threads"]
    commit = f" (commit {record['commit'][:10]}{', modified' if record['dirty'] else ''})" if record["commit"] else ""
    return [f"tapegrad {v['tapegrad']}{commit}, GEMM {v['tapegrad_gemm_isa']} | numpy {v['numpy']} "
             f"({v['numpy_blas']}) | torch {v['torch'] or 'not installed'} | python {v['python']}",
             f"{record['machine']['cpu']}, {record['machine']['cpus']} CPUs | device {device} | threads: tapegrad "
             f"{t['tapegrad']}, torch {t['torch'] or '-'}, numpy BLAS {t['numpy_blas'] or 'default'}",
             *([f"GPU: {record['machine']['gpu']}"] if device == "cuda" else []),
             f"timing: median of {settings.repeat} runs, each >= {settings.min_time:g} s / {settings.repeat} of calls "
             f"(unless a case sets its own); tg/peer = tapegrad time / peer time, below 1: tapegrad is faster"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.threads is not None and args.threads < 1:
        _parser().error("--threads must be at least 1")
    cases = all_cases(args.device, args.quick)
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name)]
    if args.list:
        _print_list(cases, args.device)
        return 0
    if not cases:
        print(f"tapegrad.bench: no {args.device} case matches --only {args.only!r} (see --list)", file=sys.stderr)
        return 2
    if args.device == "cuda" and not tg.cuda.is_available():
        print(f"tapegrad.bench: --device cuda, but tapegrad sees no GPU (built with CUDA: {tg.cuda.is_built()})",
              file=sys.stderr)
        return 2
    if _blas_threads_differ(args.threads):
        return _rerun_with_blas_threads(args.threads, argv)
    threads = args.threads or tg.get_num_threads()
    tg.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    peers = (["numpy"] if args.device == "cpu" else []) + (["torch"] if has_torch(args.device) else [])
    record = environment.record(args.device)
    settings = Settings.for_run(args.device, args.quick, {}, peers)
    for line in _header(args.device, settings, record):
        print(line)
    settings.limits = measure_limits(args.device, args.quick)
    print_limits(settings.limits)
    return run_and_report(cases, settings, json_path=args.json, record=record)


if __name__ == "__main__":
    sys.exit(main())
