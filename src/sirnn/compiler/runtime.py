"""Run a fixed-point program against a Backend: with a :class:`ClearBackend` this *is* the
cleartext fixed-point interpreter; with a :class:`SecureBackend` it is the two-party executor
(ALICE holds the program with its parameter values, BOB the public program, parameters None).
The same code runs in both worlds, so the two agree bit for bit (every interactive backend
operation equals its cleartext functionality, tested protocol by protocol).

Tensors carry a leading batch axis: ``execute`` takes the input as a Share of shape
(N,) + input shape and returns the output as (N,) + output shape (N samples evaluated together;
the recurrent cells run them as N columns).

``meter`` (a :class:`~sirnn.nn.meter.Meter`) gets one section per op (named after the op);
``progress`` (a callable) receives :class:`ProgressEvent` s: one at the start of each op and one
per timestep of the recurrent cells, each with the estimated fraction of the program's work done
(:func:`op_work`) and the bytes this party's channel has carried so far.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ParameterError, ProgramError
from ..nn import layers, norm, pointwise, rnn
from ..nn.fixed import Fmt, Param, align_scale, requant
from ..nn.movement import gather
from ..protocols.backend import Backend, ClearBackend, clear
from ..protocols.ring import to_signed
from ..protocols.share import Share, concat
from .floatir import by_name, rnnpool_sequences, rnnpool_summaries, step_mask
from .ops import Op, _slice_of, cell_formats_from
from .program import Program

__all__ = ["execute", "ProgressEvent", "op_work", "RUNNERS", "evaluate_clear", "encode_input", "encode_inputs",
           "decode_output", "decode_outputs", "build_cell"]


@dataclass(frozen=True)
class ProgressEvent:
    op_index: int   #: 0-based index of the op
    n_ops: int
    name: str       #: op name
    op: str         #: op type
    step: int = 0   #: timestep done (recurrent cells), else 0
    steps: int = 0  #: number of timesteps (recurrent cells), else 0
    done: float = 0.0  #: estimated fraction of the program's work done (0..1, :func:`op_work`)
    bytes: int = 0  #: bytes this party's channel has sent + received so far (0 in the clear)


#: a non-linear element (sigmoid, ReLU, a secret × secret product, ...) counted as this many
#: multiply-accumulates by :func:`op_work` — a rough ratio, for progress estimates only
NONLINEAR_WORK = 64
_NONLINEAR_OPS = {"relu", "maxpool2d", "argmax", "sigmoid", "tanh", "exp", "softmax", "l2norm", "mul"}
_GATES = {"fastgrnn": 2, "lstm": 5, "gru": 3}
_MATRICES = {"W", "U", "W1", "W2", "U1", "U2", "W_ih", "W_hh", "Wb"}  # the cells' weight matrices


def op_work(program: Program, op: Op) -> float:
    """A rough per-sample cost of ``op`` in multiply-accumulates, a non-linear element counting
    :data:`NONLINEAR_WORK`: what progress fractions and ETAs are estimated from (the program's
    public structure only; never used for anything but progress)."""
    def size(shape) -> float:
        return float(np.prod(shape, dtype=np.float64))

    out = size(program.tensors[op.outputs[0]].shape) if op.outputs else 0.0
    ps = program.op_params(op)
    mats = sum(size(p.shape) for r, p in ps.items() if r in _MATRICES)
    if op.op == "linear":
        return out * ps["W"].shape[1]
    if op.op == "conv2d":
        return out * size(ps["W"].shape[1:])
    if op.op in _GATES:
        T = program.tensors[op.inputs[0]].shape[0]
        return T * (mats + NONLINEAR_WORK * _GATES[op.op] * op.attrs["hidden"])
    if op.op == "rnnpool":
        C, k = program.tensors[op.inputs[0]].shape[0], op.attrs["patch"]
        patches = out / (4 * op.attrs["hidden2"])
        h1, h2 = op.attrs["hidden1"], op.attrs["hidden2"]
        return patches * (2 * k * k * (h1 * (C + h1) + 2 * NONLINEAR_WORK * h1)
                          + 4 * k * (h2 * (h1 + h2) + 2 * NONLINEAR_WORK * h2))
    if op.op in _NONLINEAR_OPS:
        return NONLINEAR_WORK * max(out, size(program.tensors[op.inputs[0]].shape))
    return out / 16  # additions, rescaling, plumbing: local or cheap


class _Progress:
    """Turns (op, timestep) positions into :class:`ProgressEvent` s for ``execute``."""

    def __init__(self, program: Program, backend, callback):
        work = [op_work(program, op) for op in program.ops]
        total = sum(work) or 1.0
        self.start = np.concatenate([[0.0], np.cumsum(work)[:-1]]) / total if work else []
        self.share = [w / total for w in work]
        self.n_ops, self.callback = len(work), callback
        self.chan = getattr(getattr(backend, "party", None), "chan", None)

    def __call__(self, index: int, op: Op, step: int = 0, steps: int = 0) -> None:
        done = self.start[index] + self.share[index] * (step / steps if steps else 0.0)
        stats = self.chan.stats if self.chan is not None else None
        nbytes = stats.bytes_sent + stats.bytes_recv if stats is not None else 0
        self.callback(ProgressEvent(index, self.n_ops, op.name, op.op, step, steps, min(1.0, float(done)),
                                    int(nbytes)))


class _Ctx:
    def __init__(self, program: Program, be: Backend, meter, progress: _Progress | None, index: int):
        self.program = program
        self.be = be
        self.meter = meter
        self.progress = progress
        self.index = index


Runner = Callable[[_Ctx, Op, list], list]
RUNNERS: dict[str, Runner] = {}


def runner(name: str):
    def deco(fn):
        RUNNERS[name] = fn
        return fn
    return deco


def _like(x: Share, data: np.ndarray) -> Share:
    return x.like(np.ascontiguousarray(data))


def _out(ctx: _Ctx, op: Op, i: int = 0):
    return ctx.program.tensors[op.outputs[i]]


# ---------------------------------------------------------------------------------------------
# runners (inputs and outputs have a leading batch axis)
# ---------------------------------------------------------------------------------------------
@runner("linear")
def _linear(ctx, op, ins):
    (x,) = ins
    p = ctx.program.op_params(op)
    W = p["W"]
    flat = _like(x, x.data.reshape(-1, W.shape[1]))
    y = layers.linear(ctx.be, flat, W, p.get("b"), _out(ctx, op).fmt)
    return [_like(y, y.data.reshape(x.shape[:-1] + (W.shape[0],)))]


@runner("conv2d")
def _conv2d(ctx, op, ins):
    p = ctx.program.op_params(op)
    return [layers.conv2d(ctx.be, ins[0], p["W"], p.get("b"), _out(ctx, op).fmt,
                          stride=op.attrs.get("stride", 1), padding=op.attrs.get("padding", 0),
                          dilation=op.attrs.get("dilation", 1), groups=op.attrs.get("groups", 1))]


def _param_tensor(be: Backend, shape, p: Param, bits: int | None = None, scale: int | None = None) -> Share:
    """The server's tensor p broadcast to ``shape`` (batch-leading), as a sharing (ALICE holds
    it, BOB zero), optionally at another ring width / scale (:func:`~sirnn.nn.fixed.known_share`)."""
    from ..nn.fixed import known_share

    full = Param(shape, p.bits, p.scale,
                 None if p.values is None else np.broadcast_to(p.values, shape).copy())
    return known_share(be, full, bits, scale)


def _operands(ctx, op, ins, broadcast: bool = True) -> tuple[Share, Share, tuple]:
    """The two operands of a binary op (the second input tensor or the server's parameter y) with
    equal numbers of axes, broadcast (locally) to the batch-leading output shape unless
    ``broadcast`` is False; and that shape."""
    shape = (ins[0].shape[0],) + tuple(_out(ctx, op).shape)
    x = _aligned(ins[0], len(shape))
    if len(ins) == 2:
        y = _aligned(ins[1], len(shape))
    else:
        y = _param_tensor(ctx.be, shape, ctx.program.op_params(op)["y"])
    if broadcast:
        x, y = layers.broadcast(x, shape), layers.broadcast(y, shape)
    return x, y, shape


def _aligned(x: Share, nd: int) -> Share:
    """Batch-leading x with 1-axes after the batch axis up to ``nd`` axes (per-sample broadcasting)."""
    if len(x.shape) >= nd:
        return x
    return x.like(x.data.reshape(x.shape[:1] + (1,) * (nd - len(x.shape)) + x.shape[1:]))


@runner("add")
@runner("sub")
def _add(ctx, op, ins):
    """x ± y into the output format (broadcasting). Equal formats: local. Otherwise both operands
    are brought to the common scale S = max(scales) in a ring B that holds each operand's range at
    S plus a carry bit (sign extensions where B is wider, on the operands before they are
    broadcast), added locally, and rounded once to the output (one TR if the scale drops)."""
    be = ctx.be
    out = _out(ctx, op).fmt
    x, y, shape = _operands(ctx, op, ins, broadcast=False)
    if op.op == "sub":
        y = -y
    if (x.bits, x.scale) == (y.bits, y.scale) == tuple(out):
        return [layers.broadcast(x, shape) + layers.broadcast(y, shape)]
    S = max(x.scale, y.scale)
    B = min(64, max(x.bits + S - x.scale, y.bits + S - y.scale, out.bits + max(S - out.scale, 0)) + 1)

    def lift(v: Share) -> Share:
        if v.bits < B:
            v = be.sext(v, B).with_meta(signed=True)
        return layers.broadcast(align_scale(v, S), shape)

    if len(ins) == 1:  # the server's y: ALICE writes it at (B, S) directly (no extension)
        p = ctx.program.op_params(op)["y"]
        yv = _param_tensor(be, shape, p, B, S)
        return [requant(be, lift(x) + (-yv if op.op == "sub" else yv), out)]
    return [requant(be, lift(x) + lift(y), out)]


@runner("mul")
def _mul(ctx, op, ins):
    out = _out(ctx, op).fmt
    if len(ins) == 2:
        return [layers.mul(ctx.be, *_operands(ctx, op, ins)[:2], out)]
    x = ins[0]
    shape = (x.shape[0],) + tuple(_out(ctx, op).shape)
    return [layers.mul_known(ctx.be, layers.broadcast(_aligned(x, len(shape)), shape),
                             ctx.program.op_params(op)["y"], out)]


@runner("div")
def _div(ctx, op, ins):
    """x / y: SiRNN division per output element; with attr ``recip`` (a broadcast denominator)
    the signed reciprocal of each denominator once, in that format, then one multiplication."""
    out = _out(ctx, op).fmt
    if "recip" not in op.attrs:
        return [pointwise.div(ctx.be, *_operands(ctx, op, ins)[:2], out)]
    x, y, shape = _operands(ctx, op, ins, broadcast=False)
    r = pointwise.reciprocal(ctx.be, y, Fmt(*op.attrs["recip"]))
    return [layers.mul(ctx.be, layers.broadcast(x, shape), layers.broadcast(r, shape), out)]


@runner("matmul")
def _matmul(ctx, op, ins):
    """Per-sample numpy matmul: 1-D operands become a row / a column, then dropped."""
    x, y = ins
    xv, yv = len(x.shape) == 2, len(y.shape) == 2
    x2 = x.like(x.data[:, None, :]) if xv else x
    y2 = y.like(y.data[..., None]) if yv else y
    nd = max(len(x2.shape), len(y2.shape))
    z = layers.matmul(ctx.be, _aligned(x2, nd), _aligned(y2, nd), _out(ctx, op).fmt)
    return [_like(z, z.data.reshape((z.shape[0],) + tuple(_out(ctx, op).shape)))]


@runner("relu")
def _relu(ctx, op, ins):
    return [layers.relu(ctx.be, ins[0])]


@runner("maxpool2d")
def _maxpool(ctx, op, ins):
    k = op.attrs["kernel"]
    return [layers.maxpool2d(ctx.be, ins[0], k, op.attrs.get("stride") or k, op.attrs.get("padding", 0),
                             op.attrs.get("dilation", 1))]


@runner("avgpool2d")
def _avgpool(ctx, op, ins):
    k = op.attrs["kernel"]
    return [layers.avgpool2d(ctx.be, ins[0], k, _out(ctx, op).fmt, op.attrs.get("stride") or k,
                             op.attrs.get("padding", 0), bool(op.attrs.get("count_include_pad", False)))]


@runner("abs")
def _abs(ctx, op, ins):
    return [pointwise.abs_(ctx.be, ins[0])]


@runner("neg")
def _neg(ctx, op, ins):
    return [-ins[0]]


@runner("clip")
def _clip(ctx, op, ins):
    x = ins[0]
    lo, hi = pointwise.clip_bounds(op.attrs.get("min"), op.attrs.get("max"), Fmt(x.bits, x.scale))
    return [pointwise.clip(ctx.be, x, lo, hi)]


@runner("leakyrelu")
def _leakyrelu(ctx, op, ins):
    return [pointwise.leaky_relu(ctx.be, ins[0], float(op.attrs.get("alpha", 0.01)), _out(ctx, op).fmt)]


@runner("prelu")
def _prelu(ctx, op, ins):
    return [pointwise.prelu(ctx.be, ins[0], ctx.program.op_params(op)["slope"], _out(ctx, op).fmt)]


@runner("hardsigmoid")
def _hardsigmoid(ctx, op, ins):
    return [pointwise.hardsigmoid(ctx.be, ins[0], float(op.attrs.get("alpha", 0.2)),
                                  float(op.attrs.get("beta", 0.5)), _out(ctx, op).fmt)]


def _axes_last(x: Share, axes) -> tuple[Share, tuple, list]:
    """x (N, ...) with the per-sample ``axes`` moved last and flattened into one: (share
    (N, ..., K), the moved shape, the permutation) — local."""
    nd = len(x.shape) - 1
    ax = sorted(a % nd + 1 for a in axes)
    rest = [i for i in range(len(x.shape)) if i not in ax]
    perm = rest + ax
    moved = x.data.transpose(perm)
    return _like(x, moved.reshape(moved.shape[:len(rest)] + (-1,))), moved.shape, perm


def _axes_back(y: Share, moved_shape, perm) -> Share:
    return _like(y, y.data.reshape(moved_shape).transpose(np.argsort(perm)))


@runner("normalize")
def _normalize(ctx, op, ins):
    x = ins[0]
    xl, moved, perm = _axes_last(x, op.attrs["axes"])
    y = norm.normalize(ctx.be, xl, _out(ctx, op).fmt, eps=float(op.attrs.get("eps", 1e-5)),
                       rstd=Fmt(*op.attrs["rstd"]))
    return [_axes_back(y, moved, perm)]


@runner("reduce")
def _reduce(ctx, op, ins):
    x = ins[0]
    nd = len(x.shape) - 1
    axes = op.attrs.get("axes")
    xl, _, _ = _axes_last(x, range(nd) if axes is None else axes)
    y = norm.reduce_last(ctx.be, xl, op.attrs["kind"], _out(ctx, op).fmt)
    return [_like(y, y.data.reshape((x.shape[0],) + tuple(_out(ctx, op).shape)))]


@runner("softmax")
def _softmax(ctx, op, ins):
    """Softmax along any axis: the axis moved last (local), the last-axis softmax, moved back."""
    x = ins[0]
    ax = op.attrs.get("axis", -1) % (len(x.shape) - 1) + 1
    y = norm.softmax(ctx.be, _like(x, np.moveaxis(x.data, ax, -1)), _out(ctx, op).fmt)
    return [_like(y, np.moveaxis(y.data, -1, ax))]


@runner("gather")
def _gather(ctx, op, ins):
    return [gather(ins[0], np.asarray(op.attrs["index"], np.int64), op.attrs.get("fill", 0))]


@runner("argmax")
def _argmax(ctx, op, ins):
    o = _out(ctx, op)
    return [layers.argmax(ctx.be, ins[0], o.bits)]


@runner("requant")
def _requant(ctx, op, ins):
    return [requant(ctx.be, ins[0], _out(ctx, op).fmt)]


@runner("reshape")
@runner("flatten")
def _reshape(ctx, op, ins):
    (x,) = ins
    return [_like(x, x.data.reshape((x.shape[0],) + tuple(_out(ctx, op).shape)))]


@runner("transpose")
def _transpose(ctx, op, ins):
    (x,) = ins
    return [_like(x, x.data.transpose((0,) + tuple(p + 1 for p in op.attrs["perm"])))]


@runner("slice")
def _slice(ctx, op, ins):
    (x,) = ins
    axis, sl = _slice_of(op, x.shape[1:], op.attrs)
    return [_like(x, x.data[(slice(None),) * (axis + 1) + (sl,)])]


@runner("concat")
def _concat(ctx, op, ins):
    axis = op.attrs.get("axis", 0) % (len(ins[0].shape) - 1)
    return [concat(ins, axis + 1)]


# ---- recurrent cells --------------------------------------------------------------------------
def _fastgrnn_cell(p: dict, f, H: int) -> "rnn.FastGRNNCell":
    W = p["W"] if "W" in p else (p["W1"], p["W2"])
    U = p["U"] if "U" in p else (p["U1"], p["U2"])
    return rnn.FastGRNNCell(W=W, U=U, b_z=p["b_z"], b_h=p["b_h"], zn=p["zn"], fmts=f, hidden=H)


def _unary_fmt(fn):
    """A runner for ``fn(be, x, out_fmt)``: one input, output in the op's output format."""
    return lambda ctx, op, ins: [fn(ctx.be, ins[0], _out(ctx, op).fmt)]


RUNNERS.update(sigmoid=_unary_fmt(layers.sigmoid), tanh=_unary_fmt(layers.tanh),
               l2norm=_unary_fmt(norm.l2_normalise), exp=_unary_fmt(pointwise.exp),
               sqrt=_unary_fmt(pointwise.sqrt), rsqrt=_unary_fmt(pointwise.rsqrt),
               reciprocal=_unary_fmt(pointwise.reciprocal), softplus=_unary_fmt(pointwise.softplus),
               hardswish=_unary_fmt(pointwise.hardswish))


def build_cell(program: Program, op: Op):
    """The nn cell object of a recurrent op (with the parameters this side holds)."""
    p = program.op_params(op)
    f = cell_formats_from(op.attrs["formats"])
    H = op.attrs["hidden"]
    if op.op == "fastgrnn":
        return _fastgrnn_cell(p, f, H)
    if op.op == "lstm":
        return rnn.LSTMCell(p["W_ih"], p["W_hh"], p["b"], f, H, p.get("h0"), p.get("c0"))
    if op.op == "gru":
        return rnn.GRUCell(p["Wb"], p["b"], f, H, program.tensors[op.inputs[0]].shape[1], p.get("h0"), p.get("Wn"),
                           bool(op.attrs.get("linear_before_reset", True)))
    if op.op == "rnn":
        return rnn.RNNCell(p["W_ih"], p["W_hh"], p["b"], f, H, p.get("h0"), op.attrs.get("activation", "tanh"))
    raise ProgramError(f"op {op.name!r}: {op.op} is not a recurrent cell")


def _cell_runner(ctx, op, ins):
    """A recurrent op over its sequence, from its initial state (zero, the server's constant, or
    the shared initial-state inputs of attr ``init``); attr ``steps``: a public per-sample mask
    (:func:`~sirnn.compiler.floatir.step_mask`) that holds the state outside each sample's step
    range and zeroes the sequence output there — a local select on the shares."""
    x = ins[0]
    cell = build_cell(ctx.program, op)
    N, T = x.shape[0], x.shape[1]
    xs = _like(x, x.data.transpose(1, 2, 0))  # (T, D, N): the cells take columns
    given = {k: _like(v, v.data.T) for k, v in zip(op.attrs.get("init", []), ins[1:])}  # (H, N)
    state = cell.init_state(ctx.be, N, **{k + "0": v for k, v in given.items()})
    active = step_mask(op.attrs.get("steps"), T, N)
    seq = []
    for t, xt in enumerate(rnn.step_inputs(ctx.be, cell, xs)):
        new = cell.step(ctx.be, xt, state)
        state = new if active is None else rnn.masked_state(new, state, active[t])
        if op.attrs.get("sequence"):
            h = cell.output(state)
            seq.append((h.data if active is None else np.where(active[t], h.data, np.uint64(0))).T)  # (N, H)
        if ctx.progress is not None:
            ctx.progress(ctx.index, op, t + 1, T)
    h = state[1] if op.attrs.get("state") == "c" else cell.output(state)
    if op.attrs.get("sequence"):
        return [_like(h, np.stack(seq, axis=1))]  # (N, T, H)
    return [_like(h, h.data.T)]  # (N, H)


for _name in ("fastgrnn", "lstm", "gru", "rnn"):
    RUNNERS[_name] = _cell_runner


def _run_cell(ctx, op, cell, xs: Share, step0: int, steps: int) -> Share:
    """Run a cell over xs (T, D, B) from zero; the final h (H, B)."""
    state = cell.init_state(ctx.be, xs.shape[2])
    for t, xt in enumerate(rnn.step_inputs(ctx.be, cell, xs)):
        state = cell.step(ctx.be, xt, state)
        if ctx.progress is not None:
            ctx.progress(ctx.index, op, step0 + t + 1, steps)
    return cell.output(state)


@runner("rnnpool")
def _rnnpool(ctx, op, ins):
    """RNNPool with every pass batched: rnn1 runs once over the k steps with the rows and the
    columns of all patches of all samples as columns (N·P·2k), rnn2 once over k steps with the
    four passes (forward/backward over row/column summaries) as N·P·4 columns."""
    (x,) = ins
    p = ctx.program.op_params(op)
    k, s = op.attrs["patch"], op.attrs["stride"]
    cells = [_fastgrnn_cell({r.split(".", 1)[1]: v for r, v in p.items() if r.startswith(c + ".")},
                            cell_formats_from(op.attrs["formats" + c[-1]]), op.attrs["hidden" + c[-1]])
             for c in ("rnn1", "rnn2")]
    N = x.shape[0]
    seqs, Ho, Wo = rnnpool_sequences(x.data, k, s)  # (N, P, 2k, k, C)
    P = Ho * Wo
    xs = _like(x, seqs.reshape(N * P * 2 * k, k, -1).transpose(1, 2, 0))  # (k, C, B1)
    r = _run_cell(ctx, op, cells[0], xs, 0, 2 * k)  # (h1, B1)
    q = rnnpool_summaries(r.data.T.reshape(N, P, 2 * k, -1), k)  # (N, P, 4, k, h1)
    hs = _like(r, q.reshape(N * P * 4, k, -1).transpose(1, 2, 0))
    h = _run_cell(ctx, op, cells[1], hs, k, 2 * k)  # (h2, N·P·4)
    return [_like(h, h.data.T.reshape(N, Ho, Wo, -1).transpose(0, 3, 1, 2))]


# ---------------------------------------------------------------------------------------------
def execute(program: Program, backend: Backend, x_share, meter=None,
            progress: Callable[[ProgressEvent], None] | None = None, trace: dict | None = None):
    """Run ``program`` on the input ``x_share`` ((N,) + input shape, the input format; for several
    inputs a dict name → Share, all with the same N) and return the output share ((N,) + output
    shape), or a dict name → Share for several outputs. See the module doc. ``trace`` (a dict)
    receives every tensor's Share by name (debugging, calibration checks)."""
    shares = x_share if isinstance(x_share, dict) else {program.input: x_share}
    if sorted(shares) != sorted(program.inputs):
        raise ParameterError(f"execute: inputs {sorted(shares)}, the program takes {program.inputs}")
    n = None
    for name in program.inputs:
        xs, spec = shares[name], program.tensors[name]
        if not isinstance(xs, Share):
            raise ParameterError(f"execute: the input {name!r} must be a Share, got {type(xs).__name__}")
        if tuple(xs.shape[1:]) != tuple(spec.shape) or len(xs.shape) != len(spec.shape) + 1 \
                or (n is not None and xs.shape[0] != n):
            raise ParameterError(f"execute: input {name!r} of shape {xs.shape}, expected (N,) + {tuple(spec.shape)}"
                                 + ("" if n is None else f" with N = {n}"))
        if (xs.bits, xs.scale, xs.signed) != (spec.bits, spec.scale, True):
            raise ParameterError(f"execute: input {name!r} format ({xs.bits}, {xs.scale}) differs from "
                                 f"the program's ({spec.bits}, {spec.scale})")
        n = xs.shape[0]
    fixed = program.fixed_batch
    if fixed is not None and n != fixed:
        raise ParameterError(f"execute: the program runs exactly {fixed} samples (its per-sample sequence "
                             f"lengths), got {n}")
    last_use: dict[str, int] = {}
    for i, op in enumerate(program.ops):
        for t in op.inputs:
            last_use[t] = i
    env = dict(shares)
    if trace is not None:
        trace.update(shares)
    tick = _Progress(program, backend, progress) if progress is not None else None
    for i, op in enumerate(program.ops):
        run = RUNNERS.get(op.op)
        if run is None:
            raise ProgramError(f"op {op.name!r}: {op.op!r} has no runner in sirnn.compiler.runtime.RUNNERS")
        if tick is not None:
            tick(i, op)
        ctx = _Ctx(program, backend, meter, tick, i)
        with (meter.section(op.name) if meter is not None else nullcontext()):
            outs = run(ctx, op, [env[t] for t in op.inputs])
        for t, v in zip(op.outputs, outs):
            spec_t = program.tensors[t]
            if (v.bits, v.scale, v.signed) != (spec_t.bits, spec_t.scale, spec_t.signed) \
                    or tuple(v.shape[1:]) != tuple(spec_t.shape):
                raise ProgramError(f"op {op.name!r} produced {v} for tensor {t!r}, declared {spec_t} "
                                   "(runtime and program disagree)")
            env[t] = v
            if trace is not None:
                trace[t] = v
        for t in op.inputs:  # free what is no longer needed
            if last_use.get(t) == i and t not in program.outputs:
                env.pop(t, None)
    if len(program.outputs) == 1:
        return env[program.output]
    return {t: env[t] for t in program.outputs}


# ---------------------------------------------------------------------------------------------
# encoding and the cleartext interpreter
# ---------------------------------------------------------------------------------------------
def _input_error(program: Program, name: str, msg: str):
    from ..errors import InputError

    return InputError(msg if len(program.inputs) == 1 else f"input {name!r}: {msg}")


def _encode_one(program: Program, name: str, x) -> tuple[np.ndarray, bool]:
    """One input (its client layout: the batch on ``program.batch_axis(name)``) → batch-leading
    signed integers at its format, and whether it had a batch axis."""
    spec = program.tensors[name]
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _input_error(program, name, f"the input is not an array of numbers: {e}") from None
    shape = tuple(spec.shape)
    b = program.batch_axis(name)
    if a.shape == shape:
        batched = False
        a = a[None]
    elif a.ndim == len(shape) + 1 and a.shape[:b] + a.shape[b + 1:] == shape and a.shape[b] >= 1:
        batched = True
        a = np.moveaxis(a, b, 0)
    else:
        batch = "(" + ", ".join(str(d) for d in shape[:b] + ("N",) + shape[b:]) + ")"
        raise _input_error(program, name, f"the input has shape {a.shape}, but the model takes {shape} (one sample) "
                                          f"or {'(N,) + ' + str(shape) if b == 0 else batch} (a batch of N samples)")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise _input_error(program, name, f"the input contains NaN or infinity ({int(bad.sum())} value(s), "
                                          f"first at index {idx if batched else idx[1:]})")
    fmt = spec.fmt
    q = np.round(a * 2.0**fmt.scale)
    lim = 1 << (fmt.bits - 1)
    over = (q >= lim) | (q < -lim)
    if over.any():
        raise _input_error(program, name, 
            f"input values outside the range of the model's input format ({fmt.bits} bits, scale "
            f"{fmt.scale}: [{-lim / 2.0**fmt.scale:g}, {(lim - 1) / 2.0**fmt.scale:g}]): max |x| = "
            f"{np.abs(a).max():g} ({int(over.sum())} value(s) out of range)")
    return q.astype(np.int64), batched


def encode_inputs(program: Program, x) -> tuple[dict, bool]:
    """Real inputs → {name: batch-leading signed integers at the input's format}, and whether they
    had a batch axis. ``x``: an array (a one-input program) or a mapping name → array naming every
    input (each one sample, or all a batch of the same N, the batch on the input's batch axis).
    Raises InputError naming a missing, unexpected or wrongly shaped input, NaN/inf or a value
    outside the format's range."""
    from ..errors import InputError

    x = by_name(x, program.inputs, InputError)
    out, batched, n = {}, None, None
    for t in program.inputs:
        q, bt = _encode_one(program, t, x[t])
        if batched is not None and (bt != batched or len(q) != n):
            raise InputError(f"input {t!r}: every input must be one sample, or a batch of the same N "
                             f"(the first is {'a batch of ' + str(n) if batched else 'one sample'})")
        out[t], batched, n = q, bt, len(q)
    fixed = program.fixed_batch
    if fixed is not None and n != fixed:
        raise InputError(f"the model runs exactly {fixed} samples at once (its recurrent layer's per-sample "
                         f"sequence lengths), got {n}")
    return out, bool(batched)


def encode_input(program: Program, x) -> tuple[np.ndarray, bool]:
    """Real input (input shape, or (N,) + input shape) of a one-input program → signed integers at
    the input format, and whether a batch axis was given (:func:`encode_inputs`)."""
    q, batched = encode_inputs(program, x)
    return q[program.input], batched


def decode_outputs(program: Program, rings, batched: bool = True):
    """Output ring elements (a dict name → batch-leading array, or the array of a one-output
    program) → decoded outputs in the client's layout (the batch on each output's batch axis;
    dropped when ``batched`` is False): an array for one output, a dict name → array for several."""
    if not isinstance(rings, dict):
        rings = {program.output: rings}
    out = {}
    for t in program.outputs:
        o = program.tensors[t]
        r = np.asarray(rings[t], np.uint64)
        v = (r & np.uint64((1 << o.bits) - 1)).astype(np.int64) if not o.signed else to_signed(r, o.bits) / 2.0**o.scale
        out[t] = np.moveaxis(v, 0, program.batch_axis(t)) if batched else v[0]
    return out[program.output] if len(program.outputs) == 1 else out


def decode_output(program: Program, ring: np.ndarray) -> np.ndarray:
    """Output ring elements → class indices (unsigned output) or reals (signed fixed point)."""
    o = program.output_spec
    r = np.asarray(ring, np.uint64)
    if not o.signed:
        return (r & np.uint64((1 << o.bits) - 1)).astype(np.int64)
    return to_signed(r, o.bits) / 2.0**o.scale


def evaluate_clear(program: Program, x, *, raw: bool = False, meter=None, progress=None):
    """The cleartext fixed-point interpreter: run ``program`` (with its parameter values) on x
    (one sample or a batch; a mapping name → array for several inputs) and return the decoded
    output (the ring elements, batch-leading, with ``raw``); a dict name → output for several
    outputs."""
    if not program.has_values:
        raise ParameterError("evaluate_clear needs the program with its parameter values (the "
                             "server's file), not the public copy")
    qs, batched = encode_inputs(program, x)
    shares = {t: clear(q, program.tensors[t].bits, program.tensors[t].scale) for t, q in qs.items()}
    y = execute(program, ClearBackend(), shares, meter=meter, progress=progress)
    rings = {program.output: y.data} if len(program.outputs) == 1 else {t: v.data for t, v in y.items()}
    if raw:
        out = {t: r if batched else r[0] for t, r in rings.items()}
        return out[program.output] if len(program.outputs) == 1 else out
    return decode_outputs(program, rings, batched)
