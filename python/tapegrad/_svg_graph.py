"""A layered drawing of a small directed acyclic graph as SVG, in pure Python: tg.viz.draw's
renderer when Graphviz's `dot` is not installed (so a picture needs nothing beyond pip).

The method is Sugiyama's, cut to what backward graphs of a few hundred nodes need:
1. layers: each node sits one layer below the lowest of the nodes pointing at it (longest path);
   an edge that spans several layers gets a bend point in each layer it crosses;
2. order: sweeps down and up the layers sort each layer by the mean position of its neighbours
   in the layer before (the barycentre heuristic), which removes most crossings;
3. place: nodes go left to right in that order, then each layer is centred under its parents.
"""
from collections import defaultdict
from xml.sax.saxutils import escape

CHAR_W, LINE_H, PAD, GAP_X, GAP_Y = 6.6, 14.0, 8.0, 24.0, 46.0
FILL = {"box": "#ffffff", "leaf": "#cfe2f3", "output": "#dddddd"}


def _size(label):
    lines = label.split("\n")
    return max(len(s) for s in lines) * CHAR_W + 2 * PAD, len(lines) * LINE_H + 2 * PAD


def _layers(nodes, edges):
    """Longest-path layer of every node (roots at 0), in topological order."""
    indegree = {n: 0 for n in nodes}
    for _, b in edges:
        indegree[b] += 1
    children = defaultdict(list)
    for a, b in edges:
        children[a].append(b)
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        a = ready.pop()
        for b in children[a]:
            layer[b] = max(layer[b], layer[a] + 1)
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    return layer


def _with_bends(edges, layer):
    """Edges cut into one-layer steps through bend points (('bend', k) nodes); each original edge
    becomes a chain of points."""
    steps, chains, count = [], [], 0
    for a, b in edges:
        chain = [a]
        for level in range(layer[a] + 1, layer[b]):
            bend = ("bend", count)
            count += 1
            layer[bend] = level
            chain.append(bend)
        chain.append(b)
        steps += list(zip(chain, chain[1:]))
        chains.append(chain)
    return steps, chains


def _order(layer, steps, sweeps=4):
    rows = defaultdict(list)
    for n in layer:  # insertion order: the order the graph was walked in
        rows[layer[n]].append(n)
    up, down = defaultdict(list), defaultdict(list)
    for a, b in steps:
        down[a].append(b)
        up[b].append(a)
    depth = max(rows) if rows else 0
    for sweep in range(sweeps):
        levels, neighbours = (range(1, depth + 1), up) if sweep % 2 == 0 else (range(depth - 1, -1, -1), down)
        for level in levels:
            position = {n: i for i, n in enumerate(rows[level - 1 if sweep % 2 == 0 else level + 1])}
            def barycentre(n, i):
                near = [position[m] for m in neighbours[n] if m in position]
                return sum(near) / len(near) if near else i
            rows[level] = [n for _, _, n in sorted((barycentre(n, i), i, n) for i, n in enumerate(rows[level]))]
    return [rows[level] for level in range(depth + 1)]


def _place(rows, size, up):
    """x (centre) and y (top) of every node and bend point."""
    x, y, top = {}, {}, 0.0
    for row in rows:
        height = max(size(n)[1] for n in row)
        # wanted: under the mean of the parents; then pushed right just enough not to overlap
        wanted = [sum(x[p] for p in up[n]) / len(up[n]) if up[n] else None for n in row]
        cursor = None
        for n, w in zip(row, wanted):
            half = size(n)[0] / 2
            left_most = -1e18 if cursor is None else cursor + GAP_X + half
            x[n] = max(w if w is not None else (0.0 if cursor is None else left_most), left_most)
            cursor = x[n] + half
            y[n] = top + (height - size(n)[1]) / 2
        top += height + GAP_Y
    return x, y


def to_svg(nodes, edges):
    """nodes: {key: (label, kind)} with kind 'box', 'leaf' or 'output'; edges: [(from, to)].
    Returns the SVG document (a string)."""
    layer = _layers(list(nodes), edges)
    steps, chains = _with_bends(edges, layer)
    up = defaultdict(list)
    for a, b in steps:
        up[b].append(a)

    def size(n):
        return _size(nodes[n][0]) if n in nodes else (0.0, 0.0)

    rows = _order(layer, steps)
    x, y = _place(rows, size, up)
    left = min(x[n] - size(n)[0] / 2 for n in x) - PAD
    right = max(x[n] + size(n)[0] / 2 for n in x) + PAD
    bottom = max(y[n] + size(n)[1] for n in y) + PAD
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left:.1f} {-PAD:.1f} {right - left:.1f} {bottom + PAD:.1f}" '
           f'width="{right - left:.0f}" height="{bottom + PAD:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>']
    for chain in chains:
        points = [(x[chain[0]], y[chain[0]] + size(chain[0])[1])]
        points += [(x[n], y[n]) for n in chain[1:-1]]
        points.append((x[chain[-1]], y[chain[-1]]))
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="#444" marker-end="url(#arrow)"/>')
    for n, (label, kind) in nodes.items():
        w, h = size(n)
        radius = h / 2 if kind != "box" else 3
        out.append(f'<rect x="{x[n] - w / 2:.1f}" y="{y[n]:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{radius:.1f}" '
                   f'fill="{FILL[kind]}" stroke="#333"/>')
        for i, line in enumerate(label.split("\n")):
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(f'<text x="{x[n]:.1f}" y="{y[n] + PAD + (i + 0.8) * LINE_H:.1f}" text-anchor="middle"{weight}>'
                       f"{escape(line)}</text>")
    out.append("</svg>")
    return "\n".join(out)
