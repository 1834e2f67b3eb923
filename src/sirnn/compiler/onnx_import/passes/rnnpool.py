"""RNNPool: batched FastGRNN passes between one (C, H, W) tensor and the pooled output are
grouped into a region (:func:`rnnpool_regions`), checked numerically against the float IR's
``rnnpool`` and replaced by one ``rnnpool`` op (emitted by :mod:`..ops.fused`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...floatir import FLOAT_OPS, FloatOp
from .fastgrnn import batched_error, cell_weights, common_name, same_value
from ..graph import Graph, node_label

_PLUMBING = {"Gather", "Transpose", "Reshape", "Slice", "Concat", "Unsqueeze", "Squeeze", "Flatten",
             "Identity", "Split", "Expand"}


@dataclass(eq=False)
class Region:
    x: str                    #: ONNX input (C, H, W) per sample
    y: str                    #: ONNX output
    nodes: set                #: node indices replaced
    params: dict              #: rnn1.<role>, rnn2.<role>
    patch: int
    stride: int
    perm: tuple               #: rnnpool output (4·h2, Ho, Wo) → transpose(perm) → reshape → y
    name: str


def rnnpool_regions(g: Graph, chains: list) -> tuple[list, list]:
    """Group the batched FastGRNN chains (and the chains that read them: with a single patch, rnn2
    runs over one sequence) into RNNPool regions; each region is verified numerically
    (onnx.reference on the region's subgraph vs the IR's rnnpool) before it replaces its nodes.
    Returns the regions and the chains left."""
    if all(c.rows == 1 for c in chains):
        return [], chains
    step_of = {s.out: c for c in chains for s in c.steps}

    def sources(c):
        found, seen, stack = set(), set(), [s.x for s in c.steps]
        while stack:
            t = stack.pop()
            if g.is_const(t):
                continue
            if t in step_of:
                found.add(("chain", id(step_of[t])))
                continue
            i = g.producer.get(t)
            if i is None or g.nodes[i].op_type not in _PLUMBING:
                found.add(("x", t))
                continue
            if i not in seen:
                seen.add(i)
                stack.extend(v for v in g.nodes[i].input if v)
        return found

    src = {id(c): sources(c) for c in chains}
    batched = [c for c in chains if c.rows != 1]
    first = [c for c in batched if all(k == "x" for k, _ in src[id(c)])]
    by_id = {id(c): c for c in chains}
    reads_first = [c for c in chains if c.rows == 1 and c not in first and any(
        k == "chain" and by_id[v] in first for k, v in src[id(c)])]
    groups: dict = {}
    for c in first:
        xs = {t for _, t in src[id(c)]}
        if len(xs) != 1:
            batched_error(g, c, f"its inputs come from several tensors {sorted(xs)}")
        groups.setdefault(xs.pop(), ([], []))[0].append(c)
    for c in batched + reads_first:
        if c in first:
            continue
        ups = [by_id.get(v) if k == "chain" else None for k, v in src[id(c)]]
        if any(u is None or u not in first for u in ups):
            batched_error(g, c, "its inputs are not only the outputs of a first FastGRNN pass "
                                 "(RNNPool's rnn2 reads rnn1's row and column summaries)")
        xs = {next(x for x, (one, _) in groups.items() if u in one) for u in ups}
        if len(xs) != 1:
            batched_error(g, c, "it reads summaries of several inputs")
        groups[xs.pop()][1].append(c)
    regions, used = [], set()
    for X, (c1, c2) in groups.items():
        if not c2:
            batched_error(g, c1[0], "no second FastGRNN reads its summaries (not RNNPool)")
        regions.append(_rnnpool_region(g, X, c1, c2, step_of))
        used |= {id(c) for c in c1 + c2}
    return regions, [c for c in chains if id(c) not in used]


def _rnnpool_region(g: Graph, X: str, c1: list, c2: list, step_of: dict) -> Region:
    chains = c1 + c2
    anchor = c1[0]
    for grp in (c1, c2):
        for c in grp[1:]:
            if not (same_value(c.steps[0].w["W"], grp[0].steps[0].w["W"]) and same_value(c.u, grp[0].u)
                    and same_value(c.steps[0].bias, grp[0].steps[0].bias)):
                batched_error(g, c, "its passes do not share one set of weights")
    k = len(c1[0].steps)
    if any(len(c.steps) != k for c in chains):
        batched_error(g, anchor, "its passes have different lengths")
    xs = g.shapes.get(X)
    if xs is None or len(xs) != 4 or xs[0] != 1:
        batched_error(g, anchor, f"its input {X!r} is not a (1, C, H, W) tensor (shape {xs})")
    C, Hh, Ww = xs[1:]
    h2 = c2[0].steps[0].bias["b_z"].shape[0]
    P = c2[0].rows
    want = {s.out for c in chains for s in c.steps}
    last = {c.steps[-1].out for c in c2}

    def closure(y):
        nodes, hit, stack = set(), set(), [y]
        while stack:
            t = stack.pop()
            if g.is_const(t) or t == X:
                continue
            if t in step_of:
                c = step_of[t]
                if id(c) not in hit:
                    if not any(c is d for d in chains):
                        return None
                    hit.add(id(c))
                    for s in c.steps:
                        nodes |= s.nodes | s.xnodes
                        stack.append(s.x)
                continue
            i = g.producer.get(t)
            if i is None or g.nodes[i].op_type not in _PLUMBING:
                return None
            if i not in nodes:
                nodes.add(i)
                stack.extend(v for v in g.nodes[i].input if v)
        return nodes if hit == {id(c) for c in chains} else None

    # the output: the first tensor after the rnn2 passes with the batch axis back and 4·h2·P values
    derived = set(want)
    Y = nodes = None
    start = max(g.producer[t] for t in last)
    for i in range(start + 1, len(g.nodes)):
        n = g.nodes[i]
        ins = [v for v in n.input if v and not g.is_const(v)]
        if n.op_type not in _PLUMBING or not ins or not all(v in derived for v in ins):
            continue
        for o in n.output:
            derived.add(o)
            shp = g.shapes.get(o)
            if shp and shp[0] == 1 and int(np.prod(shp)) == 4 * h2 * P:
                nodes = closure(o)
                if nodes is not None:
                    Y = o
                    break
        if Y is not None:
            break
    if Y is None:
        batched_error(g, anchor, "no tensor after its passes holds the pooled output (4·h2·patches values "
                                  "with the batch axis back)")
    for i in nodes:
        for o in g.nodes[i].output:
            if o and o != Y:
                if o in g.outputs:
                    batched_error(g, anchor, f"{o!r} inside the RNNPool region is the model output")
                for u in g.consumers.get(o, []):
                    if u not in nodes:
                        batched_error(g, anchor, f"{node_label(g.nodes[u])} uses {o!r} from inside the RNNPool region")
    params = {f"rnn1.{r}": v for r, v in cell_weights(c1[0]).items()}
    params.update({f"rnn2.{r}": v for r, v in cell_weights(c2[0]).items()})
    # numerical check against onnx.reference on the region's subgraph; finds stride and layout
    from itertools import permutations

    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    sub = [g.nodes[i] for i in sorted(nodes)]
    consts = sorted({v for n in sub for v in n.input if v and g.is_const(v)})
    inits = [numpy_helper.from_array(np.asarray(g.consts[v]), v) for v in consts]
    m = helper.make_model(helper.make_graph(
        sub, "rnnpool", [helper.make_tensor_value_info(X, TensorProto.FLOAT, list(xs))],
        [helper.make_tensor_value_info(Y, TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", g.opset)])
    xr = np.random.default_rng(0).normal(0, 1, (2, C, Hh, Ww)).astype(np.float32)
    try:
        ev = ReferenceEvaluator(m)
        ref = np.stack([np.asarray(ev.run(None, {X: xr[j:j + 1]})[0]).reshape(g.shapes[Y])[0] for j in range(2)])
    except Exception as e:  # noqa: BLE001
        batched_error(g, anchor, f"its region cannot be evaluated for checking ({e})")
    yps = ref.shape[1:]
    for st in range(1, max(Hh, Ww) + 1):
        Ho, Wo = (Hh - k) // st + 1, (Ww - k) // st + 1
        if Ho < 1 or Wo < 1 or Ho * Wo != P:
            continue
        fop = FloatOp("rnnpool", [X], ["y"], params, {"patch": k, "stride": st}, "rnnpool")
        out = FLOAT_OPS["rnnpool"](fop, [xr.astype(np.float64)], None)
        for perm in permutations(range(3)):
            cand = out.transpose((0,) + tuple(p + 1 for p in perm)).reshape((2,) + yps)
            if np.allclose(cand, ref, atol=1e-4, rtol=1e-3):
                name = common_name([nm for c in chains for s in c.steps for nm in s.names], "rnnpool")
                return Region(X, Y, nodes, params, k, st, perm, name)
    batched_error(g, anchor, f"the region from {X!r} to {Y!r} does not compute the IR's rnnpool (patch "
                              f"{k}, any stride, output (4·h2, Ho, Wo) in any axis order) — checked with "
                              "onnx.reference")
