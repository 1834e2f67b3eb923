"""Handlers of the fused nodes the passes produce (domain ``sirnn``, not ONNX ops)."""

from __future__ import annotations

from ....errors import ProgramError
from ..context import Context, slice_ir
from ..graph import node_label
from ..passes.fastgrnn import cell_weights
from ..registry import onnx_op


@onnx_op("FastGRNN", domain="sirnn")
def fastgrnn(ctx: Context, node):
    """An unrolled FastGRNN chain (pass ``fuse_cells``) → ``fastgrnn`` (``sequence: true`` when
    states other than the last are used), its input sequence gathered from the steps' x_t."""
    c = node.payload
    T = len(c.steps)
    anchor = c.anchor_node
    src = c.seq_src
    if src and src[0] == "input":
        _, X, ax, rows = src
        x = ctx.rebatch(anchor, X, 0)
        if ax == 2:
            x = ctx.emit("transpose", [x], attrs={"perm": [1, 0]}, hint=f"{c.name}:xT")
        x = slice_ir(ctx, x, 0, rows, hint=f"{c.name}:x")
    elif src and src[0] == "chain":
        _, other, rows = src
        x = slice_ir(ctx, ctx.t[other.token][0], 0, rows, hint=f"{c.name}:x")
    else:
        parts = []
        for s in c.steps:
            ir = ctx.rebatch(anchor, s.x, 0)
            if len(ctx.ps(ir)) != 1:
                raise ProgramError(f"{node_label(anchor)}: the FastGRNN input x_t {s.x!r} has shape "
                                   f"{ctx.full(s.x)}; the IR's cells take one vector per timestep")
            parts.append(ctx.reshape(ir, (1,) + ctx.ps(ir), hint=f"{s.x}:row"))
        x = parts[0] if T == 1 else ctx.emit("concat", parts, attrs={"axis": 0}, hint=f"{c.name}:x")
    w = cell_weights(c)
    H = w["b_z"].shape[0]
    D = w["W"].shape[1] if "W" in w else w["W2"].shape[1]
    if ctx.ps(x) != (T, D):
        raise ProgramError(f"{node_label(anchor)}: the FastGRNN input sequence has shape {ctx.ps(x)}, "
                           f"expected (T, D) = {(T, D)}")
    last = c.steps[-1].out
    if not c.sequence:
        h = ctx.emit("fastgrnn", [x], w, out=f"{c.name}.h", name=c.name)
        ctx.bind(last, h, 0)
        return
    hs = ctx.emit("fastgrnn", [x], w, {"sequence": True}, name=c.name, hint=c.token)
    ctx.bind(c.token, hs, 0)
    for t, o in c.external.items():
        ctx.bind(o, ctx.reshape(slice_ir(ctx, hs, 0, range(t, t + 1), hint=f"{o}:slice"), (H,), out=o), 0)


@onnx_op("RNNPool", domain="sirnn")
def rnnpool(ctx: Context, node):
    """An RNNPool region (pass ``fuse_cells``) → ``rnnpool`` (+ transpose / reshape to the
    exported layout)."""
    r = node.payload
    anchor = r.anchor_node
    x = ctx.rebatch(anchor, r.x, 0)
    y = ctx.emit("rnnpool", [x], r.params, {"patch": r.patch, "stride": r.stride}, name=r.name,
                 hint=f"{r.name}.out")
    if tuple(r.perm) != (0, 1, 2):
        y = ctx.emit("transpose", [y], attrs={"perm": list(r.perm)}, hint=f"{r.name}.t")
    yps = tuple(ctx.g.shapes[r.y][1:])
    ctx.bind(r.y, ctx.reshape(y, yps, out=r.y), 0)


@onnx_op("ElmanRNN", domain="sirnn")
def elman(ctx: Context, node):
    """An unrolled Elman RNN (pass ``fuse_elman``) → ``rnn`` (``sequence: true`` when states
    other than the last are used) over X (T, batch, D); each used h_t bound with its exported
    shape (…, batch, H)."""
    c = node.payload
    x = ctx.rebatch(c["anchor"], c["X"], 1)
    H = c["H"]
    params = {k: c[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh")}
    attrs = {"activation": "relu"} if c["activation"] == "relu" else {}
    last_only = c["outs"] == [c["steps"][-1]]
    if not last_only:
        attrs["sequence"] = True
    h = ctx.emit("rnn", [x], params, attrs, name=node.name, hint=f"{node.name}.h")
    for o in c["outs"]:
        t = c["steps"].index(o)
        v = h if last_only else ctx.reshape(slice_ir(ctx, h, 0, range(t, t + 1), hint=f"{o}:slice"), (H,))
        full = ctx.g.shapes.get(o) or (1, H)
        if full[-1] != H or any(s != 1 for s in full[:-1]):
            raise ProgramError(f"{node_label(c['anchor'])}: the RNN state {o!r} has shape {full}, expected (…, 1, {H})")
        b = len(full) - 2
        ctx.bind(o, ctx.reshape(v, tuple(full[:b]) + (H,), out=o), b)
