"""Reading an ONNX model: the graph after constant folding (:class:`Graph`), ONNX node
helpers, and the ``onnx`` import with a clear error when the package is missing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ProgramError
from ..floatir import NamedIO

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
class Graph(NamedIO):
    """An ONNX graph being imported: its nodes (topological order; after :mod:`.passes` the
    dynamic part only, with fused nodes in place of matched subgraphs) and constants."""

    nodes: list                      #: NodeProtos, topological order
    consts: dict                     #: name → np.ndarray
    shapes: dict                     #: name → static ONNX shape at batch 1 (None: unknown)
    inputs: list                     #: the model inputs (the client's tensors)
    input_shapes: dict               #: input → per-sample shape
    outputs: list                    #: the outputs used
    opset: int
    batch_axis: int | None = 0       #: 0: the inputs have a batch axis; None: each is one sample
    in_axes: dict = field(default_factory=dict)    #: input → its ONNX batch axis (None: no batch)
    static_batch: int | None = None  #: the batch size fixed by the export (a static batch axis)
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


def _static_shapes(model, batch_dims: dict) -> dict:
    """ONNX shape inference with the batch fixed to 1 (``batch_dims``: input → its batch axis):
    name → shape tuple (None if unknown)."""
    import onnx
    from onnx import shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for i in m.graph.input:
        if batch_dims.get(i.name) is not None:
            i.type.tensor_type.shape.dim[batch_dims[i.name]].dim_value = 1
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


def _input_dims(inp) -> list:
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
        raise ProgramError(f"the ONNX input {inp.name!r} must be a float tensor")
    dims = list(tt.shape.dim) if tt.HasField("shape") else []
    if not dims:
        raise ProgramError(f"the ONNX input {inp.name!r} needs a shape")
    return dims


def read_graph(model, output=None, batch_axis="auto") -> Graph:
    """The model's graph (nodes not yet folded). ``output``: the output(s) to use (a name or a
    list; None: all the model's outputs). ``batch_axis``: 0 (the first input's first axis is the
    batch), None (every input is one sample of its static shape) or "auto" (0 if the first
    input's first axis is symbolic or a static 1, else None). With a batch, every other input
    has its batch on its symbolic axis (an ONNX LSTM's initial state (num_directions, batch, H):
    axis 1), or on axis 0 when its shape is fully static."""
    from onnx import numpy_helper

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if not inputs:
        raise ProgramError("the ONNX model has no input tensor")
    static = {}
    for inp in inputs:
        dims = _input_dims(inp)
        static[inp.name] = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    first = static[inputs[0].name]
    if batch_axis == "auto":
        # a symbolic first axis (or a static 1, as a batch-1 export) is the batch; a fully static
        # shape is one sample of exactly that shape
        batch_axis = 0 if first[0] in (None, 1) or None in first[1:] else None
    if batch_axis not in (0, None):
        raise ProgramError(f"batch_axis must be 0, None or 'auto', not {batch_axis!r}")
    in_axes, per = {}, {}
    for k, inp in enumerate(inputs):
        st = static[inp.name]
        dyn = [j for j, d in enumerate(st) if d is None]
        if batch_axis is None:
            b = None
        elif k == 0:
            b = 0
        elif len(dyn) == 1:
            b = dyn[0]
        else:  # fully static: the one axis of the first input's batch size (a batch-1 export: the first 1)
            size = first[0] or 1
            cands = [j for j, d in enumerate(st) if d == size] if not dyn else []
            if len(cands) != 1 and not (cands and size == 1):
                raise ProgramError(f"the ONNX input {inp.name!r} of shape {[d or '?' for d in st]}: its batch axis "
                                   f"is not clear ({len(dyn) or 'no'} dynamic axes, {len(cands)} of the batch size "
                                   f"{size}); export it with exactly one dynamic axis, the batch")
            b = cands[0]
        for j, d in enumerate(st):
            if d is None and j != b:
                dim = _input_dims(inp)[j]
                raise ProgramError(f"the ONNX input {inp.name!r} has a dynamic axis {j} ({dim.dim_param or '?'}): "
                                   + (f"only the batch (axis {b}) may be dynamic" if b is not None else
                                      "with --batch-axis none every axis must be static"))
        in_axes[inp.name] = b
        per[inp.name] = tuple(d for j, d in enumerate(st) if j != b)
    outs = [o.name for o in g.output]
    if output is None:
        output = outs
    for o in [output] if isinstance(output, str) else output:
        if o not in outs and not any(o in n.output for n in g.node):
            raise ProgramError(f"the ONNX model has no tensor {o!r} (outputs: {outs})")
    output = [output] if isinstance(output, str) else list(output)
    if len(set(output)) != len(output):
        raise ProgramError(f"an ONNX output is listed twice: {output}")
    shapes = _static_shapes(model, in_axes)

    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise ProgramError(f"{node_label(node)}: custom op domain {node.domain!r} is not supported")
    gr = Graph(list(g.node), consts, shapes, [i.name for i in inputs], per, output, opset, batch_axis, in_axes,
               first[0] if batch_axis == 0 else None)
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
    live = set(g.outputs)
    keep = []
    for k in reversed(order):
        if any(o in live for o in g.nodes[k].output):
            keep.append(k)
            live.update(t for t in g.nodes[k].input if t)
    return keep[::-1], live
