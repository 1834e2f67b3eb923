"""Pass ``fuse_softplus_threshold``: PyTorch's Softplus (beta 1) returns x itself above its
threshold (20); the dynamo exporter writes that as ``Where(Greater(x, t), x, Softplus(x))``. For
t ≥ 15 the two branches differ by log1p(e^−x) < 3·10⁻⁷ (below float32's resolution at x > 15),
so the Where is replaced by the Softplus alone."""

from __future__ import annotations

import numpy as np

from ..graph import Graph


def fuse_softplus_threshold(g: Graph) -> Graph:
    prod = {o: i for i, n in enumerate(g.nodes) for o in n.output if o}
    alias, drop = {}, set()
    for i, n in enumerate(g.nodes):
        if n.op_type != "Where" or len(n.input) != 3:
            continue
        cond, x, sp = n.input
        ci, si = prod.get(cond), prod.get(sp)
        if ci is None or si is None:
            continue
        gt, spn = g.nodes[ci], g.nodes[si]
        if gt.op_type != "Greater" or spn.op_type != "Softplus" or list(spn.input) != [x] or gt.input[0] != x:
            continue
        t = g.consts.get(gt.input[1])
        if t is None or np.size(t) != 1 or float(np.asarray(t).reshape(-1)[0]) < 15:
            continue
        alias[n.output[0]] = sp
        drop.add(i)
        if len(g.consumers.get(cond, [])) == 1:
            drop.add(ci)
    if not alias:
        return g
    nodes = []
    for i, n in enumerate(g.nodes):
        if i in drop:
            continue
        if any(t in alias for t in n.input):
            n = _renamed(n, alias)
        nodes.append(n)
    for o in g.outputs:
        if o in alias:  # keep the output's name: an Identity
            from onnx import helper

            nodes.append(helper.make_node("Identity", [alias[o]], [o], name=f"{o}:softplus"))
    g.nodes = nodes
    g.index()
    return g


def _renamed(n, alias: dict):
    from onnx import NodeProto

    if not isinstance(n, NodeProto):  # a fused node of an earlier pass
        n.input = [alias.get(t, t) for t in n.input]
        return n
    m = NodeProto()
    m.CopyFrom(n)
    for k, t in enumerate(m.input):
        if t in alias:
            m.input[k] = alias[t]
    return m
