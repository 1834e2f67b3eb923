"""ONNX LSTM, GRU and RNN → the IR's recurrent cells."""

from __future__ import annotations

import numpy as np

from ....errors import ProgramError
from ..context import Context, slice_ir
from ..graph import node_attrs, node_label
from ..registry import onnx_op


# gate blocks: ONNX LSTM i, o, f, c → torch i, f, g(c), o; ONNX GRU z, r, h → torch r, z, n


def _blocks(m, order, H):
    return np.concatenate([m[k * H:(k + 1) * H] for k in order], axis=0)


_ORDER = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2), "rnn": (0,)}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _initial_state(ctx: Context, node, t: str, what: str, nd: int, H: int, layout: int):
    """A constant initial state (nd, batch, H) (layout 1: (batch, nd, H)) → per direction an (H,)
    vector, or None when it is absent or zero (the cells' default); a runtime one (a graph input,
    or computed from one) → per direction the IR tensor (H,) (a cell input)."""
    if not t:
        return [None] * nd
    if not ctx.is_const(t):
        ir = ctx.rebatch(node, t, 1 if layout == 0 else 0)
        if ctx.ps(ir) != (nd, H):
            raise ProgramError(f"{node_label(node)}: {what} has shape {ctx.full(t)}, expected "
                               f"{(nd, 'batch', H) if layout == 0 else ('batch', nd, H)}")
        return [ctx.reshape(slice_ir(ctx, ir, 0, range(d, d + 1), hint=f"{t}:d{d}"), (H,), hint=f"{t}:{d}")
                for d in range(nd)]
    v = np.asarray(ctx.const(t), np.float64)
    if layout == 1:
        v = v.transpose(1, 0, 2)
    if v.ndim != 3 or v.shape[0] != nd or v.shape[2] != H:
        raise ProgramError(f"{node_label(node)}: {what} has shape {v.shape}, expected ({nd}, batch, {H})")
    if not np.all(v == v[:, :1]):
        raise ProgramError(f"{node_label(node)}: {what} differs between samples of the batch")
    return [None if not np.any(v[d, 0]) else v[d, 0] for d in range(nd)]


def _sequence_lens(ctx: Context, node, t: str, T: int):
    """ONNX ``sequence_lens`` → None (absent, or T for every sample) or the per-sample lengths: one
    for all (equal), or one per batch element (a static batch: the program then runs exactly that
    many samples)."""
    label = node_label(node)
    if not t:
        return None
    if not ctx.is_const(t):
        raise ProgramError(f"{label}: sequence_lens is a runtime tensor; only constant sequence lengths are "
                           "supported")
    v = np.asarray(ctx.const(t)).reshape(-1)
    if v.size == 0 or v.dtype.kind not in "iu" or v.min() < 0 or v.max() > T:
        raise ProgramError(f"{label}: sequence_lens {v.tolist()} must be integers in 0..{T}")
    if np.all(v == T):
        return None
    if np.all(v == v[0]):
        return [int(v[0])]
    if ctx.g.batch_axis is None or ctx.g.static_batch is None:
        raise ProgramError(f"{label}: sequence_lens {v.tolist()} differ between samples, but the batch is "
                           "dynamic: export with equal lengths, or with a static batch of that size")
    if v.size != ctx.g.static_batch:
        raise ProgramError(f"{label}: sequence_lens has {v.size} lengths for a batch of {ctx.g.static_batch}")
    return [int(n) for n in v]


@onnx_op("LSTM", "GRU", "RNN")
def _rnn(ctx: Context, node):
    """``lstm`` / ``gru`` / ``rnn`` per direction (ONNX gate orders mapped to PyTorch's; GRU's
    ``linear_before_reset`` either way, RNN's Tanh or Relu; constant initial states as params
    ``h0`` / ``c0``), with slices and concats for Y / Y_h; Y_c by a second ``lstm`` with
    ``state: c`` (the cell runs twice: export without Y_c when it is not needed)."""
    kind = node.op_type.lower()
    a = node_attrs(node)
    label = node_label(node)
    H = int(a["hidden_size"])
    direction = a.get("direction", "forward")
    nd = 2 if direction == "bidirectional" else 1
    acts = [s.lower() for s in a.get("activations", [])]
    default = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"], "rnn": ["tanh"]}[kind]
    per_dir = [acts[d * len(default):(d + 1) * len(default)] if acts else default for d in range(nd)]
    for pd in per_dir:
        if kind == "rnn" and pd not in (["tanh"], ["relu"]) or kind != "rnn" and pd != default:
            raise ProgramError(f"{label}: activations {a.get('activations')} are not supported "
                               f"({'Tanh or Relu' if kind == 'rnn' else default} only)")
    if "clip" in a:
        raise ProgramError(f"{label}: cell clipping is not supported")
    if a.get("input_forget", 0):
        raise ProgramError(f"{label}: input_forget (coupled gates) is not supported")
    layout = int(a.get("layout", 0))
    ins = list(node.input) + [""] * 8
    X, W, R, B, seq_lens, h0 = ins[:6]
    c0, P = (ins[6], ins[7]) if kind == "lstm" else ("", "")
    for what, t in (("W", W), ("R", R), ("B", B)):
        if t and not ctx.is_const(t):
            raise ProgramError(f"{label}: {what} must be a constant")
    if P and (not ctx.is_const(P) or np.any(np.asarray(ctx.const(P)) != 0)):
        raise ProgramError(f"{label}: peepholes (P) are not supported")
    h0s = _initial_state(ctx, node, h0, "initial_h", nd, H, layout)
    c0s = _initial_state(ctx, node, c0, "initial_c", nd, H, layout)
    x = ctx.rebatch(node, X, 1 if layout == 0 else 0)
    xs = ctx.ps(x)
    if len(xs) != 2:
        raise ProgramError(f"{label}: input of shape {ctx.full(X)}, expected a sequence")
    T = xs[0]
    lens = _sequence_lens(ctx, node, seq_lens, T)
    Wc, Rc = (np.asarray(ctx.const(t), np.float64) for t in (W, R))
    ng = _GATES[kind]
    Bc = np.asarray(ctx.const(B), np.float64) if B else np.zeros((nd, 2 * ng * H))
    order = _ORDER[kind]
    outs = list(node.output) + ["", "", ""]
    Y, Yh, Yc = outs[:3]
    need_y, need_h, need_c = Y in ctx.live, Yh in ctx.live, bool(Yc) and Yc in ctx.live
    attrs = {}
    if kind == "gru" and not a.get("linear_before_reset", 0):
        attrs["linear_before_reset"] = False
    base = node.name or node.output[0]
    seqs, finals, cells = [], [], []
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        params = {"W_ih": _blocks(Wc[d], order, H), "W_hh": _blocks(Rc[d], order, H),
                  "b_ih": _blocks(Bc[d, :ng * H], order, H), "b_hh": _blocks(Bc[d, ng * H:], order, H)}
        init, states = [], []
        for key, v in (("h", h0s[d]), ("c", c0s[d])):
            if isinstance(v, str):  # a runtime initial state: a cell input
                init.append(key)
                states.append(v)
            elif v is not None:
                params[key + "0"] = v
        at = dict(attrs, **({"activation": "relu"} if kind == "rnn" and per_dir[d] == ["relu"] else {}))
        if init:
            at["init"] = init
        if lens is not None:  # reversed: the first len steps run last, after T − len held steps
            at["steps"] = [[T - n, T] if reverse else [0, n] for n in lens]
        xin = slice_ir(ctx, x, 0, range(T - 1, -1, -1), hint=f"{base}:rev{d}") if reverse and T > 1 else x
        name = base if nd == 1 else f"{base}_{'bwd' if reverse else 'fwd'}"
        if need_y or need_h:
            hseq = ctx.emit(kind, [xin] + states, params, dict(at, **({"sequence": True} if need_y else {})),
                            name=name, hint=f"{name}:h")
            last = hseq
            if need_y:
                seqs.append(slice_ir(ctx, hseq, 0, range(T - 1, -1, -1), hint=f"{name}:y")
                            if reverse and T > 1 else hseq)
                if need_h and lens is not None:  # the masked Y is 0 past each length: run for Y_h too
                    last = ctx.emit(kind, [xin] + states, params, at, name=f"{name}:hn", hint=f"{name}:hn")
                else:
                    last = ctx.reshape(slice_ir(ctx, hseq, 0, range(T - 1, T), hint=f"{name}:last"), (H,),
                                       hint=f"{name}:hT") if need_h else None
            finals.append(last)
        if need_c:
            cells.append(ctx.emit(kind, [xin] + states, params, dict(at, state="c"), name=f"{name}:c",
                                  hint=f"{name}:c"))
    if need_y:
        parts = [ctx.reshape(s, (T, 1, H), hint=f"{s}:3d") for s in seqs]
        y = parts[0] if nd == 1 else ctx.emit("concat", parts, attrs={"axis": 1}, hint=f"{Y}:cat")
        ctx.bind(Y, ctx.reshape(y, (T, nd, H), out=Y), 2 if layout == 0 else 0)
    for out, vecs in ((Yh, finals if need_h else None), (Yc, cells if need_c else None)):
        if vecs:
            parts = [ctx.reshape(f, (1, H), hint=f"{f}:2d") for f in vecs]
            y = parts[0] if nd == 1 else ctx.emit("concat", parts, attrs={"axis": 0}, hint=f"{out}:cat")
            ctx.bind(out, ctx.reshape(y, (nd, H), out=out), 1 if layout == 0 else 0)


