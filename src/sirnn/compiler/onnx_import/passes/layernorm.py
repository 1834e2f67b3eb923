"""Pass ``fuse_layernorm``: a LayerNorm that the exporter decomposed (TorchScript before opset 17:
``m = ReduceMean(x)``, ``d = x − m``, ``v = ReduceMean(d²)`` (``Pow(d, 2)`` or ``d·d``),
``n = d / Sqrt(v + ε)``, optionally ``n·γ + β`` with constant γ, β, all over the trailing axes) is
replaced by one ONNX ``LayerNormalization`` node (so it becomes one ``normalize`` op instead of
two reductions, a square root and a division in fixed point)."""

from __future__ import annotations

import numpy as np

from ..graph import Graph, node_attrs


def _axes(g: Graph, n) -> list | None:
    a = node_attrs(n)
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    if len(n.input) > 1 and n.input[1] in g.consts:
        return [int(v) for v in np.asarray(g.consts[n.input[1]]).reshape(-1)]
    return None


def _trailing_axis(g: Graph, x: str, axes: list) -> int | None:
    """The first axis if ``axes`` are the trailing axes of x (as a negative axis), else None."""
    shape = g.shapes.get(x)
    if shape is not None:
        r = len(shape)
        ax = sorted(a % r for a in axes)
        return ax[0] - r if ax == list(range(r - len(ax), r)) else None
    ax = sorted(axes)
    return ax[0] if ax == list(range(-len(ax), 0)) else None


def fuse_layernorm(g: Graph) -> Graph:
    from onnx import helper

    def only(t, op):
        """The single consumer of t if it is an ``op`` node, else None."""
        cs = g.consumers.get(t, [])
        return cs[0] if len(cs) == 1 and g.nodes[cs[0]].op_type == op else None

    def const_of(i, t):
        n = g.nodes[i]
        others = [v for v in n.input if v != t]
        return g.consts.get(others[0]) if len(others) == 1 and others[0] in g.consts else None

    replace, absorbed = {}, set()
    for i, n in enumerate(g.nodes):
        if n.op_type != "ReduceMean" or i in absorbed:
            continue
        x, m = n.input[0], n.output[0]
        axes = _axes(g, n)
        if not axes or not node_attrs(n).get("keepdims", 1):
            continue
        cs = g.consumers.get(m, [])
        if len(cs) != 1 or g.nodes[cs[0]].op_type != "Sub" or list(g.nodes[cs[0]].input) != [x, m]:
            continue
        sub = cs[0]
        d = g.nodes[sub].output[0]
        users = g.consumers.get(d, [])
        sq = [u for u in users if g.nodes[u].op_type in ("Pow", "Mul")]
        div = [u for u in users if g.nodes[u].op_type == "Div"]
        if len(users) != 2 or len(sq) != 1 or len(div) != 1:
            continue
        sqn = g.nodes[sq[0]]
        if sqn.op_type == "Pow" and not (sqn.input[0] == d and np.all(const_of(sq[0], d) == 2)):
            continue
        if sqn.op_type == "Mul" and list(sqn.input) != [d, d]:
            continue
        rv = only(sqn.output[0], "ReduceMean")
        if rv is None or _axes(g, g.nodes[rv]) != axes:
            continue
        ad = only(g.nodes[rv].output[0], "Add")
        eps = const_of(ad, g.nodes[rv].output[0]) if ad is not None else None
        if eps is None or np.size(eps) != 1:
            continue
        sr = only(g.nodes[ad].output[0], "Sqrt")
        if sr is None or list(g.nodes[div[0]].input) != [d, g.nodes[sr].output[0]]:
            continue
        first = _trailing_axis(g, x, axes)
        if first is None:
            continue
        nodes = [i, sub, sq[0], rv, ad, sr, div[0]]
        out = g.nodes[div[0]].output[0]
        scale = bias = ""
        mu = only(out, "Mul")
        if mu is not None and const_of(mu, out) is not None:
            scale = next(v for v in g.nodes[mu].input if v != out)
            nodes.append(mu)
            out = g.nodes[mu].output[0]
        ab = only(out, "Add")
        if ab is not None and const_of(ab, out) is not None:
            bias = next(v for v in g.nodes[ab].input if v != out)
            nodes.append(ab)
            out = g.nodes[ab].output[0]
        if out not in g.outputs and any(t in g.consumers and any(u not in nodes for u in g.consumers[t])
                                   for k in nodes[:-1] for t in g.nodes[k].output):
            continue
        ln = helper.make_node("LayerNormalization", [x, scale, bias], [out], axis=int(first),
                              epsilon=float(np.asarray(eps).reshape(-1)[0]), name=f"{n.name or m}:layernorm")
        replace[max(nodes)] = ln
        absorbed.update(nodes)
    if replace:
        g.nodes = [replace.get(i, nd) for i, nd in enumerate(g.nodes) if i not in absorbed or i in replace]
        g.fused = list(g.fused) + [{"name": nd.name, "op": "normalize", "from": "LayerNorm"} for nd in replace.values()]
        g.index()
    return g
