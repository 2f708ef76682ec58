"""tg.viz: the DOT picture of a backward graph names every node, leaf and saved tensor, and its
edges follow the gradients from the output to the leaves."""
import re

import tapegrad as tg


def test_to_dot_of_a_small_model():
    model = tg.nn.Linear(3, 2)
    x = tg.ones(4, 3)
    loss = (model(x).tanh() ** 2).mean()
    dot = tg.viz.to_dot(loss, params=dict(model.named_parameters()))
    assert dot.startswith("digraph backward {") and dot.rstrip().endswith("}")
    for name in ("MeanBackward" if "MeanBackward" in dot else "SumBackward", "TanhBackward", "weight\\n(2, 3) float32",
                 "bias\\n(2,) float32", "output () float32"):
        assert name in dot, name
    assert "saved: (4, 2) float32" in dot  # tanh keeps its output
    # every edge joins two declared nodes, and the leaves have no outgoing edges
    declared = set(re.findall(r"^  (n\d+) \[", dot, re.M)) | {"output"}
    edges = re.findall(r"^  (\w+) -> (\w+);", dot, re.M)
    assert edges and all(a in declared and b in declared for a, b in edges)
    leaves = set(re.findall(r"^  (n\d+) \[shape=ellipse", dot, re.M))
    assert len(leaves) == 2 and not any(a in leaves for a, _ in edges)


def test_draw_writes_a_picture_or_the_dot_source(tmp_path):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    written = tg.viz.draw((x * x).sum(), tmp_path / "g.svg")
    assert written.exists()
    text = written.read_text()
    assert ("<svg" in text) if written.suffix == ".svg" else text.startswith("digraph")


def test_a_tensor_without_history_is_one_node():
    dot = tg.viz.to_dot(tg.ones(2))
    assert "output (2,) float32" in dot and "->" not in dot
