"""ONNX front-end: an ONNX float model → a :class:`~sirnn.compiler.floatir.FloatModel`.

``load_onnx(path)`` (what :func:`~sirnn.compiler.floatir.load_float_model` calls for ``.onnx``
files) reads the graph with the ``onnx`` package (imported lazily: ``pip install onnx``; weights
in ONNX external data, ``model.onnx.data``, are read with it), runs the graph passes (constant
and shape folding, fusions), checks that every remaining node has a handler, and maps the nodes
onto the float IR's op vocabulary, one handler per ONNX op type. Both torch exporters
(TorchScript, ``dynamo=False``, and the dynamo exporter) and opsets 13–20 are covered by the
conformance zoo (tests/onnx_zoo/).

Batch and per-sample shapes
---------------------------
If the (first) input's first axis is symbolic (or a static 1) it is the batch axis and the float
IR's per-sample shape is the rest; if its shape is fully static it is **one sample of exactly
that shape** (e.g. a (T, D) sequence of audio frames: the client sends that shape, or a stack of
them); ``batch_axis=0`` / ``None`` (``sirnn compile --batch-axis 0|none``) overrides, and
``meta["batch_axis"]`` records the choice. **Several inputs** (e.g. ``model(x, h0)``): with a batch,
each further input has its batch on its one symbolic axis (an LSTM's ``initial_h``
(num_directions, batch, H): axis 1), or, fully static, on the one axis of the batch's size;
**several outputs**: every graph output (default) or the ones named by ``output``. Inputs and
outputs whose batch is not their first axis are listed in ``FloatModel.batch_axes`` (the client's
arrays keep the ONNX layout; see :mod:`sirnn.compiler.program`, format version 2); such models'
output tensors carry the ONNX output names. With a batch axis, every other tensor
keeps the batch as *some* axis of size 1 (not necessarily the first: ONNX ``LSTM`` / ``GRU`` take
(T, batch, D)); the importer tracks where, and the per-sample tensor is the ONNX tensor at batch
1 without that axis. An op that merges the batch axis with other axes (a Reshape to (4, 8, 7, 7)
of a (1, 4, 8, 7, 7) tensor) or reduces over it cannot be expressed per sample and is rejected,
naming the node. Without a batch axis every ONNX tensor is its own per-sample tensor.

Supported ONNX ops (anything else fails with one ProgramError naming the nodes)
------------------------------------------------------------------------------
The handlers (:mod:`.ops`, listed by :func:`.registry.op_table`, and the ONNX-op column of
docs/onnx_ops.md): ``Gemm``, ``MatMul`` (constant or two tensors), ``Conv`` (1-D / 2-D, groups,
dilations, any padding), ``MaxPool`` / ``AveragePool`` / ``GlobalMaxPool`` /
``GlobalAveragePool``, ``BatchNormalization``, ``LayerNormalization``, ``InstanceNormalization``,
``Reduce{Sum,Mean,Max,L2}``, ``Softmax`` (any axis), ``LpNormalization``, ``ArgMax``, the
elementwise ``Add`` / ``Sub`` / ``Mul`` / ``Div`` (numpy broadcasting), ``Neg``, ``Pow``,
``Relu``, ``Sigmoid``, ``Tanh``, ``Exp``, ``Sqrt``, ``Reciprocal``, ``Abs``, ``Clip``,
``LeakyRelu``, ``PRelu``, ``HardSigmoid``, ``HardSwish``, ``Softplus``, the data movement
``Reshape``, ``Flatten``, ``(Un)Squeeze``, ``Transpose``, ``Slice``, ``Split``, ``Concat``,
``Gather``, ``Pad``, ``Expand``, ``Tile``, the no-ops ``Identity``, ``Dropout``, ``Cast``, and
the recurrent ``LSTM``, ``GRU``, ``RNN``:

* ``LSTM`` / ``GRU`` / ``RNN`` → ``lstm`` / ``gru`` / ``rnn`` with PyTorch's gate orders (i, f, g,
  o and r, z, n), one op per direction: forward, reverse and bidirectional, stacked layers (one
  node each), ``layout`` 0 or 1, GRU ``linear_before_reset`` 0 or 1, RNN Tanh or Relu; initial
  states absent, zero or constant (params ``h0`` / ``c0``), or runtime tensors — graph inputs or
  computed from them — (inputs of the cell, attr ``init``); ``sequence_lens`` absent, T, or
  constant < T (attr ``steps``: a public per-sample mask; lengths that differ between samples
  need a static batch); outputs Y, Y_h and Y_c, any of them graph outputs (Y_c by a second
  ``lstm`` with ``state: c``; Y_h next to Y with lengths < T by a second pass too). Not
  supported: peepholes, clip, input_forget, other activations;
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

Not expressible (the error says so): control flow (``Loop``, ``If``, ``Scan``), data-dependent
indices, custom domains, a batch axis merged with other axes outside RNNPool, a runtime
``sequence_lens``.

The result is tidied: reshape chains, transposes that cancel or only move size-1 axes, and
concatenations of adjacent slices (e.g. a stack of a cell's states) collapse; unused ops go.

Structure
---------
1. :func:`.graph.read_graph` reads the model (inputs, output, initializers, ONNX shape inference
   at batch 1);
2. the passes of :data:`PASSES` (:mod:`.passes`), in order: ``fold_constants`` (constant and
   shape-arithmetic folding), ``fuse_cells`` (unrolled FastGRNN chains and RNNPool regions → one
   fused node each), ``fuse_elman`` (an unrolled Elman RNN → ``rnn``), ``fuse_layernorm`` (a decomposed LayerNorm → ``LayerNormalization``),
   ``fuse_softplus_threshold``; ``fuse_cells=False`` skips the fusions;
3. :func:`.registry.check_supported`: one error naming every node no handler maps, before any IR
   is emitted;
4. emission: the live nodes in topological order, each through its handler in the op registry
   (:mod:`.registry`, handlers in :mod:`.ops`: one per ONNX op type, mapping documented next to
   it); nodes left whose inputs turned out constant (a ``Shape`` of a tensor whose shape only
   emission knows) are folded on the way;
5. tidying (:func:`_simplify`). The fixed-point lowering (:mod:`sirnn.compiler.calibrate`) is
   the next stage, outside this package.
"""

from __future__ import annotations

import os

import numpy as np

from ...errors import ProgramError
from ..floatir import FloatModel, FloatOp
from . import ops as _handlers  # noqa: F401 - importing it fills the op registry
from .context import Context
from .graph import Graph, evaluate, live_order, node_label, read_graph, require_onnx, shape_of
from .passes import PASSES
from .registry import check_supported, handler, supported_ops

__all__ = ["load_onnx", "SUPPORTED_OPS", "PASSES"]

#: the ONNX op types the importer maps (plus the fused patterns and constant folding)
SUPPORTED_OPS = supported_ops()


def _model(source):
    onnx = require_onnx()
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


def load_onnx(source, *, output: str | None = None, fuse_cells: bool = True, batch_axis="auto") -> FloatModel:
    """An ONNX model (path, serialized bytes or ``onnx.ModelProto``) → :class:`FloatModel`.

    ``output``: the ONNX output(s) to use (a name or a list; default: every graph output).
    ``fuse_cells``: recognise
    unrolled FastGRNN cells and emit one ``fastgrnn`` op per cell (default); ``False`` maps the
    unrolled graph op by op. ``batch_axis``: 0 (the input's first axis is the batch, dropped from
    the per-sample shape), None (the input is one sample of its full static shape) or "auto"
    (default: 0 when the first axis is symbolic or a static 1, else None; ``meta["batch_axis"]``
    records the choice). Raises :class:`~sirnn.errors.ProgramError` naming the ONNX node for
    anything the float IR cannot express (module docstring)."""
    model, name = _model(source)
    g = read_graph(model, output, batch_axis)
    for pname, fn in PASSES:
        if fuse_cells or not pname.startswith("fuse_"):
            g = fn(g)
    check_supported(g)
    ctx = emit(g)
    outs_ir, axes = [], {}
    for o in g.outputs:
        if o not in ctx.t:
            raise ProgramError(f"the ONNX output {o!r} was not produced")
        ir, b = ctx.t[o]
        if b is None and g.batch_axis is not None:
            raise ProgramError(f"the ONNX output {o!r} does not depend on the batch (a constant per batch): "
                               "not expressible per sample")
        if ir in outs_ir or ir in g.inputs:
            ir = ctx.emit("reshape", [ir], attrs={"shape": list(ctx.ps(ir))}, hint=o)  # a copy of its own
        outs_ir.append(ir)
        if b:
            axes[o] = int(b)
    ops = _simplify(ctx, outs_ir)
    if len(outs_ir) > 1 or len(g.inputs) > 1 or axes:  # (version 2) outputs carry the ONNX output names
        ops, outs_ir = _rename_outputs(ops, outs_ir, g.outputs, set(g.inputs))
    meta = {"name": name, "source": "onnx", "batch_axis": g.batch_axis,
            "onnx": {"producer": f"{model.producer_name} {model.producer_version}".strip(),
                     "opset": int(g.opset), "input": g.input, "output": g.output,
                     "nodes": len(model.graph.node)}}
    if len(g.inputs) > 1 or len(g.outputs) > 1:
        meta["onnx"].update(inputs=list(g.inputs), outputs=list(g.outputs))
    if g.fused:
        meta["onnx"]["fused"] = g.fused
    batch_axes = {ir: axes[o] for o, ir in zip(g.outputs, outs_ir) if o in axes}
    batch_axes.update({t: b for t, b in g.in_axes.items() if b})
    return FloatModel(ops, list(g.inputs), [g.input_shapes[t] for t in g.inputs], outs_ir, meta, batch_axes)


def _rename_outputs(ops: list[FloatOp], outs_ir: list, onnx_outs: list, inputs: set):
    """Give the output tensors the ONNX outputs' names where those are free."""
    used = inputs | {t for op in ops for t in op.outputs}
    ren = {}
    for ir, o in zip(outs_ir, onnx_outs):
        if ir != o and o not in used and o not in ren.values():
            ren[ir] = o
    for op in ops:
        op.inputs = [ren.get(t, t) for t in op.inputs]
        op.outputs = [ren.get(t, t) for t in op.outputs]
    return ops, [ren.get(t, t) for t in outs_ir]


def emit(g: Graph) -> Context:
    """Run the handlers of the live nodes in topological order into a new :class:`Context`."""
    order, live = live_order(g)
    ctx = Context(g)
    ctx.live = live
    for t in g.inputs:
        ctx.names.add(t)
        ctx.val[t] = np.zeros((1,) + g.input_shapes[t])
        ctx.bind(t, t, g.in_axes.get(t))
    for i in order:
        if i in ctx.skip:
            continue
        node = g.nodes[i]
        ins = [t for t in node.input if t]
        if node.op_type == "Shape":
            ctx.dyn(node, node.input[0])
            g.consts[node.output[0]] = shape_of(node, ctx.full(node.input[0]))
            continue
        if ins and all(ctx.is_const(t) for t in ins):
            for o, v in zip(node.output, evaluate(node, [ctx.const(t) for t in node.input], g.opset)):
                if o:
                    g.consts[o] = np.asarray(v)
            continue
        h = handler(node)
        if h is None:  # check_supported names these up front; a node only emission reaches
            raise ProgramError(f"{node_label(node)}: this ONNX op is not supported by the sirnn float IR")
        h(ctx, node)
    return ctx


def _simplify(ctx: Context, outs_ir: list) -> list[FloatOp]:
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
                if (start, stop) == (0, ctx.ps(src)[ax]) and o not in outs_ir:
                    alias[o] = src
                    continue
                op = FloatOp("slice", [src], [o], {}, {"axis": ax, "start": start, "stop": stop, "step": 1},
                             op.name)
        if op.op == "transpose":
            src, p = op.inputs[0], list(op.attrs["perm"])
            if src in perms:  # transpose of a transpose: one permutation
                src, inner = perms[src]
                p = [inner[i] for i in p]
            if p == sorted(p) and o not in outs_ir:
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
            if ctx.ps(src) == ctx.ps(o) and o not in outs_ir:
                alias[o] = src
                continue
            op.inputs = [src]
            base[o] = src
        ops.append(op)
    used = set(outs_ir)
    for op in reversed(ops):
        if op.outputs[0] in used:
            used.update(op.inputs)
    return [op for op in ops if op.outputs[0] in used]
