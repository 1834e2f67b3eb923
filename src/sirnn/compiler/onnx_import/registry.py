"""The op registry: one handler per ONNX op type (as onnxruntime registers one kernel per op).

A handler is ``f(ctx, node)``: it reads the node's inputs from the :class:`~.context.Context`
(IR tensors with their batch axis, or constants), emits float-IR ops and binds the node's outputs.
Its docstring states the mapping (ONNX op → IR ops) and the float semantics it relies on; the
first line of the docstring is what ``docs/onnx_ops.md`` lists (:func:`op_table`).

Handlers register with the :func:`onnx_op` decorator in the modules of :mod:`.ops`
(``elementwise``, ``linalg``, ``shape``, ``reduce``, ``recurrent``, ``fused``). Node types that only
fusion passes produce (``FastGRNN``, ``RNNPool``: see :mod:`.passes`) register under the domain
``sirnn`` and are not ONNX ops.

Refusals: :func:`check_supported` walks the graph once before any IR is emitted and names every
dynamic node (one that depends on the model input other than through ``Shape``) whose op has no
handler; control flow (``Loop``, ``If``, ``Scan``: their subgraphs may read any tensor) is refused
wherever it is, with its own reason.
"""

from __future__ import annotations

from typing import Callable

from ...errors import ProgramError
from .graph import Graph, node_label

Handler = Callable[..., None]

#: (domain, op type) → handler; domain "" is ONNX's default domain, "sirnn" the fused nodes
OPS: dict[tuple[str, str], Handler] = {}

#: ONNX ops refused on principle, with the reason
REFUSED = {
    "Loop": "control flow (a Loop subgraph) cannot be compiled: the secure program is a fixed "
            "straight-line circuit; export with the loop unrolled or as an ONNX RNN/LSTM/GRU op",
    "If": "control flow (an If on a runtime value) cannot be compiled: which branch runs would "
          "depend on a secret; export a model without data-dependent branches",
    "Scan": "control flow (a Scan subgraph) cannot be compiled: export the recurrence as an ONNX "
            "RNN/LSTM/GRU op or unrolled",
    "SequenceConstruct": "ONNX sequence types are not supported",
}


def onnx_op(*op_types: str, domain: str = ""):
    """Register the decorated handler for ``op_types`` (handlers may serve several types)."""
    def deco(fn: Handler) -> Handler:
        for t in op_types:
            if (domain, t) in OPS:
                raise RuntimeError(f"two handlers for the ONNX op {domain}:{t}")
            OPS[(domain, t)] = fn
        return fn
    return deco


def handler(node) -> Handler | None:
    dom = getattr(node, "domain", "") or ""
    return OPS.get(("" if dom == "ai.onnx" else dom, node.op_type))


def supported_ops() -> tuple:
    """The ONNX op types with a handler (sorted)."""
    return tuple(sorted(t for d, t in OPS if d == ""))


def op_table() -> list[tuple[str, str]]:
    """(ONNX op, first line of its handler's docstring) for every ONNX op with a handler."""
    rows = []
    for t in supported_ops():
        doc = (OPS[("", t)].__doc__ or "").strip().split("\n\n")[0]
        rows.append((t, " ".join(doc.split())))
    return rows


def dynamic_nodes(g: Graph) -> list[int]:
    """Indices of the nodes that depend on a model input other than through ``Shape`` (the
    ones that need a handler; the others are folded once the per-sample shapes are known)."""
    dyn = set(g.inputs)
    out = []
    for i, n in enumerate(g.nodes):
        if n.op_type == "Shape" or not any(t in dyn for t in n.input if t):
            continue
        out.append(i)
        dyn.update(o for o in n.output if o)
    return out


def check_supported(g: Graph) -> None:
    """One ProgramError naming every node the importer cannot map (op and reason), before any
    IR is emitted."""
    bad = [f"{node_label(n)}: {REFUSED[n.op_type]}" for n in g.nodes if n.op_type in REFUSED]
    for i in dynamic_nodes(g):
        n = g.nodes[i]
        if n.op_type not in REFUSED and handler(n) is None:
            bad.append(f"{node_label(n)}: this ONNX op is not supported by the sirnn float IR")
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ProgramError("; ".join(bad[:3]) + more + f" — supported ONNX ops: {', '.join(supported_ops())}")
