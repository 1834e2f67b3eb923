"""Unrolled FastGRNN cells: recognise the steps of ``torch.onnx.export``'s unrolled cell
(:func:`find_steps`), chain them through h (:func:`chain_steps`) and emit one ``fastgrnn`` op per
chain (emitted by :mod:`..ops.fused`). The pattern is described in :mod:`sirnn.compiler.onnx_import`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ....errors import ProgramError
from ..graph import Graph, index_range, node_attrs, node_label


@dataclass(eq=False)
class Step:
    out: str                  #: h'
    hp: str | None            #: h (None: the zero initial state)
    x: str                    #: x_t
    w: dict                   #: W or W1, W2 (math convention); U or U1, U2 (None if h = 0)
    bias: dict                #: b_z, b_h (with the terms' constant parts), zeta, nu
    nodes: set                #: node indices of the step
    anchor: int               #: the Tanh node
    names: list               #: initializer names of the matrices (for naming the op)
    xnodes: set               #: the MatMuls of W·x_t (may be shared with other steps reading x_t)
    rows: int = 1             #: sequences run at once per sample (> 1: RNNPool's batched passes)


@dataclass(eq=False)
class Chain:
    steps: list
    name: str = ""
    seq_src: tuple | None = None   #: ("input", X, axis, rows) | ("chain", chain, rows) | None (rows: a range)
    sequence: bool = False
    external: dict = field(default_factory=dict)  #: step position → ONNX tensor used outside
    token: str = ""
    u: dict | None = None     #: U or U1, U2 (None: a single step from h = 0)

    @property
    def rows(self) -> int:
        return self.steps[0].rows


class _StepMismatch(ProgramError):
    pass


def _mismatch(g: Graph, i: int, anchor: int, what: str):
    raise _StepMismatch(
        f"{node_label(g.nodes[i])}: {what} — this is part of what looks like an unrolled FastGRNN step "
        f"(a Sigmoid and a Tanh fed by Adds of constants to one pre-activation, at "
        f"{node_label(g.nodes[anchor])}), expected a = W·x + U·h, z = σ(a + b_z), h̃ = tanh(a + b_h), "
        "h' = (ζ·(1 − z) + ν)·h̃ + z·h with constant W, U, b_z, b_h, ζ, ν "
        "(load_onnx(..., fuse_cells=False) imports the unrolled graph op by op)")


def _chain_term(g: Graph, t: str):
    """t = ((base·M1 + c1)·M2 + c2)…: (base, [M…] in (in, out) form, constant part, nodes, names)."""
    mats, nodes, names = [], [], []
    cur = t
    while cur in g.producer:
        i = g.producer[cur]
        n = g.nodes[i]
        if n.op_type == "MatMul" and not g.is_const(n.input[0]) and g.is_const(n.input[1]) \
                and g.consts[n.input[1]].ndim == 2:
            mats.insert(0, (np.asarray(g.consts[n.input[1]], np.float64), None))
            names.insert(0, n.input[1])
        elif n.op_type == "Gemm" and not g.is_const(n.input[0]) and g.is_const(n.input[1]):
            a = node_attrs(n)
            if a.get("transA", 0):
                break
            B = float(a.get("alpha", 1.0)) * np.asarray(g.consts[n.input[1]], np.float64)
            B = B.T if a.get("transB", 0) else B
            c = None
            if len(n.input) > 2 and n.input[2]:
                if not g.is_const(n.input[2]):
                    break
                c = float(a.get("beta", 1.0)) * np.asarray(g.consts[n.input[2]], np.float64)
            mats.insert(0, (B, c))
            names.insert(0, n.input[1])
        else:
            break
        nodes.append(i)
        cur = n.input[0]
    const = 0.0
    for M, c in mats:
        const = (const @ M if np.ndim(const) else const * M.sum(axis=0)) + (0.0 if c is None else c)
    return cur, [M for M, _ in mats], const, nodes, names


def _sum_terms(g: Graph, t: str, nodes: list) -> tuple[list, object]:
    """Flatten an Add tree: (linear chain terms, constant part)."""
    if g.is_const(t):
        return [], np.asarray(g.consts[t], np.float64)
    i = g.producer.get(t)
    if i is not None and g.nodes[i].op_type == "Add":
        nodes.append(i)
        sc = g.split_const(i)
        if sc is not None:
            terms, c = _sum_terms(g, sc[0], nodes)
            return terms, c + np.asarray(sc[1], np.float64)
        a, b = g.nodes[i].input
        ta, ca = _sum_terms(g, a, nodes)
        tb, cb = _sum_terms(g, b, nodes)
        return ta + tb, ca + cb
    base, mats, c, cn, names = _chain_term(g, t)
    if not mats:
        return [(t, [], [], [])], 0.0
    return [(base, mats, names, cn)], c


def _vec(v, H: int, what: str, g, i, anchor) -> np.ndarray:
    v = np.asarray(v, np.float64)
    if v.size == 1:
        return np.full(H, float(v.reshape(())))
    if v.size == H and v.shape[-1] == H:
        return v.reshape(H).copy()
    if v.ndim >= 2 and v.shape[-1] == H and np.all(v.reshape(-1, H) == v.reshape(-1, H)[:1]):
        return v.reshape(-1, H)[0].copy()  # the same for every sequence of a batched pass
    _mismatch(g, i, anchor, f"{what} has shape {v.shape}, not one value per hidden unit (H = {H})")


def _other(n, t):
    a, b = n.input
    return b if a == t else a


def batched_error(g: Graph, c, why: str):
    s = c.steps[0]
    raise ProgramError(
        f"{node_label(g.nodes[s.anchor])}: a FastGRNN cell (weights {', '.join(sorted(set(s.names)))}) runs over "
        f"{s.rows} sequences at once for one input, and {why}. The IR's fastgrnn/lstm/gru cells take "
        "one (T, D) sequence per sample; batches of sequences are recognised only as RNNPool (the "
        "IR's rnnpool op: one FastGRNN over the rows and the columns of every k×k patch, a second one "
        "forward and backward over the row and the column summaries, as examples/models.py)")


def _match_step(g: Graph, tanh: int, ph: int, pz: int, sig: int, a: str, bh, bz) -> Step:
    n = g.nodes
    anodes: list = []
    terms, const = _sum_terms(g, a, anodes)
    z, ht = n[sig].output[0], n[tanh].output[0]
    nodes = {tanh, ph, pz, sig} | set(anodes)
    # h' = Mul(g, h̃) + Mul(z, h)
    cons = g.consumers.get(ht, [])
    if len(cons) != 1 or n[cons[0]].op_type != "Mul":
        _mismatch(g, tanh, tanh, "h̃ = tanh(a + b_h) must be used once, in (ζ·(1 − z) + ν)·h̃")
    m1 = cons[0]
    gate = _other(n[m1], ht)
    gi = g.producer.get(gate)
    sc = g.split_const(gi) if gi is not None and n[gi].op_type == "Add" else None
    if sc is None:
        _mismatch(g, m1, tanh, "expected (ζ·(1 − z) + ν)·h̃ with a constant ν")
    mz, nu_v = sc
    nodes |= {m1, gi}
    mi = g.producer.get(mz)
    sc = g.split_const(mi) if mi is not None and n[mi].op_type == "Mul" else None
    if sc is None or np.size(sc[1]) != 1:
        _mismatch(g, gi, tanh, "expected ζ·(1 − z) with a constant scalar ζ")
    s, zeta_v = sc
    si = g.producer.get(s)
    if si is None or n[si].op_type != "Sub" or n[si].input[1] != z or not g.is_const(n[si].input[0]) \
            or not np.all(g.consts[n[si].input[0]] == 1):
        _mismatch(g, mi, tanh, "expected 1 − z with z = σ(a + b_z)")
    nodes |= {mi, si}
    zc = g.consumers.get(z, [])
    m2 = [c for c in zc if c != si]
    if len(zc) != 2 or len(m2) != 1 or n[m2[0]].op_type != "Mul":
        _mismatch(g, sig, tanh, "z = σ(a + b_z) must be used exactly in 1 − z and z·h")
    m2 = m2[0]
    hp = _other(n[m2], z)
    nodes.add(m2)
    o1, o2 = n[m1].output[0], n[m2].output[0]
    c1, c2 = g.consumers.get(o1, []), g.consumers.get(o2, [])
    if len(c1) != 1 or c1 != c2 or n[c1[0]].op_type != "Add":
        _mismatch(g, m1, tanh, "expected h' = (ζ·(1 − z) + ν)·h̃ + z·h (one Add of the two products)")
    hadd = c1[0]
    nodes.add(hadd)
    out = n[hadd].output[0]
    if g.is_const(hp):
        if np.any(g.consts[hp] != 0):
            _mismatch(g, m2, tanh, "the initial state h is a non-zero constant (the IR's cells start "
                                   "from h = 0)")
        hp = None
    # a = W·x + U·h (+ constants)
    wterm = [t for t in terms if t[0] != hp]
    uterm = [t for t in terms if hp is not None and t[0] == hp]
    if len(wterm) != 1 or len(uterm) != (0 if hp is None else 1) or not wterm[0][1] \
            or (uterm and not uterm[0][1]):
        _mismatch(g, g.producer.get(a, ph), tanh,
                  "the pre-activation a must be W·x + U·h (one chain of MatMuls by constants from x "
                  "and one from the state h)")
    x, Wm, wnames, xnodes = wterm[0]
    if uterm:
        nodes |= set(uterm[0][3])
    H = Wm[-1].shape[1]
    w: dict = {}
    for key, term in (("W", wterm[0]), ("U", uterm[0] if uterm else None)):
        if term is None:
            w[key] = None
            continue
        mats = term[1]
        if len(mats) == 1:
            w[key] = {key: mats[0].T}
        elif len(mats) == 2:
            w[key] = {key + "1": mats[1].T, key + "2": mats[0].T}
        else:
            _mismatch(g, g.producer.get(a, ph), tanh, f"{key} is a product of {len(mats)} matrices "
                                                      "(at most two factors: W1·W2)")
    c = _vec(const, H, "the constant part of a", g, ph, tanh)
    bias = {"b_z": _vec(bz, H, "b_z", g, pz, tanh) + c, "b_h": _vec(bh, H, "b_h", g, ph, tanh) + c,
            "zeta": float(np.asarray(zeta_v).reshape(())), "nu": float(np.asarray(nu_v).reshape(()))}
    # nothing inside the step may be used outside it
    for i in nodes:
        for o in n[i].output:
            if o and o != out:
                if o in g.outputs:
                    _mismatch(g, i, tanh, f"its output {o!r} is the model output")
                for cidx in g.consumers.get(o, []):
                    if cidx not in nodes:
                        _mismatch(g, cidx, tanh, f"it uses {o!r}, a value inside the step")
    shp = g.shapes.get(ht)
    rows = 1 if shp is None or (len(shp) == 2 and shp[0] == 1) else int(np.prod(shp[:-1]))
    return Step(out, hp, x, w, bias, nodes, tanh, wnames + (uterm[0][2] if uterm else []), set(xnodes), rows)


def find_steps(g: Graph) -> list[Step]:
    steps = []
    n = g.nodes
    for ti, node in enumerate(n):
        if node.op_type != "Tanh":
            continue
        ph = g.producer.get(node.input[0])
        if ph is None or n[ph].op_type != "Add":
            continue
        sc = g.split_const(ph)
        if sc is None:
            continue
        a, bh = sc
        for pz in g.consumers.get(a, []):
            if pz == ph or n[pz].op_type != "Add":
                continue
            sz = g.split_const(pz)
            if sz is None or sz[0] != a:
                continue
            sig = [c for c in g.consumers.get(n[pz].output[0], []) if n[c].op_type == "Sigmoid"]
            if len(sig) == 1:
                steps.append(_match_step(g, ti, ph, pz, sig[0], a, bh, sz[1]))
                break
    return steps


def same_value(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-6, atol=1e-7)


def chain_steps(g: Graph, steps: list[Step]) -> list[Chain]:
    by_out = {s.out: s for s in steps}
    nxt: dict = {}
    for s in steps:
        if s.hp is None:
            continue
        p = by_out.get(s.hp)
        if p is None:
            raise _StepMismatch(
                f"{node_label(g.nodes[s.anchor])}: the state h of this FastGRNN step, {s.hp!r}, is neither "
                "zero nor the output of a previous step (the IR's cells start from h = 0)")
        if p.out in nxt:
            raise _StepMismatch(f"{node_label(g.nodes[s.anchor])}: the FastGRNN state {s.hp!r} feeds two "
                                "steps (a branching recurrence)")
        nxt[p.out] = s
    chains = []
    for s in steps:
        if s.hp is not None:
            continue
        seq = [s]
        while seq[-1].out in nxt:
            seq.append(nxt[seq[-1].out])
        chains.append(Chain(seq))
    if sum(len(c.steps) for c in chains) != len(steps):
        raise _StepMismatch("FastGRNN steps form a cycle")
    used = set()
    for c in chains:
        first = c.steps[0]
        u = next((s.w["U"] for s in c.steps if s.w["U"] is not None), None)
        for t, s in enumerate(c.steps):
            for key, ref in (("W", first.w["W"]), ("U", u), ("bias", first.bias)):
                val = s.bias if key == "bias" else s.w[key]
                if key == "U" and val is None:
                    continue
                if not same_value(val, ref):
                    raise _StepMismatch(
                        f"{node_label(g.nodes[s.anchor])}: FastGRNN step {t} of the chain starting at "
                        f"{node_label(g.nodes[first.anchor])} uses different "
                        f"{'b_z/b_h/ζ/ν' if key == 'bias' else key} than the other steps (an unrolled "
                        "cell must share its weights over time)")
        c.u = u
        base = common_name([nm for s in c.steps for nm in s.names], "fastgrnn")
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        c.name = name
        c.token = f"{name}#sequence"
    for c in chains:
        if any(s.rows != c.rows for s in c.steps):
            batched_error(g, c, "the number of sequences changes along the chain")
    # sources of the input sequences
    single = [c for c in chains if c.rows == 1]
    where = {s.out: (c, t) for c in single for t, s in enumerate(c.steps)}
    for c in single:
        xs = [s.x for s in c.steps]
        src = [where.get(x) for x in xs]
        rows = None
        if all(v is not None and v[0] is src[0][0] for v in src) and src[0][0] is not c:
            rows = index_range([v[1] for v in src])
        if rows is not None:
            c.seq_src = ("chain", src[0][0], rows)
            src[0][0].sequence = True
            continue
        gi = [g.producer.get(x) for x in xs]
        if all(i is not None and g.nodes[i].op_type == "Gather" for i in gi):
            ns = [g.nodes[i] for i in gi]
            X = ns[0].input[0]
            shp = g.shapes.get(X)
            axes = {int(node_attrs(m).get("axis", 0)) for m in ns}
            if shp is not None and len(shp) == 3 and shp[0] == 1 and min(shp[1:]) > 1 and len(axes) == 1 \
                    and all(m.input[0] == X and g.is_const(m.input[1]) and np.ndim(g.consts[m.input[1]]) == 0
                            for m in ns):
                ax = axes.pop() % 3
                if ax in (1, 2):
                    rows = index_range([int(g.consts[m.input[1]]) % shp[ax] for m in ns])
                    if rows is not None:
                        c.seq_src = ("input", X, ax, rows)
    # step outputs used outside their chain (other than as a chain's sequence source)
    seq_users = {}
    for c in single:
        if c.seq_src and c.seq_src[0] == "chain":
            for s in c.steps:
                seq_users.setdefault(s.x, set()).update(s.nodes)
    for c in single:
        for t, s in enumerate(c.steps):
            inside = set(c.steps[t + 1].nodes) if t + 1 < len(c.steps) else set()
            ext = [i for i in g.consumers.get(s.out, []) if i not in inside and i not in seq_users.get(s.out, ())]
            if ext or s.out in g.outputs:
                c.external[t] = s.out
        if any(t != len(c.steps) - 1 for t in c.external):
            c.sequence = True
    return chains


def cell_weights(c: Chain) -> dict:
    s = c.steps[0]
    w = dict(s.w["W"])
    H = s.bias["b_z"].shape[0]
    w.update(c.u if c.u is not None else {"U": np.zeros((H, H))})
    w.update(b_z=s.bias["b_z"], b_h=s.bias["b_h"], zeta=np.float64(s.bias["zeta"]), nu=np.float64(s.bias["nu"]))
    return w


def common_name(names, default: str) -> str:
    toks = [re.split(r"[./]", nm) for nm in names]
    common = []
    for t in zip(*toks):
        if len(set(t)) > 1:
            break
        common.append(t[0])
    return ".".join(common).strip("._/:") or default
