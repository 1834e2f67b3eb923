"""Data movement: Reshape, Flatten, (Un)Squeeze, Transpose, Slice, Split, Concat, Gather."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, reshape_to, sample_axis, slice_ir
from ..graph import index_range, node_attrs, node_label
from ..registry import onnx_op


def _pa(ax: int, b: int | None) -> int:
    """ONNX axis ax (not the batch axis b) → per-sample axis."""
    return ax if b is None or ax < b else ax - 1


@onnx_op("Reshape")
def _reshape(ctx: Context, node):
    """``reshape`` to a constant shape (the batch axis must stay its own axis)."""
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
    reshape_to(ctx, node, t, out_full)


@onnx_op("Flatten")
def _flatten(ctx: Context, node):
    """``flatten`` or ``reshape``."""
    t = node.input[0]
    full = ctx.full(t)
    k = int(node_attrs(node).get("axis", 1))
    k = k + len(full) if k < 0 else k
    reshape_to(ctx, node, t, (int(np.prod(full[:k], dtype=np.int64)), int(np.prod(full[k:], dtype=np.int64))))


def _axes_of(ctx: Context, node):
    a = node_attrs(node)
    if "axes" in a:
        return list(a["axes"])
    if len(node.input) > 1 and node.input[1]:
        if not ctx.is_const(node.input[1]):
            raise ProgramError(f"{node_label(node)}: the axes must be constants")
        return [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
    return None


@onnx_op("Squeeze", "Unsqueeze")
def _squeeze(ctx: Context, node):
    """``reshape`` (axes constant)."""
    t = node.input[0]
    full = list(ctx.full(t))
    axes = _axes_of(ctx, node)
    if node.op_type == "Unsqueeze":
        n = len(full) + len(axes)
        axes = sorted(a % n for a in axes)
        ir, b = ctx.dyn(node, t)
        if b is None:
            for a in axes:
                full.insert(a, 1)
            ctx.bind(node.output[0], ctx.reshape(ir, full, out=node.output[0]), None)
            return
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
    if b is None:
        ctx.bind(node.output[0], ctx.reshape(ir, out_full, out=node.output[0]), None)
        return
    if b not in axes:
        nb = b - sum(1 for a in axes if a < b)
        ctx.bind(node.output[0], ctx.reshape(ir, out_full[:nb] + out_full[nb + 1:], out=node.output[0]), nb)
        return
    reshape_to(ctx, node, t, out_full)


@onnx_op("Transpose")
def _transpose(ctx: Context, node):
    """``transpose`` of the per-sample axes (nothing if only the batch or size-1 axes move)."""
    t = node.input[0]
    ir, b = ctx.dyn(node, t)
    n = len(ctx.full(t))
    perm = list(node_attrs(node).get("perm", list(range(n))[::-1]))
    nb = None if b is None else perm.index(b)
    ps = perm if b is None else [p if p < b else p - 1 for k, p in enumerate(perm) if k != nb]
    if ps == sorted(ps):
        ctx.bind(node.output[0], ir, nb)
    else:
        ctx.bind(node.output[0], ctx.emit("transpose", [ir], attrs={"perm": ps}, out=node.output[0]), nb)


@onnx_op("Slice")
def _slice(ctx: Context, node):
    """``slice`` per axis (constant starts/ends/axes/steps)."""
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
        ir = slice_ir(ctx, ir, _pa(ax, b), r, hint=f"{node.output[0]}:ax{ax}")
    ctx.bind(node.output[0], ir, b)


@onnx_op("Split")
def _split(ctx: Context, node):
    """``slice`` per output."""
    t = node.input[0]
    a = node_attrs(node)
    full = ctx.full(t)
    pa = sample_axis(node, ctx, t, a.get("axis", 0))
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


@onnx_op("Concat")
def _concat(ctx: Context, node):
    """``concat``."""
    ins = [x for x in node.input if x]
    if any(ctx.is_const(x) for x in ins):
        raise ProgramError(f"{node_label(node)}: concatenation with a constant is not supported")
    first = ins[0]
    pa = sample_axis(node, ctx, first, node_attrs(node)["axis"])
    b = ctx.dyn(node, first)[1]
    irs = [ctx.rebatch(node, x, b) for x in ins]
    if len(irs) == 1:
        ctx.bind(node.output[0], irs[0], b)
        return
    ctx.bind(node.output[0], ctx.emit("concat", irs, attrs={"axis": pa}, out=node.output[0]), b)


@onnx_op("Gather")
def _gather(ctx: Context, node):
    """``slice`` at constant indices that form a range; other constant indices (any rank) →
    ``gather`` with the index map."""
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
            reshape_to(ctx, node, t, full[:ax] + full[ax + 1:])
            return
        raise ProgramError(f"{node_label(node)}: indexes the batch axis")
    pa = _pa(ax, b)
    flat = [int(i) % n for i in idx.reshape(-1)]
    rows = index_range(flat) if idx.ndim <= 1 else None
    if rows is None:
        emit_index_map(ctx, node, t, [idx], lambda r: b if b is None or ax > b else b + idx.ndim - 1)
        return
    y = slice_ir(ctx, ir, pa, rows, hint=f"{out}:slice")
    if idx.ndim == 0:
        s = list(ctx.ps(y))
        del s[pa]
        y = ctx.reshape(y, s, out=out)
        ctx.bind(out, y, b if b is None or ax > b else b - 1)
        return
    ctx.bind(out, y, b)




@onnx_op("Pad")
def _pad(ctx: Context, node):
    """``pad`` (constant / reflect / edge; pads, constant value and axes constants; the batch axis
    is not padded)."""
    a = node_attrs(node)
    t = node.input[0]
    full = ctx.full(t)
    n = len(full)
    if "pads" in a:
        pads, value, axes = list(a["pads"]), float(a.get("value", 0.0)), None
    else:
        extra = [x for x in node.input[1:4]]
        if any(x and not ctx.is_const(x) for x in extra):
            raise ProgramError(f"{node_label(node)}: pads, constant value and axes must be constants")
        pads = [int(v) for v in np.asarray(ctx.const(node.input[1])).reshape(-1)]
        value = float(np.asarray(ctx.const(extra[1])).reshape(-1)[0]) if len(extra) > 1 and extra[1] else 0.0
        axes = [int(v) % n for v in np.asarray(ctx.const(extra[2])).reshape(-1)] if len(extra) > 2 and extra[2] else None
    axes = axes if axes is not None else list(range(n))
    k = len(axes)
    per = {ax: (int(pads[i]), int(pads[k + i])) for i, ax in enumerate(axes)}
    ir, b = ctx.dyn(node, t)
    if b is not None and per.get(b, (0, 0)) != (0, 0):
        raise ProgramError(f"{node_label(node)}: pads the batch axis")
    if any(p < 0 for pr in per.values() for p in pr):
        raise ProgramError(f"{node_label(node)}: negative pads (cropping) are not supported")
    pp = [list(per.get(ax, (0, 0))) for ax in range(n) if ax != b]
    mode = a.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise ProgramError(f"{node_label(node)}: pad mode {mode!r} is not supported")
    if not any(any(p) for p in pp):
        ctx.bind(node.output[0], ir, b)
        return
    ctx.bind(node.output[0], ctx.emit("pad", [ir], attrs={"pads": pp, "mode": mode, "value": value},
                                      out=node.output[0]), b)


@onnx_op("Expand", "Tile")
def _expand(ctx: Context, node):
    """``gather`` with the op's index map: Expand / Tile of a tensor by constant shapes / repeats
    (the batch axis must stay a size-1 axis)."""
    if any(x and not ctx.is_const(x) for x in node.input[1:]):
        raise ProgramError(f"{node_label(node)}: the shape / repeats must be constants")
    t = node.input[0]
    b, n = ctx.dyn(node, t)[1], len(ctx.full(t))
    emit_index_map(ctx, node, t, [ctx.const(x) if x else None for x in node.input[1:]],
                   lambda r: None if b is None else b + r - n)


def emit_index_map(ctx: Context, node, t: str, others: list, out_batch):
    """Emit a data-movement node on ONNX tensor t (its other inputs the constants ``others``) as
    one ``gather``: the node is run on the flat indices of t's elements, which gives, for every
    output element, the input element it copies. ``out_batch(rank)`` is the output's batch axis
    (the output must keep it as a size-1 axis); an identity map emits nothing."""
    from ..graph import evaluate

    full = ctx.full(t)
    ir, b = ctx.dyn(node, t)
    src = np.arange(int(np.prod(full, dtype=np.int64)), dtype=np.int64).reshape(full)
    idx = np.asarray(evaluate(node, [src] + list(others), ctx.g.opset)[0])
    nb = out_batch(idx.ndim)
    if nb is not None:
        if not 0 <= nb < idx.ndim or idx.shape[nb] != 1:
            raise ProgramError(f"{node_label(node)}: copies along the batch axis (output shape {idx.shape})")
        idx = np.take(idx, 0, axis=nb)
    if idx.shape == ctx.ps(ir) and np.array_equal(idx.reshape(-1), np.arange(idx.size)):
        ctx.bind(node.output[0], ir, nb)
        return
    ctx.bind(node.output[0], ctx.emit("gather", [ir], {"index": idx}, out=node.output[0]), nb)
