"""Every example of the documents (examples/*.py), run as a user runs it -- a subprocess from
the repository root, in a short mode -- with assertions on what it prints and writes.

The subprocesses import whatever tapegrad this test process imports (its PYTHONPATH is passed
on unchanged; the folder holding the imported package is added only if it is missing, e.g. when
conftest.py put the source tree on sys.path).
"""
import math
import os
import re
import subprocess
import sys

import pytest

import tapegrad

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTIMENT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "sentiment")
FLOAT = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


def _env():
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(tapegrad.__file__)))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not any(os.path.abspath(p) == package_parent for p in paths):
        env["PYTHONPATH"] = os.pathsep.join(paths + [package_parent])
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_example(name, *args, timeout=90):
    """Run examples/<name> with args; return its stdout (the test fails with the output shown
    if the example exits non-zero or runs past `timeout` seconds)."""
    cmd = [sys.executable, os.path.join("examples", name), *map(str, args)]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{name} ran past {timeout} s; output so far:\n{e.stdout or ''}\n{e.stderr or ''}")
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def numbers(pattern, text):
    """All matches of `pattern` (with FLOAT groups) in text, as floats; at least one required."""
    found = re.findall(pattern.replace("{F}", FLOAT), text)
    assert found, f"no line matching {pattern!r} in the output:\n{text}"
    return [tuple(map(float, m)) if isinstance(m, tuple) else float(m) for m in found]


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_linear_regression(tmp_path):
    out = run_example("linear_regression.py", "--epochs", 120, "--out", tmp_path)
    losses = numbers(r"Epoch \d+: Loss = \[?{F}\]?", out)
    final = numbers(r"final loss {F}; learned y = {F} x \+ {F}", out)[-1]
    assert len(losses) == 2  # epochs 0 and 100
    assert math.isfinite(final[0]) and final[0] < losses[0]
    if has_matplotlib():
        assert (tmp_path / "linear_regression_loss.png").stat().st_size > 1000


def test_sigmoid_neuron(tmp_path):
    out = run_example("sigmoid_neuron.py", "--epochs", 300, "--out", tmp_path)
    # the document's backward == gradient of the summed BCE; tapegrad's MSE gradient == chain rule
    diffs = numbers(r"max diff {F}", out)
    assert len(diffs) == 2 and all(d < 1e-9 for d in diffs), diffs
    doc_b, tg_b = numbers(r"gradient of b1: document {F}, tapegrad \(BCE\) {F}", out)[0]
    assert abs(doc_b - tg_b) < 1e-6
    loss, accuracy, majority = numbers(r"final loss {F}, accuracy {F} \(majority class {F}\)", out)[0]
    assert math.isfinite(loss) and accuracy > majority
    if has_matplotlib():
        assert (tmp_path / "sigmoid_neuron_loss.png").is_file()


def test_matmul_sgd(tmp_path):
    out = run_example("matmul_sgd.py", "--steps", 200, "--out", tmp_path)
    losses = numbers(r"Epoch (\d+), Loss: \[?{F}\]?", out)
    assert [int(s) for s, _ in losses][:2] == [1, 101] and int(losses[-1][0]) == 200
    first, last = losses[0][1], losses[-1][1]
    assert math.isfinite(last) and last < 0.5 * first, (first, last)
    if has_matplotlib():
        assert (tmp_path / "matmul_sgd_loss.png").is_file()


def test_masked_lm(tmp_path):
    out = run_example("masked_lm.py", "--steps", 30, "--layers", 1, "--dim", 32, "--heads", 4, "--out", tmp_path)
    accuracy, n_masked = numbers(r"held-out masked-token accuracy: {F} over (\d+) masked tokens", out)[0]
    baseline = numbers(r"unigram baseline \(always '[^']*'\):\s+{F}", out)[0]
    assert 0.0 <= accuracy <= 1.0 and 0.0 < baseline < 1.0 and n_masked > 100
    assert "held-out fills" in out
    # 30 steps is too short to promise that the model beats the baseline; the checkpoint is
    # written whenever safetensors is installed
    try:
        import safetensors  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "masked_lm.safetensors").stat().st_size > 10_000


@pytest.mark.skipif(not os.path.isdir(SENTIMENT_DATA), reason=f"no sentiment data at {SENTIMENT_DATA}")
def test_sentiment_lstm(tmp_path):
    out = run_example("sentiment_lstm.py", "--quick", "--out", tmp_path, timeout=240)
    loss, accuracy = numbers(r"Test Loss: {F}, Test Accuracy: {F}", out)[0]
    baseline = numbers(r"majority-class baseline: {F}", out)[0]
    assert math.isfinite(loss)
    assert accuracy >= baseline + 0.15, (accuracy, baseline)
    # the document's new sentence gets a prediction, and the reloaded checkpoint gives the same one
    assert re.search(r"'This is a negative sentence': Prediction: (Positive|Negative)", out)
    assert numbers(r"loaded model: same predictions \(max \|diff\| {F}\)", out)[0] < 1e-6
    assert (tmp_path / "sentiment_lstm.safetensors").is_file()
    # continual learning: every row of the table is there, and each model beats the baseline on
    # the domain it was trained on last
    rows = dict((label.strip(), (float(a), float(b))) for label, a, b in
                re.findall(r"^(majority baseline|trained on \w+|\+ online on .+?|\w+ for \d+ steps, .+?)"
                           r"\s+(\d\.\d+)\s+(\d\.\d+)$", out, flags=re.M))
    assert len(rows) == 5, out
    base_a, base_b = rows["majority baseline"]
    assert rows["trained on amazon"][0] > base_a
    online = next(v for k, v in rows.items() if k.startswith("+ online"))
    assert online[1] > base_b
    if has_matplotlib():
        assert (tmp_path / "sentiment_lstm.png").is_file()


def test_sentiment_lstm_without_data(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cmd = [sys.executable, os.path.join("examples", "sentiment_lstm.py"), "--data", str(empty), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "--data PATH" in proc.stderr and "Traceback" not in proc.stderr


def test_digits_cnn(tmp_path):
    """The convolutional example on real digits: 6 epochs already classify the held-out images
    well above chance (the full 15-epoch run reaches 0.98-0.99)."""
    pytest.importorskip("sklearn", reason="digits_cnn's data come from scikit-learn (pip install tapegrad[examples])")
    out = run_example("digits_cnn.py", "--quick", "--out", tmp_path, timeout=240)
    assert numbers(r"digits: {F} training and {F} test images", out)[0] == (1437.0, 360.0)
    accuracies = numbers(r"epoch \d+: train loss {F}, test accuracy {F}", out)
    assert len(accuracies) == 6 and all(math.isfinite(loss) for loss, _ in accuracies)
    assert accuracies[-1][0] < accuracies[0][0]  # the training loss falls
    assert numbers(r"test accuracy: {F}", out)[-1] >= 0.93
    if has_matplotlib():
        assert (tmp_path / "digits_cnn.png").is_file()
