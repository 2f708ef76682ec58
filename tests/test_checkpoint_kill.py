"""Crash-safe checkpoints: a process killed with SIGKILL at a random moment of tg.save leaves the
old checkpoint or the new one at the path, never a torn file. A child process saves in a loop
(alternating two states, several MB each, so a kill lands inside a write more often than not);
the parent kills it after a random delay and loads what is there.

More kills than the suite's:   TAPEGRAD_KILLS=500 python -m pytest tests/test_checkpoint_kill.py -s
"""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tapegrad as tg

KILLS = int(os.environ.get("TAPEGRAD_KILLS", "12"))

CHILD = textwrap.dedent("""
    import sys
    import tapegrad as tg
    path = sys.argv[1]
    states = [{"w": tg.full((512, 1024), float(v)), "step": tg.tensor(v)} for v in (1, 2)]
    print("ready", flush=True)
    i = 0
    while True:
        tg.save(states[i % 2], path)
        i += 1
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_a_save_killed_at_random_points_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "model.safetensors"
    tg.save({"w": tg.full((512, 1024), 0.0), "step": tg.tensor(0)}, path)
    rng = random.Random(0)
    seen, torn = set(), []
    for kill in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            # A save of 2 MB takes a few milliseconds: delays up to 40 ms land before, inside and
            # between saves.
            time.sleep(rng.uniform(0.0, 0.04))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        try:
            state = tg.load(path)
        except Exception as e:  # a torn or missing file
            torn.append(f"kill {kill}: {type(e).__name__}: {e}")
            continue
        step = int(state["step"].item())
        w = state["w"].numpy()
        if w.shape != (512, 1024) or not np.all(w == step):
            torn.append(f"kill {kill}: weights do not match step {step}")
        seen.add(step)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    print(f"\n{KILLS} kills, torn files: {len(torn)}, states found: {sorted(seen)}, temporaries left: {leftovers}")
    assert not torn, torn
    assert seen <= {0, 1, 2}
    # A killed save leaves its temporary behind; the next save clears those of dead processes.
    tg.save({"step": tg.tensor(9)}, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
