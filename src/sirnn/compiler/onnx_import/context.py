"""The emission :class:`Context` the op handlers (:mod:`.ops`) write into: ONNX tensor → IR
tensor and the position of its batch axis, per-sample shapes tracked on a batch-1 dummy; and the
helpers the handlers share (axis conversion, reshapes that keep track of the batch axis, slices,
layer names)."""

from __future__ import annotations

import re

import numpy as np

from ...errors import ProgramError
from ..floatir import FLOAT_OPS, FloatOp
from .graph import Graph, node_label


class Context:
    """Emission state. Every ONNX tensor maps to (IR tensor, batch axis): the IR tensor is the
    per-sample value, the batch axis the ONNX axis of size 1 it lacks — or None when the ONNX
    tensor *is* the per-sample value (models whose input is one sample, ``Graph.batch_axis`` None:
    then every binding is materialised without a missing axis)."""

    def __init__(self, g: Graph):
        self.g = g
        self.ops: list[FloatOp] = []
        self.t: dict[str, tuple[str, int | None]] = {}  # ONNX tensor → (IR tensor, batch axis)
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
        if b is not None:
            s.insert(b, 1)
        return tuple(s)

    def bind(self, t: str, ir: str, b: int | None):
        if b is not None and self.g.batch_axis is None:  # no batch: the size-1 axis is real
            s = list(self.ps(ir))
            s.insert(int(b), 1)
            ir, b = self.reshape(ir, s, hint=t), None
        self.t[t] = (ir, None if b is None else int(b))

    def emit(self, op: str, ins, params=None, attrs=None, out: str | None = None, name: str | None = None,
             hint: str = "t") -> str:
        out = self.fresh(out or hint)
        nm = name or out
        k = 2
        while nm in self.opnames:
            nm, k = f"{name or out}_{k}", k + 1
        self.opnames.add(nm)
        fop = FloatOp(op, list(ins), [out], params or {}, attrs or {}, nm)
        probe = fop  # (shapes at batch 1: per-sample step ranges of a static batch apply to its first)
        if len(fop.attrs.get("steps") or ()) > 1:
            probe = FloatOp(op, fop.inputs, fop.outputs, fop.params, dict(fop.attrs, steps=fop.attrs["steps"][:1]), nm)
        try:
            self.val[out] = FLOAT_OPS[op](probe, [self.val[i] for i in fop.inputs], None)
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

    def rebatch(self, node, t: str, r: int | None) -> str:
        """The IR tensor of ONNX tensor t with its batch on ONNX axis r (r None: the whole ONNX
        tensor, without batch axis)."""
        ir, b = self.dyn(node, t)
        if b == r:
            return ir
        full = self.full(t)
        if r is None:
            return self.reshape(ir, full, hint=f"{t}:full")
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
        if b is None:
            y = cf
        elif cf.shape[b] != 1:
            raise ProgramError(f"{node_label(node)}: the constant of shape {c.shape} broadcasts along the "
                               f"batch axis of {t!r}")
        else:
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


def sample_axis(node, ctx: Context, t: str, a: int, what="axis") -> int:
    """ONNX axis of t → per-sample axis (error for the batch axis)."""
    full = ctx.full(t)
    a = int(a)
    if not -len(full) <= a < len(full):
        raise ProgramError(f"{node_label(node)}: {what} {a} out of range for shape {full}")
    a %= len(full)
    b = ctx.t[t][1]
    if b is None:
        return a
    if a == b:
        raise ProgramError(f"{node_label(node)}: operates on the batch axis ({what} {a} of shape {full}); "
                           "the model must treat samples independently")
    return a if a < b else a - 1


def batch_after(in_full, b, out_full, node) -> int | None:
    """Where the batch axis b of a tensor of shape in_full goes when it is reshaped to out_full."""
    if b is None:
        return None
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


def reshape_to(ctx: Context, node, t: str, out_full, out=None):
    ir, b = ctx.dyn(node, t)
    in_full = ctx.full(t)
    nb = batch_after(in_full, b, out_full, node)
    s = list(out_full)
    if nb is not None:
        del s[nb]
    if tuple(s) == ctx.ps(ir):
        ctx.bind(out or node.output[0], ir, nb)
    else:
        ctx.bind(out or node.output[0], ctx.reshape(ir, s, out=out or node.output[0]), nb)


def to_rank(ctx: Context, node, t: str, n: int) -> str:
    """ONNX tensor t with leading size-1 axes up to rank n (numpy broadcasting against a constant
    of higher rank), bound under a derived name; t itself if its rank is n or more."""
    full = ctx.full(t)
    if len(full) >= n:
        return t
    ir, b = ctx.dyn(node, t)
    k = n - len(full)
    name = f"{t}:rank{n}"
    ctx.bind(name, ctx.reshape(ir, (1,) * k + ctx.ps(ir), hint=name), None if b is None else b + k)
    return name


def aligned(ctx: Context, node, a: str, b: str):
    """Two ONNX tensors broadcast against each other (numpy rules: the lower rank gets leading
    size-1 axes) → their IR tensors with the batch on one axis, and that axis."""
    n = max(len(ctx.full(a)), len(ctx.full(b)))
    a, b = to_rank(ctx, node, a, n), to_rank(ctx, node, b, n)
    fa, fb = ctx.full(a), ctx.full(b)
    try:
        out = np.broadcast_shapes(fa, fb)
    except ValueError:
        raise ProgramError(f"{node_label(node)}: shapes {fa} and {fb} do not broadcast") from None
    ia, ba = ctx.dyn(node, a)
    ib, bb = ctx.dyn(node, b)
    if ba == bb:
        return ia, ib, ba
    for r in (ba, bb):  # put both batch axes on one that is 1 in the output
        if r is not None and out[r] == 1:
            return ctx.rebatch(node, a, r), ctx.rebatch(node, b, r), r
    return ctx.rebatch(node, a, None), ctx.rebatch(node, b, None), None


def layer_name(weight: str) -> str | None:
    """The op name for a layer with the weight initializer ``weight``: its module path
    (``fc.weight`` → ``fc``, ``enc.W.T`` → ``enc``), or None (then the op is named after its
    output tensor)."""
    m = re.fullmatch(r"([A-Za-z_][\w.]*?)[./](?:weight|W|kernel)(?:[./]T)?", weight)
    return m[1] if m else None


def slice_ir(ctx: Context, ir: str, pa: int, r: range, out=None, hint="slice") -> str:
    n = ctx.ps(ir)[pa]
    if len(r) == 0:
        raise ProgramError(f"empty slice of axis {pa} of a tensor of shape {ctx.ps(ir)}")
    if r == range(n):
        return ir
    stop = r.stop if r.stop >= 0 else None
    return ctx.emit("slice", [ir], attrs={"axis": pa, "start": r.start, "stop": stop, "step": r.step},
                    out=out, hint=hint)


