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
from ..mathfn import div, nexp, rsqrt
from ..protocols.backend import Backend
from ..protocols.share import Share
from .fixed import Fmt
from .layers import _check_x, mul, zeros_msb

__all__ = ["softmax", "l2_normalise", "softmax_exp_fmt", "l2_internal_fmts"]


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
