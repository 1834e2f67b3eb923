"""ONNX LSTM, GRU and RNN → the IR's recurrent cells."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, slice_ir
from ..graph import node_attrs, node_label
from ..registry import onnx_op


_LSTM_ORDER = (0, 2, 3, 1)   # ONNX i, o, f, c → torch i, f, g(c), o
_GRU_ORDER = (1, 0, 2)       # ONNX z, r, h → torch r, z, n


def _blocks(m, order, H):
    return np.concatenate([m[k * H:(k + 1) * H] for k in order], axis=0)


@onnx_op("LSTM", "GRU")
def _rnn(ctx: Context, node):
    """``lstm`` / ``gru`` per direction (ONNX gate orders mapped to PyTorch's), with slices and
    concats for Y / Y_h."""
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
