"""Pictures of the backward graph: Graphviz DOT source, and SVG / PNG files.

    dot = tg.viz.to_dot(loss, params=dict(model.named_parameters()))
    tg.viz.draw(loss, "graph.svg", params=...)

One box per backward node (grad_fn): its name, what the forward op produced (shape, dtype) and
what it saved for backward. One ellipse per leaf (an AccumulateGrad node): named from `params`
(matched by identity), else by its shape. Edges point the way gradients flow, from the output to
the leaves.
"""
import shutil
import subprocess
from pathlib import Path

from ._svg_graph import to_svg

__all__ = ["to_dot", "draw"]


def _shape(shape, dtype):
    return f"{tuple(shape)} {str(dtype).split('.')[-1]}"


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _graph(t, params=None):
    """The backward graph of `t`: ({key: (label, kind)}, [(from, to)]), kind 'output', 'box' (a
    backward node) or 'leaf'; keys 'output', 'n0', 'n1', ... in the order the walk meets them."""
    names = {id(p): name for name, p in (params or {}).items()}
    nodes = {"output": ("output " + _shape(t.shape, t.dtype), "output")}
    edges = []
    if t.grad_fn is None:
        return nodes, edges
    # Python wrappers of one C++ node are the same object while one of them lives: keep every
    # wrapper met alive, so that id() names the node (and is never reused by another).
    ids, alive, todo = {}, [], [t.grad_fn]

    def node_id(fn):
        key = id(fn)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            alive.append(fn)
        return ids[key]

    edges.append(("output", node_id(t.grad_fn)))
    seen = set()
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        leaf = fn.variable
        if leaf is not None:
            nodes[node_id(fn)] = (names.get(id(leaf), "leaf") + "\n" + _shape(leaf.shape, leaf.dtype), "leaf")
        else:
            label = fn.name() + "".join("\n" + _shape(s, d) for s, d in fn._outputs)
            if fn._saved:
                label += "\nsaved: " + ", ".join(_shape(s, d) for s, d in fn._saved)
            nodes[node_id(fn)] = (label, "box")
        for child, _ in fn.next_functions:
            if child is not None:
                edges.append((node_id(fn), node_id(child)))
                todo.append(child)
    return nodes, edges


_DOT_STYLE = {"output": 'shape=oval, style=filled, fillcolor="#dddddd"', "box": "shape=box",
              "leaf": 'shape=ellipse, style=filled, fillcolor="#cfe2f3"'}


def to_dot(t, params=None):
    """The backward graph of `t` as DOT source (a string)."""
    nodes, edges = _graph(t, params)
    lines = ["digraph backward {", '  rankdir=TB; node [fontname="Helvetica", fontsize=10];']
    lines += [f"  {key} [{_DOT_STYLE[kind]}, label={_quote(label)}];" for key, (label, kind) in nodes.items()]
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines)


def draw(t, path, params=None):
    """Renders the graph of `t` to `path`: .svg or .png with Graphviz's `dot` when it is on the
    PATH; without it, .svg with tapegrad's own layered drawing (_svg_graph.py, nothing to
    install), and a .png request becomes that .svg (said once). Returns the path written."""
    path = Path(path)
    if path.suffix not in (".svg", ".png"):
        raise ValueError(f"tg.viz.draw: the path must end in .svg or .png, got {path.name!r}")
    dot = shutil.which("dot")
    if dot:
        subprocess.run([dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=to_dot(t, params).encode(), check=True)
        return path
    if path.suffix == ".png":
        path = path.with_suffix(".svg")
        print(f"tg.viz.draw: Graphviz's dot is not installed, so the graph is drawn as SVG instead: {path}")
    path.write_text(to_svg(*_graph(t, params)))
    return path
