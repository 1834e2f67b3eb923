"""Reading an ONNX model: the graph after constant folding (:class:`Graph`), ONNX node
helpers, and the ``onnx`` import with a clear error when the package is missing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ProgramError

FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ProgramError("ONNX import is not available: the 'onnx' package is not installed "
                           "(pip install onnx)") from None
    return onnx


def node_label(node) -> str:
    return f"ONNX node {node.name or node.output[0]!r} ({node.op_type})"


def node_attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else (
            [s.decode() if isinstance(s, bytes) else s for s in v] if isinstance(v, list) else v)
    return out


# ---------------------------------------------------------------------------------------------
# reading and constant folding
# ---------------------------------------------------------------------------------------------
@dataclass
class Graph:
    """An ONNX graph being imported: its nodes (topological order; after :mod:`.passes` the
    dynamic part only, with fused nodes in place of matched subgraphs) and constants."""

    nodes: list                      #: NodeProtos, topological order
    consts: dict                     #: name → np.ndarray
    shapes: dict                     #: name → static ONNX shape at batch 1 (None: unknown)
    input: str
    input_shape: tuple               #: per sample
    output: str
    opset: int
    batch_axis: int | None = 0       #: 0: the input's first axis is the batch; None: one sample
    producer: dict = field(default_factory=dict)   #: tensor → node index
    consumers: dict = field(default_factory=dict)  #: tensor → [node index]
    fused: list = field(default_factory=list)      #: what the fusion passes replaced (for meta)

    def index(self):
        self.producer, self.consumers = {}, {}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = i
            for t in n.input:
                if t and t not in self.consts:
                    self.consumers.setdefault(t, []).append(i)

    @property
    def inputs(self) -> list:
        return [self.input]

    def is_const(self, t: str) -> bool:
        return t in self.consts

    def split_const(self, i: int):
        """(dynamic input, constant) of a binary node with exactly one constant input."""
        n = self.nodes[i]
        if len(n.input) != 2:
            return None
        a, b = n.input
        if self.is_const(a) and not self.is_const(b):
            return b, self.consts[a]
        if self.is_const(b) and not self.is_const(a):
            return a, self.consts[b]
        return None


class FusedNode:
    """A node that a fusion pass (:mod:`.passes`) put in place of a matched subgraph: op type
    ``op_type`` in the domain ``sirnn``, ONNX tensors ``input`` / ``output``, the matcher's result
    in ``payload`` (its handler in :mod:`.ops.fused` emits the IR)."""

    domain = "sirnn"

    def __init__(self, op_type: str, name: str, inputs, outputs, payload):
        self.op_type, self.name, self.payload = op_type, name, payload
        self.input, self.output = list(inputs), list(outputs)
        self.attribute = []


def constant_value(node) -> np.ndarray:
    from onnx import numpy_helper

    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    v = node_attrs(node)[a.name]
    if a.name in ("value_float", "value_floats"):
        return np.asarray(v, np.float32)
    if a.name in ("value_int", "value_ints"):
        return np.asarray(v, np.int64)
    raise ProgramError(f"{node_label(node)}: unsupported constant attribute {a.name!r}")


def evaluate(node, values: list, opset: int) -> list:
    """The outputs of one ONNX node on constant inputs (``onnx.reference``).

    Floating-point warnings are silenced during the evaluation: ``onnx.reference`` computes
    both branches of some kernels and selects one (its Sigmoid takes exp(x) and exp(−x), so a
    large constant such as FastGRNN's ζ logit overflows in the branch it discards). A genuine
    overflow shows in the result instead: an output that is not finite while every input is
    is a ProgramError naming the node."""
    from onnx import NodeProto
    from onnx.reference import ReferenceEvaluator

    n = NodeProto()
    n.CopyFrom(node)
    feeds = {}
    for k, v in enumerate(values):
        if n.input[k]:
            n.input[k] = f"i{k}"
            feeds[f"i{k}"] = v
    for k in range(len(n.output)):
        if n.output[k]:
            n.output[k] = f"o{k}"
    try:
        with np.errstate(all="ignore"):
            outs = ReferenceEvaluator(n, opsets={"": opset}).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any evaluator failure is a model problem
        raise ProgramError(f"{node_label(node)}: cannot evaluate this node on its constant inputs: {e}") from None
    if all(_finite(v) for v in values) and not all(_finite(v) for v in outs):
        raise ProgramError(f"{node_label(node)}: folding this node on its constant inputs yields inf or NaN "
                           "(a floating-point overflow in the model's constants)")
    return outs


def _finite(v) -> bool:
    """False only for a float array holding inf or NaN (None, integers, sequences: True)."""
    return not (isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind in "fc" and not np.isfinite(v).all())


def _static_shapes(model, input_name: str) -> dict:
    """ONNX shape inference with the batch fixed to 1: name → shape tuple (None if unknown)."""
    import onnx
    from onnx import shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for i in m.graph.input:
        if i.name == input_name:
            i.type.tensor_type.shape.dim[0].dim_value = 1
    try:
        m = shape_inference.infer_shapes(m, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference is a convenience
        pass
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        shapes[vi.name] = None if None in dims else tuple(int(d) for d in dims)
    return shapes


def read_graph(model, output: str | None, batch_axis="auto") -> Graph:
    """The model's graph (nodes not yet folded). ``batch_axis``: 0 (the input's first axis is the
    batch), None (the input is one sample of its static shape) or "auto" (0 if the first axis is
    symbolic or a static 1, else None)."""
    from onnx import numpy_helper

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ProgramError(f"the ONNX model must have exactly one input tensor, it has {len(inputs)}: "
                           f"{[i.name for i in inputs]} (several client inputs, e.g. initial states of a "
                           "recurrent layer fed at run time, are not supported: make them initializers)")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
        raise ProgramError(f"the ONNX input {inp.name!r} must be a float tensor")
    dims = list(tt.shape.dim) if tt.HasField("shape") else []
    if not dims:
        raise ProgramError(f"the ONNX input {inp.name!r} needs a shape")
    static = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if batch_axis == "auto":
        # a symbolic first axis (or a static 1, as a batch-1 export) is the batch; a fully static
        # shape is one sample of exactly that shape
        batch_axis = 0 if static[0] in (None, 1) or None in static[1:] else None
    if batch_axis not in (0, None):
        raise ProgramError(f"batch_axis must be 0, None or 'auto', not {batch_axis!r}")
    lo = 1 if batch_axis == 0 else 0
    for k in range(lo, len(dims)):
        if static[k] is None:
            raise ProgramError(f"the ONNX input {inp.name!r} has a dynamic axis {k} ({dims[k].dim_param or '?'}): "
                               + ("only the batch (axis 0) may be dynamic" if lo else
                                  "with --batch-axis none every axis must be static"))
    per = static[lo:]
    outs = [o.name for o in g.output]
    if output is None:
        if len(outs) != 1:
            raise ProgramError(f"the ONNX model has {len(outs)} outputs {outs}: pick one (output=...)")
        output = outs[0]
    elif output not in outs and not any(output in n.output for n in g.node):
        raise ProgramError(f"the ONNX model has no tensor {output!r} (outputs: {outs})")
    shapes = _static_shapes(model, inp.name if batch_axis == 0 else None)

    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise ProgramError(f"{node_label(node)}: custom op domain {node.domain!r} is not supported")
    gr = Graph(list(g.node), consts, shapes, inp.name, tuple(per), output, opset, batch_axis)
    gr.index()
    return gr


def shape_of(node, shape) -> np.ndarray:
    a = node_attrs(node)
    s = np.asarray(shape, np.int64)
    return s[a.get("start", 0):a.get("end", None)]


def index_range(idx: list) -> range | None:
    """The indices ``idx`` as a range if they are one index or consecutive ones (step 1 or −1),
    else None."""
    step = 1 if len(idx) == 1 else idx[1] - idx[0]
    if abs(step) != 1 or any(idx[k + 1] - idx[k] != step for k in range(len(idx) - 1)):
        return None
    return range(idx[0], idx[-1] + step, step)


def live_order(g: Graph) -> tuple[list[int], set]:
    """A topological order of ``g.nodes`` (ready nodes by position, as listed), nodes that do not
    lead to the output dropped; and the set of live tensors."""
    import heapq

    prod = {o: k for k, n in enumerate(g.nodes) for o in n.output if o}
    deps = [{prod[t] for t in n.input if t and t in prod} for n in g.nodes]
    users: dict = {}
    for k, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(k)
    left = [len(d) for d in deps]
    heap = [k for k in range(len(g.nodes)) if not left[k]]
    heapq.heapify(heap)
    order = []
    while heap:
        k = heapq.heappop(heap)
        order.append(k)
        for u in users.get(k, []):
            left[u] -= 1
            if not left[u]:
                heapq.heappush(heap, u)
    if len(order) != len(g.nodes):
        raise ProgramError("the ONNX graph has a cycle")
    live = {g.output}
    keep = []
    for k in reversed(order):
        if any(o in live for o in g.nodes[k].output):
            keep.append(k)
            live.update(t for t in g.nodes[k].input if t)
    return keep[::-1], live
