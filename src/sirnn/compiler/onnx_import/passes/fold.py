"""Pass ``fold_constants``: every node whose inputs are all constants is evaluated
(``onnx.reference``) and its outputs become constants; ``Constant`` nodes become constants; a
``Shape`` of a tensor whose shape ONNX shape inference knows (with the batch at 1) is that shape.

This is what removes the shape arithmetic exporters emit around reshapes and initial states
(``Shape`` → ``Gather`` / ``Slice`` / ``Concat`` / ``Unsqueeze`` on shapes → ``ConstantOfShape`` /
``Range`` / ``Expand`` / ``Tile`` of constants, ``Cast``, ``Equal`` / ``Where`` on shapes). A ``Shape``
whose shape inference could not tell is folded later, during emission, when the per-sample shape
of its input is known (:func:`sirnn.compiler.onnx_import.load_onnx`). Control-flow nodes
(:data:`~..registry.REFUSED`) are never evaluated: they are refused by the support check."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..graph import Graph, constant_value, evaluate, shape_of
from ..registry import REFUSED


def fold_constants(g: Graph) -> Graph:
    consts = g.consts
    nodes = []
    for node in g.nodes:
        ins = [t for t in node.input if t]
        if node.op_type == "Constant":
            consts[node.output[0]] = constant_value(node)
            continue
        if node.op_type in REFUSED:
            nodes.append(node)
            continue
        if node.op_type == "Shape" and node.input[0] not in consts and g.shapes.get(node.input[0]):
            consts[node.output[0]] = shape_of(node, g.shapes[node.input[0]])
            continue
        if ins and all(t in consts for t in ins):
            vals = evaluate(node, [consts.get(t) if t else None for t in node.input], g.opset)
            for o, v in zip(node.output, vals):
                if o:
                    consts[o] = np.asarray(v)
            continue
        nodes.append(node)
    for o in g.outputs:
        if o in consts:
            raise ProgramError(f"the ONNX output {o!r} is a constant (it does not depend on the input)")
    g.nodes = nodes
    g.index()
    return g
