"""Pictures of the backward graph, in Graphviz DOT.

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

__all__ = ["to_dot", "draw"]


def _shape(shape, dtype):
    return f"{tuple(shape)} {str(dtype).split('.')[-1]}"


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(t, params=None):
    """The backward graph of `t` as DOT source (a string)."""
    names = {id(p): name for name, p in (params or {}).items()}
    lines = ["digraph backward {", '  rankdir=TB; node [fontname="Helvetica", fontsize=10];',
             f'  output [shape=oval, style=filled, fillcolor="#dddddd", label={_quote("output " + _shape(t.shape, t.dtype))}];']
    if t.grad_fn is None:
        lines.append("}")
        return "\n".join(lines)
    # Python wrappers of one C++ node are the same object while one of them lives: keep every
    # wrapper met alive, so that id() names the node (and is never reused by another).
    ids, alive, todo = {}, [], [t.grad_fn]

    def node_id(fn):
        key = id(fn)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            alive.append(fn)
        return ids[key]

    lines.append(f"  output -> {node_id(t.grad_fn)};")
    seen = set()
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        leaf = fn.variable
        if leaf is not None:
            label = names.get(id(leaf), "leaf") + "\n" + _shape(leaf.shape, leaf.dtype)
            lines.append(f'  {node_id(fn)} [shape=ellipse, style=filled, fillcolor="#cfe2f3", label={_quote(label)}];')
        else:
            label = fn.name() + "".join("\n" + _shape(s, d) for s, d in fn._outputs)
            if fn._saved:
                label += "\nsaved: " + ", ".join(_shape(s, d) for s, d in fn._saved)
            lines.append(f"  {node_id(fn)} [shape=box, label={_quote(label)}];")
        for child, _ in fn.next_functions:
            if child is not None:
                lines.append(f"  {node_id(fn)} -> {node_id(child)};")
                todo.append(child)
    lines.append("}")
    return "\n".join(lines)


def draw(t, path, params=None):
    """Renders the graph of `t` to `path` (.svg or .png) with Graphviz's `dot` when it is on the
    PATH; otherwise writes the DOT source next to it (path with .dot) and says so. Returns the
    path written."""
    path = Path(path)
    source = to_dot(t, params)
    dot = shutil.which("dot")
    if dot and path.suffix in (".svg", ".png"):
        subprocess.run([dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=source.encode(), check=True)
        return path
    fallback = path.with_suffix(".dot")
    fallback.write_text(source)
    print(f"tg.viz.draw: Graphviz's dot is not installed, so the graph is written as DOT source to {fallback} "
          "(render it with `dot -Tsvg`, or paste it into any Graphviz viewer)")
    return fallback
