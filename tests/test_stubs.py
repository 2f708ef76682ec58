"""The type stubs of the C++ core (python/tapegrad/_C/*.pyi, shipped with py.typed) are what
pybind11-stubgen makes of the built module, so an editor completes tg.Tensor's methods with their
parameters and mypy checks the examples against them (CI runs `mypy examples`).

After changing a binding, regenerate them:   python tests/test_stubs.py
"""
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

STUB_DIR = pathlib.Path(__file__).resolve().parents[1] / "python" / "tapegrad" / "_C"


def tidy(name, text):
    """pybind11-stubgen's two misreadings of this module, set right."""
    # It reads every bare `dtype` as numpy.dtype; the core's signatures only mean tapegrad's dtype.
    text = text.replace("numpy.dtype[typing.Any]", "dtype")
    # Submodules name the Tensor class of the parent module without importing it.
    if name != "__init__.pyi" and re.search(r"\bTensor\b", text):
        text = text.replace("import typing\n", "import typing\nfrom tapegrad._C import Tensor\n", 1)
    return text


def generate():
    """{file name: text} of the stubs of the installed tapegrad._C."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "pybind11_stubgen", "tapegrad._C", "-o", out],
                       check=True, capture_output=True, text=True)
        made = pathlib.Path(out) / "tapegrad" / "_C"
        return {p.name: tidy(p.name, p.read_text()) for p in sorted(made.glob("*.pyi"))}


def test_the_stubs_are_those_of_the_built_module():
    pytest.importorskip("pybind11_stubgen", reason="pybind11-stubgen is a test dependency (pip install '.[test]')")
    expected = generate()
    present = {p.name: p.read_text() for p in sorted(STUB_DIR.glob("*.pyi"))}
    assert sorted(present) == sorted(expected), "stub files differ; run python tests/test_stubs.py"
    for name, text in expected.items():
        assert present[name] == text, f"{name} is out of date; run python tests/test_stubs.py"
    assert (STUB_DIR.parent / "py.typed").exists()


def test_the_stubs_give_tensor_methods_their_parameters():
    text = (STUB_DIR / "__init__.pyi").read_text()
    tensor = text[text.index("class Tensor:"):]
    assert "def backward(self, gradient: Tensor | None = None, retain_graph: bool = False" in tensor
    assert re.search(r"def sum\(self, dim: .*keepdim: bool = False\) -> Tensor", tensor)
    assert "def register_hook(self, hook:" in tensor


def test_mypy_checks_calls_against_the_shipped_stubs(tmp_path):
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is a test dependency (pip install '.[test]')")
    good = ("import tapegrad as tg\n"
            "x = tg.randn(2, 3, requires_grad=True)\n"
            "y: tg.Tensor = tg.sigmoid(x).sum(dim=1, keepdim=True)\n"
            "y.backward(tg.ones(2, 1), retain_graph=True)\n")
    bad = good + 'y.backward(retain_graph="yes")\nz: str = tg.exp(x)\n'
    results = {}
    for name, source in (("good", good), ("bad", bad)):
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        out, err, status = mypy_api.run([str(path), "--cache-dir", str(tmp_path / "cache"), "--config-file", "",
                                         "--no-error-summary"])
        results[name] = (status, out + err)
    assert results["good"][0] == 0, results["good"][1]
    status, report = results["bad"]
    assert status == 1
    assert 'Argument "retain_graph" to "backward" of "Tensor" has incompatible type "str"' in report
    assert 'Incompatible types in assignment (expression has type "Tensor", variable has type "str")' in report


if __name__ == "__main__":
    STUB_DIR.mkdir(exist_ok=True)
    for old in STUB_DIR.glob("*.pyi"):
        old.unlink()
    for name, text in generate().items():
        (STUB_DIR / name).write_text(text)
        print("wrote", STUB_DIR / name)
