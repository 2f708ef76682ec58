"""tg.viz: the DOT picture of a backward graph names every node, leaf and saved tensor, and its
edges follow the gradients from the output to the leaves."""
import re

import pytest

import tapegrad as tg
from tapegrad._svg_graph import to_svg


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


def test_draw_with_graphviz_or_with_the_builtin_renderer(tmp_path, monkeypatch):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    written = tg.viz.draw((x * x).sum(), tmp_path / "g.svg")
    assert written == tmp_path / "g.svg" and "<svg" in written.read_text()
    monkeypatch.setattr(tg.viz.shutil, "which", lambda name: None)  # no Graphviz: tapegrad's own drawing
    written = tg.viz.draw((x * x).sum(), tmp_path / "h.png")
    assert written == tmp_path / "h.svg"
    text = written.read_text()
    assert text.startswith("<svg") and "MulBackward" in text and text.count("<rect") == 4  # output, sum, mul, leaf
    with pytest.raises(ValueError, match="must end in .svg or .png"):
        tg.viz.draw((x * x).sum(), tmp_path / "g.pdf")


def boxes_of(svg):
    """(x, y, width, height) of every node of a drawing."""
    return [tuple(float(v) for v in m) for m in re.findall(
        r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg)]


def test_the_builtin_drawing_has_no_overlaps_and_edges_run_downwards():
    layer = tg.nn.TransformerEncoderLayer(16, 2, 32, 0.0)
    params = dict(layer.named_parameters())
    out = layer(tg.randn(2, 5, 16)).sum()
    nodes, edges = tg.viz._graph(out, params)
    svg = to_svg(nodes, edges)
    boxes = boxes_of(svg)
    assert len(boxes) == len(nodes) and svg.count("<polyline") == len(edges)
    for i, (x0, y0, w0, h0) in enumerate(boxes):
        for x1, y1, w1, h1 in boxes[i + 1:]:
            assert x0 + w0 <= x1 or x1 + w1 <= x0 or y0 + h0 <= y1 or y1 + h1 <= y0, "two nodes overlap"
    for points in re.findall(r'<polyline points="([^"]+)"', svg):
        ys = [float(p.split(",")[1]) for p in points.split()]
        assert ys == sorted(ys) and ys[0] < ys[-1]  # gradients flow from the output down to the leaves
    for name in params:
        assert f">{name}</text>" in svg


def test_a_tensor_without_history_is_one_node():
    dot = tg.viz.to_dot(tg.ones(2))
    assert "output (2,) float32" in dot and "->" not in dot
