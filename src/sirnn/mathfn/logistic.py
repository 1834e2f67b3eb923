"""Sigmoid and tanh (SiRNN's recipes): exponential of −|x|, reciprocal of 1 + e, sign by a MUX."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.share import Share
from .common import check_format, to_format, zeros_msb
from .exp import nexp_mid
from .recip import newton_steps, recip_lut_bits, recip_table_step, recip_unit

EXTRA_SCALE = 2  # internal guard bits over the output scale


def _neg_abs(be: Backend, x: Share, msb: Share | None = None) -> tuple[Share, Share]:
    """(b = MSB(x), −|x|) with one MSB (unless the caller has it: ``msb``) and one MUX:
    −|x| = −x + b·(x − (−x))."""
    b = be.msb(x) if msb is None else msb
    nx = -x
    return b, nx + be.select(b, x - nx)


def _recip_one_plus(be: Backend, e: Share, scale: int, target_bits: int) -> Share:
    """1/(1 + e) for e ∈ [0, 1) at scale ``scale`` in a (scale + 2)-bit ring (MSB zero)."""
    D = e.add_public(np.uint64(1) << np.uint64(e.scale))  # < 2^{scale+1}: the MSB stays zero
    return recip_unit(be, D, scale, target_bits=target_bits, below_two=True)


def _recip_rounded(be: Backend, t: Share, mid: int, bits_out: int, scale_out: int, tanh: bool) -> Share | None:
    """The rounded output of :func:`sigmoid` (``tanh`` False: to_format(1/(1 + e))) or of
    :func:`tanh` (to_format(2/(1 + e) − 1)) before the sign MUX, e = e^t at scale ``mid``, with the
    truncations fused: None when the shapes do not allow it (the caller then runs the steps one by
    one). The functionality is exactly that of the separate steps:

    * the exp tree's last product p is truncated at two places at once (``Backend.tr_two``):
      e = ⌊p / 2^mid⌋ and the reciprocal's table index ⌊e / 2^{mid−m}⌋ = ⌊p / 2^{2·mid−m}⌋;
    * with r = A − ⌊P/2^k⌋ (A, P = D·B from the table step, D = 1 + e) and the output rounding
      ⌊(v + 2^{δ−1}) / 2^δ⌋ (δ = mid − scale_out), −⌊P/2^k⌋ = ⌊(2^k − 1 − P)/2^k⌋ makes the two
      floors one: sigmoid ⌊((A + 2^{δ−1} + 1)·2^k − 1 − P) / 2^{k+δ}⌋, tanh (v = 2r − 1,
      δ ≥ 2) ⌊((A − 2^{mid−1} + 2^{δ−2} + 1)·2^k − 1 − P) / 2^{k+δ−1}⌋: one TR whose output ring is
      the output width (the product is formed in the ring that makes it so), instead of TR, TR,
      extension.
    """
    m = recip_lut_bits(mid)
    drop = mid - scale_out
    if drop < 2 or newton_steps(m, scale_out + 1) or mid <= m:
        return None
    guard = 2
    sb = mid + guard
    k = sb  # s + sb − scale_out with s = scale_out = mid
    shift = k + drop - (1 if tanh else 0)
    d_bits = mid + 2
    ring = min(shift + bits_out, d_bits + sb + 2, 64)
    if ring - k > sb + 2 or 2 * mid + 2 > 64:
        return None
    p = nexp_mid(be, t, mid, below_one=True, untruncated=True)
    if p is None:
        return None
    e, idx = be.tr_two(p, mid, 2 * mid - m)  # e (ring mid + 2, scale mid), ⌊(D − 1)·2^m⌋
    D = e.with_meta(scale=mid, signed=False).add_public(np.uint64(1) << np.uint64(mid))
    a, P, _ = recip_table_step(be, D, idx.reduce(m), mid, m, guard, below_two=True, prod_bits=ring)
    g = (1 << (drop - 1)) + 1 if not tanh else (1 << (drop - 2)) + 1 - (1 << (mid - 1))
    G = a.reduce(ring - k).add_public(np.uint64(g % (1 << (ring - k))))
    Z = Share(G.data << np.uint64(k), ring, 0, False, G.role) - P.with_meta(scale=0)
    Z = Z.add_public(np.uint64((1 << ring) - 1))  # − 1
    y = be.tr(Z.with_meta(scale=0, signed=False), shift).with_meta(scale=scale_out, signed=True)
    if y.bits < bits_out:  # the value < 2^{scale_out + 1}: the MSB is zero
        y = be.zext(y, bits_out, msb=zeros_msb(be, y.shape))
    return y.reduce(bits_out).with_meta(scale=scale_out, signed=True)


def _check(x: Share, bits_out: int, scale_out: int, what: str) -> None:
    if not x.signed:
        raise ParameterError(f"{what}: x must be a signed fixed-point share")
    check_format(bits_out, scale_out, f"{what} output", min_int_bits=1)


def sigmoid(be: Backend, x: Share, bits_out: int, scale_out: int, *, extra_scale: int = EXTRA_SCALE,
            msb: Share | None = None) -> Share:
    """σ(x) = 1/(1 + e^{−x}) for signed fixed-point x → (bits_out, scale_out), any input.

    b = MSB(x); e = e^{−|x|}; r = 1/(1 + e) = σ(|x|); σ(x) = b ? 1 − r : r (one MUX; no
    multiplication since e/(1 + e) = 1 − r). Internal scale: scale_out + extra_scale; the result
    is rounded to nearest.
    ``msb``: boolean shares of MSB(x) when the caller already has them (saves the MSB protocol).
    Cost (16-bit in, scale 12 → 16-bit out, scale 12; both parties, per element): 3,991.5 bytes,
    24 rounds (protocol version 3; version 2: 3,844.5 B, 37 rounds) — MSB 210.5 (3 rounds), |x|
    MUX 36 (2), rExp: digits 288 (2), the two 1-of-256 LUTs in one round trip 1,088 (1: the
    digit carry's last flight carries BOB's OT matrix), one multiplication 673 (2), the fused
    TRs of e and the table index 386 (5); reciprocal 1-of-64 LUT of (2·w0, w0²) 320 (1), one
    multiplication 690.5 (2), one TR into the output ring 263.5 (4), final MUX 36 (2): rounds on
    the critical path, ``benchmarks/round_profile.py``. On the Ferret engine (protocol version
    4): 1,679.4 bytes, 31 rounds, of which the two 1-of-256 lookups are 1,026 and the 1-of-64
    reciprocal table 288.75. Max error 1.12 ULP over all 2^16 inputs.
    """
    _check(x, bits_out, scale_out, "sigmoid")
    mid = scale_out + extra_scale
    b, t = _neg_abs(be, x, msb)
    r = _recip_rounded(be, t, mid, bits_out, scale_out, tanh=False)
    if r is None:
        r = _recip_one_plus(be, nexp_mid(be, t, mid, below_one=True), mid, scale_out + 1)
        r = to_format(be, r, bits_out, scale_out, vmax=1 << mid)
    one_minus_2r = (-(r + r)).add_public(np.uint64(1) << np.uint64(scale_out))
    return r + be.select(b, one_minus_2r)


def tanh(be: Backend, x: Share, bits_out: int, scale_out: int, *, extra_scale: int = EXTRA_SCALE,
         msb: Share | None = None) -> Share:
    """tanh(x) for signed fixed-point x (scale ≥ 1) → (bits_out, scale_out), any input.

    e = e^{−2|x|} (the same ring element −|x| read at scale s_x − 1 is −2|x|); tanh(|x|) =
    (1 − e)/(1 + e) = 2/(1 + e) − 1; the sign is restored with one MUX.
    Cost (16/12 → 16/12): 3,987 bytes per element, 24 rounds (the same steps as sigmoid;
    ``sirnn bench tanh --n 4096``; Ferret: 1,674.9 B, 31 rounds); max error 1.73 ULP over all
    2^16 inputs.
    """
    _check(x, bits_out, scale_out, "tanh")
    if x.scale < 1:
        raise ParameterError("tanh: x needs scale ≥ 1 (2|x| is read as |x| at scale − 1)")
    mid = scale_out + extra_scale
    b, t = _neg_abs(be, x, msb)
    t2 = t.with_meta(scale=x.scale - 1)
    a = _recip_rounded(be, t2, mid, bits_out, scale_out, tanh=True)
    if a is None:
        r = _recip_one_plus(be, nexp_mid(be, t2, mid, below_one=True), mid, scale_out + 1)
        a = (r + r).add_public(np.uint64((1 << r.bits) - (1 << mid)))  # 2r − 1 ∈ [0, 1]
        a = to_format(be, a, bits_out, scale_out, vmax=1 << mid)
    return a + be.select(b, -(a + a))
