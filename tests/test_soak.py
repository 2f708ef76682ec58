"""The soak (tests/soak.py) at a reduced count: resident memory stays within 5% over masked-LM
training steps and small-graph forward + backward iterations. The full run is the script."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import soak  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc (Linux)"),
    # ASan / TSan keep freed memory in quarantine for a while, so RSS there measures the sanitizer
    pytest.mark.skipif("san.so" in os.environ.get("LD_PRELOAD", ""), reason="RSS is not a leak measure under a sanitizer"),
]


def test_masked_lm_training_memory_is_flat():
    start, end, highest = soak.masked_lm_soak(400)
    print(f"\nmasked-LM: {start:.1f} MB -> {end:.1f} MB (highest {highest:.1f})")
    assert end <= start * (1 + soak.LIMIT)


def test_small_graph_memory_is_flat():
    start, end, highest = soak.small_graph_soak(5000)
    print(f"\nsmall graph: {start:.1f} MB -> {end:.1f} MB (highest {highest:.1f})")
    assert end <= start * (1 + soak.LIMIT)
