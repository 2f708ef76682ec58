"""The benchmark suite (python -m tapegrad.bench): a quick run of a few fast cases as a user runs
it, the listing, and the check that catches a wrong result before anything is timed."""
import json
import os
import subprocess
import sys

import numpy as np

import tapegrad
from tapegrad.bench import Case, Peer
from tapegrad.bench.__main__ import main
from tapegrad.bench.runner import Settings, run_and_report, run_case

FAST_CASES = "^(per-op|add 1e3|sgemm 64\\^3|softmax rows)"


def _env():
    """The subprocess imports the tapegrad this test imports (conftest may have put the source
    tree on sys.path rather than PYTHONPATH)."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(tapegrad.__file__)))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not any(os.path.abspath(p) == package_parent for p in paths):
        env["PYTHONPATH"] = os.pathsep.join(paths + [package_parent])
    return env


def _bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tapegrad.bench", *args], env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    proc = _bench("--quick", "--only", FAST_CASES, "--json", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(path.read_text())
    assert record["versions"]["tapegrad"] == tapegrad.__version__
    assert record["versions"]["numpy"] == np.__version__
    assert record["versions"]["python"]
    assert "commit" in record and "torch" in record["versions"]
    assert record["threads"]["tapegrad"] >= 1
    assert record["limits"]["bandwidth"] > 0 and record["limits"]["flops_f32"] > 0
    assert record["limits"]["flops_f64"] == record["limits"]["flops_f32"] / 2
    names = [r["case"] for r in record["rows"]]
    assert len(names) == 4 and "per-op a+b (1 element)" in names and "sgemm 64^3" in names
    for row in record["rows"]:
        assert row["check"] == "ok", row
        assert row["repeat"] >= 1 and row["min_time"] > 0
        assert set(row["peers"]) >= {"tapegrad", "numpy"}
        for name, t in row["peers"].items():
            assert t["seconds"] > 0 and t["number"] >= 1 and len(t["runs"]) == t["repeat"]
            if name != "tapegrad":
                assert row["ratios"][name] > 0
        if row["unit"]:
            assert row["rate"] > 0 and row["fraction_of_limit"] > 0
    assert "sgemm 64^3" in proc.stdout and "tg/numpy" in proc.stdout


def test_list_shows_every_group(capsys):
    assert main(["--list"]) == 0  # in this process: the listing is the same, without a second start-up
    out = capsys.readouterr().out
    for group in ("rows:", "reduce:", "elementwise:", "gemm:", "attention:", "training:", "overhead:"):
        assert group in out
    assert "masked-LM step B32xT64" in out and "sgemm 2048^3" in out
    assert main(["--list", "--device", "cuda"]) == 0  # listing the GPU cases needs no GPU
    assert "matmul 4096^3 bfloat16" in capsys.readouterr().out


def _fake_case(tapegrad_result, name="fake"):
    return Case(name, "test", lambda: {"tapegrad": lambda: tapegrad_result, "numpy": lambda: np.arange(4.0)},
                work=32, unit="B", limit="bandwidth", rtol=1e-6, atol=0)


def test_wrong_result_is_a_mismatch_and_fails_the_run(capsys):
    settings = Settings(min_time=0.001, repeat=3, limits={"bandwidth": 1e9}, peers=["numpy"])
    wrong = np.arange(4.0)
    wrong[2] += 0.5
    row = run_case(_fake_case(wrong), settings)
    assert row["check"] == "mismatch"
    (problem,) = row["mismatches"][0]["problems"]
    assert row["mismatches"][0]["peer"] == "numpy" and "at (2,)" in problem and "2.5" in problem
    assert row["peers"]["tapegrad"]["seconds"] > 0  # still timed: the table stays whole

    status = run_and_report([_fake_case(wrong, "bad case"), _fake_case(np.arange(4.0), "good case")], settings)
    out = capsys.readouterr().out
    assert status == 1
    assert "MISMATCH bad case: numpy vs tapegrad" in out and "good case" in out
    assert run_and_report([_fake_case(np.arange(4.0))], settings) == 0


def test_raising_peer_is_reported_not_fatal():
    def setup():
        def broken():
            raise RuntimeError("no such kernel")
        return {"tapegrad": lambda: 1.0, "numpy": Peer(broken)}
    row = run_case(Case("raises", "test", setup), Settings(min_time=0.001, repeat=3))
    assert row["check"] == "error" and "no such kernel" in row["errors"]["numpy"]
    assert "tapegrad" in row["peers"]


def test_case_without_peers_is_unchecked_not_failed(capsys):
    settings = Settings(min_time=0.001, repeat=3)
    alone = Case("alone", "test", lambda: {"tapegrad": lambda: 1.0})
    assert run_case(alone, settings)["check"] == "unchecked"
    assert run_and_report([alone], settings) == 0
    assert "unchecked" in capsys.readouterr().out
