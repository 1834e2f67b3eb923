"""Shared pieces of the math recipes: parameter checks, fixed-point tables, format conversion."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.ring import check_bits
from ..protocols.share import Share


def check_format(bits, scale, what: str, min_int_bits: int = 0) -> tuple[int, int]:
    """Validate a (bitwidth, scale) pair; ``min_int_bits`` integer bits (+ sign) must remain."""
    bits = check_bits(bits, f"{what} bitwidth")
    if not isinstance(scale, (int, np.integer)) or scale < 0:
        raise ParameterError(f"{what} scale must be a non-negative integer, got {scale!r}")
    if scale + min_int_bits + 1 > bits:
        raise ParameterError(f"{what}: a {bits}-bit value with scale {scale} has no room for "
                             f"{min_int_bits} integer bit(s) and a sign bit (need bits ≥ "
                             f"scale + {min_int_bits + 1})")
    return bits, int(scale)


def fixed_table(values: np.ndarray, scale: int) -> np.ndarray:
    """Real numbers → integers round(v · 2^scale) (round half away from zero, as np.round)."""
    return np.round(np.asarray(values, np.float64) * 2.0**scale).astype(np.int64)


def zeros_msb(be: Backend, shape) -> Share:
    """A public all-zero boolean share: the MSB of a value known to be small and non-negative."""
    return be.public_bits(np.zeros(shape, np.int64))


def round_shift(be: Backend, v: Share, s: int) -> Share:
    """Round-to-nearest (half up) division by 2^s: TR(v + 2^{s−1}, s). Needs headroom for the add."""
    if s <= 0:
        return v
    return be.tr(v.add_public(np.uint64(1) << np.uint64(s - 1)), s)


def to_format(be: Backend, v: Share, bits: int, scale: int, *, vmax: int) -> Share:
    """Convert a non-negative value v ≤ vmax (integer at v's scale) to (bits, scale), signed.

    Rounds to nearest when the scale drops, shifts when it grows, and changes the width by a
    local reduction or by a zero extension that is cheap (MSB-to-Wrap with a public zero MSB)
    whenever vmax proves the MSB is zero. The caller guarantees the value fits the target.
    """
    def widen(v: Share, to: int, vmax: int) -> Share:
        known = vmax < (1 << (v.bits - 1))
        return be.zext(v, to, msb=zeros_msb(be, v.shape) if known else None)

    if v.scale > scale:
        drop = v.scale - scale
        if vmax + (1 << (drop - 1)) >= 1 << v.bits:
            v, vmax = widen(v, v.bits + 1, vmax), vmax
        v = round_shift(be, v, drop)
        vmax = (vmax + (1 << (drop - 1))) >> drop
    elif v.scale < scale:
        grow = scale - v.scale
        if v.bits < bits:
            v = widen(v, bits, vmax)
        v = v.lshift(grow).with_meta(scale=scale)
        vmax <<= grow
    if v.bits < bits:
        v = widen(v, bits, vmax)
    elif v.bits > bits:
        v = v.reduce(bits)
    return v.with_meta(signed=True)
