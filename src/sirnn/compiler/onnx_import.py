"""ONNX front-end: an ONNX float model → a :class:`~sirnn.compiler.floatir.FloatModel`.

``load_onnx(path)`` (also registered as the ``.onnx`` loader of
:func:`~sirnn.compiler.floatir.load_float_model`) reads the graph with the ``onnx`` package
(imported lazily: ``pip install onnx``), folds every node whose inputs are constants
(initializers, ``Constant`` nodes, ``Shape`` of tensors whose shape is static — with the batch
fixed to 1 — and whatever follows from them, evaluated with ``onnx.reference``), and maps the rest
onto the float IR's op vocabulary.

Batch and per-sample shapes
---------------------------
The model takes one input tensor whose first axis is the batch (static 1 or symbolic); the float
IR is per sample. Every other tensor keeps the batch as *some* axis of size 1 (not necessarily the
first: ONNX ``LSTM`` / ``GRU`` take (T, batch, D)); the importer tracks where, and the per-sample
tensor is the ONNX tensor at batch 1 without that axis. An op that merges the batch axis with
other axes (a Reshape to (4, 8, 7, 7) of a (1, 4, 8, 7, 7) tensor) cannot be expressed per sample
and is rejected, naming the node.

Supported ONNX ops (anything else fails with a ProgramError naming the node)
---------------------------------------------------------------------------
* ``Gemm`` (constant B, optional C; alpha, beta, transB) → ``linear``; ``MatMul`` with a constant
  right operand → ``matmul`` (a following ``Add`` of a constant bias over the last axis is fused);
* ``Conv`` (1-D or 2-D, group 1, dilation 1, symmetric padding) → ``conv2d``; ``MaxPool`` (1-D or
  2-D, no padding), ``GlobalMaxPool`` → ``maxpool2d``; ``BatchNormalization`` (inference) →
  ``mul`` + ``add``;
* ``Relu``, ``Sigmoid``, ``Tanh``, ``Softmax`` (last axis), ``LpNormalization`` (p = 2, last axis)
  → ``relu`` / ``sigmoid`` / ``tanh`` / ``softmax`` / ``l2norm``; ``ArgMax`` (last axis, first
  index on ties; ``keepdims`` is dropped: the index is a per-sample scalar);
* ``Add``, ``Sub``, ``Mul`` with a constant or with a tensor of the same shape, ``Div`` by a
  constant, ``Neg`` → ``add`` / ``mul``;
* ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Transpose``, ``Slice``, ``Split``,
  ``Concat``, ``Gather`` with constant indices → ``reshape`` / ``flatten`` / ``transpose`` /
  ``slice`` / ``concat``; ``Identity``, ``Dropout``, ``Cast`` to a float type → nothing;
* ``LSTM`` (gates i, o, f, c) and ``GRU`` (gates z, r, h; ``linear_before_reset = 1``, as PyTorch
  exports it) → ``lstm`` / ``gru`` with PyTorch's gate orders (i, f, g, o and r, z, n); forward,
  reverse and bidirectional; ``layout`` 0 or 1; zero (or absent) initial states, no
  ``sequence_lens`` shorter than T, default activations, no clip, no peepholes; outputs Y and Y_h
  (Y_c, the final LSTM cell state, is not available);
* **unrolled FastGRNN** (what ``torch.onnx.export`` makes of a custom cell such as
  ``examples/models.py``): every timestep ``a = W·x_t + U·h`` (``MatMul`` by ``W.T`` — or by
  ``W2.T`` then ``W1.T`` for a low-rank W, or ``Gemm`` —, the same for U; constants added to
  ``a`` go into the biases), ``z = Sigmoid(a + b_z)``, ``h̃ = Tanh(a + b_h)``,
  ``h' = (ζ·(1 − z) + ν)·h̃ + z·h`` (ζ, ν constants, e.g. ``Sigmoid(zeta_raw)``), from h = 0, is
  recognised by its signature (a Sigmoid and a Tanh fed by Adds of constants to one
  pre-activation); the steps are chained through h, the weights are checked to be the same at
  every step, and the whole chain becomes **one** ``fastgrnn`` op, named after the common prefix
  of its weights' initializer names (``cell`` for ``cell.W.T``, ``cell.U.T``), with output
  ``<name>.h`` (``sequence: true`` when the states of other steps are used too). Its input
  sequence is the input tensor itself (or a slice, transpose) when the steps ``Gather`` x[:, t]
  in order, another cell's state sequence for stacked cells, else a concat of the x_t. A step
  that does not match the pattern fails with a ProgramError naming the node (``fuse_cells=False``
  imports the unrolled graph op by op instead — a correct float model, but not one the compiler
  handles well);
* **RNNPool** (``examples/models.py``'s ``RNNPool`` as exported: the patches sliced out, FastGRNN
  ``rnn1`` unrolled over a batch of rows and columns, ``rnn2`` forward and backward over the
  summaries): FastGRNN chains whose state holds several sequences per sample ("batched" passes)
  are grouped with the passes that read them into a region from one (C, H, W) tensor to the
  first tensor after them that holds the pooled values with the batch axis back; the region is
  replaced by **one** ``rnnpool`` op (patch = the passes' length; stride and output layout are
  found by evaluating the region's subgraph with ``onnx.reference`` on random inputs and
  comparing with the IR's ``rnnpool``; a transpose/reshape is added when the layout differs).
  Batched passes that do not form such a region fail with a ProgramError naming the node.

Not expressible (the error says so): tensor × tensor MatMul, broadcasting between two tensors,
division by a tensor, grouped convolution, pooling with padding, data-dependent indices, custom
domains, a batch axis merged with other axes outside RNNPool.

The result is tidied: reshape chains, transposes that cancel or only move size-1 axes, and
concatenations of adjacent slices (e.g. a stack of a cell's states) collapse; unused ops go.
"""

from __future__ import annotations

import heapq
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import ProgramError
from .floatir import FLOAT_OPS, FloatModel, FloatOp, register_loader

__all__ = ["load_onnx", "load", "SUPPORTED_OPS"]

_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ProgramError("ONNX import is not available: the 'onnx' package is not installed "
                           "(pip install onnx)") from None
    return onnx


def _label(node) -> str:
    return f"ONNX node {node.name or node.output[0]!r} ({node.op_type})"


def _attrs(node) -> dict:
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
class _Graph:
    """The dynamic part of an ONNX graph after constant folding."""

    nodes: list                      #: NodeProtos, topological order
    consts: dict                     #: name → np.ndarray
    shapes: dict                     #: name → static ONNX shape at batch 1 (None: unknown)
    input: str
    input_shape: tuple               #: per sample
    output: str
    opset: int
    producer: dict = field(default_factory=dict)   #: tensor → node index
    consumers: dict = field(default_factory=dict)  #: tensor → [node index]

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


def _constant_value(node) -> np.ndarray:
    from onnx import numpy_helper

    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    v = _attrs(node)[a.name]
    if a.name in ("value_float", "value_floats"):
        return np.asarray(v, np.float32)
    if a.name in ("value_int", "value_ints"):
        return np.asarray(v, np.int64)
    raise ProgramError(f"{_label(node)}: unsupported constant attribute {a.name!r}")


def _fold(node, values: list, opset: int) -> list:
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
        return ReferenceEvaluator(n, opsets={"": opset}).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any evaluator failure is a model problem
        raise ProgramError(f"{_label(node)}: cannot evaluate this node on its constant inputs: {e}") from None


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


def _read(model, output: str | None) -> _Graph:
    from onnx import numpy_helper

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ProgramError(f"the ONNX model must have exactly one input tensor, it has {len(inputs)}: "
                           f"{[i.name for i in inputs]}")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
        raise ProgramError(f"the ONNX input {inp.name!r} must be a float tensor")
    dims = list(tt.shape.dim) if tt.HasField("shape") else []
    if not dims:
        raise ProgramError(f"the ONNX input {inp.name!r} needs a shape (batch, ...)")
    if dims[0].HasField("dim_value") and dims[0].dim_value not in (0, 1):
        raise ProgramError(f"the ONNX input {inp.name!r} has a static batch of {dims[0].dim_value}: "
                           "export with batch 1 (or a dynamic batch axis)")
    per = []
    for k, d in enumerate(dims[1:], 1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise ProgramError(f"the ONNX input {inp.name!r} has a dynamic axis {k} "
                               f"({d.dim_param or '?'}): only the batch (axis 0) may be dynamic")
        per.append(int(d.dim_value))
    outs = [o.name for o in g.output]
    if output is None:
        if len(outs) != 1:
            raise ProgramError(f"the ONNX model has {len(outs)} outputs {outs}: pick one (output=...)")
        output = outs[0]
    elif output not in outs and not any(output in n.output for n in g.node):
        raise ProgramError(f"the ONNX model has no tensor {output!r} (outputs: {outs})")
    shapes = _static_shapes(model, inp.name)

    nodes = []
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise ProgramError(f"{_label(node)}: custom op domain {node.domain!r} is not supported")
        ins = [t for t in node.input if t]
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(node)
            continue
        if node.op_type == "Shape" and node.input[0] not in consts and shapes.get(node.input[0]):
            consts[node.output[0]] = _shape_of(node, shapes[node.input[0]])
            continue
        if ins and all(t in consts for t in ins):
            vals = _fold(node, [consts.get(t) if t else None for t in node.input], opset)
            for o, v in zip(node.output, vals):
                if o:
                    consts[o] = np.asarray(v)
            continue
        nodes.append(node)
    if output in consts:
        raise ProgramError(f"the ONNX output {output!r} is a constant (it does not depend on the input)")
    gr = _Graph(nodes, consts, shapes, inp.name, tuple(per), output, opset)
    gr.index()
    return gr


def _shape_of(node, shape) -> np.ndarray:
    a = _attrs(node)
    s = np.asarray(shape, np.int64)
    return s[a.get("start", 0):a.get("end", None)]


# ---------------------------------------------------------------------------------------------
# unrolled FastGRNN: recognise the steps, chain them, one fastgrnn op per chain
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Step:
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
class _Chain:
    steps: list
    name: str = ""
    seq_src: tuple | None = None   #: ("input", X, axis, idx) | ("chain", chain, idx) | None
    sequence: bool = False
    external: dict = field(default_factory=dict)  #: step position → ONNX tensor used outside
    token: str = ""
    u: dict | None = None     #: U or U1, U2 (None: a single step from h = 0)

    @property
    def rows(self) -> int:
        return self.steps[0].rows


class _StepMismatch(ProgramError):
    pass


def _mismatch(g: _Graph, i: int, anchor: int, what: str):
    raise _StepMismatch(
        f"{_label(g.nodes[i])}: {what} — this is part of what looks like an unrolled FastGRNN step "
        f"(a Sigmoid and a Tanh fed by Adds of constants to one pre-activation, at "
        f"{_label(g.nodes[anchor])}), expected a = W·x + U·h, z = σ(a + b_z), h̃ = tanh(a + b_h), "
        "h' = (ζ·(1 − z) + ν)·h̃ + z·h with constant W, U, b_z, b_h, ζ, ν "
        "(load_onnx(..., fuse_cells=False) imports the unrolled graph op by op)")


def _chain_term(g: _Graph, t: str):
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
            a = _attrs(n)
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


def _sum_terms(g: _Graph, t: str, nodes: list) -> tuple[list, object]:
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


def _batched_error(g: _Graph, c, why: str):
    s = c.steps[0]
    raise ProgramError(
        f"{_label(g.nodes[s.anchor])}: a FastGRNN cell (weights {', '.join(sorted(set(s.names)))}) runs over "
        f"{s.rows} sequences at once for one input, and {why}. The IR's fastgrnn/lstm/gru cells take "
        "one (T, D) sequence per sample; batches of sequences are recognised only as RNNPool (the "
        "IR's rnnpool op: one FastGRNN over the rows and the columns of every k×k patch, a second one "
        "forward and backward over the row and the column summaries, as examples/models.py)")


def _match_step(g: _Graph, tanh: int, ph: int, pz: int, sig: int, a: str, bh, bz) -> _Step:
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
                if o == g.output:
                    _mismatch(g, i, tanh, f"its output {o!r} is the model output")
                for cidx in g.consumers.get(o, []):
                    if cidx not in nodes:
                        _mismatch(g, cidx, tanh, f"it uses {o!r}, a value inside the step")
    shp = g.shapes.get(ht)
    rows = 1 if shp is None or (len(shp) == 2 and shp[0] == 1) else int(np.prod(shp[:-1]))
    return _Step(out, hp, x, w, bias, nodes, tanh, wnames + (uterm[0][2] if uterm else []), set(xnodes), rows)


def _find_steps(g: _Graph) -> list[_Step]:
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


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-6, atol=1e-7)


def _progression(idx: list) -> bool:
    return len(idx) == 1 or (abs(idx[1] - idx[0]) == 1 and all(
        idx[k + 1] - idx[k] == idx[1] - idx[0] for k in range(len(idx) - 1)))


def _chains(g: _Graph, steps: list[_Step]) -> list[_Chain]:
    by_out = {s.out: s for s in steps}
    nxt: dict = {}
    for s in steps:
        if s.hp is None:
            continue
        p = by_out.get(s.hp)
        if p is None:
            raise _StepMismatch(
                f"{_label(g.nodes[s.anchor])}: the state h of this FastGRNN step, {s.hp!r}, is neither "
                "zero nor the output of a previous step (the IR's cells start from h = 0)")
        if p.out in nxt:
            raise _StepMismatch(f"{_label(g.nodes[s.anchor])}: the FastGRNN state {s.hp!r} feeds two "
                                "steps (a branching recurrence)")
        nxt[p.out] = s
    chains = []
    for s in steps:
        if s.hp is not None:
            continue
        seq = [s]
        while seq[-1].out in nxt:
            seq.append(nxt[seq[-1].out])
        chains.append(_Chain(seq))
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
                if not _same(val, ref):
                    raise _StepMismatch(
                        f"{_label(g.nodes[s.anchor])}: FastGRNN step {t} of the chain starting at "
                        f"{_label(g.nodes[first.anchor])} uses different "
                        f"{'b_z/b_h/ζ/ν' if key == 'bias' else key} than the other steps (an unrolled "
                        "cell must share its weights over time)")
        c.u = u
        base = _name_of([nm for s in c.steps for nm in s.names], "fastgrnn")
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        c.name = name
        c.token = f"{name}#sequence"
    for c in chains:
        if any(s.rows != c.rows for s in c.steps):
            _batched_error(g, c, "the number of sequences changes along the chain")
    # sources of the input sequences
    single = [c for c in chains if c.rows == 1]
    where = {s.out: (c, t) for c in single for t, s in enumerate(c.steps)}
    for c in single:
        xs = [s.x for s in c.steps]
        src = [where.get(x) for x in xs]
        if all(v is not None and v[0] is src[0][0] for v in src) and src[0][0] is not c \
                and _progression([v[1] for v in src]):
            c.seq_src = ("chain", src[0][0], [v[1] for v in src])
            src[0][0].sequence = True
            continue
        gi = [g.producer.get(x) for x in xs]
        if all(i is not None and g.nodes[i].op_type == "Gather" for i in gi):
            ns = [g.nodes[i] for i in gi]
            X = ns[0].input[0]
            shp = g.shapes.get(X)
            axes = {int(_attrs(m).get("axis", 0)) for m in ns}
            if shp is not None and len(shp) == 3 and shp[0] == 1 and min(shp[1:]) > 1 and len(axes) == 1 \
                    and all(m.input[0] == X and g.is_const(m.input[1]) and np.ndim(g.consts[m.input[1]]) == 0
                            for m in ns):
                ax = axes.pop() % 3
                if ax in (1, 2):
                    idx = [int(g.consts[m.input[1]]) % shp[ax] for m in ns]
                    if _progression(idx):
                        c.seq_src = ("input", X, ax, idx)
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
            if ext or s.out == g.output:
                c.external[t] = s.out
        if any(t != len(c.steps) - 1 for t in c.external):
            c.sequence = True
    return chains


# ---------------------------------------------------------------------------------------------
# RNNPool: batched FastGRNN passes between one (C, H, W) input and one output → one rnnpool op
# ---------------------------------------------------------------------------------------------
_PLUMBING = {"Gather", "Transpose", "Reshape", "Slice", "Concat", "Unsqueeze", "Squeeze", "Flatten",
             "Identity", "Split", "Expand"}


@dataclass(eq=False)
class _Region:
    x: str                    #: ONNX input (C, H, W) per sample
    y: str                    #: ONNX output
    nodes: set                #: node indices replaced
    params: dict              #: rnn1.<role>, rnn2.<role>
    patch: int
    stride: int
    perm: tuple               #: rnnpool output (4·h2, Ho, Wo) → transpose(perm) → reshape → y
    name: str


def _weights(c: _Chain) -> dict:
    s = c.steps[0]
    w = dict(s.w["W"])
    H = s.bias["b_z"].shape[0]
    w.update(c.u if c.u is not None else {"U": np.zeros((H, H))})
    w.update(b_z=s.bias["b_z"], b_h=s.bias["b_h"], zeta=np.float64(s.bias["zeta"]), nu=np.float64(s.bias["nu"]))
    return w


def _name_of(names, default: str) -> str:
    toks = [re.split(r"[./]", nm) for nm in names]
    common = []
    for t in zip(*toks):
        if len(set(t)) > 1:
            break
        common.append(t[0])
    return ".".join(common).strip("._/:") or default


def _rnnpool_regions(g: _Graph, chains: list) -> tuple[list, list]:
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
            _batched_error(g, c, f"its inputs come from several tensors {sorted(xs)}")
        groups.setdefault(xs.pop(), ([], []))[0].append(c)
    for c in batched + reads_first:
        if c in first:
            continue
        ups = [by_id.get(v) if k == "chain" else None for k, v in src[id(c)]]
        if any(u is None or u not in first for u in ups):
            _batched_error(g, c, "its inputs are not only the outputs of a first FastGRNN pass "
                                 "(RNNPool's rnn2 reads rnn1's row and column summaries)")
        xs = {next(x for x, (one, _) in groups.items() if u in one) for u in ups}
        if len(xs) != 1:
            _batched_error(g, c, "it reads summaries of several inputs")
        groups[xs.pop()][1].append(c)
    regions, used = [], set()
    for X, (c1, c2) in groups.items():
        if not c2:
            _batched_error(g, c1[0], "no second FastGRNN reads its summaries (not RNNPool)")
        regions.append(_rnnpool_region(g, X, c1, c2, step_of))
        used |= {id(c) for c in c1 + c2}
    return regions, [c for c in chains if id(c) not in used]


def _rnnpool_region(g: _Graph, X: str, c1: list, c2: list, step_of: dict) -> _Region:
    chains = c1 + c2
    anchor = c1[0]
    for grp in (c1, c2):
        for c in grp[1:]:
            if not (_same(c.steps[0].w["W"], grp[0].steps[0].w["W"]) and _same(c.u, grp[0].u)
                    and _same(c.steps[0].bias, grp[0].steps[0].bias)):
                _batched_error(g, c, "its passes do not share one set of weights")
    k = len(c1[0].steps)
    if any(len(c.steps) != k for c in chains):
        _batched_error(g, anchor, "its passes have different lengths")
    xs = g.shapes.get(X)
    if xs is None or len(xs) != 4 or xs[0] != 1:
        _batched_error(g, anchor, f"its input {X!r} is not a (1, C, H, W) tensor (shape {xs})")
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
        _batched_error(g, anchor, "no tensor after its passes holds the pooled output (4·h2·patches values "
                                  "with the batch axis back)")
    for i in nodes:
        for o in g.nodes[i].output:
            if o and o != Y:
                if o == g.output:
                    _batched_error(g, anchor, f"{o!r} inside the RNNPool region is the model output")
                for u in g.consumers.get(o, []):
                    if u not in nodes:
                        _batched_error(g, anchor, f"{_label(g.nodes[u])} uses {o!r} from inside the RNNPool region")
    params = {f"rnn1.{r}": v for r, v in _weights(c1[0]).items()}
    params.update({f"rnn2.{r}": v for r, v in _weights(c2[0]).items()})
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
        _batched_error(g, anchor, f"its region cannot be evaluated for checking ({e})")
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
                name = _name_of([nm for c in chains for s in c.steps for nm in s.names], "rnnpool")
                return _Region(X, Y, nodes, params, k, st, perm, name)
    _batched_error(g, anchor, f"the region from {X!r} to {Y!r} does not compute the IR's rnnpool (patch "
                              f"{k}, any stride, output (4·h2, Ho, Wo) in any axis order) — checked with "
                              "onnx.reference")


def _emit_region(ctx: _Ctx, r: _Region):
    anchor = ctx.g.nodes[min(r.nodes)]
    x = ctx.rebatch(anchor, r.x, 0)
    y = ctx.emit("rnnpool", [x], r.params, {"patch": r.patch, "stride": r.stride}, name=r.name,
                 hint=f"{r.name}.out")
    if tuple(r.perm) != (0, 1, 2):
        y = ctx.emit("transpose", [y], attrs={"perm": list(r.perm)}, hint=f"{r.name}.t")
    yps = tuple(ctx.g.shapes[r.y][1:])
    ctx.bind(r.y, ctx.reshape(y, yps, out=r.y), 0)


# ---------------------------------------------------------------------------------------------
# emission: ONNX nodes → float ops, tracking per-sample shapes on a batch-1 dummy
# ---------------------------------------------------------------------------------------------
class _Ctx:
    def __init__(self, g: _Graph):
        self.g = g
        self.ops: list[FloatOp] = []
        self.t: dict[str, tuple[str, int]] = {}     # ONNX tensor → (IR tensor, batch axis)
        self.val: dict[str, np.ndarray] = {}        # IR tensor → batch-1 value (shapes)
        self.names: set[str] = set()
        self.opnames: set[str] = set()
        self.skip: set[int] = set()
        self.live: set[str] = set()

    # -- tensors ----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}:{k}", k + 1
        self.names.add(name)
        return name

    def const(self, t: str):
        return self.g.consts.get(t) if t else None

    def is_const(self, t: str) -> bool:
        return t in self.g.consts

    def dyn(self, node, t: str) -> tuple[str, int]:
        if t not in self.t:
            raise ProgramError(f"{_label(node)}: input {t!r} is not available (unsupported producer)")
        return self.t[t]

    def ps(self, ir: str) -> tuple:
        return tuple(self.val[ir].shape[1:])

    def full(self, t: str) -> tuple:
        ir, b = self.t[t]
        s = list(self.ps(ir))
        s.insert(b, 1)
        return tuple(s)

    def bind(self, t: str, ir: str, b: int):
        self.t[t] = (ir, int(b))

    def emit(self, op: str, ins, params=None, attrs=None, out: str | None = None, name: str | None = None,
             hint: str = "t") -> str:
        out = self.fresh(out or hint)
        nm = name or out
        k = 2
        while nm in self.opnames:
            nm, k = f"{name or out}_{k}", k + 1
        self.opnames.add(nm)
        fop = FloatOp(op, list(ins), [out], params or {}, attrs or {}, nm)
        try:
            self.val[out] = FLOAT_OPS[op](fop, [self.val[i] for i in fop.inputs], None)
        except Exception as e:  # noqa: BLE001
            raise ProgramError(f"{op} {nm!r}: does not apply to inputs of shapes "
                               f"{[self.ps(i) for i in fop.inputs]}: {e}") from None
        self.ops.append(fop)
        return out

    def reshape(self, ir: str, shape, out=None, hint="reshape") -> str:
        shape = tuple(int(s) for s in shape)
        if self.ps(ir) == shape:
            return ir
        if len(shape) == 1 and len(self.ps(ir)) > 1:
            return self.emit("flatten", [ir], out=out, hint=hint)
        return self.emit("reshape", [ir], attrs={"shape": list(shape)}, out=out, hint=hint)

    def rebatch(self, node, t: str, r: int) -> str:
        """The IR tensor of ONNX tensor t with its batch on ONNX axis r."""
        ir, b = self.dyn(node, t)
        if b == r:
            return ir
        full = self.full(t)
        if not (0 <= r < len(full)) or full[r] != 1:
            raise ProgramError(f"{_label(node)}: needs the batch on axis {r} of {t!r} (shape {full}), "
                               f"but the batch is axis {b}")
        s = list(full)
        del s[r]
        return self.reshape(ir, s, hint=f"{t}:batch{r}")

    def per_sample_const(self, node, c, t: str):
        """A constant broadcast against ONNX tensor t → the per-sample parameter, or error."""
        full = self.full(t)
        _, b = self.t[t]
        c = np.asarray(c, np.float64)
        if c.ndim > len(full):
            raise ProgramError(f"{_label(node)}: the constant of shape {c.shape} has more axes than "
                               f"the tensor {t!r} {full}")
        cf = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
        if cf.shape[b] != 1:
            raise ProgramError(f"{_label(node)}: the constant of shape {c.shape} broadcasts along the "
                               f"batch axis of {t!r}")
        y = cf.reshape(cf.shape[:b] + cf.shape[b + 1:])
        try:
            ok = np.broadcast_shapes(y.shape, self.ps(self.t[t][0])) == self.ps(self.t[t][0])
        except ValueError:
            ok = False
        if not ok:
            raise ProgramError(f"{_label(node)}: the constant of shape {c.shape} does not broadcast to "
                               f"the tensor {t!r} of shape {full} without enlarging it")
        while y.ndim and y.shape[0] == 1:
            y = y[0]
        return y


def _axis(node, ctx: _Ctx, t: str, a: int, what="axis") -> int:
    """ONNX axis of t → per-sample axis (error for the batch axis)."""
    full = ctx.full(t)
    a = int(a)
    if not -len(full) <= a < len(full):
        raise ProgramError(f"{_label(node)}: {what} {a} out of range for shape {full}")
    a %= len(full)
    b = ctx.t[t][1]
    if a == b:
        raise ProgramError(f"{_label(node)}: operates on the batch axis ({what} {a} of shape {full}); "
                           "the model must treat samples independently")
    return a if a < b else a - 1


def _batch_after(in_full, b, out_full, node) -> int:
    ones = [j for j, s in enumerate(out_full) if s == 1]
    if not ones:
        raise ProgramError(f"{_label(node)}: turns shape {tuple(in_full)} into {tuple(out_full)}, merging the "
                           f"batch axis (axis {b}) with other axes or dropping it — not expressible per "
                           "sample (export with the batch kept as its own axis)")
    pre = int(np.prod(in_full[:b], dtype=np.int64))
    same = [j for j in ones if int(np.prod(out_full[:j], dtype=np.int64)) == pre]
    if b in same:
        return b
    return same[0] if same else ones[0]


def _reshape_to(ctx: _Ctx, node, t: str, out_full, out=None):
    ir, b = ctx.dyn(node, t)
    in_full = ctx.full(t)
    nb = _batch_after(in_full, b, out_full, node)
    s = list(out_full)
    del s[nb]
    if tuple(s) == ctx.ps(ir):
        ctx.bind(out or node.output[0], ir, nb)
    else:
        ctx.bind(out or node.output[0], ctx.reshape(ir, s, out=out or node.output[0]), nb)


# ---- elementwise ------------------------------------------------------------------------------
def _unary(op):
    def f(ctx: _Ctx, node):
        ir, b = ctx.dyn(node, node.input[0])
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    return f


def _alias(ctx: _Ctx, node):
    ir, b = ctx.dyn(node, node.input[0])
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{_label(node)}: output {o!r} (e.g. a dropout mask) is not supported")
    ctx.bind(node.output[0], ir, b)


def _cast(ctx: _Ctx, node):
    if int(_attrs(node).get("to", 1)) not in _FLOAT_TYPES:
        raise ProgramError(f"{_label(node)}: cast to a non-float type is not supported")
    _alias(ctx, node)


def _binary(ctx: _Ctx, node):
    op = node.op_type
    a, b = node.input[0], node.input[1]
    out = node.output[0]
    ca, cb = ctx.is_const(a), ctx.is_const(b)
    if op == "Div" and not cb:
        raise ProgramError(f"{_label(node)}: division by a tensor is not supported (the IR has no "
                           "division op)")
    if ca or cb:
        t, c = (b, ctx.const(a)) if ca else (a, ctx.const(b))
        ir, bt = ctx.dyn(node, t)
        y = ctx.per_sample_const(node, c, t)
        if op == "Add":
            res = ctx.emit("add", [ir], {"y": y}, out=out)
        elif op == "Mul":
            res = ctx.emit("mul", [ir], {"y": y}, out=out)
        elif op == "Sub" and cb:
            res = ctx.emit("add", [ir], {"y": -y}, out=out)
        elif op == "Sub":
            res = ctx.emit("add", [ctx.emit("mul", [ir], {"y": np.float64(-1.0)}, hint=f"{out}:neg")],
                           {"y": y}, out=out)
        else:  # Div by a constant
            if np.any(y == 0):
                raise ProgramError(f"{_label(node)}: division by a constant containing 0")
            res = ctx.emit("mul", [ir], {"y": 1.0 / y}, out=out)
        ctx.bind(out, res, bt)
        return
    ia, ba = ctx.dyn(node, a)
    ib, bb = ctx.dyn(node, b)
    if ctx.full(a) != ctx.full(b):
        raise ProgramError(f"{_label(node)}: broadcasting between two tensors ({ctx.full(a)} and "
                           f"{ctx.full(b)}) is not supported: the IR's add/mul take equal shapes")
    if ba != bb:
        ib = ctx.rebatch(node, b, ba)
    if op == "Add":
        res = ctx.emit("add", [ia, ib], out=out)
    elif op == "Mul":
        res = ctx.emit("mul", [ia, ib], out=out)
    else:  # Sub
        res = ctx.emit("add", [ia, ctx.emit("mul", [ib], {"y": np.float64(-1.0)}, hint=f"{out}:neg")], out=out)
    ctx.bind(out, res, ba)


def _neg(ctx: _Ctx, node):
    ir, b = ctx.dyn(node, node.input[0])
    ctx.bind(node.output[0], ctx.emit("mul", [ir], {"y": np.float64(-1.0)}, out=node.output[0]), b)


# ---- affine -----------------------------------------------------------------------------------
def _matmul(ctx: _Ctx, node):
    x, w = node.input
    if ctx.is_const(x) or not ctx.is_const(w):
        raise ProgramError(f"{_label(node)}: only x·W with a constant W is supported (no constant left "
                           "operand, no product of two tensors)")
    W = np.asarray(ctx.const(w), np.float64)
    ir, b = ctx.dyn(node, x)
    full = ctx.full(x)
    if b == len(full) - 1:
        raise ProgramError(f"{_label(node)}: contracts the batch axis")
    out = node.output[0]
    if W.ndim == 1:
        y = ctx.emit("matmul", [ir], {"W": W[:, None]}, hint=f"{out}:mv")
        ctx.bind(out, ctx.reshape(y, ctx.ps(y)[:-1], out=out), b)
        return
    if W.ndim != 2:
        raise ProgramError(f"{_label(node)}: batched MatMul with a {W.ndim}-D constant is not supported")
    params = {"W": W}
    # fuse a following Add of a bias over the last axis
    g = ctx.g
    cons = g.consumers.get(out, [])
    if len(cons) == 1 and out != g.output and g.nodes[cons[0]].op_type == "Add":
        sc = g.split_const(cons[0])
        if sc is not None and sc[0] == out:
            c = np.asarray(sc[1], np.float64)
            if c.ndim <= len(full) and c.size == W.shape[1] and c.shape[-1:] == (W.shape[1],):
                params["b"] = c.reshape(-1)
                ctx.skip.add(cons[0])
                out = g.nodes[cons[0]].output[0]
    ctx.bind(out, ctx.emit("matmul", [ir], params, out=out), b)


def _gemm(ctx: _Ctx, node):
    a = _attrs(node)
    A, B = node.input[0], node.input[1]
    if ctx.is_const(A) or not ctx.is_const(B) or a.get("transA", 0):
        raise ProgramError(f"{_label(node)}: only Gemm(x, constant B) without transA is supported")
    ir = ctx.rebatch(node, A, 0)
    if len(ctx.full(A)) != 2:
        raise ProgramError(f"{_label(node)}: Gemm needs a 2-D input, got {ctx.full(A)}")
    W = float(a.get("alpha", 1.0)) * np.asarray(ctx.const(B), np.float64)
    W = W if a.get("transB", 0) else W.T
    params = {"W": W}
    if len(node.input) > 2 and node.input[2]:
        if not ctx.is_const(node.input[2]):
            raise ProgramError(f"{_label(node)}: the bias C must be a constant")
        c = float(a.get("beta", 1.0)) * np.asarray(ctx.const(node.input[2]), np.float64)
        if c.size not in (1, W.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise ProgramError(f"{_label(node)}: bias C of shape {c.shape} is not one value per output")
        params["b"] = np.broadcast_to(c.reshape(-1), (W.shape[0],)).copy()
    ctx.bind(node.output[0], ctx.emit("linear", [ir], params, out=node.output[0]), 0)


def _pads(node, a, nd, kernel, in_hw, strides):
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for k, n, s in zip(kernel, in_hw, strides):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append(total)
        if any(p % 2 for p in pads):
            raise ProgramError(f"{_label(node)}: {auto} padding is asymmetric here: not supported")
        return [p // 2 for p in pads]
    pads = list(a.get("pads", [0] * (2 * nd))) if auto == "NOTSET" else [0] * (2 * nd)
    if pads[:nd] != pads[nd:]:
        raise ProgramError(f"{_label(node)}: asymmetric padding {pads} is not supported")
    return pads[:nd]


def _conv(ctx: _Ctx, node):
    a = _attrs(node)
    if not ctx.is_const(node.input[1]) or (len(node.input) > 2 and node.input[2] and not ctx.is_const(node.input[2])):
        raise ProgramError(f"{_label(node)}: the weights and bias must be constants")
    W = np.asarray(ctx.const(node.input[1]), np.float64)
    nd = W.ndim - 2
    if nd not in (1, 2):
        raise ProgramError(f"{_label(node)}: only 1-D and 2-D convolutions are supported")
    if int(a.get("group", 1)) != 1:
        raise ProgramError(f"{_label(node)}: grouped / depthwise convolution (group {a['group']}) is not supported")
    if any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise ProgramError(f"{_label(node)}: dilated convolution is not supported")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    if len(xs) != nd + 1:
        raise ProgramError(f"{_label(node)}: input of shape {ctx.full(node.input[0])} for a {nd}-D convolution")
    strides = list(a.get("strides", [1] * nd))
    pads = _pads(node, a, nd, W.shape[2:], xs[1:], strides)
    params = {"W": W}
    if len(node.input) > 2 and node.input[2]:
        params["b"] = np.asarray(ctx.const(node.input[2]), np.float64)
    out = node.output[0]
    if nd == 1:
        params["W"] = W[:, :, None, :]
        x2 = ctx.reshape(ir, (xs[0], 1, xs[1]), hint=f"{out}:2d")
        y = ctx.emit("conv2d", [x2], params, {"stride": [1, int(strides[0])], "padding": [0, int(pads[0])]},
                     hint=f"{out}:conv2d")
        ys = ctx.ps(y)
        ctx.bind(out, ctx.reshape(y, (ys[0], ys[2]), out=out), 0)
        return
    st = [int(s) for s in strides]
    pd = [int(p) for p in pads]
    ctx.bind(out, ctx.emit("conv2d", [ir], params, {"stride": st[0] if st[0] == st[1] else st,
                                                    "padding": pd[0] if pd[0] == pd[1] else pd}, out=out), 0)


def _maxpool(ctx: _Ctx, node):
    a = _attrs(node)
    if len(node.output) > 1 and node.output[1] in ctx.live:
        raise ProgramError(f"{_label(node)}: the indices output is not supported")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    out = node.output[0]
    if node.op_type == "GlobalMaxPool":
        if len(xs) != 3:
            raise ProgramError(f"{_label(node)}: only 2-D global max-pooling is supported")
        y = ctx.emit("maxpool2d", [ir], attrs={"kernel": [xs[1], xs[2]], "stride": [1, 1]}, hint=f"{out}:pool")
        ctx.bind(out, ctx.reshape(y, (xs[0], 1, 1), out=out), 0)
        return
    k = list(a["kernel_shape"])
    nd = len(k)
    if nd not in (1, 2) or len(xs) != nd + 1:
        raise ProgramError(f"{_label(node)}: only 1-D and 2-D max-pooling is supported")
    st = list(a.get("strides", [1] * nd))
    if any(p != 0 for p in _pads(node, a, nd, k, xs[1:], st)) or any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise ProgramError(f"{_label(node)}: max-pooling with padding or dilation is not supported")
    if a.get("ceil_mode", 0) and any((n - kk) % s for n, kk, s in zip(xs[1:], k, st)):
        raise ProgramError(f"{_label(node)}: ceil_mode with a partial last window is not supported")
    if nd == 1:
        x2 = ctx.reshape(ir, (xs[0], 1, xs[1]), hint=f"{out}:2d")
        y = ctx.emit("maxpool2d", [x2], attrs={"kernel": [1, int(k[0])], "stride": [1, int(st[0])]},
                     hint=f"{out}:pool2d")
        ys = ctx.ps(y)
        ctx.bind(out, ctx.reshape(y, (ys[0], ys[2]), out=out), 0)
        return
    ctx.bind(out, ctx.emit("maxpool2d", [ir], attrs={"kernel": [int(v) for v in k], "stride": [int(v) for v in st]},
                           out=out), 0)


def _batchnorm(ctx: _Ctx, node):
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{_label(node)}: training-mode outputs are not supported")
    a = _attrs(node)
    scale, bias, mean, var = (np.asarray(ctx.const(t), np.float64) if ctx.is_const(t) else None
                              for t in node.input[1:5])
    if any(v is None for v in (scale, bias, mean, var)):
        raise ProgramError(f"{_label(node)}: scale, bias, mean and var must be constants")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    m = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    shape = (xs[0],) + (1,) * (len(xs) - 1)
    y = ctx.emit("mul", [ir], {"y": m.reshape(shape)}, hint=f"{node.output[0]}:scale")
    ctx.bind(node.output[0], ctx.emit("add", [y], {"y": (bias - mean * m).reshape(shape)}, out=node.output[0]), 0)


def _softmax(op):
    def f(ctx: _Ctx, node):
        a = _attrs(node)
        t = node.input[0]
        ir, b = ctx.dyn(node, t)
        if op == "l2norm" and int(a.get("p", 2)) != 2:
            raise ProgramError(f"{_label(node)}: only p = 2 is supported")
        default = -1 if (op == "l2norm" or ctx.g.opset >= 13) else 1
        ax = _axis(node, ctx, t, a.get("axis", default))
        if ax != len(ctx.ps(ir)) - 1:
            raise ProgramError(f"{_label(node)}: only the last axis is supported")
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    return f


def _argmax(ctx: _Ctx, node):
    a = _attrs(node)
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    if a.get("select_last_index", 0):
        raise ProgramError(f"{_label(node)}: select_last_index is not supported (ties pick the first)")
    if _axis(node, ctx, t, a.get("axis", 0)) != len(ctx.ps(ir)) - 1:
        raise ProgramError(f"{_label(node)}: only the last axis is supported")
    for c in ctx.g.consumers.get(node.output[0], []):
        raise ProgramError(f"{_label(ctx.g.nodes[c])}: uses an ArgMax index; the IR ends at ArgMax")
    ctx.bind(node.output[0], ctx.emit("argmax", [ir], out=node.output[0]), b)


# ---- plumbing ---------------------------------------------------------------------------------
def _reshape(ctx: _Ctx, node):
    t = node.input[0]
    if not ctx.is_const(node.input[1]):
        raise ProgramError(f"{_label(node)}: the target shape must be a constant")
    shape = [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    full = ctx.full(t)
    if not _attrs(node).get("allowzero", 0):
        shape = [full[k] if v == 0 else v for k, v in enumerate(shape)]
    try:
        out_full = np.empty(full, np.int8).reshape(shape).shape
    except ValueError:
        raise ProgramError(f"{_label(node)}: cannot reshape {full} to {shape}") from None
    _reshape_to(ctx, node, t, out_full)


def _flatten(ctx: _Ctx, node):
    t = node.input[0]
    full = ctx.full(t)
    k = int(_attrs(node).get("axis", 1))
    k = k + len(full) if k < 0 else k
    _reshape_to(ctx, node, t, (int(np.prod(full[:k], dtype=np.int64)), int(np.prod(full[k:], dtype=np.int64))))


def _axes_of(ctx: _Ctx, node):
    a = _attrs(node)
    if "axes" in a:
        return list(a["axes"])
    if len(node.input) > 1 and node.input[1]:
        if not ctx.is_const(node.input[1]):
            raise ProgramError(f"{_label(node)}: the axes must be constants")
        return [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    return None


def _squeeze(ctx: _Ctx, node):
    t = node.input[0]
    full = list(ctx.full(t))
    axes = _axes_of(ctx, node)
    if node.op_type == "Unsqueeze":
        n = len(full) + len(axes)
        axes = sorted(a % n for a in axes)
        ir, b = ctx.dyn(node, t)
        nb = b
        for a in axes:
            full.insert(a, 1)
            if a <= nb:
                nb += 1
        ctx.bind(node.output[0], ctx.reshape(ir, full[:nb] + full[nb + 1:], out=node.output[0]), nb)
        return
    axes = [a % len(full) for a in axes] if axes is not None else [k for k, s in enumerate(full) if s == 1]
    out_full = [s for k, s in enumerate(full) if k not in axes]
    ir, b = ctx.dyn(node, t)
    if b not in axes:
        nb = b - sum(1 for a in axes if a < b)
        ctx.bind(node.output[0], ctx.reshape(ir, out_full[:nb] + out_full[nb + 1:], out=node.output[0]), nb)
        return
    _reshape_to(ctx, node, t, out_full)


def _transpose(ctx: _Ctx, node):
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    n = len(ctx.full(t))
    perm = list(_attrs(node).get("perm", list(range(n))[::-1]))
    nb = perm.index(b)
    ps = [p if p < b else p - 1 for k, p in enumerate(perm) if k != nb]
    if ps == sorted(ps):
        ctx.bind(node.output[0], ir, nb)
    else:
        ctx.bind(node.output[0], ctx.emit("transpose", [ir], attrs={"perm": ps}, out=node.output[0]), nb)


def _slice_ir(ctx: _Ctx, ir: str, pa: int, r: range, out=None, hint="slice") -> str:
    n = ctx.ps(ir)[pa]
    if len(r) == 0:
        raise ProgramError(f"empty slice of axis {pa} of a tensor of shape {ctx.ps(ir)}")
    if r == range(n):
        return ir
    stop = r.stop if r.stop >= 0 else None
    return ctx.emit("slice", [ir], attrs={"axis": pa, "start": r.start, "stop": stop, "step": r.step},
                    out=out, hint=hint)


def _slice(ctx: _Ctx, node):
    t = node.input[0]
    a = _attrs(node)
    full = ctx.full(t)
    if "starts" in a:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        vals = [np.asarray(ctx.const(x)).reshape(-1).tolist() if x else None for x in node.input[1:5]]
        if any(x and not ctx.is_const(x) for x in node.input[1:5]):
            raise ProgramError(f"{_label(node)}: starts/ends/axes/steps must be constants")
        starts, ends = vals[0], vals[1]
        axes = vals[2] if len(vals) > 2 else None
        steps = vals[3] if len(vals) > 3 else None
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    ir, b = ctx.dyn(node, t)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = int(ax) % len(full)
        r = range(*slice(int(s), int(e), int(st)).indices(full[ax]))
        if ax == b:
            if len(r) != 1:
                raise ProgramError(f"{_label(node)}: slices the batch axis")
            continue
        ir = _slice_ir(ctx, ir, ax if ax < b else ax - 1, r, hint=f"{node.output[0]}:ax{ax}")
    ctx.bind(node.output[0], ir, b)


def _split(ctx: _Ctx, node):
    t = node.input[0]
    a = _attrs(node)
    full = ctx.full(t)
    pa = _axis(node, ctx, t, a.get("axis", 0))
    ax = int(a.get("axis", 0)) % len(full)
    n = full[ax]
    if "split" in a:
        sizes = list(a["split"])
    elif len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    else:
        k = int(a.get("num_outputs", len(node.output)))
        sizes = [-(-n // k)] * (k - 1)
        sizes.append(n - sum(sizes))
    ir, b = ctx.dyn(node, t)
    start = 0
    for o, sz in zip(node.output, sizes):
        if o:
            ctx.bind(o, _slice_ir(ctx, ir, pa, range(start, start + sz), out=o), b)
        start += sz


def _concat(ctx: _Ctx, node):
    ins = [x for x in node.input if x]
    if any(ctx.is_const(x) for x in ins):
        raise ProgramError(f"{_label(node)}: concatenation with a constant is not supported")
    first = ins[0]
    pa = _axis(node, ctx, first, _attrs(node)["axis"])
    b = ctx.dyn(node, first)[1]
    irs = [ctx.rebatch(node, x, b) for x in ins]
    if len(irs) == 1:
        ctx.bind(node.output[0], irs[0], b)
        return
    ctx.bind(node.output[0], ctx.emit("concat", irs, attrs={"axis": pa}, out=node.output[0]), b)


def _gather(ctx: _Ctx, node):
    t, ix = node.input
    if ctx.is_const(t) or not ctx.is_const(ix):
        raise ProgramError(f"{_label(node)}: only Gather of a tensor at constant indices is supported "
                           "(no data-dependent indexing, no embedding lookup)")
    idx = np.asarray(ctx.const(ix)).astype(np.int64)
    a = int(_attrs(node).get("axis", 0))
    full = ctx.full(t)
    ir, b = ctx.dyn(node, t)
    ax = a % len(full)
    n = full[ax]
    out = node.output[0]
    if ax == b:
        if idx.ndim == 0 and int(idx) % n == 0:  # x[0] of the batch: drop it, find another batch axis
            _reshape_to(ctx, node, t, full[:ax] + full[ax + 1:])
            return
        raise ProgramError(f"{_label(node)}: indexes the batch axis")
    pa = ax if ax < b else ax - 1
    flat = [int(i) % n for i in idx.reshape(-1)]
    if idx.ndim > 1:
        raise ProgramError(f"{_label(node)}: indices of rank {idx.ndim} are not supported")
    if idx.ndim == 0 or _progression(flat):
        step = 1 if len(flat) == 1 else flat[1] - flat[0]
        y = _slice_ir(ctx, ir, pa, range(flat[0], flat[-1] + step, step), hint=f"{out}:slice")
    else:
        parts = [_slice_ir(ctx, ir, pa, range(i, i + 1), hint=f"{out}:{i}") for i in flat]
        y = ctx.emit("concat", parts, attrs={"axis": pa}, hint=f"{out}:cat")
    if idx.ndim == 0:
        s = list(ctx.ps(y))
        del s[pa]
        y = ctx.reshape(y, s, out=out)
        ctx.bind(out, y, b if ax > b else b - 1)
        return
    ctx.bind(out, y, b)


# ---- ONNX LSTM / GRU --------------------------------------------------------------------------
_LSTM_ORDER = (0, 2, 3, 1)   # ONNX i, o, f, c → torch i, f, g(c), o
_GRU_ORDER = (1, 0, 2)       # ONNX z, r, h → torch r, z, n


def _blocks(m, order, H):
    return np.concatenate([m[k * H:(k + 1) * H] for k in order], axis=0)


def _rnn(ctx: _Ctx, node):
    kind = node.op_type.lower()
    a = _attrs(node)
    label = _label(node)
    H = int(a["hidden_size"])
    direction = a.get("direction", "forward")
    nd = 2 if direction == "bidirectional" else 1
    acts = a.get("activations")
    default = ["Sigmoid", "Tanh", "Tanh"] if kind == "lstm" else ["Sigmoid", "Tanh"]
    if acts and [s.lower() for s in acts] != [s.lower() for s in default * nd]:
        raise ProgramError(f"{label}: activations {acts} are not supported (default {default} only)")
    if "clip" in a:
        raise ProgramError(f"{label}: cell clipping is not supported")
    if a.get("input_forget", 0):
        raise ProgramError(f"{label}: input_forget (coupled gates) is not supported")
    if kind == "gru" and not a.get("linear_before_reset", 0):
        raise ProgramError(f"{label}: GRU with linear_before_reset = 0 is not expressible: the IR's gru "
                           "is PyTorch's GRU, r ⊙ (W_hn·h + b_hn), i.e. linear_before_reset = 1")
    layout = int(a.get("layout", 0))
    ins = list(node.input) + [""] * 8
    X, W, R, B, seq_lens, h0 = ins[:6]
    c0, P = (ins[6], ins[7]) if kind == "lstm" else ("", "")
    for what, t in (("W", W), ("R", R), ("B", B)):
        if t and not ctx.is_const(t):
            raise ProgramError(f"{label}: {what} must be a constant")
    for what, t in (("initial_h", h0), ("initial_c", c0), ("P (peepholes)", P)):
        if t and (not ctx.is_const(t) or np.any(np.asarray(ctx.const(t)) != 0)):
            raise ProgramError(f"{label}: {what} must be absent or zero (the IR's cells start from zero "
                               "and have no peepholes)")
    x = ctx.rebatch(node, X, 1 if layout == 0 else 0)
    xs = ctx.ps(x)
    if len(xs) != 2:
        raise ProgramError(f"{label}: input of shape {ctx.full(X)}, expected a sequence")
    T = xs[0]
    if seq_lens and (not ctx.is_const(seq_lens) or np.any(np.asarray(ctx.const(seq_lens)) != T)):
        raise ProgramError(f"{label}: sequence_lens other than the full length T = {T} is not supported")
    Wc, Rc = (np.asarray(ctx.const(t), np.float64) for t in (W, R))
    ng = 4 if kind == "lstm" else 3
    Bc = np.asarray(ctx.const(B), np.float64) if B else np.zeros((nd, 2 * ng * H))
    order = _LSTM_ORDER if kind == "lstm" else _GRU_ORDER
    Y, Yh = node.output[0] if node.output else "", node.output[1] if len(node.output) > 1 else ""
    if len(node.output) > 2 and node.output[2] in ctx.live:
        raise ProgramError(f"{label}: the output Y_c (final cell state) is not supported")
    need_y, need_h = Y in ctx.live, Yh in ctx.live
    base = node.name or node.output[0]
    seqs, finals = [], []
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        params = {"W_ih": _blocks(Wc[d], order, H), "W_hh": _blocks(Rc[d], order, H),
                  "b_ih": _blocks(Bc[d, :ng * H], order, H), "b_hh": _blocks(Bc[d, ng * H:], order, H)}
        xin = _slice_ir(ctx, x, 0, range(T - 1, -1, -1), hint=f"{base}:rev{d}") if reverse and T > 1 else x
        name = base if nd == 1 else f"{base}_{'bwd' if reverse else 'fwd'}"
        hseq = ctx.emit(kind, [xin], params, {"sequence": True} if need_y else {}, name=name,
                        hint=f"{name}:h")
        if need_y:
            seqs.append(_slice_ir(ctx, hseq, 0, range(T - 1, -1, -1), hint=f"{name}:y") if reverse and T > 1 else hseq)
            last = ctx.reshape(_slice_ir(ctx, hseq, 0, range(T - 1, T), hint=f"{name}:last"), (H,),
                               hint=f"{name}:hT") if need_h else None
        else:
            last = hseq
        finals.append(last)
    if need_y:
        parts = [ctx.reshape(s, (T, 1, H), hint=f"{s}:3d") for s in seqs]
        y = parts[0] if nd == 1 else ctx.emit("concat", parts, attrs={"axis": 1}, hint=f"{Y}:cat")
        ctx.bind(Y, ctx.reshape(y, (T, nd, H), out=Y), 2 if layout == 0 else 0)
    if need_h:
        parts = [ctx.reshape(f, (1, H), hint=f"{f}:2d") for f in finals]
        y = parts[0] if nd == 1 else ctx.emit("concat", parts, attrs={"axis": 0}, hint=f"{Yh}:cat")
        ctx.bind(Yh, ctx.reshape(y, (nd, H), out=Yh), 1 if layout == 0 else 0)


#: ONNX op type → handler(ctx, node)
HANDLERS = {
    "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"), "Tanh": _unary("tanh"),
    "Softmax": _softmax("softmax"), "LpNormalization": _softmax("l2norm"), "ArgMax": _argmax,
    "Add": _binary, "Sub": _binary, "Mul": _binary, "Div": _binary, "Neg": _neg,
    "MatMul": _matmul, "Gemm": _gemm, "Conv": _conv, "MaxPool": _maxpool, "GlobalMaxPool": _maxpool,
    "BatchNormalization": _batchnorm,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _squeeze,
    "Transpose": _transpose, "Slice": _slice, "Split": _split, "Concat": _concat, "Gather": _gather,
    "Identity": _alias, "Dropout": _alias, "Cast": _cast,
    "LSTM": _rnn, "GRU": _rnn,
}
#: the ONNX op types the importer maps (plus the unrolled FastGRNN pattern and constant folding)
SUPPORTED_OPS = tuple(sorted(HANDLERS))


# ---- fused FastGRNN chains ------------------------------------------------------------------------
def _emit_chain(ctx: _Ctx, c: _Chain):
    first = c.steps[0]
    T = len(c.steps)
    anchor = ctx.g.nodes[first.anchor]
    src = c.seq_src
    if src and src[0] == "input":
        _, X, ax, idx = src
        x = ctx.rebatch(anchor, X, 0)
        if ax == 2:
            x = ctx.emit("transpose", [x], attrs={"perm": [1, 0]}, hint=f"{c.name}:xT")
        step = 1 if len(idx) == 1 else idx[1] - idx[0]
        x = _slice_ir(ctx, x, 0, range(idx[0], idx[-1] + step, step), hint=f"{c.name}:x")
    elif src and src[0] == "chain":
        _, other, idx = src
        step = 1 if len(idx) == 1 else idx[1] - idx[0]
        x = _slice_ir(ctx, ctx.t[other.token][0], 0, range(idx[0], idx[-1] + step, step), hint=f"{c.name}:x")
    else:
        parts = []
        for s in c.steps:
            ir = ctx.rebatch(anchor, s.x, 0)
            if len(ctx.ps(ir)) != 1:
                raise ProgramError(f"{_label(anchor)}: the FastGRNN input x_t {s.x!r} has shape "
                                   f"{ctx.full(s.x)}; the IR's cells take one vector per timestep")
            parts.append(ctx.reshape(ir, (1,) + ctx.ps(ir), hint=f"{s.x}:row"))
        x = parts[0] if T == 1 else ctx.emit("concat", parts, attrs={"axis": 0}, hint=f"{c.name}:x")
    w = dict(first.w["W"])
    H = first.bias["b_z"].shape[0]
    w.update(c.u if c.u is not None else {"U": np.zeros((H, H))})
    w.update(b_z=first.bias["b_z"], b_h=first.bias["b_h"], zeta=np.float64(first.bias["zeta"]),
             nu=np.float64(first.bias["nu"]))
    D = w["W"].shape[1] if "W" in w else w["W2"].shape[1]
    if ctx.ps(x) != (T, D):
        raise ProgramError(f"{_label(anchor)}: the FastGRNN input sequence has shape {ctx.ps(x)}, "
                           f"expected (T, D) = {(T, D)}")
    last = c.steps[-1].out
    if not c.sequence:
        h = ctx.emit("fastgrnn", [x], w, out=f"{c.name}.h", name=c.name)
        ctx.bind(last, h, 0)
        return
    hs = ctx.emit("fastgrnn", [x], w, {"sequence": True}, name=c.name, hint=c.token)
    ctx.bind(c.token, hs, 0)
    for t, o in c.external.items():
        ctx.bind(o, ctx.reshape(_slice_ir(ctx, hs, 0, range(t, t + 1), hint=f"{o}:slice"), (H,), out=o), 0)


# ---------------------------------------------------------------------------------------------
def _order(g: _Graph, chains: list[_Chain], regions: list) -> list:
    """Topological order of the remaining nodes, the chains and the RNNPool regions (as items), dead
    items dropped."""
    absorbed = set()
    items = []
    for c in chains:
        absorbed |= set().union(*(s.nodes for s in c.steps))
    for r in regions:
        absorbed |= r.nodes
    for i, n in enumerate(g.nodes):
        if i not in absorbed:
            items.append((i, ("node", i), [t for t in n.input if t], [o for o in n.output if o]))
    for c in chains:
        if c.seq_src and c.seq_src[0] == "input":
            ins = [c.seq_src[1]]
        elif c.seq_src:
            ins = [c.seq_src[1].token]
        else:
            ins = [s.x for s in c.steps]
        outs = list(c.external.values()) + ([c.token] if c.sequence else [])
        pos = max(max(s.nodes) for s in c.steps)
        items.append((pos, ("chain", c), ins, outs))
    for r in regions:
        items.append((max(r.nodes), ("region", r), [r.x], [r.y]))
    prod = {o: k for k, it in enumerate(items) for o in it[3]}
    deps = [{prod[t] for t in it[2] if t in prod} for it in items]
    users: dict = {}
    for k, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(k)
    left = [len(d) for d in deps]
    heap = [(items[k][0], k) for k in range(len(items)) if not left[k]]
    heapq.heapify(heap)
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for u in users.get(k, []):
            left[u] -= 1
            if not left[u]:
                heapq.heappush(heap, (items[u][0], u))
    if len(order) != len(items):
        raise ProgramError("the ONNX graph has a cycle")
    live = {g.output}
    keep = []
    for k in reversed(order):
        if any(o in live for o in items[k][3]):
            keep.append(k)
            live.update(items[k][2])
    return [items[k][1] for k in reversed(keep)], live


def _model(source):
    onnx = _onnx()
    if isinstance(source, onnx.ModelProto):
        return source, getattr(source.graph, "name", "") or "onnx-model"
    try:
        if isinstance(source, (bytes, bytearray)):
            return onnx.load_from_string(bytes(source)), "onnx-model"
        path = os.fspath(source)
        m = onnx.load(path)
    except ProgramError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf / IO errors
        raise ProgramError(f"{source}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not m.graph.node and not m.graph.input:
        raise ProgramError(f"{source}: not a valid ONNX model (empty graph)")
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return m, parent if stem == "model" and parent else stem


def load_onnx(source, *, output: str | None = None, fuse_cells: bool = True) -> FloatModel:
    """An ONNX model (path, serialized bytes or ``onnx.ModelProto``) → :class:`FloatModel`.

    ``output``: the ONNX output to use when the model has several. ``fuse_cells``: recognise
    unrolled FastGRNN cells and emit one ``fastgrnn`` op per cell (default); ``False`` maps the
    unrolled graph op by op. Raises :class:`~sirnn.errors.ProgramError` naming the ONNX node for
    anything the float IR cannot express (module docstring)."""
    model, name = _model(source)
    g = _read(model, output)
    chains = _chains(g, _find_steps(g)) if fuse_cells else []
    regions, chains = _rnnpool_regions(g, chains)
    plan, live = _order(g, chains, regions)
    ctx = _Ctx(g)
    ctx.live = live
    ctx.names.add(g.input)
    ctx.val[g.input] = np.zeros((1,) + g.input_shape)
    ctx.bind(g.input, g.input, 0)
    for kind, it in plan:
        if kind == "chain":
            _emit_chain(ctx, it)
            continue
        if kind == "region":
            _emit_region(ctx, it)
            continue
        if it in ctx.skip:
            continue
        node = g.nodes[it]
        ins = [t for t in node.input if t]
        if node.op_type == "Shape":
            ctx.dyn(node, node.input[0])
            g.consts[node.output[0]] = _shape_of(node, ctx.full(node.input[0]))
            continue
        if ins and all(ctx.is_const(t) for t in ins):
            for o, v in zip(node.output, _fold(node, [ctx.const(t) for t in node.input], g.opset)):
                if o:
                    g.consts[o] = np.asarray(v)
            continue
        h = HANDLERS.get(node.op_type)
        if h is None:
            raise ProgramError(f"{_label(node)}: this ONNX op is not supported by the sirnn float IR "
                               f"(supported: {', '.join(SUPPORTED_OPS)}, and unrolled FastGRNN cells)")
        h(ctx, node)
    if g.output not in ctx.t:
        raise ProgramError(f"the ONNX output {g.output!r} was not produced")
    out_ir = ctx.t[g.output][0]
    meta = {"name": name, "source": "onnx",
            "onnx": {"producer": f"{model.producer_name} {model.producer_version}".strip(),
                     "opset": int(g.opset), "input": g.input, "output": g.output,
                     "nodes": len(model.graph.node)}}
    fused = [{"name": c.name, "op": "fastgrnn", "timesteps": len(c.steps)} for c in chains]
    fused += [{"name": r.name, "op": "rnnpool", "patch": r.patch, "stride": r.stride, "nodes": len(r.nodes)}
              for r in regions]
    if fused:
        meta["onnx"]["fused"] = fused
    return FloatModel(_simplify(ctx, out_ir), g.input, g.input_shape, out_ir, meta)


def _simplify(ctx: _Ctx, out_ir: str) -> list[FloatOp]:
    """Collapse chains of reshapes (reshape of a reshape = one reshape; back to the original shape
    = nothing), of transposes, concats of adjacent slices, and drop ops whose results are unused."""
    alias: dict = {}
    base: dict = {}
    pieces: dict = {}  # slice output → (source, axis, start, stop) for unit-step slices
    perms: dict = {}   # transpose output → (source, perm)
    ops = []
    for op in ctx.ops:
        op.inputs = [alias.get(t, t) for t in op.inputs]
        o = op.outputs[0]
        if op.op == "slice" and op.attrs.get("step") in (None, 1) and op.attrs.get("start") is not None \
                and op.attrs.get("stop") is not None:
            pieces[o] = (op.inputs[0], op.attrs["axis"], op.attrs["start"], op.attrs["stop"])
        if op.op == "concat" and all(t in pieces for t in op.inputs):
            # concat of adjacent slices of one tensor (e.g. a stack of a cell's states): one slice
            ps = [pieces[t] for t in op.inputs]
            src, ax = ps[0][0], ps[0][1]
            if all(p[0] == src and p[1] == ax == op.attrs.get("axis") for p in ps) \
                    and all(ps[k][3] == ps[k + 1][2] for k in range(len(ps) - 1)):
                start, stop = ps[0][2], ps[-1][3]
                if (start, stop) == (0, ctx.ps(src)[ax]) and o != out_ir:
                    alias[o] = src
                    continue
                op = FloatOp("slice", [src], [o], {}, {"axis": ax, "start": start, "stop": stop, "step": 1},
                             op.name)
        if op.op == "transpose":
            src, p = op.inputs[0], list(op.attrs["perm"])
            if src in perms:  # transpose of a transpose: one permutation
                src, inner = perms[src]
                p = [inner[i] for i in p]
            if p == sorted(p) and o != out_ir:
                alias[o] = src
                continue
            moved = [a for a in p if ctx.ps(src)[a] != 1]
            if moved == sorted(moved):  # only size-1 axes move: a reshape
                op = FloatOp("reshape", [src], [o], {}, {"shape": list(ctx.ps(o))}, op.name)
            else:
                op = FloatOp("transpose", [src], [o], {}, {"perm": p}, op.name)
                perms[o] = (src, p)
        if op.op in ("reshape", "flatten"):
            src = base.get(op.inputs[0], op.inputs[0])
            if ctx.ps(src) == ctx.ps(o) and o != out_ir:
                alias[o] = src
                continue
            op.inputs = [src]
            base[o] = src
        ops.append(op)
    used = {out_ir}
    for op in reversed(ops):
        if op.outputs[0] in used:
            used.update(op.inputs)
    return [op for op in ops if op.outputs[0] in used]


#: the name floatir's ``.onnx`` loader calls
load = load_onnx

register_loader(".onnx", load_onnx)
