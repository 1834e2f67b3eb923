"""Reductions and normalisations: ReduceSum / Mean / Max / L2, GlobalAveragePool,
LayerNormalization, InstanceNormalization → ``reduce`` / ``normalize`` (+ ``mul`` / ``add`` of the
affine parameters)."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, sample_axis
from ..graph import node_attrs, node_label
from ..registry import onnx_op

_KIND = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceL2": "l2"}


def _reduce_axes(ctx: Context, node) -> list | None:
    a = node_attrs(node)
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    if len(node.input) > 1 and node.input[1]:
        if not ctx.is_const(node.input[1]):
            raise ProgramError(f"{node_label(node)}: the axes must be a constant")
        return [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    return None


def emit_reduce(ctx: Context, node, kind: str, t: str, onnx_axes: list, keepdims: bool, out: str):
    """``reduce`` of ONNX tensor t over ONNX axes, bound to ONNX tensor out."""
    ir, b = ctx.dyn(node, t)
    n = len(ctx.full(t))
    axes = sorted({a % n for a in onnx_axes})
    pax = [sample_axis(node, ctx, t, a) for a in axes]
    y = ctx.emit("reduce", [ir], attrs={"kind": kind, "axes": pax, "keepdims": bool(keepdims)}, out=out)
    nb = b if b is None or keepdims else b - sum(1 for a in axes if a < b)
    ctx.bind(out, y, nb)


@onnx_op("ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2")
def _reduce(ctx: Context, node):
    """``reduce`` (kind sum / mean / max / l2) over per-sample axes (axes as attribute or, from
    opset 18 / ReduceSum 13, as a constant input; no axes: all but the batch)."""
    a = node_attrs(node)
    t = node.input[0]
    axes = _reduce_axes(ctx, node)
    n = len(ctx.full(t))
    if not axes:
        if a.get("noop_with_empty_axes", 0):
            ctx.bind(node.output[0], *ctx.dyn(node, t))
            return
        b = ctx.dyn(node, t)[1]
        axes = [k for k in range(n) if k != b]
    emit_reduce(ctx, node, _KIND[node.op_type], t, axes, bool(a.get("keepdims", 1)), node.output[0])


@onnx_op("GlobalAveragePool")
def _global_avg(ctx: Context, node):
    """``reduce`` mean over the spatial axes, keepdims."""
    t = node.input[0]
    n = len(ctx.full(t))
    emit_reduce(ctx, node, "mean", t, list(range(2, n)), True, node.output[0])


def _affine(ctx: Context, y: str, scale, bias, out: str, per_sample) -> str:
    """y·scale + bias with constant parameters mapped by ``per_sample`` (a scale of ones and a
    bias of zeros are skipped)."""
    do_s = scale is not None and not np.all(np.asarray(scale) == 1)
    do_b = bias is not None and not np.all(np.asarray(bias) == 0)
    if do_s:
        y = ctx.emit("mul", [y], {"y": per_sample(scale)}, out=None if do_b else out, hint=f"{out}:scale")
    if do_b:
        y = ctx.emit("add", [y], {"y": per_sample(bias)}, out=out)
    return y


@onnx_op("LayerNormalization")
def _layernorm(ctx: Context, node):
    """``normalize`` over the axes from ``axis`` to the last (eps), then ``mul`` by the scale and
    ``add`` of the bias (constants broadcast to the normalised axes)."""
    a = node_attrs(node)
    t = node.input[0]
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{node_label(node)}: the mean / inv-std-dev outputs are not supported")
    full = ctx.full(t)
    n = len(full)
    axis = int(a.get("axis", -1)) % n
    ir, b = ctx.dyn(node, t)
    pax = [sample_axis(node, ctx, t, k) for k in range(axis, n)]
    consts = []
    for k in (1, 2):
        if len(node.input) > k and node.input[k]:
            if not ctx.is_const(node.input[k]):
                raise ProgramError(f"{node_label(node)}: scale and bias must be constants")
            consts.append(np.asarray(ctx.const(node.input[k]), np.float64))
        else:
            consts.append(None)
    out = node.output[0]
    has_affine = any(c is not None and not np.all(c == (1 if k == 0 else 0)) for k, c in enumerate(consts))
    y = ctx.emit("normalize", [ir], attrs={"axes": pax, "eps": float(a.get("epsilon", 1e-5))},
                 out=None if has_affine else out, hint=f"{out}:norm")
    y = _affine(ctx, y, consts[0], consts[1], out, lambda c: ctx.per_sample_const(node, c, t))
    ctx.bind(out, y, b)


@onnx_op("InstanceNormalization")
def _instancenorm(ctx: Context, node):
    """``normalize`` over the spatial axes of (C, ...), then per-channel ``mul`` / ``add``."""
    a = node_attrs(node)
    t = node.input[0]
    b = 0 if ctx.dyn(node, t)[1] is not None else None
    ir = ctx.rebatch(node, t, b)
    xs = ctx.ps(ir)
    lead = 0 if b is not None else 1  # per-sample (C, ...) or the whole (1, C, ...)
    pax = list(range(lead + 1, len(xs)))
    out = node.output[0]
    scale, bias = (np.asarray(ctx.const(x), np.float64) for x in node.input[1:3])
    shape = (xs[lead],) + (1,) * (len(xs) - lead - 1)
    y = ctx.emit("normalize", [ir], attrs={"axes": pax, "eps": float(a.get("epsilon", 1e-5))}, hint=f"{out}:norm")
    y = _affine(ctx, y, scale, bias, out, lambda c: c.reshape(shape))
    ctx.bind(out, y, b)
