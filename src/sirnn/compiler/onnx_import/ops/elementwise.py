"""Elementwise ONNX ops, softmax-like normalisations and ArgMax."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, sample_axis
from ..graph import FLOAT_TYPES, node_attrs, node_label
from ..registry import onnx_op


def _unary(op):
    def f(ctx: Context, node):
        ir, b = ctx.dyn(node, node.input[0])
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    f.__doc__ = f"``{op}`` (elementwise)."
    return f


@onnx_op("Identity", "Dropout")
def _alias(ctx: Context, node):
    """Nothing: the output is the input (Dropout at inference; its mask output is refused)."""
    ir, b = ctx.dyn(node, node.input[0])
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{node_label(node)}: output {o!r} (e.g. a dropout mask) is not supported")
    ctx.bind(node.output[0], ir, b)


@onnx_op("Cast")
def _cast(ctx: Context, node):
    """Nothing for a cast between float types (the IR is float64); other casts of tensors are
    refused (casts of shapes are folded)."""
    if int(node_attrs(node).get("to", 1)) not in FLOAT_TYPES:
        raise ProgramError(f"{node_label(node)}: cast to a non-float type is not supported")
    _alias(ctx, node)


@onnx_op("Add", "Sub", "Mul", "Div")
def _binary(ctx: Context, node):
    """``add`` / ``mul`` with a constant (as param ``y``; Sub → add of −y, Div → mul by 1/y) or of
    two tensors of the same shape (Sub → add of mul by −1)."""
    op = node.op_type
    a, b = node.input[0], node.input[1]
    out = node.output[0]
    ca, cb = ctx.is_const(a), ctx.is_const(b)
    if op == "Div" and not cb:
        raise ProgramError(f"{node_label(node)}: division by a tensor is not supported (the IR has no "
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
                raise ProgramError(f"{node_label(node)}: division by a constant containing 0")
            res = ctx.emit("mul", [ir], {"y": 1.0 / y}, out=out)
        ctx.bind(out, res, bt)
        return
    ia, ba = ctx.dyn(node, a)
    ib, bb = ctx.dyn(node, b)
    if ctx.full(a) != ctx.full(b):
        raise ProgramError(f"{node_label(node)}: broadcasting between two tensors ({ctx.full(a)} and "
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


@onnx_op("Neg")
def _neg(ctx: Context, node):
    """``mul`` by −1."""
    ir, b = ctx.dyn(node, node.input[0])
    ctx.bind(node.output[0], ctx.emit("mul", [ir], {"y": np.float64(-1.0)}, out=node.output[0]), b)


def _softmax(op):
    def f(ctx: Context, node):
        a = node_attrs(node)
        t = node.input[0]
        ir, b = ctx.dyn(node, t)
        if op == "l2norm" and int(a.get("p", 2)) != 2:
            raise ProgramError(f"{node_label(node)}: only p = 2 is supported")
        default = -1 if (op == "l2norm" or ctx.g.opset >= 13) else 1
        ax = sample_axis(node, ctx, t, a.get("axis", default))
        if ax != len(ctx.ps(ir)) - 1:
            raise ProgramError(f"{node_label(node)}: only the last axis is supported")
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    f.__doc__ = f"``{op}`` over the last axis."
    return f


@onnx_op("ArgMax")
def _argmax(ctx: Context, node):
    """``argmax`` over the last axis (first index on ties; keepdims dropped); the IR ends there."""
    a = node_attrs(node)
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    if a.get("select_last_index", 0):
        raise ProgramError(f"{node_label(node)}: select_last_index is not supported (ties pick the first)")
    if sample_axis(node, ctx, t, a.get("axis", 0)) != len(ctx.ps(ir)) - 1:
        raise ProgramError(f"{node_label(node)}: only the last axis is supported")
    for c in ctx.g.consumers.get(node.output[0], []):
        raise ProgramError(f"{node_label(ctx.g.nodes[c])}: uses an ArgMax index; the IR ends at ArgMax")
    ctx.bind(node.output[0], ctx.emit("argmax", [ir], out=node.output[0]), b)




onnx_op("Relu")(_unary("relu"))
onnx_op("Sigmoid")(_unary("sigmoid"))
onnx_op("Tanh")(_unary("tanh"))
onnx_op("Softmax")(_softmax("softmax"))
onnx_op("LpNormalization")(_softmax("l2norm"))
