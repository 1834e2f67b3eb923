"""Elementwise ONNX ops, softmax-like normalisations and ArgMax."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, aligned, sample_axis, to_rank
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
    """``add`` / ``mul`` with a constant (param ``y``; Sub → add of −y, Div → mul by 1/y; a
    constant minus a tensor → ``mul`` by −1 then ``add``; a constant over a tensor →
    ``reciprocal`` then ``mul``); of two tensors → ``add`` / ``sub`` / ``mul`` / ``div`` with numpy
    broadcasting between the per-sample shapes (the batch axes aligned)."""
    op = node.op_type
    a, b = node.input[0], node.input[1]
    out = node.output[0]
    ca, cb = ctx.is_const(a), ctx.is_const(b)
    if ca or cb:
        t, c = (b, ctx.const(a)) if ca else (a, ctx.const(b))
        t = to_rank(ctx, node, t, np.ndim(c))
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
        elif cb:  # Div by a constant
            if np.any(y == 0):
                raise ProgramError(f"{node_label(node)}: division by a constant containing 0")
            res = ctx.emit("mul", [ir], {"y": 1.0 / y}, out=out)
        else:  # a constant over a tensor
            r = ctx.emit("reciprocal", [ir], hint=f"{out}:recip")
            res = r if np.all(y == 1) else ctx.emit("mul", [r], {"y": y}, out=out)
        ctx.bind(out, res, bt)
        return
    ia, ib, bo = aligned(ctx, node, a, b)
    res = ctx.emit({"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}[op], [ia, ib], out=out)
    ctx.bind(out, res, bo)


@onnx_op("Neg")
def _neg(ctx: Context, node):
    """``mul`` by −1."""
    ir, b = ctx.dyn(node, node.input[0])
    ctx.bind(node.output[0], ctx.emit("mul", [ir], {"y": np.float64(-1.0)}, out=node.output[0]), b)


@onnx_op("Pow")
def _pow(ctx: Context, node):
    """x² → ``mul`` (x, x); x^0.5 → ``sqrt``; x^−0.5 → ``rsqrt``; x^−1 → ``reciprocal``; x^1 →
    nothing (constant exponents only)."""
    if not ctx.is_const(node.input[1]):
        raise ProgramError(f"{node_label(node)}: only constant exponents are supported")
    e = np.asarray(ctx.const(node.input[1]), np.float64)
    if e.size != 1:
        raise ProgramError(f"{node_label(node)}: only a scalar exponent is supported")
    e = float(e.reshape(-1)[0])
    ir, b = ctx.dyn(node, node.input[0])
    out = node.output[0]
    if e == 1:
        y = ir
    elif e == 2:
        y = ctx.emit("mul", [ir, ir], out=out)
    elif e == 3:
        y = ctx.emit("mul", [ctx.emit("mul", [ir, ir], hint=f"{out}:sq"), ir], out=out)
    elif e in (0.5, -0.5, -1):
        y = ctx.emit({0.5: "sqrt", -0.5: "rsqrt", -1: "reciprocal"}[e], [ir], out=out)
    else:
        raise ProgramError(f"{node_label(node)}: exponent {e:g} is not supported (1, 2, 3, 0.5, −0.5, −1)")
    ctx.bind(out, y, b)


@onnx_op("Clip")
def _clip(ctx: Context, node):
    """``clip`` (min / max constants; ReLU6, hardtanh); a missing bound is None."""
    a = node_attrs(node)
    lo, hi = a.get("min"), a.get("max")
    for k, t in ((1, "min"), (2, "max")):
        if len(node.input) > k and node.input[k]:
            if not ctx.is_const(node.input[k]):
                raise ProgramError(f"{node_label(node)}: the {t} bound must be a constant")
            v = float(np.asarray(ctx.const(node.input[k])).reshape(-1)[0])
            lo, hi = (v, hi) if k == 1 else (lo, v)
    ir, b = ctx.dyn(node, node.input[0])
    attrs = {"min": None if lo is None else float(lo), "max": None if hi is None else float(hi)}
    ctx.bind(node.output[0], ctx.emit("clip", [ir], attrs=attrs, out=node.output[0]), b)


@onnx_op("LeakyRelu")
def _leakyrelu(ctx: Context, node):
    """``leakyrelu`` (alpha, default 0.01)."""
    ir, b = ctx.dyn(node, node.input[0])
    alpha = float(node_attrs(node).get("alpha", 0.01))
    ctx.bind(node.output[0], ctx.emit("leakyrelu", [ir], attrs={"alpha": alpha}, out=node.output[0]), b)


@onnx_op("HardSigmoid")
def _hardsigmoid(ctx: Context, node):
    """``hardsigmoid`` (alpha 0.2, beta 0.5 by default; PyTorch exports 1/6, 1/2)."""
    a = node_attrs(node)
    ir, b = ctx.dyn(node, node.input[0])
    attrs = {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))}
    ctx.bind(node.output[0], ctx.emit("hardsigmoid", [ir], attrs=attrs, out=node.output[0]), b)


@onnx_op("PRelu")
def _prelu(ctx: Context, node):
    """``prelu`` with a constant slope (broadcast to x)."""
    if not ctx.is_const(node.input[1]):
        raise ProgramError(f"{node_label(node)}: the slope must be a constant")
    ir, b = ctx.dyn(node, node.input[0])
    slope = ctx.per_sample_const(node, ctx.const(node.input[1]), node.input[0])
    ctx.bind(node.output[0], ctx.emit("prelu", [ir], {"slope": slope}, out=node.output[0]), b)


def _softmax(op):
    def f(ctx: Context, node):
        a = node_attrs(node)
        t = node.input[0]
        ir, b = ctx.dyn(node, t)
        if op == "l2norm" and int(a.get("p", 2)) != 2:
            raise ProgramError(f"{node_label(node)}: only p = 2 is supported")
        default = -1 if (op == "l2norm" or ctx.g.opset >= 13) else 1
        ax = sample_axis(node, ctx, t, a.get("axis", default))
        attrs = {}
        if ax != len(ctx.ps(ir)) - 1:
            if op != "softmax" or ctx.g.opset < 13:
                raise ProgramError(f"{node_label(node)}: only the last axis is supported"
                                   + (" before opset 13 (the input is coerced to 2-D)" if op == "softmax" else ""))
            attrs = {"axis": ax}
        ctx.bind(node.output[0], ctx.emit(op, [ir], attrs=attrs, out=node.output[0]), b)
    f.__doc__ = (f"``{op}`` over the last axis." if op == "l2norm" else
                 f"``{op}`` along any axis but the batch (attr ``axis`` when it is not the last).")
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
onnx_op("Exp")(_unary("exp"))
onnx_op("Sqrt")(_unary("sqrt"))
onnx_op("Reciprocal")(_unary("reciprocal"))
onnx_op("Abs")(_unary("abs"))
onnx_op("Softplus")(_unary("softplus"))
onnx_op("HardSwish")(_unary("hardswish"))
onnx_op("Sigmoid")(_unary("sigmoid"))
onnx_op("Tanh")(_unary("tanh"))
onnx_op("Softmax")(_softmax("softmax"))
onnx_op("LpNormalization")(_softmax("l2norm"))
