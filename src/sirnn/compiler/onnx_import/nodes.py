"""ONNX nodes → float-IR ops: the emission :class:`Context` (ONNX tensor → IR tensor and the
position of its batch axis, per-sample shapes tracked on a batch-1 dummy) and one handler per
supported ONNX op type (:data:`HANDLERS`)."""

from __future__ import annotations

import re

import numpy as np

from ...errors import ProgramError
from ..floatir import FLOAT_OPS, FloatOp
from .graph import FLOAT_TYPES, Graph, index_range, node_attrs, node_label


class Context:
    def __init__(self, g: Graph):
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
            raise ProgramError(f"{node_label(node)}: input {t!r} is not available (unsupported producer)")
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
            raise ProgramError(f"{node_label(node)}: needs the batch on axis {r} of {t!r} (shape {full}), "
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
            raise ProgramError(f"{node_label(node)}: the constant of shape {c.shape} has more axes than "
                               f"the tensor {t!r} {full}")
        cf = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
        if cf.shape[b] != 1:
            raise ProgramError(f"{node_label(node)}: the constant of shape {c.shape} broadcasts along the "
                               f"batch axis of {t!r}")
        y = cf.reshape(cf.shape[:b] + cf.shape[b + 1:])
        try:
            ok = np.broadcast_shapes(y.shape, self.ps(self.t[t][0])) == self.ps(self.t[t][0])
        except ValueError:
            ok = False
        if not ok:
            raise ProgramError(f"{node_label(node)}: the constant of shape {c.shape} does not broadcast to "
                               f"the tensor {t!r} of shape {full} without enlarging it")
        while y.ndim and y.shape[0] == 1:
            y = y[0]
        return y


def _axis(node, ctx: Context, t: str, a: int, what="axis") -> int:
    """ONNX axis of t → per-sample axis (error for the batch axis)."""
    full = ctx.full(t)
    a = int(a)
    if not -len(full) <= a < len(full):
        raise ProgramError(f"{node_label(node)}: {what} {a} out of range for shape {full}")
    a %= len(full)
    b = ctx.t[t][1]
    if a == b:
        raise ProgramError(f"{node_label(node)}: operates on the batch axis ({what} {a} of shape {full}); "
                           "the model must treat samples independently")
    return a if a < b else a - 1


def _batch_after(in_full, b, out_full, node) -> int:
    ones = [j for j, s in enumerate(out_full) if s == 1]
    if not ones:
        raise ProgramError(f"{node_label(node)}: turns shape {tuple(in_full)} into {tuple(out_full)}, merging the "
                           f"batch axis (axis {b}) with other axes or dropping it — not expressible per "
                           "sample (export with the batch kept as its own axis)")
    pre = int(np.prod(in_full[:b], dtype=np.int64))
    same = [j for j in ones if int(np.prod(out_full[:j], dtype=np.int64)) == pre]
    if b in same:
        return b
    return same[0] if same else ones[0]


def _reshape_to(ctx: Context, node, t: str, out_full, out=None):
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
    def f(ctx: Context, node):
        ir, b = ctx.dyn(node, node.input[0])
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    return f


def _alias(ctx: Context, node):
    ir, b = ctx.dyn(node, node.input[0])
    for o in node.output[1:]:
        if o in ctx.live:
            raise ProgramError(f"{node_label(node)}: output {o!r} (e.g. a dropout mask) is not supported")
    ctx.bind(node.output[0], ir, b)


def _cast(ctx: Context, node):
    if int(node_attrs(node).get("to", 1)) not in FLOAT_TYPES:
        raise ProgramError(f"{node_label(node)}: cast to a non-float type is not supported")
    _alias(ctx, node)


def _binary(ctx: Context, node):
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


def _neg(ctx: Context, node):
    ir, b = ctx.dyn(node, node.input[0])
    ctx.bind(node.output[0], ctx.emit("mul", [ir], {"y": np.float64(-1.0)}, out=node.output[0]), b)


# ---- affine -----------------------------------------------------------------------------------
def _layer_name(weight: str) -> str | None:
    """The op name for a layer with the weight initializer ``weight``: its module path
    (``fc.weight`` → ``fc``, ``enc.W.T`` → ``enc``), or None (then the op is named after its
    output tensor)."""
    m = re.fullmatch(r"([A-Za-z_][\w.]*?)[./](?:weight|W|kernel)(?:[./]T)?", weight)
    return m[1] if m else None


def _matmul(ctx: Context, node):
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
        y = ctx.emit("matmul", [ir], {"W": W[:, None]}, hint=f"{out}:mv", name=_layer_name(w))
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
    ctx.bind(out, ctx.emit("matmul", [ir], params, out=out, name=_layer_name(w)), b)


def _gemm(ctx: Context, node):
    a = node_attrs(node)
    A, B = node.input[0], node.input[1]
    if ctx.is_const(A) or not ctx.is_const(B) or a.get("transA", 0):
        raise ProgramError(f"{node_label(node)}: only Gemm(x, constant B) without transA is supported")
    ir = ctx.rebatch(node, A, 0)
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
    ctx.bind(node.output[0], ctx.emit("linear", [ir], params, out=node.output[0], name=_layer_name(B)), 0)


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


def _conv(ctx: Context, node):
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
                     hint=f"{out}:conv2d", name=_layer_name(node.input[1]))
        ys = ctx.ps(y)
        ctx.bind(out, ctx.reshape(y, (ys[0], ys[2]), out=out), 0)
        return
    st = [int(s) for s in strides]
    pd = [int(p) for p in pads]
    ctx.bind(out, ctx.emit("conv2d", [ir], params, {"stride": st[0] if st[0] == st[1] else st,
                                                    "padding": pd[0] if pd[0] == pd[1] else pd}, out=out,
                                    name=_layer_name(node.input[1])), 0)


def _maxpool(ctx: Context, node):
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


def _batchnorm(ctx: Context, node):
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


def _softmax(op):
    def f(ctx: Context, node):
        a = node_attrs(node)
        t = node.input[0]
        ir, b = ctx.dyn(node, t)
        if op == "l2norm" and int(a.get("p", 2)) != 2:
            raise ProgramError(f"{node_label(node)}: only p = 2 is supported")
        default = -1 if (op == "l2norm" or ctx.g.opset >= 13) else 1
        ax = _axis(node, ctx, t, a.get("axis", default))
        if ax != len(ctx.ps(ir)) - 1:
            raise ProgramError(f"{node_label(node)}: only the last axis is supported")
        ctx.bind(node.output[0], ctx.emit(op, [ir], out=node.output[0]), b)
    return f


def _argmax(ctx: Context, node):
    a = node_attrs(node)
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    if a.get("select_last_index", 0):
        raise ProgramError(f"{node_label(node)}: select_last_index is not supported (ties pick the first)")
    if _axis(node, ctx, t, a.get("axis", 0)) != len(ctx.ps(ir)) - 1:
        raise ProgramError(f"{node_label(node)}: only the last axis is supported")
    for c in ctx.g.consumers.get(node.output[0], []):
        raise ProgramError(f"{node_label(ctx.g.nodes[c])}: uses an ArgMax index; the IR ends at ArgMax")
    ctx.bind(node.output[0], ctx.emit("argmax", [ir], out=node.output[0]), b)


# ---- plumbing ---------------------------------------------------------------------------------
def _reshape(ctx: Context, node):
    t = node.input[0]
    if not ctx.is_const(node.input[1]):
        raise ProgramError(f"{node_label(node)}: the target shape must be a constant")
    shape = [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    full = ctx.full(t)
    if not node_attrs(node).get("allowzero", 0):
        shape = [full[k] if v == 0 else v for k, v in enumerate(shape)]
    try:
        out_full = np.empty(full, np.int8).reshape(shape).shape
    except ValueError:
        raise ProgramError(f"{node_label(node)}: cannot reshape {full} to {shape}") from None
    _reshape_to(ctx, node, t, out_full)


def _flatten(ctx: Context, node):
    t = node.input[0]
    full = ctx.full(t)
    k = int(node_attrs(node).get("axis", 1))
    k = k + len(full) if k < 0 else k
    _reshape_to(ctx, node, t, (int(np.prod(full[:k], dtype=np.int64)), int(np.prod(full[k:], dtype=np.int64))))


def _axes_of(ctx: Context, node):
    a = node_attrs(node)
    if "axes" in a:
        return list(a["axes"])
    if len(node.input) > 1 and node.input[1]:
        if not ctx.is_const(node.input[1]):
            raise ProgramError(f"{node_label(node)}: the axes must be constants")
        return [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    return None


def _squeeze(ctx: Context, node):
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


def _transpose(ctx: Context, node):
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    n = len(ctx.full(t))
    perm = list(node_attrs(node).get("perm", list(range(n))[::-1]))
    nb = perm.index(b)
    ps = [p if p < b else p - 1 for k, p in enumerate(perm) if k != nb]
    if ps == sorted(ps):
        ctx.bind(node.output[0], ir, nb)
    else:
        ctx.bind(node.output[0], ctx.emit("transpose", [ir], attrs={"perm": ps}, out=node.output[0]), nb)


def slice_ir(ctx: Context, ir: str, pa: int, r: range, out=None, hint="slice") -> str:
    n = ctx.ps(ir)[pa]
    if len(r) == 0:
        raise ProgramError(f"empty slice of axis {pa} of a tensor of shape {ctx.ps(ir)}")
    if r == range(n):
        return ir
    stop = r.stop if r.stop >= 0 else None
    return ctx.emit("slice", [ir], attrs={"axis": pa, "start": r.start, "stop": stop, "step": r.step},
                    out=out, hint=hint)


def _slice(ctx: Context, node):
    t = node.input[0]
    a = node_attrs(node)
    full = ctx.full(t)
    if "starts" in a:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        vals = [np.asarray(ctx.const(x)).reshape(-1).tolist() if x else None for x in node.input[1:5]]
        if any(x and not ctx.is_const(x) for x in node.input[1:5]):
            raise ProgramError(f"{node_label(node)}: starts/ends/axes/steps must be constants")
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
                raise ProgramError(f"{node_label(node)}: slices the batch axis")
            continue
        ir = slice_ir(ctx, ir, ax if ax < b else ax - 1, r, hint=f"{node.output[0]}:ax{ax}")
    ctx.bind(node.output[0], ir, b)


def _split(ctx: Context, node):
    t = node.input[0]
    a = node_attrs(node)
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
            ctx.bind(o, slice_ir(ctx, ir, pa, range(start, start + sz), out=o), b)
        start += sz


def _concat(ctx: Context, node):
    ins = [x for x in node.input if x]
    if any(ctx.is_const(x) for x in ins):
        raise ProgramError(f"{node_label(node)}: concatenation with a constant is not supported")
    first = ins[0]
    pa = _axis(node, ctx, first, node_attrs(node)["axis"])
    b = ctx.dyn(node, first)[1]
    irs = [ctx.rebatch(node, x, b) for x in ins]
    if len(irs) == 1:
        ctx.bind(node.output[0], irs[0], b)
        return
    ctx.bind(node.output[0], ctx.emit("concat", irs, attrs={"axis": pa}, out=node.output[0]), b)


def _gather(ctx: Context, node):
    t, ix = node.input
    if ctx.is_const(t) or not ctx.is_const(ix):
        raise ProgramError(f"{node_label(node)}: only Gather of a tensor at constant indices is supported "
                           "(no data-dependent indexing, no embedding lookup)")
    idx = np.asarray(ctx.const(ix)).astype(np.int64)
    a = int(node_attrs(node).get("axis", 0))
    full = ctx.full(t)
    ir, b = ctx.dyn(node, t)
    ax = a % len(full)
    n = full[ax]
    out = node.output[0]
    if ax == b:
        if idx.ndim == 0 and int(idx) % n == 0:  # x[0] of the batch: drop it, find another batch axis
            _reshape_to(ctx, node, t, full[:ax] + full[ax + 1:])
            return
        raise ProgramError(f"{node_label(node)}: indexes the batch axis")
    pa = ax if ax < b else ax - 1
    flat = [int(i) % n for i in idx.reshape(-1)]
    if idx.ndim > 1:
        raise ProgramError(f"{node_label(node)}: indices of rank {idx.ndim} are not supported")
    rows = index_range(flat)
    if rows is not None:
        y = slice_ir(ctx, ir, pa, rows, hint=f"{out}:slice")
    else:
        parts = [slice_ir(ctx, ir, pa, range(i, i + 1), hint=f"{out}:{i}") for i in flat]
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


def _rnn(ctx: Context, node):
    kind = node.op_type.lower()
    a = node_attrs(node)
    label = node_label(node)
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
        xin = slice_ir(ctx, x, 0, range(T - 1, -1, -1), hint=f"{base}:rev{d}") if reverse and T > 1 else x
        name = base if nd == 1 else f"{base}_{'bwd' if reverse else 'fwd'}"
        hseq = ctx.emit(kind, [xin], params, {"sequence": True} if need_y else {}, name=name,
                        hint=f"{name}:h")
        if need_y:
            seqs.append(slice_ir(ctx, hseq, 0, range(T - 1, -1, -1), hint=f"{name}:y") if reverse and T > 1 else hseq)
            last = ctx.reshape(slice_ir(ctx, hseq, 0, range(T - 1, T), hint=f"{name}:last"), (H,),
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
