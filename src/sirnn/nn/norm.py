"""Softmax and L2 normalisation over the last axis, from the math library's nexp, div and rsqrt.

Both are written once against a :class:`Backend` (secure protocol or its exact cleartext
functionality), so the two-party result equals the cleartext fixed-point result bit for bit.
The internal formats are functions of the input format, the length K of the last axis and the
output format only (public), so a program needs no extra attributes for them.

**softmax** (:func:`softmax`), x (b, s) signed → out (signed, values in [0, 1]):

1. m = max over the last axis (the maxpool tournament of :meth:`Backend.maxpool`, K − 1 MSB+MUX
   meetings in ⌈log2 K⌉ rounds of meetings); d = x − m ≤ 0 locally (exact; the activation
   formats keep one headroom bit, so pairwise differences do not wrap);
2. e = e^d by :func:`~sirnn.mathfn.nexp` at the exp format (se + 2, se) with
   se = min(out.scale + 1 + ⌈log2(K + 1)⌉, 30): e ∈ [0, 1], max e = 1 exactly up to rounding;
3. S = Σ e (sign-free zero extension by ⌈log2 K⌉ bits with a publicly zero MSB, then a local
   sum): S ∈ [1, K];
4. q = e / S by :func:`~sirnn.mathfn.div` into ``out`` (rounded to nearest, saturated).

Error: each e carries ≤ ~1 ULP(se) from nexp, so |Δq| ≤ ULP(se)·(1 + K·q)/S + ½ ULP(out) + the
division's 0.11 ULP, i.e. below ~0.7 ULP of ``out`` with the se above (measured in the tests).

**L2 normalisation** (:func:`l2_normalise`), x (b, s) → out = x / ‖x‖₂ (values in [−1, 1]):

1. x² by one multiplication of x with itself into 2b bits (exact, scale 2s; x² < 2^{2b−2});
2. zero extension by ⌈log2 K⌉ bits (publicly zero MSB) and a local sum: ss = Σx² exactly at
   scale 2s in L = 2b + ⌈log2 K⌉ bits; if L > 40 it is truncated (TR) to 40 bits (scale drops);
3. y = 1/√ss by :func:`~sirnn.mathfn.rsqrt` into (by, sy) with
   sy = out.scale + 2 + ⌈log2(√K·2^{b−1−s})⌉ (y keeps out.scale + 2 significant bits at the
   largest possible norm) and by = min(28, s + 2 + sy) (28: rsqrt's internal rings must fit
   64 bits). y saturates (exactly) to its largest value, about 2^{by−1−sy}, for
   ‖x‖ < 2^{−(by−1−sy)} — e.g. x at (16, 11), K = 10, out (16, 14): sy = 22, tiny vectors of norm
   below 1/32 come out scaled by 32 instead of normalised — and for ss = 0 (then x = 0 and the
   output is 0; the float reference's eps is below every representable nonzero ‖x‖);
4. out = x ⊙ y (y ≥ 0: cheap wrap) rounded once to ``out``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..mathfn import div, nexp, rsqrt, sqrt
from ..protocols.backend import Backend
from ..protocols.share import Share
from .fixed import Fmt, requant
from .layers import _check_x, broadcast, mul, scale_public, zeros_msb

__all__ = ["softmax", "l2_normalise", "softmax_exp_fmt", "l2_internal_fmts", "reduce_last", "normalize",
           "REDUCE_KINDS"]


def _clog2(n: int) -> int:
    return max(0, int(n - 1).bit_length())


def softmax_exp_fmt(K: int, out: Fmt) -> Fmt:
    se = min(int(out[1]) + 1 + _clog2(K + 1), 30)
    return Fmt(se + 2, se)


def _lastaxis_sum(be: Backend, e: Share, K: int) -> Share:
    """Σ over the last axis of a non-negative signed share, in a ring ⌈log2 K⌉ bits wider."""
    L = e.bits + _clog2(K)
    if L > e.bits:
        e = be.zext(e, L, msb=zeros_msb(be, e.shape)).with_meta(signed=True)
    return e.like(e.data.sum(axis=-1))


def _last_axis_args(x: Share, out, what: str) -> tuple[Fmt, int]:
    """Validate a reduction over x's last axis; (output format, axis length K)."""
    _check_x(x, f"{what} x")
    out = Fmt(*out).check(f"{what} output")
    if not x.shape or x.shape[-1] < 1:
        raise ParameterError(f"{what}: x needs a non-empty last axis, got {x.shape}")
    return out, x.shape[-1]


def softmax(be: Backend, x: Share, out: Fmt) -> Share:
    """Softmax over the last axis of x → ``out`` (module doc)."""
    out, K = _last_axis_args(x, out, "softmax")
    m = be.maxpool(x, axis=-1)
    mb = m.like(np.ascontiguousarray(np.broadcast_to(m.data[..., None], x.shape)))
    d = x - mb.with_meta(scale=x.scale, signed=True)
    ef = softmax_exp_fmt(K, out)
    e = nexp(be, d, ef.bits, ef.scale)
    S = _lastaxis_sum(be, e, K)
    Sb = S.like(np.ascontiguousarray(np.broadcast_to(S.data[..., None], x.shape)))
    return div(be, e, Sb, out.bits, out.scale)


Y_BITS = 28  #: width of 1/‖x‖ (rsqrt's internal rings stay within 64 bits for inputs ≤ 40 bits)


def l2_internal_fmts(x_bits: int, x_scale: int, K: int, out: Fmt) -> tuple[int, int, Fmt]:
    """(sum-of-squares bits, its truncation, y format) for :func:`l2_normalise`."""
    L = 2 * x_bits + _clog2(K)
    drop = max(0, L - 40)
    int_norm = int(np.ceil(0.5 * np.log2(K) + (x_bits - 1 - x_scale)))
    sy = int(out[1]) + 2 + max(int_norm, 0)
    by = min(Y_BITS, x_scale + 2 + sy)
    if by - 2 - sy < 0:
        raise ParameterError(f"l2_normalise: 1/‖x‖ at {sy} fraction bits does not fit {Y_BITS} bits "
                             "(lower the input or output scale)")
    return L, drop, Fmt(by, sy)


def l2_normalise(be: Backend, x: Share, out: Fmt) -> Share:
    """x / ‖x‖₂ over the last axis → ``out`` (module doc)."""
    out, K = _last_axis_args(x, out, "l2_normalise")
    L, drop, yf = l2_internal_fmts(x.bits, x.scale, K, out)
    sq = be.mul(x, x, 2 * x.bits).with_meta(signed=True)
    ss = _lastaxis_sum(be, sq, K)
    if drop:
        ss = be.tr(ss, drop).with_meta(signed=True)
    y = rsqrt(be, ss, yf.bits, yf.scale)
    yb = y.like(np.ascontiguousarray(np.broadcast_to(y.data[..., None], x.shape)))
    return mul(be, x, yb, out, y_nonneg=True)


# ---------------------------------------------------------------------------------------------
# reductions and normalisation over the last axis (the runtime moves the reduced axes there)
# ---------------------------------------------------------------------------------------------
REDUCE_KINDS = ("sum", "mean", "max", "l2")
SQ_MAX_BITS = 40     #: sums of squares wider than this are truncated before sqrt / rsqrt (as l2norm)
SQRT_RING_BITS = 60  #: mathfn.sqrt's rings fit 64 bits when input bits + output bits ≤ this (measured)
L2_MAX_OUT_BITS = SQRT_RING_BITS - 32  #: widest reduce-l2 output (its input keeps ≥ 32 bits)
VAR_MAX_BITS = 36    #: ring of the squared deviations before their mean (room for 1/K in 64 bits)


def _sum_squares(be: Backend, x: Share, max_bits: int = SQ_MAX_BITS) -> Share:
    """Σ x² over the last axis, exact at scale 2·x.scale in 2·x.bits + ⌈log2 K⌉ bits (one
    multiplication, one cheap zero extension, a local sum), truncated (TR) to ``max_bits``."""
    K = x.shape[-1]
    if 2 * x.bits + _clog2(K) > 64:
        raise ParameterError(f"sum of squares of {x.bits}-bit values over {K} needs more than 64 bits")
    sq = be.mul(x, x, 2 * x.bits).with_meta(signed=True)
    ss = _lastaxis_sum(be, sq, K)
    if ss.bits > max_bits:
        ss = be.tr(ss, ss.bits - max_bits).with_meta(signed=True)
    return ss


def reduce_last(be: Backend, x: Share, kind: str, out: Fmt) -> Share:
    """Reduce the last axis of x: ``sum`` / ``mean`` (Σ x times the public 1 or 1/K, rounded
    once into ``out``: :func:`~sirnn.nn.layers.scale_public`, one extension and one TR), ``max``
    (the maxpool tournament: ⌈log2 K⌉ levels of MSB + MUX; x's format, ``out`` must equal it),
    ``l2`` (√Σx²: squares, exact sum, mathfn.sqrt into ``out``)."""
    _check_x(x, f"reduce {kind} x")
    out = Fmt(*out).check(f"reduce {kind} output")
    K = x.shape[-1] if x.shape else 0
    if K < 1:
        raise ParameterError(f"reduce {kind}: x needs a non-empty last axis, got {x.shape}")
    if kind == "sum":
        return scale_public(be, x, 1.0, out, sum_last=True)
    if kind == "mean":
        return scale_public(be, x, 1.0 / K, out, sum_last=True)
    if kind == "max":
        return requant(be, be.maxpool(x, axis=-1), out)
    if kind == "l2":
        if out.bits > L2_MAX_OUT_BITS:
            raise ParameterError(f"reduce l2: output of {out.bits} bits is wider than {L2_MAX_OUT_BITS}")
        return sqrt(be, _sum_squares(be, x, min(SQ_MAX_BITS, SQRT_RING_BITS - out.bits)), out.bits, out.scale)
    raise ParameterError(f"reduce: kind must be one of {', '.join(REDUCE_KINDS)}, got {kind!r}")


def normalize(be: Backend, x: Share, out: Fmt, *, eps: float, rstd: Fmt) -> Share:
    """(x − mean) / √(var + eps) over the last axis (population variance) → ``out``.

    1. mean = round(Σx · 1/K) in x's format (:func:`~sirnn.nn.layers.scale_public`: one sign
       extension, one TR); d = x − mean locally (|d| < 2^{bits−1} by the headroom bit);
    2. d² by one multiplication into 2·bits (exact, scale 2s; truncated to VAR_MAX_BITS when
       wider); var = round(Σd² · 1/K) in that format (a zero extension with a public-zero MSB,
       one TR); + eps (public, rounded at var's scale);
    3. r = 1/√(var + eps) by mathfn.rsqrt into ``rstd`` (chosen by the compiler from the
       calibrated range of r: it saturates, exactly, above the format's largest value);
    4. out = d ⊙ r (r ≥ 0: cheap wrap), one rounding.
    """
    _check_x(x, "normalize x")
    out = Fmt(*out).check("normalize output")
    K = x.shape[-1] if x.shape else 0
    if K < 1:
        raise ParameterError(f"normalize: x needs a non-empty last axis, got {x.shape}")
    if 2 * x.bits > 64:
        raise ParameterError(f"normalize: {x.bits}-bit input: its squares need more than 64 bits")
    fx = Fmt(x.bits, x.scale)
    mean = scale_public(be, x, 1.0 / K, fx, sum_last=True)
    d = x - broadcast(mean.like(mean.data[..., None]), x.shape)
    sq = be.mul(d, d, 2 * x.bits).with_meta(signed=True)
    if sq.bits > VAR_MAX_BITS:
        sq = be.tr(sq, sq.bits - VAR_MAX_BITS).with_meta(signed=True)
    var = scale_public(be, sq, 1.0 / K, Fmt(sq.bits, sq.scale), sum_last=True, nonneg=True)
    var = var.add_public(int(round(float(eps) * 2.0**var.scale)))
    r = rsqrt(be, var, rstd[0], rstd[1])
    return mul(be, d, broadcast(r.like(r.data[..., None]), x.shape), out, y_nonneg=True)
