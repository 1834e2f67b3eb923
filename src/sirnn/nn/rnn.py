"""Recurrent cells over shares (FastGRNN, LSTM, GRU, Elman RNN) and a driver over time.

Each cell is built by the server from float weights (``from_float``), which quantises every weight
tensor at its own scale; ``cell.spec()`` is the client's copy (shapes and formats only, no
values). ``cell.step(be, x, state)`` runs one timestep against a Backend; ``rnn_over_time`` runs a
sequence. Vectors are columns: x (D,) or (D, B), h (H,) or (H, B) (B independent sequences).

Formats (:class:`CellFormats`, all signed; defaults follow SCI's 16-bit / scale-12 benchmarks):

* x, h (and the LSTM cell state c): (16, 12), range ±8. |h| ≤ 1-ish for all three cells, but
  the LSTM's |c_t| can grow by up to 1 per step: for long sequences choose ``c`` from calibration
  (e.g. (16, 10), range ±32) — there is no saturation, an out-of-range value wraps around;
* pre: gate pre-activations, the inputs of σ/tanh: (16, 12);
* gate: σ/tanh outputs: (16, 12) (values in [−1, 1]);
* ``fuse_tanh`` (default on; FastGRNN and LSTM): the σ and tanh gates of a step run as **one**
  sigmoid call, using tanh(p) = 2σ(2p) − 1. The tanh pre-activations are doubled (a local shift of
  the accumulator) and all pre-activations rounded to (pre.bits, pre.scale − 1) — so 2p keeps p's
  precision 2^{−pre.scale} and range, and the σ pre-activations get one fraction bit less (σ' ≤
  1/4: at most 1/8 ULP of the output). The sigmoid outputs at gate.scale + 1: σ gates keep that
  extra bit, and tanh = (2^{gate.scale+1}·σ − 2^{gate.scale}) is *exactly* an integer at
  gate.scale (no rounding). Measured over all 2^16 inputs (16-bit, scale 12): tanh max 1.11 /
  mean 0.25 ULP (the direct tanh recipe: 1.73 / 0.39), σ max 1.11 ULP at gate.scale + 1.
  Trade-off: one σ/tanh protocol fewer per step (FastGRNN: 44 instead of 68 rounds) for ≈ 14%
  more bytes on the gates (the reciprocal at output scale 13 uses a 1-of-256 table instead of
  1-of-128: 4,375.75 vs 3,844.5 bytes per element, ``sirnn bench sigmoid --n 4096``). (Running the sigmoid with one guard bit less keeps the 1-of-128 table but
  then needs a Newton step: more bytes and rounds, measured.) ``fuse_tanh=False`` is the other
  side of the trade.
* weights: ``w_bits`` (16) bits each, at a per-tensor scale chosen so that the products W·x and
  U·h share one scale P = min over tensors of (fit_scale(W) + scale(input)) — each tensor is then
  quantised at P − scale(its input) — capped so the accumulator ring fits the multiplication;
* biases: quantised directly at the accumulator scale P (exact adds by ALICE);
* accumulators: ring pre.bits + (P − pre.scale) (≈ 29–31 bits; one more with ``fuse_tanh``),
  rounded once to ``pre``;
* elementwise products g ⊙ v: into out.bits + (scale_g + scale_v − out.scale) = 28 bits, rounded
  once. Every rounding is to nearest (ties up) by an exact TR (see :mod:`sirnn.nn.fixed`).

The float models these approximate are the ``*_float`` functions below (PyTorch conventions for
LSTM/GRU, EdgeML's FastGRNN with ζ, ν as plain constants).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.share import Share, concat
from . import layers
from .fixed import (Fmt, Param, acc_bits, add_known, align_scale, fit_scale, public_zeros, quantize, requant,
                    requant_msb)

__all__ = ["CellFormats", "FastGRNNCell", "LSTMCell", "GRUCell", "RNNCell", "rnn_over_time", "step_inputs",
           "masked_state",
           "PreparedInput", "fastgrnn_float", "lstm_float", "gru_float", "rnn_float", "run_float", "sigmoid_float"]


@dataclass(frozen=True)
class CellFormats:
    x: Fmt = Fmt(16, 12)
    h: Fmt = Fmt(16, 12)
    pre: Fmt = Fmt(16, 12)
    gate: Fmt = Fmt(16, 12)
    c: Fmt = Fmt(16, 12)        #: LSTM cell state
    lowrank: Fmt = Fmt(16, 12)  #: FastGRNN low-rank intermediates W2·x, U2·h
    w_bits: int = 16
    fuse_tanh: bool = True      #: σ and tanh gates of a step in one sigmoid call (module doc)

    @property
    def sig_in(self) -> Fmt:
        """Format of the (fused) sigmoid input."""
        return Fmt(self.pre.bits, self.pre.scale - 1) if self.fuse_tanh else self.pre

    @property
    def sig_out(self) -> Fmt:
        """Format of the σ gates."""
        return Fmt(self.gate.bits, self.gate.scale + 1) if self.fuse_tanh else self.gate

    def describe(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def _section(meter, name: str):
    return meter.section(name) if meter is not None else nullcontext()


def _cols(x: Share) -> tuple[Share, bool]:
    """(D,) → (D, 1) column; returns whether it was a vector."""
    if len(x.shape) == 1:
        return x.reshape(x.shape[0], 1), True
    if len(x.shape) == 2:
        return x, False
    raise ParameterError(f"cell inputs must be (D,) or (D, B), got {x.shape}")


def _weight_scales(mats: list[tuple[np.ndarray, int]], w_bits: int, acc_cap: int | None) -> tuple[int, list[int]]:
    """Common product scale P and per-tensor scales P − s_in for float matrices with input scales."""
    P = min(fit_scale(np.abs(W).max() if W.size else 0.0, w_bits) + s for W, s in mats)
    if acc_cap is not None:
        P = min(P, acc_cap)
    scales = [P - s for _, s in mats]
    if min(scales) < 0:
        raise ParameterError("weight scale would be negative: widen w_bits or lower input scales")
    return P, scales


def _qparam(W, bits: int, scale: int) -> Param:
    W = np.asarray(W, np.float64)
    return Param(W.shape, bits, scale, quantize(W, bits, scale))


def _pcap(f: CellFormats, out: Fmt, in_bits: int) -> int:
    """Largest product scale P whose accumulator ring out.bits + P − out.scale ≤ in_bits + w_bits."""
    return in_bits + f.w_bits - out.bits + out.scale


def _split_rows(z: Share, sizes: list[int]) -> list[Share]:
    out, i = [], 0
    for n in sizes:
        out.append(z[i:i + n])
        i += n
    return out


def _mul_many(be: Backend, pairs: list[tuple[Share, Share]], bits: int, nonneg_a: bool,
              msb_b: Share | None = None) -> list[Share]:
    """Products a_i ⊙ b_i into Z_{2^bits} in one multiplication when widths agree (scales may
    differ: the integers are multiplied, each product gets scale(a_i) + scale(b_i)). ``msb_b``:
    MSB shares of the (single) b operand."""
    a0, b0 = pairs[0]
    if msb_b is not None and len(pairs) != 1:
        raise ParameterError("_mul_many: msb_b is for a single product")
    if all(a.bits == a0.bits and b.bits == b0.bits for a, b in pairs):
        A = a0.like(np.concatenate([a.data for a, _ in pairs], axis=0))
        B = b0.like(np.concatenate([b.data for _, b in pairs], axis=0))
        msb = layers.zeros_msb(be, A.shape) if nonneg_a else None
        P = be.mul(A, B, bits, msb_x=msb, msb_y=msb_b)
        parts = _split_rows(P, [a.shape[0] for a, _ in pairs])
        return [p.with_meta(scale=a.scale + b.scale, signed=True) for p, (a, b) in zip(parts, pairs)]
    return [be.mul(a, b, bits, msb_x=layers.zeros_msb(be, a.shape) if nonneg_a else None) for a, b in pairs]


def _gates(be: Backend, sig: list[Share], tnh: list[Share], f: CellFormats, meter) -> tuple[list[Share], list[Share]]:
    """σ of the accumulators ``sig`` and tanh of ``tnh`` (unrounded, one scale and ring, see
    :attr:`CellFormats.sig_in`), each rounded once; with ``fuse_tanh`` in one sigmoid call."""
    ns = [a.shape[0] for a in sig]
    nt = [a.shape[0] for a in tnh]
    if f.fuse_tanh:
        with _section(meter, "round pre-activations"):  # with the MSBs σ needs, same rounds
            pre, b = requant_msb(be, concat(sig + [a.lshift(1) for a in tnh]), f.sig_in)
        with _section(meter, "sigmoid+tanh"):
            s = layers.sigmoid(be, pre, f.sig_out, msb=b)
        k = sum(ns)
        t = s[k:].add_public(np.int64(-(1 << f.gate.scale))).with_meta(scale=f.gate.scale)  # 2σ(2p) − 1
        return _split_rows(s[:k], ns), _split_rows(t, nt)
    with _section(meter, "round pre-activations"):
        pre, b = requant_msb(be, concat(sig + tnh), f.pre)
    k = sum(ns)
    with _section(meter, "sigmoid"):
        s = layers.sigmoid(be, pre[:k], f.gate, msb=b[:k])
    with _section(meter, "tanh"):
        t = layers.tanh(be, pre[k:], f.gate, msb=b[k:])
    return _split_rows(s, ns), _split_rows(t, nt)


def _shape_back(y: Share, vec: bool) -> Share:
    return y.reshape(y.shape[0]) if vec else y


# ---------------------------------------------------------------------------------------------
# float references
# ---------------------------------------------------------------------------------------------
def sigmoid_float(v):
    return 1.0 / (1.0 + np.exp(-v))


def fastgrnn_float(w: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """EdgeML FastGRNN: keys W or (W1, W2), U or (U1, U2), b_z, b_h, zeta, nu (plain constants)."""
    Wx = w["W1"] @ (w["W2"] @ x) if "W1" in w else w["W"] @ x
    Uh = w["U1"] @ (w["U2"] @ h) if "U1" in w else w["U"] @ h
    pre = Wx + Uh
    z = sigmoid_float(pre + _col(w["b_z"], pre))
    ht = np.tanh(pre + _col(w["b_h"], pre))
    return (w["zeta"] * (1 - z) + w["nu"]) * ht + z * h


def lstm_float(w: dict, x: np.ndarray, state) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.LSTMCell: keys W_ih (4H, D), W_hh (4H, H), b_ih, b_hh (4H), gates i, f, g, o."""
    h, c = state
    g = w["W_ih"] @ x + w["W_hh"] @ h
    g = g + _col(w["b_ih"] + w["b_hh"], g)
    H = h.shape[0]
    i, f, gg, o = sigmoid_float(g[:H]), sigmoid_float(g[H:2 * H]), np.tanh(g[2 * H:3 * H]), sigmoid_float(g[3 * H:])
    c2 = f * c + i * gg
    return o * np.tanh(c2), c2


def gru_float(w: dict, x: np.ndarray, h: np.ndarray, linear_before_reset: bool = True) -> np.ndarray:
    """torch.nn.GRUCell: keys W_ih (3H, D), W_hh (3H, H), b_ih, b_hh (3H), gates r, z, n;
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)). With ``linear_before_reset=False`` (ONNX GRU's
    default): n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)."""
    H = h.shape[0]
    gi = w["W_ih"] @ x
    gi = gi + _col(w["b_ih"], gi)
    gh = w["W_hh"] @ h
    gh = gh + _col(w["b_hh"], gh)
    r = sigmoid_float(gi[:H] + gh[:H])
    z = sigmoid_float(gi[H:2 * H] + gh[H:2 * H])
    if linear_before_reset:
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
    else:
        hn = w["W_hh"][2 * H:] @ (r * h)
        n = np.tanh(gi[2 * H:] + hn + _col(w["b_hh"][2 * H:], hn))
    return (1 - z) * n + z * h


def rnn_float(w: dict, x: np.ndarray, h: np.ndarray, activation: str = "tanh") -> np.ndarray:
    """torch.nn.RNNCell / ONNX RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu."""
    a = w["W_ih"] @ x + w["W_hh"] @ h
    a = a + _col(np.asarray(w["b_ih"]) + w["b_hh"], a)
    return np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)


def _col(b, like):
    b = np.asarray(b, np.float64)
    return b.reshape(-1, *([1] * (np.ndim(like) - 1)))


def run_float(step, w: dict, xs: np.ndarray, state):
    """Run a float step over xs (T, D[, B]); returns the final state."""
    for t in range(xs.shape[0]):
        state = step(w, xs[t], state)
    return state


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------
class _Cell:
    fmts: CellFormats
    hidden: int

    def spec(self):
        """The client's copy: the same structure and formats, no weight values."""
        return replace(self, **{k: _spec(v) for k, v in self._fields().items()})

    def describe(self) -> dict:
        """Public structure (for the handshake digest)."""
        return {"cell": type(self).__name__, "hidden": self.hidden, "formats": self.fmts.describe(),
                "params": {k: _describe(v) for k, v in self._fields().items()}}

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, (Param, tuple)) and k != "fmts"}

    def init_state(self, be: Backend, batch: int | None = None, h0: Share | None = None):
        """The initial state: zeros, the server's constant ``h0`` parameter, or the shared ``h0``
        given here ((H,) or (H, B), at ``fmts.h``: e.g. the client's input)."""
        return _initial(be, self.hidden, batch, self.fmts.h, getattr(self, "h0", None), h0)

    def output(self, state) -> Share:
        return state


def _initial(be: Backend, H: int, batch: int | None, fmt: Fmt, p: Param | None, given: Share | None = None) -> Share:
    """The initial state: zeros, the server's constant ``p`` (H,) (added by ALICE, no
    communication), or the shares ``given`` (checked against the shape and format; no
    communication)."""
    shape = (H,) if batch is None else (H, batch)
    if given is not None:
        if p is not None:
            raise ParameterError("an initial state is either the server's constant or given as shares, not both")
        if tuple(given.shape) != shape or (given.bits, given.scale) != tuple(fmt):
            raise ParameterError(f"initial state of shape {given.shape} at ({given.bits}, {given.scale}): "
                                 f"expected {shape} at {tuple(fmt)}")
        return given
    z = public_zeros(be, shape, fmt)
    if p is None:
        return z
    return add_known(be, z, p if batch is None else _colp(p))


def masked_state(new, old, active: np.ndarray):
    """The state after a step with a public per-column mask ``active`` (B,) of bools: the new
    state where active, the old one elsewhere (ONNX ``sequence_lens``: a sequence that has ended
    holds its state). A select with public bits on shares is local: each party selects its own
    shares (both states in the same format); a tuple state (LSTM (h, c), FastGRNN (h, MSB(h)))
    is selected element by element."""
    if isinstance(new, tuple):
        return tuple(masked_state(a, b, active) for a, b in zip(new, old))
    if (new.bits, new.scale) != (old.bits, old.scale) or new.shape != old.shape:
        raise ParameterError("masked_state: the two states differ in shape or format")
    return new.like(np.where(np.asarray(active, bool), new.data, old.data))


def _state_param(v, fmt: Fmt) -> Param | None:
    """A constant initial state (H,) quantised in the state's format (None: zeros)."""
    if v is None:
        return None
    v = np.asarray(v, np.float64).reshape(-1)
    return Param(v.shape, fmt.bits, fmt.scale, quantize(v, fmt.bits, fmt.scale))

def _spec(v):
    if isinstance(v, Param):
        return v.spec()
    if isinstance(v, tuple) and all(isinstance(p, Param) for p in v):
        return tuple(p.spec() for p in v)
    return v


def _describe(v):
    if isinstance(v, Param):
        return v.describe()
    return [p.describe() for p in v]


@dataclass(frozen=True)
class FastGRNNCell(_Cell):
    """FastGRNN: z = σ(Wx + Uh + b_z), h̃ = tanh(Wx + Uh + b_h), h' = (ζ(1 − z) + ν) ⊙ h̃ + z ⊙ h.

    Evaluation over a sequence (:func:`rnn_over_time`, the compiler's runtime): W·x_t for all
    steps first (:meth:`prepare`: one product, low rank W1·round(W2·x)); per step U·h with h's
    wrap folded from MSB(h) (carried in the state), low rank U1·round(U2·h). A single
    :meth:`step` on a raw x and plain h: one matmul_known of [W U] with [x; h] (low rank: first one
    block-diagonal product [[W2, 0], [0, U2]]·[x; h] rounded to ``lowrank``, then [W1 U1]·[W2x; U2h]);
    one TR rounding both pre-activations (b_z and b_h added at the accumulator scale); σ on z,
    tanh on h̃ (one call with ``fuse_tanh``); then, rewritten as
    h' = (ζ + ν)·h̃ + z ⊙ (h − ζ·h̃), one matmul_known of the server's column [ζ + ν; ζ] with h̃
    (with ``fuse_tanh`` on u = h̃ + 1 = σ(2p) ≥ 0, whose MSB is publicly zero, ALICE subtracting
    [ζ + ν; ζ]·1 locally), one TR giving v = h − round(ζ·h̃) and its MSB, one multiplication
    z ⊙ v (both wraps folded: z ≥ 0, MSB(v)), and one final rounding of (ζ + ν)h̃ + z·v to h's
    format (with its MSB for the next step).
    The pre-activation rounding also yields their MSBs (:func:`fixed.requant_msb`, same rounds),
    which σ/tanh take instead of computing them; the products with a publicly non-negative
    operand (u, z) fold that operand's wrap into their OT round.
    Rounds (protocol version 3, D = 32, H = 100, batch 1, ``benchmarks/round_profile.py``): 38
    per step on the critical path, plus 5 once for the inputs' products (version 2: 62 per
    step); a single step on raw inputs, sections counted from fresh rounds: 44 rounds
    (``fuse_tanh=False``: 68).
    """

    W: Param | tuple  # (H, D) or (W1 (H, r), W2 (r, D))
    U: Param | tuple  # (H, H) or (U1 (H, r'), U2 (r', H))
    b_z: Param        # (H,), at the accumulator scale
    b_h: Param
    zn: Param         # (2, 1): [[ζ + ν], [ζ]] at one scale (server-held plain constants)
    fmts: CellFormats = field(default_factory=CellFormats)
    hidden: int = 0

    @classmethod
    def from_float(cls, w: dict, fmts: CellFormats = CellFormats()) -> "FastGRNNCell":
        f = fmts
        lowW, lowU = "W1" in w, "U1" in w
        H = (w["W1"] if lowW else w["W"]).shape[0]
        first_W = first_U = None
        in_x, in_h = f.x.scale, f.h.scale
        # stage 1 (low rank): W2·x and U2·h with one common product scale (one block-diagonal
        # product at run time), rounded to `lowrank`
        firsts = ([(w["W2"], f.x.scale)] if lowW else []) + ([(w["U2"], f.h.scale)] if lowU else [])
        if firsts:
            _, s1 = _weight_scales(firsts, f.w_bits, _pcap(f, f.lowrank, min(f.x.bits, f.h.bits)))
            if lowW:
                first_W = _qparam(w["W2"], f.w_bits, s1[0])
                in_x = f.lowrank.scale
            if lowU:
                first_U = _qparam(w["U2"], f.w_bits, s1[-1])
                in_h = f.lowrank.scale
        mW = w["W1"] if lowW else w["W"]
        mU = w["U1"] if lowU else w["U"]
        in_bits = min(f.lowrank.bits if lowW else f.x.bits, f.lowrank.bits if lowU else f.h.bits)
        P, (sW, sU) = _weight_scales([(mW, in_x), (mU, in_h)], f.w_bits, _pcap(f, f.sig_in, in_bits))
        Wq = _qparam(mW, f.w_bits, sW)
        Uq = _qparam(mU, f.w_bits, sU)
        L = acc_bits(f.sig_in, P)
        zeta, nu = float(w["zeta"]), float(w["nu"])
        sz = fit_scale(max(abs(zeta) + abs(nu), abs(zeta)), f.w_bits)
        # ring caps: the [ζ+ν; ζ]·h̃ product (≤ gate.bits + w_bits) and z ⊙ v (≤ gate.bits + h.bits)
        sz = min(sz, f.h.scale - f.gate.scale + f.gate.bits + min(f.w_bits - f.h.bits, 0))
        if max(sz + f.gate.scale, f.sig_out.scale + f.h.scale) - f.h.scale + f.h.bits > f.gate.bits + min(f.w_bits, f.h.bits):
            raise ParameterError("FastGRNN formats: the gate-update products do not fit the multiplication")
        qz, qn = quantize(zeta, f.w_bits, sz), quantize(nu, f.w_bits, sz)
        zn = Param((2, 1), f.w_bits, sz, np.array([[qz + qn], [qz]], np.int64))
        return cls(W=(Wq, first_W) if lowW else Wq, U=(Uq, first_U) if lowU else Uq,
                   b_z=_qparam(w["b_z"], L, P), b_h=_qparam(w["b_h"], L, P), zn=zn, fmts=f, hidden=H)

    def _stage1(self, be: Backend, x2: Share, h2: Share) -> list[tuple[Param, Share]]:
        """The stage-2 terms [(W or W1, x or W2·x), (U or U1, h or U2·h)]; the low-rank first
        factors run as one block-diagonal product [[W2, 0], [0, U2]]·[x; h] and one rounding."""
        f = self.fmts
        pairs = [(self.W, x2), (self.U, h2)]
        low = [(p[1], v) for p, v in pairs if isinstance(p, tuple)]
        if not low:
            return pairs
        if len({v.bits for _, v in low}) == 1 and len({q.scale + v.scale for q, v in low}) == 1:
            blocks = [q.values for q, _ in low]
            rows = sum(q.shape[0] for q, _ in low)
            cols = sum(q.shape[1] for q, _ in low)
            vals = None
            if blocks[0] is not None:
                vals = np.zeros((rows, cols), np.int64)
                r = c = 0
                for b in blocks:
                    vals[r:r + b.shape[0], c:c + b.shape[1]] = b
                    r, c = r + b.shape[0], c + b.shape[1]
            q0, v0 = low[0]
            block = Param((rows, cols), max(q.bits for q, _ in low), q0.scale, vals)
            xin = v0.like(np.concatenate([v.data for _, v in low], axis=0))
            P1 = q0.scale + v0.scale
            t = requant(be, layers.affine(be, [(block, xin)], acc_bits(f.lowrank, P1)), f.lowrank)
            ts = _split_rows(t, [q.shape[0] for q, _ in low])
        else:
            ts = [requant(be, layers.affine(be, [(q, v)], acc_bits(f.lowrank, q.scale + v.scale)), f.lowrank)
                  for q, v in low]
        it = iter(ts)
        return [(p[0], next(it)) if isinstance(p, tuple) else (p, v) for p, v in pairs]

    # -- evaluation ----------------------------------------------------------------------------
    def init_state(self, be: Backend, batch: int | None = None, h0: Share | None = None):
        """(h = 0, MSB(h) = public 0): the state carries h's MSB so that the next U·h needs no
        wrap protocol (see :meth:`step`). (No shared initial state: its MSB is not known.)"""
        if h0 is not None:
            raise ParameterError("FastGRNN: a shared initial state is not supported")
        h = super().init_state(be, batch)
        return h, be.public_bits(np.zeros(h.shape, np.int64))

    def output(self, state) -> Share:
        return state[0] if isinstance(state, tuple) else state

    def prepare(self, be: Backend, xs: Share) -> list:
        """The inputs' part of every step at once, before the recurrence: W·x_t (low rank:
        W1·round(W2·x_t)) for all t in one product (and one rounding), unrounded at the
        accumulator's scale and ring. Returns one :class:`PreparedInput` per step for :meth:`step`
        (the same values as computing them inside each step; fewer rounds in the recurrence)."""
        T = xs.shape[0]
        cols = xs.data.reshape(T, xs.shape[1], -1)  # (T, D, B)
        B = cols.shape[2]
        X = xs.like(np.ascontiguousarray(cols.transpose(1, 0, 2).reshape(xs.shape[1], T * B)))
        wx = self._input_product(be, X)
        return [PreparedInput(wx[:, t * B:(t + 1) * B], len(xs.shape) == 2) for t in range(T)]

    def _input_product(self, be: Backend, x2: Share) -> Share:
        f = self.fmts
        if isinstance(self.W, tuple):
            W1, W2 = self.W
            t = requant(be, layers.affine(be, [(W2, x2)], acc_bits(f.lowrank, W2.scale + x2.scale)), f.lowrank)
            return layers.affine(be, [(W1, t)], acc_bits(f.sig_in, W1.scale + t.scale))
        return layers.affine(be, [(self.W, x2)], acc_bits(f.sig_in, self.W.scale + x2.scale))

    def _state_product(self, be: Backend, h2: Share, msb: Share) -> Share:
        """U·h (low rank U1·round(U2·h)) with the wraps of h (and of U2·h) folded into the
        products' OT rounds from their MSBs: one COT round per product."""
        f = self.fmts
        if isinstance(self.U, tuple):
            U1, U2 = self.U
            t = _known_product(be, U2, h2, msb, acc_bits(f.lowrank, U2.scale + h2.scale))
            t, mt = requant_msb(be, t, f.lowrank)
            return _known_product(be, U1, t, mt, acc_bits(f.sig_in, U1.scale + t.scale))
        return _known_product(be, self.U, h2, msb, acc_bits(f.sig_in, self.U.scale + h2.scale))

    def step(self, be: Backend, x, h, meter=None):
        """One time step. ``x``: the input (D,) or (D, B), or a :class:`PreparedInput` from
        :meth:`prepare`; ``h``: the state, (h, MSB(h)) as from :meth:`init_state` (returns the
        same form) or a plain h (returns a plain h').

        With a prepared input and h's MSB, the matmul of the step is U·h alone with h's wrap folded
        into its OT round (2 rounds); the new h comes with its MSB from the rounding
        (:func:`fixed.requant_msb`, one round more than the TR). The gate term v = h − round(ζ·h̃)
        is one TR of h·2^d − ζh̃ − 2^{d−1} + 2^d − 1 (exactly h − ⌊(ζh̃ + 2^{d−1})/2^d⌋, the
        same value as rounding ζh̃ and subtracting), with its MSB, so z ⊙ v needs no wrap
        protocol either."""
        f = self.fmts
        with_msb = isinstance(h, tuple)
        h, msb_h = h if with_msb else (h, None)
        h2, _ = _cols(h)
        with _section(meter, "matmul W,U"):
            if isinstance(x, PreparedInput) and msb_h is not None:
                vec = x.vec
                acc = x.wx + self._state_product(be, h2, _cols(msb_h)[0])
            else:
                if isinstance(x, PreparedInput):
                    raise ParameterError("FastGRNN step: a prepared input needs the state with its MSB "
                                         "(init_state's form)")
                x2, vec = _cols(x)
                terms = self._stage1(be, x2, h2)
                P = terms[0][0].scale + terms[0][1].scale
                acc = layers.affine(be, terms, acc_bits(f.sig_in, P))
        (z,), (ht,) = _gates(be, [add_known(be, acc, _colp(self.b_z))], [add_known(be, acc, _colp(self.b_h))],
                             f, meter)
        sz = self.zn.scale
        S = max(z.scale + f.h.scale, sz + ht.scale)
        L = acc_bits(f.h, S)
        with _section(meter, "zeta/nu scaling"):
            n = ht.shape[0] * ht.shape[1]
            zn = self.zn.at(be)
            if f.fuse_tanh:
                # h̃ = u − 2^{s_g} with u = σ(2p) ∈ [0, 2^{s_g+1}]: u's MSB is publicly zero (cheap
                # wrap), and ALICE, who knows [ζ+ν; ζ], subtracts [ζ+ν; ζ]·2^{s_g} locally
                off = 1 << ht.scale
                u = ht.add_public(np.uint64(off)).reshape(1, n)
                k = be.matmul_known(zn, u, L, w_bits=self.zn.bits, w_scale=sz, w_shape=(2, 1),
                                    msb_x=layers.zeros_msb(be, u.shape))
                if zn is not None:
                    k = k.add_public(np.broadcast_to(-(zn * off), k.shape))
            else:
                k = be.matmul_known(zn, ht.reshape(1, n), L, w_bits=self.zn.bits, w_scale=sz, w_shape=(2, 1))
            c_part = k[0].reshape(ht.shape)  # (ζ + ν)·h̃ at scale sz + s_g
            v, msb_v = _minus_rounded(be, h2, k[1].reshape(ht.shape).reduce(acc_bits(f.h, sz + ht.scale)), f.h)
        with _section(meter, "gate product"):
            (zv,) = _mul_many(be, [(z, v)], L, nonneg_a=True, msb_b=msb_v)
        with _section(meter, "round h"):
            pre_h = align_scale(c_part, S) + align_scale(zv, S)
            if with_msb:
                hn, mn = requant_msb(be, pre_h, f.h)
                return _shape_back(hn, vec), _shape_back(mn, vec)
            return _shape_back(requant(be, pre_h, f.h), vec)


@dataclass(frozen=True)
class PreparedInput:
    """A FastGRNN step's input part computed ahead (:meth:`FastGRNNCell.prepare`): W·x_t as
    columns (H, B) at the accumulator's scale and ring; ``vec``: the input was a vector."""

    wx: Share
    vec: bool


def _known_product(be: Backend, W: Param, x: Share, msb: Share | None, bits: int) -> Share:
    """W·x for the server's W (one matmul_known into ``bits``), x's MSB shares passed on."""
    if bits > x.bits + W.bits:
        raise ParameterError(f"product ring {bits} bits exceeds {x.bits} + {W.bits} (input + weight bits)")
    return be.matmul_known(W.at(be), x, bits, w_bits=W.bits, w_scale=W.scale, w_shape=W.shape, msb_x=msb)


def _minus_rounded(be: Backend, h: Share, k: Share, out: Fmt) -> tuple[Share, Share | None]:
    """(v = h − requant(k, out), MSB(v)) for h in ``out`` and k one exact TR above it (ring
    out.bits + d at scale out.scale + d): v = ⌊(h·2^d + 2^d − 1 − (k + 2^{d−1})) / 2^d⌋ exactly
    (−⌊y⌋ = ⌊(2^d − 1 − y·2^d)/2^d⌋ for the integer y·2^d), so one TR with MSB gives both. Any
    other shape of k: the rounding, the subtraction, no MSB."""
    d = k.scale - out.scale
    if d <= 0 or k.bits != out.bits + d or not out.of(h):
        return h - requant(be, k, out), None
    hd = Share(h.data << np.uint64(d), k.bits, k.scale, True, h.role)
    V = (hd - k.with_meta(signed=True)).add_public(np.uint64((1 << d) - 1 - (1 << (d - 1))))
    v, b = be.tr_msb(V, d)
    return v.with_meta(scale=out.scale, signed=True), b


def _colp(p: Param) -> Param:
    return Param((p.shape[0], 1), p.bits, p.scale, None if p.values is None else p.values.reshape(-1, 1))


def _stacked_affine_params(w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray, f: CellFormats,
                           out: Fmt) -> tuple[Param, Param, Param, int]:
    P, (sx, sh) = _weight_scales([(w_ih, f.x.scale), (w_hh, f.h.scale)], f.w_bits,
                                 _pcap(f, out, min(f.x.bits, f.h.bits)))
    return (_qparam(w_ih, f.w_bits, sx), _qparam(w_hh, f.w_bits, sh),
            _qparam(b, acc_bits(out, P), P), P)


@dataclass(frozen=True)
class LSTMCell(_Cell):
    """torch.nn.LSTMCell (gates i, f, g, o). State (h, c).

    Per step: one matmul_known of [W_ih W_hh] with [x; h] into the accumulator, bias by ALICE, one
    TR to ``pre`` (4H); σ on i, f, o and tanh on g (one call with ``fuse_tanh``); f ⊙ c and i ⊙ g in one
    multiplication (2H, gates ≥ 0), summed at a common scale and rounded once to ``c``; tanh(c');
    o ⊙ tanh(c') (one multiplication), rounded to ``h``.
    """

    W_ih: Param
    W_hh: Param
    b: Param  # b_ih + b_hh at the accumulator scale
    fmts: CellFormats = field(default_factory=CellFormats)
    hidden: int = 0
    h0: Param | None = None  #: constant initial h (H,) at fmts.h (None: zeros)
    c0: Param | None = None  #: constant initial c (H,) at fmts.c (None: zeros)

    @classmethod
    def from_float(cls, w: dict, fmts: CellFormats = CellFormats()) -> "LSTMCell":
        Wi, Wh, b, _ = _stacked_affine_params(w["W_ih"], w["W_hh"], np.asarray(w["b_ih"]) + w["b_hh"], fmts,
                                              fmts.sig_in)
        return cls(Wi, Wh, b, fmts, w["W_hh"].shape[1], _state_param(w.get("h0"), fmts.h),
                   _state_param(w.get("c0"), fmts.c))

    def init_state(self, be: Backend, batch: int | None = None, h0: Share | None = None, c0: Share | None = None):
        """(h, c): each zeros, the server's constant parameter, or the given shares (at fmts.h /
        fmts.c)."""
        return (_initial(be, self.hidden, batch, self.fmts.h, self.h0, h0),
                _initial(be, self.hidden, batch, self.fmts.c, self.c0, c0))

    def output(self, state) -> Share:
        return state[0]

    def step(self, be: Backend, x: Share, state, meter=None):
        f = self.fmts
        H = self.hidden
        h, c = state
        x2, vec = _cols(x)
        h2, _ = _cols(h)
        c2, _ = _cols(c)
        with _section(meter, "matmul W_ih,W_hh"):
            P = self.W_ih.scale + x2.scale
            acc = layers.affine(be, [(self.W_ih, x2), (self.W_hh, h2)], acc_bits(f.sig_in, P), bias=self.b)
        (i, fg, o), (g,) = _gates(be, [acc[:H], acc[H:2 * H], acc[3 * H:]], [acc[2 * H:3 * H]], f, meter)
        S = max(fg.scale + f.c.scale, i.scale + g.scale)
        with _section(meter, "cell products"):
            fc, ig = _mul_many(be, [(fg, c2), (i, g)], acc_bits(f.c, S), nonneg_a=True)
        with _section(meter, "round c"):
            cn = requant(be, align_scale(fc, S) + align_scale(ig, S), f.c)
        with _section(meter, "tanh c"):
            tc = layers.tanh(be, cn, f.gate)
        with _section(meter, "output product"):
            hn = layers.mul(be, o, tc, f.h, x_nonneg=True)
        return _shape_back(hn, vec), _shape_back(cn, vec)


@dataclass(frozen=True)
class GRUCell(_Cell):
    """torch.nn.GRUCell (gates r, z, n): n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),
    h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n).

    Per step: one matmul_known of the block matrix [[W_ir W_hr]; [W_iz W_hz]; [W_in 0]; [0 W_hn]]
    with [x; h] (4H rows); one TR rounding the r, z and W_hn·h rows to ``pre``; sigmoid on r, z;
    r ⊙ (W_hn h + b_hn) (r ≥ 0) added to W_in x + b_in at a common scale and rounded once; tanh;
    z ⊙ (h − n) rounded to ``h``, plus n.

    ``linear_before_reset=False`` (ONNX GRU's default): n = tanh(W_in x + b_in + W_hn (r ⊙ h) +
    b_hn). The block matrix has 3H rows ([[W_ir W_hr]; [W_iz W_hz]; [W_in 0]]); after σ, r ⊙ h is
    rounded to ``h`` and multiplied by ``Wn`` = W_hn (a second matmul_known per step, into the same
    accumulator scale as W_in x), then as above.
    """

    Wb: Param  # (4H, D + H) block matrix ((3H, D + H) without linear_before_reset)
    b: Param   # (4H,) at the accumulator scale ((3H,): b_r, b_z, b_in + b_hn)
    fmts: CellFormats = field(default_factory=CellFormats)
    hidden: int = 0
    inputs: int = 0
    h0: Param | None = None       #: constant initial h (H,) at fmts.h (None: zeros)
    Wn: Param | None = None       #: W_hn (H, H), only without linear_before_reset
    linear_before_reset: bool = True

    @classmethod
    def from_float(cls, w: dict, fmts: CellFormats = CellFormats(), linear_before_reset: bool = True) -> "GRUCell":
        f = fmts
        Wi, Wh = np.asarray(w["W_ih"], np.float64), np.asarray(w["W_hh"], np.float64)
        H, D = Wh.shape[1], Wi.shape[1]
        Z = np.zeros
        bi, bh = np.asarray(w["b_ih"], np.float64), np.asarray(w["b_hh"], np.float64)
        # the r ⊙ (W_hn h) product lands at scale s_gate + s_pre: the accumulator must reach it
        if tuple(f.x) != tuple(f.h):
            raise ParameterError("GRUCell needs x and h in one format (one block matrix)")
        h0 = _state_param(w.get("h0"), f.h)
        if not linear_before_reset:
            A, B = Wi, np.concatenate([Wh[:2 * H], Z((H, H))])
            bias = np.concatenate([bi[:2 * H] + bh[:2 * H], bi[2 * H:] + bh[2 * H:]])
            P, (sx, sh, sn) = _weight_scales([(A, f.x.scale), (B, f.h.scale), (Wh[2 * H:], f.h.scale)], f.w_bits,
                                             _pcap(f, f.pre, f.x.bits))
            Wb = Param((3 * H, D + H), f.w_bits, sx,
                       np.concatenate([quantize(A, f.w_bits, sx), quantize(B, f.w_bits, sh)], axis=1))
            return cls(Wb, _qparam(bias, acc_bits(f.pre, P), P), f, H, D, h0, _qparam(Wh[2 * H:], f.w_bits, sn),
                       False)
        A = np.concatenate([Wi[:2 * H], Wi[2 * H:], Z((H, D))])      # x-columns of the 4H rows
        B = np.concatenate([Wh[:2 * H], Z((H, H)), Wh[2 * H:]])      # h-columns
        bias = np.concatenate([bi[:2 * H] + bh[:2 * H], bi[2 * H:], bh[2 * H:]])
        Wiq, Whq, _, P = _stacked_affine_params(A, B, bias, f, f.pre)
        S = max(P, f.gate.scale + f.pre.scale)
        bq = _qparam(bias, acc_bits(f.pre, S), P)
        Wb = Param((4 * H, D + H), f.w_bits, Wiq.scale, np.concatenate([Wiq.values, Whq.values], axis=1))
        return cls(Wb, bq, f, H, D, h0)

    def step(self, be: Backend, x: Share, h: Share, meter=None) -> Share:
        f = self.fmts
        H = self.hidden
        x2, vec = _cols(x)
        h2, _ = _cols(h)
        if x2.bits != h2.bits or x2.scale != h2.scale:
            raise ParameterError("GRUCell: x and h must share one format")
        P = self.Wb.scale + x2.scale
        if not self.linear_before_reset:
            return _shape_back(self._step_reset_first(be, x2, h2, P, meter), vec)
        S = max(P, f.gate.scale + f.pre.scale)
        L = acc_bits(f.pre, S)
        with _section(meter, "matmul W_ih,W_hh"):
            xh = x2.like(np.concatenate([x2.data, h2.data], axis=0))
            acc = layers.affine(be, [(self.Wb, xh)], L, bias=self.b)
        with _section(meter, "round pre-activations"):
            rzh = requant(be, concat([acc[:2 * H], acc[3 * H:]]).reduce(acc_bits(f.pre, P)), f.pre)
            nx = acc[2 * H:3 * H]
        with _section(meter, "sigmoid"):
            rz = layers.sigmoid(be, rzh[:2 * H], f.gate)
            r, z = rz[:H], rz[H:]
        with _section(meter, "reset product"):
            (rn,) = _mul_many(be, [(r, rzh[2 * H:])], L, nonneg_a=True)
        with _section(meter, "round n pre-activation"):
            pn = requant(be, align_scale(nx, S) + align_scale(rn, S), f.pre)
        return _shape_back(self._update(be, pn, z, h2, meter), vec)

    def _step_reset_first(self, be: Backend, x2: Share, h2: Share, P: int, meter) -> Share:
        f = self.fmts
        H = self.hidden
        L = acc_bits(f.pre, P)
        with _section(meter, "matmul W_ih,W_hh"):
            xh = x2.like(np.concatenate([x2.data, h2.data], axis=0))
            acc = layers.affine(be, [(self.Wb, xh)], L, bias=self.b)
        with _section(meter, "round pre-activations"):
            rz = requant(be, acc[:2 * H], f.pre)
        with _section(meter, "sigmoid"):
            rz = layers.sigmoid(be, rz, f.gate)
            r, z = rz[:H], rz[H:]
        with _section(meter, "reset product"):
            rh = layers.mul(be, r, h2, f.h, x_nonneg=True)
        with _section(meter, "matmul W_hn"):
            an = layers.affine(be, [(self.Wn, rh)], L)
        with _section(meter, "round n pre-activation"):
            pn = requant(be, acc[2 * H:] + an, f.pre)
        return self._update(be, pn, z, h2, meter)

    def _update(self, be: Backend, pn: Share, z: Share, h2: Share, meter) -> Share:
        f = self.fmts
        with _section(meter, "tanh"):
            n = requant(be, layers.tanh(be, pn, f.gate), f.h)
        with _section(meter, "update product"):
            return layers.mul(be, z, h2 - n, f.h, x_nonneg=True) + n


@dataclass(frozen=True)
class RNNCell(_Cell):
    """torch.nn.RNNCell / ONNX RNN: h' = act(W_ih x + W_hh h + b), act ∈ {tanh, relu}.

    Per step: one matmul_known of [W_ih W_hh] with [x; h] into the accumulator, bias by ALICE;
    tanh: one TR to ``pre``, tanh to ``gate``, rounded to ``h``; relu: one TR to ``h``, then ReLU.
    """

    W_ih: Param
    W_hh: Param
    b: Param  # b_ih + b_hh at the accumulator scale
    fmts: CellFormats = field(default_factory=CellFormats)
    hidden: int = 0
    h0: Param | None = None
    activation: str = "tanh"

    @classmethod
    def from_float(cls, w: dict, fmts: CellFormats = CellFormats(), activation: str = "tanh") -> "RNNCell":
        if activation not in ("tanh", "relu"):
            raise ParameterError(f"RNNCell: activation must be tanh or relu, not {activation!r}")
        out = fmts.pre if activation == "tanh" else fmts.h
        Wi, Wh, b, _ = _stacked_affine_params(w["W_ih"], w["W_hh"], np.asarray(w["b_ih"]) + w["b_hh"], fmts, out)
        return cls(Wi, Wh, b, fmts, w["W_hh"].shape[1], _state_param(w.get("h0"), fmts.h), activation)

    def step(self, be: Backend, x: Share, h: Share, meter=None) -> Share:
        f = self.fmts
        x2, vec = _cols(x)
        h2, _ = _cols(h)
        out = f.pre if self.activation == "tanh" else f.h
        with _section(meter, "matmul W_ih,W_hh"):
            P = self.W_ih.scale + x2.scale
            acc = layers.affine(be, [(self.W_ih, x2), (self.W_hh, h2)], acc_bits(out, P), bias=self.b)
        with _section(meter, "round pre-activation"):
            a = requant(be, acc, out)
        with _section(meter, self.activation):
            hn = requant(be, layers.tanh(be, a, f.gate), f.h) if self.activation == "tanh" else layers.relu(be, a)
        return _shape_back(hn, vec)


def rnn_over_time(be: Backend, cell, xs: Share, state=None, meter=None, return_all: bool = False):
    """Run ``cell`` over xs (T, D) or (T, D, B) from ``state`` (default zeros); returns the final
    state (and, with ``return_all``, the list of outputs per timestep)."""
    if not isinstance(xs, Share) or len(xs.shape) not in (2, 3):
        raise ParameterError(f"rnn_over_time: xs must be a Share of shape (T, D) or (T, D, B), got {getattr(xs, 'shape', xs)}")
    if state is None:
        state = cell.init_state(be, None if len(xs.shape) == 2 else xs.shape[2])
    outs = []
    for xt in step_inputs(be, cell, xs):
        state = cell.step(be, xt, state, meter=meter)
        if return_all:
            outs.append(cell.output(state))
    return (state, outs) if return_all else state


def step_inputs(be: Backend, cell, xs: Share) -> list:
    """The per-step inputs of ``cell`` over xs (T, D[, B]): the cell's :meth:`prepare` (inputs'
    work done for all steps at once, off the recurrence) where it has one, else xs[t]."""
    prep = getattr(cell, "prepare", None)
    return prep(be, xs) if prep is not None else [xs[t] for t in range(xs.shape[0])]
