"""Affine and convolutional ONNX ops: MatMul, Gemm, Conv, pooling, BatchNormalization."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, layer_name
from ..graph import node_attrs, node_label
from ..registry import onnx_op


@onnx_op("MatMul")
def _matmul(ctx: Context, node):
    """``matmul`` x·W with a constant W (a following Add of a bias over the last axis is fused
    into its ``b``)."""
    x, w = node.input
    if ctx.is_const(x) or not ctx.is_const(w):
        raise ProgramError(f"{node_label(node)}: only x·W with a constant W is supported (no constant left "
                           "operand, no product of two tensors)")
    W = np.asarray(ctx.const(w), np.float64)
    ir, b = ctx.dyn(node, x)
    full = ctx.full(x)
    if b == len(full) - 1:
        raise ProgramError(f"{node_label(node)}: contracts the batch axis")
    out = node.output[0]
    if W.ndim == 1:
        y = ctx.emit("matmul", [ir], {"W": W[:, None]}, hint=f"{out}:mv", name=layer_name(w))
        ctx.bind(out, ctx.reshape(y, ctx.ps(y)[:-1], out=out), b)
        return
    if W.ndim != 2:
        raise ProgramError(f"{node_label(node)}: batched MatMul with a {W.ndim}-D constant is not supported")
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
    ctx.bind(out, ctx.emit("matmul", [ir], params, out=out, name=layer_name(w)), b)


@onnx_op("Gemm")
def _gemm(ctx: Context, node):
    """``linear`` (constant B, optional C; alpha, beta, transB)."""
    a = node_attrs(node)
    A, B = node.input[0], node.input[1]
    if ctx.is_const(A) or not ctx.is_const(B) or a.get("transA", 0):
        raise ProgramError(f"{node_label(node)}: only Gemm(x, constant B) without transA is supported")
    bout = None if ctx.g.batch_axis is None else 0  # one sample: linear over the rows of A
    ir = ctx.rebatch(node, A, bout)
    if len(ctx.full(A)) != 2:
        raise ProgramError(f"{node_label(node)}: Gemm needs a 2-D input, got {ctx.full(A)}")
    W = float(a.get("alpha", 1.0)) * np.asarray(ctx.const(B), np.float64)
    W = W if a.get("transB", 0) else W.T
    params = {"W": W}
    if len(node.input) > 2 and node.input[2]:
        if not ctx.is_const(node.input[2]):
            raise ProgramError(f"{node_label(node)}: the bias C must be a constant")
        c = float(a.get("beta", 1.0)) * np.asarray(ctx.const(node.input[2]), np.float64)
        if c.size not in (1, W.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise ProgramError(f"{node_label(node)}: bias C of shape {c.shape} is not one value per output")
        params["b"] = np.broadcast_to(c.reshape(-1), (W.shape[0],)).copy()
    ctx.bind(node.output[0], ctx.emit("linear", [ir], params, out=node.output[0], name=layer_name(B)), bout)


def _pads(node, a, nd, kernel, in_hw, strides):
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for k, n, s in zip(kernel, in_hw, strides):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append(total)
        if any(p % 2 for p in pads):
            raise ProgramError(f"{node_label(node)}: {auto} padding is asymmetric here: not supported")
        return [p // 2 for p in pads]
    pads = list(a.get("pads", [0] * (2 * nd))) if auto == "NOTSET" else [0] * (2 * nd)
    if pads[:nd] != pads[nd:]:
        raise ProgramError(f"{node_label(node)}: asymmetric padding {pads} is not supported")
    return pads[:nd]


@onnx_op("Conv")
def _conv(ctx: Context, node):
    """``conv2d`` (1-D as H = 1)."""
    a = node_attrs(node)
    if not ctx.is_const(node.input[1]) or (len(node.input) > 2 and node.input[2] and not ctx.is_const(node.input[2])):
        raise ProgramError(f"{node_label(node)}: the weights and bias must be constants")
    W = np.asarray(ctx.const(node.input[1]), np.float64)
    nd = W.ndim - 2
    if nd not in (1, 2):
        raise ProgramError(f"{node_label(node)}: only 1-D and 2-D convolutions are supported")
    if int(a.get("group", 1)) != 1:
        raise ProgramError(f"{node_label(node)}: grouped / depthwise convolution (group {a['group']}) is not supported")
    if any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise ProgramError(f"{node_label(node)}: dilated convolution is not supported")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    if len(xs) != nd + 1:
        raise ProgramError(f"{node_label(node)}: input of shape {ctx.full(node.input[0])} for a {nd}-D convolution")
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
                     hint=f"{out}:conv2d", name=layer_name(node.input[1]))
        ys = ctx.ps(y)
        ctx.bind(out, ctx.reshape(y, (ys[0], ys[2]), out=out), 0)
        return
    st = [int(s) for s in strides]
    pd = [int(p) for p in pads]
    ctx.bind(out, ctx.emit("conv2d", [ir], params, {"stride": st[0] if st[0] == st[1] else st,
                                                    "padding": pd[0] if pd[0] == pd[1] else pd}, out=out,
                                    name=layer_name(node.input[1])), 0)


@onnx_op("MaxPool", "GlobalMaxPool")
def _maxpool(ctx: Context, node):
    """``maxpool2d`` (1-D as H = 1; global: the whole plane)."""
    a = node_attrs(node)
    if len(node.output) > 1 and node.output[1] in ctx.live:
        raise ProgramError(f"{node_label(node)}: the indices output is not supported")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    out = node.output[0]
    if node.op_type == "GlobalMaxPool":
        if len(xs) != 3:
            raise ProgramError(f"{node_label(node)}: only 2-D global max-pooling is supported")
        y = ctx.emit("maxpool2d", [ir], attrs={"kernel": [xs[1], xs[2]], "stride": [1, 1]}, hint=f"{out}:pool")
        ctx.bind(out, ctx.reshape(y, (xs[0], 1, 1), out=out), 0)
        return
    k = list(a["kernel_shape"])
    nd = len(k)
    if nd not in (1, 2) or len(xs) != nd + 1:
        raise ProgramError(f"{node_label(node)}: only 1-D and 2-D max-pooling is supported")
    st = list(a.get("strides", [1] * nd))
    if any(p != 0 for p in _pads(node, a, nd, k, xs[1:], st)) or any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise ProgramError(f"{node_label(node)}: max-pooling with padding or dilation is not supported")
    if a.get("ceil_mode", 0) and any((n - kk) % s for n, kk, s in zip(xs[1:], k, st)):
        raise ProgramError(f"{node_label(node)}: ceil_mode with a partial last window is not supported")
    if nd == 1:
        x2 = ctx.reshape(ir, (xs[0], 1, xs[1]), hint=f"{out}:2d")
        y = ctx.emit("maxpool2d", [x2], attrs={"kernel": [1, int(k[0])], "stride": [1, int(st[0])]},
                     hint=f"{out}:pool2d")
        ys = ctx.ps(y)
        ctx.bind(out, ctx.reshape(y, (ys[0], ys[2]), out=out), 0)
        return
    ctx.bind(out, ctx.emit("maxpool2d", [ir], attrs={"kernel": [int(v) for v in k], "stride": [int(v) for v in st]},
                           out=out), 0)


@onnx_op("BatchNormalization")
def _batchnorm(ctx: Context, node):
    """``mul`` + ``add`` per channel (inference mode)."""
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{node_label(node)}: training-mode outputs are not supported")
    a = node_attrs(node)
    scale, bias, mean, var = (np.asarray(ctx.const(t), np.float64) if ctx.is_const(t) else None
                              for t in node.input[1:5])
    if any(v is None for v in (scale, bias, mean, var)):
        raise ProgramError(f"{node_label(node)}: scale, bias, mean and var must be constants")
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    m = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    shape = (xs[0],) + (1,) * (len(xs) - 1)
    y = ctx.emit("mul", [ir], {"y": m.reshape(shape)}, hint=f"{node.output[0]}:scale")
    ctx.bind(node.output[0], ctx.emit("add", [y], {"y": (bias - mean * m).reshape(shape)}, out=node.output[0]), 0)


