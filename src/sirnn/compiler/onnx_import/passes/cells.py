"""Pass ``fuse_cells``: unrolled FastGRNN cells (:mod:`.fastgrnn`) and RNNPool regions
(:mod:`.rnnpool`) found by pattern matching are replaced in the graph by one fused node each
(``sirnn`` domain ``FastGRNN`` / ``RNNPool``, :class:`~..graph.FusedNode`), emitted by their
handlers in :mod:`..ops.fused`."""

from __future__ import annotations

from ..graph import FusedNode, Graph
from .fastgrnn import chain_steps, find_steps
from .rnnpool import rnnpool_regions


def fuse_cells(g: Graph) -> Graph:
    chains = chain_steps(g, find_steps(g))
    regions, chains = rnnpool_regions(g, chains)
    if not chains and not regions:
        return g
    absorbed = set()
    items = []  # (position, node): a fused node takes the place of its last matched node
    for c in chains:
        nodes = set().union(*(s.nodes for s in c.steps))
        absorbed |= nodes
        if c.seq_src and c.seq_src[0] == "input":
            ins = [c.seq_src[1]]
        elif c.seq_src:
            ins = [c.seq_src[1].token]
        else:
            ins = [s.x for s in c.steps]
        outs = list(c.external.values()) + ([c.token] if c.sequence else [])
        c.anchor_node = g.nodes[c.steps[0].anchor]
        items.append((max(nodes), FusedNode("FastGRNN", c.name, ins, outs, c)))
    for r in regions:
        absorbed |= r.nodes
        r.anchor_node = g.nodes[min(r.nodes)]
        items.append((max(r.nodes), FusedNode("RNNPool", r.name, [r.x], [r.y], r)))
    items += [(i, n) for i, n in enumerate(g.nodes) if i not in absorbed]
    g.nodes = [n for _, n in sorted(items, key=lambda it: it[0])]
    g.fused = [{"name": c.name, "op": "fastgrnn", "timesteps": len(c.steps)} for c in chains]
    g.fused += [{"name": r.name, "op": "rnnpool", "patch": r.patch, "stride": r.stride, "nodes": len(r.nodes)}
                for r in regions]
    g.index()
    return g
