"""Short runs of the fuzzers (tests/fuzz/fuzz_ops.py): random calls of the whole op surface and
tg.load on damaged checkpoints, each case in a worker process. No case may kill the interpreter,
hang, raise SystemError or an exception type outside the API's, or show a bare C++ message.
Long runs:  python tests/fuzz/fuzz_ops.py --minutes 30  (and --target checkpoints)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import fuzz_ops  # noqa: E402

CASES = int(os.environ.get("TAPEGRAD_FUZZ_CASES", "600"))


@pytest.mark.skipif(sys.platform != "linux", reason="the worker caps its memory with RLIMIT_AS (Linux)")
@pytest.mark.parametrize("target, first_seed", [("ops", 1_000_000), ("checkpoints", 2_000_000)])
def test_fuzzed_calls_never_kill_the_interpreter(target, first_seed):
    counts, findings = fuzz_ops.fuzz(range(first_seed, first_seed + CASES), target)
    print(f"\n{target}: {sum(counts.values())} cases: {counts}")
    assert sum(counts.values()) == CASES
    assert not findings, "\n".join(findings)
    # the fuzzer reaches past argument parsing: many calls run to completion
    assert counts.get("returned", 0) > CASES // (5 if target == "ops" else 50)
