"""Affine and convolutional ONNX ops: MatMul, Gemm, Conv, pooling, BatchNormalization."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, aligned, layer_name
from ..graph import node_attrs, node_label
from ..registry import onnx_op


@onnx_op("MatMul")
def _matmul(ctx: Context, node):
    """``matmul`` x·W with a constant W (param; a following Add of a bias over the last axis is
    fused into its ``b``); C·x with a constant 2-D C as transpose, x·Cᵀ, transpose; x·y of two
    tensors → ``matmul`` with two inputs (batched over leading axes, the batch axes aligned)."""
    x, w = node.input
    if not ctx.is_const(w) and not ctx.is_const(x):
        ia, ib, bo = aligned(ctx, node, x, w)
        n = len(ctx.full(x))
        if bo is not None and bo >= n - 2:
            raise ProgramError(f"{node_label(node)}: the batch axis is one of the multiplied axes")
        ctx.bind(node.output[0], ctx.emit("matmul", [ia, ib], out=node.output[0]), bo)
        return
    if ctx.is_const(x):
        _const_left(ctx, node)
        return
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
    if len(cons) == 1 and out not in g.outputs and g.nodes[cons[0]].op_type == "Add":
        sc = g.split_const(cons[0])
        if sc is not None and sc[0] == out:
            c = np.asarray(sc[1], np.float64)
            if c.ndim <= len(full) and c.size == W.shape[1] and c.shape[-1:] == (W.shape[1],):
                params["b"] = c.reshape(-1)
                ctx.skip.add(cons[0])
                out = g.nodes[cons[0]].output[0]
    ctx.bind(out, ctx.emit("matmul", [ir], params, out=out, name=layer_name(w)), b)


def _const_left(ctx: Context, node):
    C = np.asarray(ctx.const(node.input[0]), np.float64)
    t = node.input[1]
    ir, b = ctx.dyn(node, t)
    full = ctx.full(t)
    if C.ndim != 2 or len(full) < 2 or (b is not None and b >= len(full) - 2):
        raise ProgramError(f"{node_label(node)}: constant·tensor MatMul needs a 2-D constant and the batch "
                           f"outside the multiplied axes (constant {C.shape}, tensor {full})")
    ps = ctx.ps(ir)
    perm = list(range(len(ps) - 2)) + [len(ps) - 1, len(ps) - 2]
    out = node.output[0]
    xt = ctx.emit("transpose", [ir], attrs={"perm": perm}, hint=f"{out}:xT")
    y = ctx.emit("matmul", [xt], {"W": C.T}, hint=f"{out}:mm")
    ctx.bind(out, ctx.emit("transpose", [y], attrs={"perm": perm}, out=out), b)


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


def _pads(node, a, nd, kernel, in_hw, strides, dilations) -> list:
    """ONNX pads (begin…, end…) of a conv / pool node, auto_pad resolved."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for k, n, s, d in zip(kernel, in_hw, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin + end
    return [int(p) for p in a.get("pads", [0] * (2 * nd))] if auto == "NOTSET" else [0] * (2 * nd)


def _window(ctx: Context, node, op: str, kernel, params=None, extra=None, name=None):
    """Emit a 1-D or 2-D windowed op (conv2d / maxpool2d / avgpool2d) on the node's input (C, L)
    or (C, H, W) per sample: strides, dilations, pads (symmetric: a pair, else (top, left, bottom,
    right)) from the node's attributes; 1-D runs as H = 1."""
    a = node_attrs(node)
    nd = len(kernel)
    ir = ctx.rebatch(node, node.input[0], 0)
    xs = ctx.ps(ir)
    if nd not in (1, 2) or len(xs) != nd + 1:
        raise ProgramError(f"{node_label(node)}: input of shape {ctx.full(node.input[0])} for a {nd}-D "
                           f"{node.op_type}: only 1-D and 2-D are supported")
    st = [int(v) for v in a.get("strides", [1] * nd)]
    dl = [int(v) for v in a.get("dilations", [1] * nd)]
    pads = _pads(node, a, nd, kernel, xs[1:], st, dl)
    if a.get("ceil_mode", 0):  # a partial last window: more end padding (max-pooling only)
        for i in range(nd):
            span = xs[1 + i] + pads[i] + pads[nd + i] - ((kernel[i] - 1) * dl[i] + 1)
            if span % st[i]:
                if op != "maxpool2d":
                    raise ProgramError(f"{node_label(node)}: ceil_mode with a partial last window is only "
                                       "supported for MaxPool")
                pads[nd + i] += st[i] - span % st[i]
    out = node.output[0]
    if nd == 1:
        kernel, st, dl = [1, int(kernel[0])], [1, st[0]], [1, dl[0]]
        pads = [0, pads[0], 0, pads[1]]
        x = ctx.reshape(ir, (xs[0], 1, xs[1]), hint=f"{out}:2d")
        if params is not None:
            params = dict(params, W=params["W"][:, :, None, :])
    else:
        x = ir
    # padding: one int or a pair when symmetric (as before), else (top, left, bottom, right)
    padding = (pads[0] if pads[0] == pads[1] else pads[:2]) if pads[:2] == pads[2:] else pads
    if op == "conv2d":
        attrs = {"stride": st[0] if st[0] == st[1] else st, "padding": padding}
    else:
        attrs = {"kernel": [int(v) for v in kernel], "stride": st, **({"padding": padding} if any(pads) else {})}
    if any(d != 1 for d in dl):
        attrs["dilation"] = dl
    attrs.update(extra or {})
    y = ctx.emit(op, [x], params, attrs, out=None if nd == 1 else out, hint=f"{out}:{op}", name=name)
    if nd == 1:
        ys = ctx.ps(y)
        y = ctx.reshape(y, (ys[0], ys[2]), out=out)
    ctx.bind(out, y, 0)


@onnx_op("Conv")
def _conv(ctx: Context, node):
    """``conv2d`` (1-D as H = 1; group, dilations, any padding)."""
    a = node_attrs(node)
    if not ctx.is_const(node.input[1]) or (len(node.input) > 2 and node.input[2] and not ctx.is_const(node.input[2])):
        raise ProgramError(f"{node_label(node)}: the weights and bias must be constants")
    W = np.asarray(ctx.const(node.input[1]), np.float64)
    params = {"W": W}
    if len(node.input) > 2 and node.input[2]:
        params["b"] = np.asarray(ctx.const(node.input[2]), np.float64)
    groups = int(a.get("group", 1))
    _window(ctx, node, "conv2d", W.shape[2:], params, {"groups": groups} if groups != 1 else None,
            name=layer_name(node.input[1]))


@onnx_op("MaxPool", "GlobalMaxPool")
def _maxpool(ctx: Context, node):
    """``maxpool2d`` (1-D as H = 1; padding, dilation, ceil_mode; global: the whole plane)."""
    if len(node.output) > 1 and node.output[1] in ctx.live:
        raise ProgramError(f"{node_label(node)}: the indices output is not supported")
    out = node.output[0]
    if node.op_type == "GlobalMaxPool":
        ir = ctx.rebatch(node, node.input[0], 0)
        xs = ctx.ps(ir)
        if len(xs) != 3:
            raise ProgramError(f"{node_label(node)}: only 2-D global max-pooling is supported")
        y = ctx.emit("maxpool2d", [ir], attrs={"kernel": [xs[1], xs[2]], "stride": [1, 1]}, hint=f"{out}:pool")
        ctx.bind(out, ctx.reshape(y, (xs[0], 1, 1), out=out), 0)
        return
    _window(ctx, node, "maxpool2d", list(node_attrs(node)["kernel_shape"]))


@onnx_op("AveragePool")
def _avgpool(ctx: Context, node):
    """``avgpool2d`` (1-D as H = 1; padding with count_include_pad)."""
    a = node_attrs(node)
    _window(ctx, node, "avgpool2d", list(a["kernel_shape"]),
            extra={"count_include_pad": bool(a.get("count_include_pad", 0))})


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


