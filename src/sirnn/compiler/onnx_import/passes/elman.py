"""Pass ``fuse_elman``: an Elman RNN unrolled by the exporter (torch's dynamo exporter writes
``nn.RNN`` this way) → one fused node, emitted as one ``rnn`` op.

Pattern (after constant folding): the input projection of the whole sequence
``P = MatMul(X, W_ihᵀ) [+ b_ih]`` with X (T, batch, D); per step t = 0 … T−1, in order,
``g_t = Squeeze(Slice(P, t:t+1, axis 0))`` (or ``Gather(P, t, axis 0)``) and
``h_t = act(Add(MatMul(h_{t−1}, W_hhᵀ) + b_hh, g_t))`` with act Tanh or Relu, the same constant
W_hh, b_hh at every step; the first step's recurrent term is a constant (folded from a zero
initial state: it must equal b_hh). Chains that do not match exactly are left alone (imported op
by op)."""

from __future__ import annotations

import numpy as np

from ..graph import FusedNode, Graph, node_attrs


def _const_axes(g: Graph, n, k: int = 1):
    a = node_attrs(n)
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    if len(n.input) > k and n.input[k] in g.consts:
        return [int(v) for v in np.asarray(g.consts[n.input[k]]).reshape(-1)]
    return None


def fuse_elman(g: Graph) -> Graph:
    prod = {o: i for i, n in enumerate(g.nodes) for o in n.output if o}

    def node_of(t, *ops):
        i = prod.get(t)
        return (i, g.nodes[i]) if i is not None and g.nodes[i].op_type in ops else (None, None)

    def step_input(t):
        """g_t = P[t] → (P, t, node indices) or None."""
        i, n = node_of(t, "Squeeze", "Gather")
        if n is None:
            return None
        if n.op_type == "Gather":
            idx = g.consts.get(n.input[1])
            if int(node_attrs(n).get("axis", 0)) != 0 or idx is None or np.ndim(idx) != 0:
                return None
            return n.input[0], int(idx), [i]
        if _const_axes(g, n) != [0]:
            return None
        j, s = node_of(n.input[0], "Slice")
        if s is None or len(s.input) < 3 or any(x and x not in g.consts for x in s.input[1:]):
            return None
        vals = [np.asarray(g.consts[x]).reshape(-1).tolist() if x else None for x in list(s.input[1:5]) + [""] * 3]
        starts, ends, axes, steps = (vals + [None] * 4)[:4]
        if axes not in (None, [0]) or steps not in (None, [1]) or len(starts) != 1 or ends[0] != starts[0] + 1:
            return None
        return s.input[0], int(starts[0]), [i, j]

    def recurrent(t):
        """r = MatMul(h_prev, U) + b → (h_prev, U, b, node indices), or the constant r (first step)."""
        if t in g.consts:
            return None, None, np.asarray(g.consts[t], np.float64), []
        i, add = node_of(t, "Add")
        if add is None:
            return None
        mm, b = (add.input[0], add.input[1]) if add.input[1] in g.consts else (add.input[1], add.input[0])
        j, m = node_of(mm, "MatMul")
        if m is None or b not in g.consts or m.input[1] not in g.consts:
            return None
        return m.input[0], np.asarray(g.consts[m.input[1]], np.float64), np.asarray(g.consts[b], np.float64), [i, j]

    steps = {}  # act output → step
    for i, n in enumerate(g.nodes):
        if n.op_type not in ("Tanh", "Relu"):
            continue
        k, s = node_of(n.input[0], "Add")
        if s is None:
            continue
        for a, b in ((s.input[0], s.input[1]), (s.input[1], s.input[0])):
            si, r = step_input(b), recurrent(a)
            if si is not None and r is not None:
                steps[n.output[0]] = dict(act=n.op_type, out=n.output[0], P=si[0], t=si[1], h_prev=r[0], U=r[1], b=r[2],
                                          nodes=[i, k] + si[2] + r[3])
                break
    if not steps:
        return g
    nexts = {s["h_prev"]: s for s in steps.values() if s["h_prev"] in steps}
    chains = []
    for s in steps.values():
        if s["h_prev"] is not None or s["t"] != 0:
            continue
        chain = [s]
        while chain[-1]["out"] in nexts:
            chain.append(nexts[chain[-1]["out"]])
        chains.append(chain)
    replace, absorbed, fused = {}, set(), []
    for chain in chains:
        c = _chain(g, chain, prod)
        if c is None:
            continue
        nodes = set().union(*(set(s["nodes"]) for s in chain)) | set(c["pnodes"])
        inside = {o for k in nodes for o in g.nodes[k].output if o}
        used = {o for o in inside if any(u not in nodes for u in g.consumers.get(o, [])) or o in g.outputs}
        if any(o not in {s["out"] for s in chain} for o in used):
            continue  # an intermediate (e.g. P) is used elsewhere: leave the chain unrolled
        outs = [s["out"] for s in chain if s["out"] in used]
        name = f"{g.nodes[chain[0]['nodes'][0]].name or chain[0]['out']}:rnn"
        c.update(outs=outs, steps=[s["out"] for s in chain], anchor=g.nodes[chain[0]["nodes"][0]])
        replace[max(nodes)] = FusedNode("ElmanRNN", name, [c["X"]], outs, c)
        absorbed |= nodes
        fused.append({"name": name, "op": "rnn", "timesteps": len(chain)})
    if replace:
        g.nodes = [replace.get(i, n) for i, n in enumerate(g.nodes) if i not in absorbed or i in replace]
        g.fused = list(g.fused) + fused
        g.index()
    return g


def _chain(g: Graph, chain: list, prod: dict) -> dict | None:
    """Check one chain (same P, U, b, act; steps 0 … T−1; zero initial state; P = X·W [+ b_ih])."""
    first, rest = chain[0], chain[1:]
    if not rest or any(s["P"] != first["P"] or s["act"] != first["act"] or s["t"] != k + 1 for k, s in enumerate(rest)):
        return None
    U, b = rest[0]["U"], rest[0]["b"]
    if U.ndim != 2 or any(s["U"].shape != U.shape or not np.array_equal(s["U"], U) or not np.array_equal(s["b"], b)
                          for s in rest):
        return None
    H = U.shape[1]
    b = b.reshape(-1)
    if b.size != H or not np.allclose(np.broadcast_to(first["b"], first["b"].shape).reshape(-1, H), b, atol=1e-7):
        return None  # the first step's constant is not b_hh: a non-zero initial state
    pi = prod.get(first["P"])
    if pi is None:
        return None
    pn, pnodes, b_ih = g.nodes[pi], [pi], np.zeros(H)
    if pn.op_type == "Add":
        mm, bb = (pn.input[0], pn.input[1]) if pn.input[1] in g.consts else (pn.input[1], pn.input[0])
        if bb not in g.consts or mm not in prod:
            return None
        b_ih = np.asarray(g.consts[bb], np.float64).reshape(-1)
        pi = prod[mm]
        pn = g.nodes[pi]
        pnodes.append(pi)
    if pn.op_type != "MatMul" or pn.input[1] not in g.consts or b_ih.size != H:
        return None
    W = np.asarray(g.consts[pn.input[1]], np.float64)
    shape = g.shapes.get(pn.input[0])
    if W.ndim != 2 or W.shape[1] != H or shape is None or len(shape) != 3 or shape[0] != len(chain):
        return None
    return {"X": pn.input[0], "pnodes": pnodes, "W_ih": W.T, "W_hh": U.T, "b_ih": b_ih, "b_hh": b,
            "activation": first["act"].lower(), "T": len(chain), "H": H}
