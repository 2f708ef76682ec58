"""A framework's peak memory over the masked-LM training step, measured in a process of its own.

Peak RSS in one process would mix the frameworks (and everything the suite allocated before), so
each runs in a child: it imports only its framework and NumPy, builds the model and batch of
masked_lm.py, runs a few steps, and reports its resident set after the imports and its high-water
mark (VmHWM) at the end. The child is this file, run by runpy without the tapegrad.bench package
(whose import would pull in tapegrad and PyTorch both), so only the standard library is imported
at the top here.
"""
import importlib.util
import json
import os
import subprocess
import sys

# sys.argv of `python -c`: ["-c", this file, framework, ...]; run this file as __main__ there
_BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def peak_rss(framework, quick, threads, steps=3, timeout=600):
    """{"peak_MB": ..., "after_import_MB": ...} of `framework` ("tapegrad" or "torch")."""
    here = os.path.abspath(__file__)
    # the child imports the tapegrad this process runs, wherever that was found
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-c", _BOOT, here, framework, str(int(quick)), str(threads), str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peak-RSS child for {framework} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _status_mb(field):
    """A field of /proc/self/status in MB (Linux); the peak falls back to getrusage elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if field == "VmHWM":
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
    return None


def _child(framework, quick, threads, steps):
    lib = importlib.import_module("tapegrad" if framework == "tapegrad" else "torch")
    lib.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("_bench_masked_lm", os.path.join(os.path.dirname(__file__), "masked_lm.py"))
    mlm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mlm)
    after_import = _status_mb("VmRSS")
    shape = mlm.QUICK if quick else mlm.FULL
    _, step, _ = mlm.build(lib, shape, mlm.masked_batch(shape))
    for _ in range(steps):
        step().item()
    print(json.dumps({"peak_MB": round(_status_mb("VmHWM"), 1),
                      "after_import_MB": None if after_import is None else round(after_import, 1)}))


if __name__ == "__main__":
    _child(sys.argv[1], bool(int(sys.argv[2])), int(sys.argv[3]), int(sys.argv[4]))
