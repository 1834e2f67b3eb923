"""Reciprocal of a value normalised to [1, 2] (the division step of sigmoid and tanh)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..protocols.backend import Backend
from ..protocols.share import Share
from .common import fixed_table, zeros_msb


@lru_cache(maxsize=None)
def recip_tables(lut_bits: int, scale_a: int, scale_b: int) -> np.ndarray:
    """Entries (A, B) for index i = ⌊(D − 1)·2^m⌋ ∈ [0, 2^m] (m = lut_bits; index 2^m is D = 2):
    w0 = 2/(lo + hi) for D ∈ [lo, hi] (|1 − D·w0| ≤ 2^{−m−1}), A = round(2·w0·2^scale_a),
    B = round(w0²·2^scale_b). Shape (2^{m+1}, 2), int64."""
    i = np.minimum(np.arange(1 << (lut_bits + 1)), 1 << lut_bits).astype(np.float64)
    lo = 1 + i / 2**lut_bits
    hi = np.minimum(1 + (i + 1) / 2**lut_bits, 2.0)
    w0 = 2 / (lo + hi)
    return np.stack([fixed_table(2 * w0, scale_a), fixed_table(w0 * w0, scale_b)], axis=1)


def recip_lut_bits(scale_out: int) -> int:
    """Table index width: 6 up to scale 14 (one 1-of-128 OT), 7 up to 16 (1-of-256); beyond that
    6 plus Newton steps (see :func:`recip_unit`)."""
    return 6 if scale_out <= 14 or scale_out > 16 else 7


def newton_steps(lut_bits: int, scale_out: int) -> int:
    """Extra Newton steps so the approximation error stays below half an ULP of scale_out."""
    err_bits, steps = 2 * lut_bits + 2, 0
    while err_bits < scale_out + 1:
        err_bits, steps = 2 * err_bits, steps + 1
    return steps


def recip_unit(be: Backend, D: Share, scale_out: int, *, lut_bits: int | None = None,
               guard: int = 2, target_bits: int | None = None, below_two: bool = False) -> Share:
    """1/D for D ∈ [1, 2]: unsigned D at scale s (so 2^s ≤ D ≤ 2^{s+1}) in a ring of ≥ s + 3 bits
    (MSB publicly zero). Returns an unsigned value in [0.5, 1] at ``scale_out``, ring scale_out + 2.

    One Newton–Raphson/Goldschmidt step folded into the table: with w0 ≈ 1/D read from a LUT on the
    top m = ``lut_bits`` fraction bits of D (together with w0² in the same OT),
    r = w0·(2 − D·w0) = 2·w0 − D·w0², relative error ≤ (D·w0 − 1)² ≤ 2^{−2m−2}. One secret
    multiplication (D × w0², operands with known zero MSBs) and two truncations; further Newton
    steps (two multiplications each) only when 2^{−2m−2} is above half an ULP of scale_out
    (:func:`newton_steps`: none up to scale 16).
    """
    s = D.scale
    m = recip_lut_bits(scale_out) if lut_bits is None else lut_bits
    f = D.add_public(np.uint64((1 << D.bits) - (1 << s)))  # D − 1 ∈ [0, 2^s]
    ib = m if below_two else m + 1
    idx = be.tr(f, s - m).reduce(ib)  # ⌊(D − 1)·2^m⌋ ∈ [0, 2^m] (< 2^m if below_two)
    a, P, k = recip_table_step(be, D, idx, scale_out, m, guard, below_two)
    p = be.tr(P, k).reduce(scale_out + 2)  # D·w0² at scale_out (≈ w0 ≤ 1.01)
    r = (a.reduce(scale_out + 2) - p.with_meta(scale=scale_out)).with_meta(signed=False)
    z = zeros_msb(be, D.shape)
    for _ in range(newton_steps(m, scale_out if target_bits is None else target_bits)):
        r = _newton_step(be, D, r, z)
    return r


def recip_table_step(be: Backend, D: Share, idx: Share, scale_out: int, m: int, guard: int = 2,
                     below_two: bool = False, prod_bits: int | None = None) -> tuple[Share, Share, int]:
    """The table step of :func:`recip_unit` before its truncation: from ``idx`` = ⌊(D − 1)·2^m⌋
    (m or m + 1 bits), the LUT of (A = 2·w0, B = w0²) and the product P = D·B. Returns (A in the
    table's ring sb + 2 at ``scale_out``, P in a ``prod_bits``-bit ring (default D.bits + sb + 1),
    k): then r = A − ⌊P / 2^k⌋ at ``scale_out`` (sb = scale_out + guard)."""
    s = D.scale
    sb = scale_out + guard  # scale of w0²
    ib = m if below_two else m + 1
    tab = recip_tables(m, scale_out, sb)[: 1 << ib]
    wbits = sb + 2
    ab = be.lut(tab, idx.with_meta(scale=0, signed=False), wbits, scale=0, signed=False)
    a = ab[..., 0].with_meta(scale=scale_out)
    b = ab[..., 1].with_meta(scale=sb)
    z = zeros_msb(be, D.shape)
    bits = D.bits + wbits - 1 if prod_bits is None else prod_bits  # ≤ 2^{s+1}·2^{sb} < 2^{D.bits + wbits − 1}
    return a, be.mul(D, b, bits, msb_x=z, msb_y=z), s + sb - scale_out


def _newton_step(be: Backend, D: Share, r: Share, z: Share) -> Share:
    """r ← r·(2 − D·r): squares the relative error. Two multiplications, two truncations."""
    so = r.scale
    q = be.tr(be.mul(D, r, D.bits + r.bits - 1, msb_x=z, msb_y=z), D.scale).reduce(so + 2)
    c = (-q).add_public(np.uint64(1) << np.uint64(so + 1)).with_meta(scale=so, signed=False)  # 2 − D·r
    return be.tr(be.mul(r, c, 2 * so + 3, msb_x=z, msb_y=z), so).reduce(so + 2).with_meta(signed=False)
