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
from ..nn import layers, norm, rnn
from ..nn.fixed import Param, align_scale, requant
from ..protocols.backend import Backend, ClearBackend, clear
from ..protocols.ring import to_signed
from ..protocols.share import Share, concat
from .floatir import rnnpool_sequences, rnnpool_summaries
from .ops import Op, _slice_of, cell_formats_from
from .program import Program

__all__ = ["execute", "ProgressEvent", "op_work", "RUNNERS", "evaluate_clear", "encode_input", "decode_output",
           "build_cell"]


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
                          stride=op.attrs.get("stride", 1), padding=op.attrs.get("padding", 0))]


def _param_tensor(be: Backend, x: Share, p: Param) -> Share:
    """The server's tensor p broadcast to x's shape, as a sharing (ALICE holds it, BOB zero)."""
    from ..nn.fixed import known_share

    full = Param(x.shape, p.bits, p.scale,
                 None if p.values is None else np.broadcast_to(p.values, x.shape).copy())
    return known_share(be, full)


@runner("add")
def _add(ctx, op, ins):
    """x + y into the output format. Equal formats: local. Otherwise both operands are brought
    to the common scale S = max(scales) in a ring B that holds each operand's range at S plus a
    carry bit (sign extensions where B is wider), added locally, and rounded once to the
    output (one TR if the scale drops)."""
    be = ctx.be
    out = _out(ctx, op).fmt
    x = ins[0]
    if len(ins) == 2:
        y = ins[1]
    else:
        y = _param_tensor(be, x, ctx.program.op_params(op)["y"])
    if (x.bits, x.scale) == (y.bits, y.scale) == tuple(out):
        return [x + y]
    S = max(x.scale, y.scale)
    B = min(64, max(x.bits + S - x.scale, y.bits + S - y.scale, out.bits + max(S - out.scale, 0)) + 1)

    def lift(v: Share) -> Share:
        if v.bits < B:
            v = be.sext(v, B).with_meta(signed=True)
        return align_scale(v, S)

    return [requant(be, lift(x) + lift(y), out)]


@runner("mul")
def _mul(ctx, op, ins):
    out = _out(ctx, op).fmt
    if len(ins) == 2:
        return [layers.mul(ctx.be, ins[0], ins[1], out)]
    return [layers.mul_known(ctx.be, ins[0], ctx.program.op_params(op)["y"], out)]


@runner("relu")
def _relu(ctx, op, ins):
    return [layers.relu(ctx.be, ins[0])]


@runner("maxpool2d")
def _maxpool(ctx, op, ins):
    k = op.attrs["kernel"]
    return [layers.maxpool2d(ctx.be, ins[0], k, op.attrs.get("stride") or k)]


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
               softmax=_unary_fmt(norm.softmax), l2norm=_unary_fmt(norm.l2_normalise))


def build_cell(program: Program, op: Op):
    """The nn cell object of a recurrent op (with the parameters this side holds)."""
    p = program.op_params(op)
    f = cell_formats_from(op.attrs["formats"])
    H = op.attrs["hidden"]
    if op.op == "fastgrnn":
        return _fastgrnn_cell(p, f, H)
    if op.op == "lstm":
        return rnn.LSTMCell(p["W_ih"], p["W_hh"], p["b"], f, H)
    if op.op == "gru":
        return rnn.GRUCell(p["Wb"], p["b"], f, H, program.tensors[op.inputs[0]].shape[1])
    raise ProgramError(f"op {op.name!r}: {op.op} is not a recurrent cell")


def _cell_runner(ctx, op, ins):
    (x,) = ins
    cell = build_cell(ctx.program, op)
    N, T = x.shape[0], x.shape[1]
    xs = _like(x, x.data.transpose(1, 2, 0))  # (T, D, N): the cells take columns
    state = cell.init_state(ctx.be, N)
    seq = []
    for t in range(T):
        state = cell.step(ctx.be, xs[t], state)
        if op.attrs.get("sequence"):
            seq.append(cell.output(state).data.T)  # (N, H)
        if ctx.progress is not None:
            ctx.progress(ctx.index, op, t + 1, T)
    h = cell.output(state)
    if op.attrs.get("sequence"):
        return [_like(h, np.stack(seq, axis=1))]  # (N, T, H)
    return [_like(h, h.data.T)]  # (N, H)


for _name in ("fastgrnn", "lstm", "gru"):
    RUNNERS[_name] = _cell_runner


def _run_cell(ctx, op, cell, xs: Share, step0: int, steps: int) -> Share:
    """Run a cell over xs (T, D, B) from zero; the final h (H, B)."""
    state = cell.init_state(ctx.be, xs.shape[2])
    for t in range(xs.shape[0]):
        state = cell.step(ctx.be, xs[t], state)
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
def execute(program: Program, backend: Backend, x_share: Share, meter=None,
            progress: Callable[[ProgressEvent], None] | None = None, trace: dict | None = None) -> Share:
    """Run ``program`` on the input ``x_share`` ((N,) + input shape, the input format) and return
    the output share ((N,) + output shape). See the module doc. ``trace`` (a dict) receives every
    tensor's Share by name (debugging, calibration checks)."""
    spec = program.input_spec
    if not isinstance(x_share, Share):
        raise ParameterError(f"execute: the input must be a Share, got {type(x_share).__name__}")
    if tuple(x_share.shape[1:]) != tuple(spec.shape) or len(x_share.shape) != len(spec.shape) + 1:
        raise ParameterError(f"execute: input of shape {x_share.shape}, expected (N,) + {tuple(spec.shape)}")
    if (x_share.bits, x_share.scale, x_share.signed) != (spec.bits, spec.scale, True):
        raise ParameterError(f"execute: input format ({x_share.bits}, {x_share.scale}) differs from "
                             f"the program's ({spec.bits}, {spec.scale})")
    last_use: dict[str, int] = {}
    for i, op in enumerate(program.ops):
        for t in op.inputs:
            last_use[t] = i
    env = {program.input: x_share}
    if trace is not None:
        trace[program.input] = x_share
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
            if last_use.get(t) == i and t != program.output:
                env.pop(t, None)
    return env[program.output]


# ---------------------------------------------------------------------------------------------
# encoding and the cleartext interpreter
# ---------------------------------------------------------------------------------------------
def encode_input(program: Program, x) -> tuple[np.ndarray, bool]:
    """Real input (input shape, or (N,) + input shape) → signed integers at the input format, and
    whether a batch axis was given. Raises InputError for a wrong shape, NaN/inf or a value
    outside the format's range."""
    from ..errors import InputError

    spec = program.input_spec
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"the input is not an array of numbers: {e}") from None
    shape = tuple(spec.shape)
    if a.shape == shape:
        batched = False
        a = a[None]
    elif a.ndim == len(shape) + 1 and a.shape[1:] == shape and a.shape[0] >= 1:
        batched = True
    else:
        raise InputError(f"the input has shape {a.shape}, but the model takes {shape} (one sample) "
                         f"or (N,) + {shape} (a batch of N samples)")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"the input contains NaN or infinity ({int(bad.sum())} value(s), first at "
                         f"index {idx if batched else idx[1:]})")
    fmt = spec.fmt
    q = np.round(a * 2.0**fmt.scale)
    lim = 1 << (fmt.bits - 1)
    over = (q >= lim) | (q < -lim)
    if over.any():
        raise InputError(
            f"input values outside the range of the model's input format ({fmt.bits} bits, scale "
            f"{fmt.scale}: [{-lim / 2.0**fmt.scale:g}, {(lim - 1) / 2.0**fmt.scale:g}]): max |x| = "
            f"{np.abs(a).max():g} ({int(over.sum())} value(s) out of range)")
    return q.astype(np.int64), batched


def decode_output(program: Program, ring: np.ndarray) -> np.ndarray:
    """Output ring elements → class indices (unsigned output) or reals (signed fixed point)."""
    o = program.output_spec
    r = np.asarray(ring, np.uint64)
    if not o.signed:
        return (r & np.uint64((1 << o.bits) - 1)).astype(np.int64)
    return to_signed(r, o.bits) / 2.0**o.scale


def evaluate_clear(program: Program, x, *, raw: bool = False, meter=None, progress=None) -> np.ndarray:
    """The cleartext fixed-point interpreter: run ``program`` (with its parameter values) on x
    (one sample or a batch) and return the decoded output (the ring elements with ``raw``)."""
    if not program.has_values:
        raise ParameterError("evaluate_clear needs the program with its parameter values (the "
                             "server's file), not the public copy")
    q, batched = encode_input(program, x)
    spec = program.input_spec
    y = execute(program, ClearBackend(), clear(q, spec.bits, spec.scale), meter=meter, progress=progress)
    out = y.data if raw else decode_output(program, y.data)
    return out if batched else out[0]
