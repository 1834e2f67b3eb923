"""Exponential on secret-shared fixed-point values (SiRNN's rExp)."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.share import Share
from .common import check_format, fixed_table, to_format, zeros_msb

DIGIT_BITS = 8


def exp_digit_tables(in_bits: int, in_scale: int, scale: int, d: int = DIGIT_BITS) -> list[np.ndarray]:
    """Digit i of |x| (d bits, weight 2^{d·i − in_scale}) → round(e^{−digit·2^{d·i−in_scale}}·2^scale)."""
    tables = []
    for i in range(-(-in_bits // d)):
        w = min(d, in_bits - d * i)
        j = np.arange(1 << w, dtype=np.float64)
        tables.append(fixed_table(np.exp(-j * 2.0 ** (d * i - in_scale)), scale))
    return tables


def nexp_mid(be: Backend, x: Share, scale: int, d: int = DIGIT_BITS, below_one: bool = False,
             untruncated: bool = False, prod_bits: int | None = None) -> Share | None:
    """e^x for x ≤ 0 at an intermediate format: unsigned, ``scale + 2`` bits, value ≤ 2^scale.

    SiRNN's rExp: y = −x (as an unsigned ring element); digits of d bits; digit i looks up
    e^{−y_i·2^{d·i − s_x}} at ``scale`` in a (scale + 2)-bit ring (1-of-2^d OT); the digit results
    are multiplied pairwise up a tree (unsigned mixed multiplication into 2·scale + 2 bits with the
    operands' MSBs publicly zero, then TR by ``scale``). For x > 0 the result is that of −x mod 2^ℓ
    (near zero): callers restrict the domain. ``below_one`` caps e^0 at 1 − 2^{−scale} so the
    result is < 1 (lets 1 + e be reciprocated from a table half the size).
    ``untruncated``: return the last product of the tree before its TR (scale 2·``scale``, ring
    ``prod_bits``, default 2·scale + 2), so the caller can fuse that truncation with its own; None
    when there is no product (one digit).
    """
    y = (-x).with_meta(scale=0, signed=False)
    wb = scale + 2
    digits = be.digits(y, d) if y.bits > d else [y]
    tables = exp_digit_tables(x.bits, x.scale, scale, d)
    if below_one:
        tables[0] = np.minimum(tables[0], (1 << scale) - 1)
    if len({dg.bits for dg in digits}) == 1:  # all digit lookups in one round trip
        factors = be.lut_many(tables, digits, wb, scale=scale, signed=False)
    else:  # (a narrower top digit: its own table size)
        top = be.lut(tables[-1], digits[-1], wb, scale=scale, signed=False)
        factors = (be.lut_many(tables[:-1], digits[:-1], wb, scale=scale, signed=False) if len(digits) > 1
                   else []) + [top]
    if untruncated and len(factors) == 1:
        return None
    while len(factors) > 1:
        nxt = []
        last = len(factors) == 2
        for a, b in zip(factors[0::2], factors[1::2]):
            z = zeros_msb(be, a.shape)
            wide = prod_bits if last and prod_bits is not None else 2 * scale + 2
            p = be.mul(a, b, wide, msb_x=z, msb_y=z)
            if last and untruncated:
                return p
            nxt.append(be.tr(p, scale))
        if len(factors) % 2:
            nxt.append(factors[-1])
        factors = nxt
    return factors[0]


def nexp(be: Backend, x: Share, bits_out: int, scale_out: int, *, extra_scale: int = 0) -> Share:
    """e^x for fixed-point x ≤ 0 (signed ``x.bits``-bit, scale ``x.scale``) → (bits_out, scale_out).

    Domain rule: inputs must be ≤ 0; a positive input gives e^{−(2^ℓ − x)/2^s} ≈ 0 (no error is
    raised since the value is secret). Output: signed fixed point in [0, 1], rounded to nearest from
    the internal scale ``scale_out + extra_scale``. Rejects bits_out < scale_out + 2 (1.0 would not
    fit as a signed value).
    Without guard bits (``extra_scale`` 0) the tree's last product is formed in the ring
    scale_out + bits_out, so its TR lands in the output ring (no extension).
    Cost (16-bit in, scale 12, 16-bit out, scale 12): digit decomposition into two 8-bit digits
    (the carry by one 1-of-256 OT, 288 B), two 1-of-256 LUTs into 14 bits in one round trip
    (960 B), one 14×14 → 28-bit multiplication with public-zero MSBs (no wrap protocol), one TR
    into 16 bits: 1,986.25 bytes per element, 9 rounds (``benchmarks/round_profile.py``; protocol
    version 2: 1,859.25 B, 15 rounds). On the Ferret engine (protocol version 4): 1,023 bytes,
    11 rounds — the carry by an 8-bit millionaire with arithmetic output (14.4 B) instead of the
    table, the two lookups 898 B (their 2·256·14 message bits, which silent OT does not shrink).
    Max error 1.64 ULP over all 2^15 + 1 inputs x ≤ 0.
    """
    if not x.signed:
        raise ParameterError("nexp: x must be a signed fixed-point share")
    check_format(bits_out, scale_out, "nexp output", min_int_bits=1)
    mid = scale_out + extra_scale
    if 2 * mid + 2 > 64:
        raise ParameterError(f"nexp: internal scale {mid} needs products wider than 64 bits (max 31)")
    if mid == scale_out and bits_out <= mid + 4:  # the last product in the ring where its TR
        p = nexp_mid(be, x, mid, untruncated=True, prod_bits=mid + bits_out)  # lands in bits_out
        if p is not None:
            return be.tr(p, mid).with_meta(scale=scale_out, signed=True)
    e = nexp_mid(be, x, mid)
    return to_format(be, e, bits_out, scale_out, vmax=1 << mid)


def nexp_ref_float(x: np.ndarray) -> np.ndarray:
    """The real function the recipe approximates (for precision reports)."""
    return np.exp(x)


def exp_saturating(be: Backend, x: Share, bits_out: int, scale_out: int) -> Share:
    """e^x for any signed fixed-point x, saturating: e^{min(x, c)} with c the largest input whose
    exponential fits the output format (so inputs above c give the largest representable value
    e^c rounded, never a wrapped one).

    e^{min(x, c)} = K · e^{min(x − c, 0)} with K = e^c public: x is sign-extended by one bit (so
    x − c cannot wrap), clamped by min(·, 0) = t − ReLU(t) (one MSB, one MUX), passed to rExp at
    ⌈log2 K⌉ extra internal bits, and multiplied by the public K (local), then rounded.
    """
    if not x.signed:
        raise ParameterError("exp_saturating: x must be a signed fixed-point share")
    check_format(bits_out, scale_out, "exp output", min_int_bits=1)
    vmax_real = ((1 << (bits_out - 1)) - 1) / 2.0**scale_out
    c_int = int(np.floor(np.log(vmax_real) * 2.0**x.scale))  # c at the input scale, e^c fits
    if c_int < 0:
        raise ParameterError("exp_saturating: the output format cannot hold e^0 = 1")
    hi = (1 << (x.bits - 1)) - 1
    c_int = min(c_int, hi)
    c = c_int / 2.0**x.scale
    g = max(int(np.ceil(np.log2(np.exp(c)))), 0)  # extra bits so K·ε stays below an output ULP
    if 2 * (scale_out + g + 2) + 2 > 64:
        raise ParameterError(
            f"exp_saturating: output scale {scale_out} with a range up to e^{c:.2f} needs internal "
            f"products wider than 64 bits; lower the output scale or the output width")
    xe = be.sext(x, x.bits + 1)
    t = xe.add_public(np.uint64((1 << xe.bits) - c_int))  # x − c
    neg = be.msb(t)
    t = be.select(neg, t)  # min(x − c, 0): t if negative, else 0
    mid = scale_out + g + 2  # two guard bits absorb the rExp tree's truncations
    e = nexp_mid(be, t, mid)  # ≤ 2^mid, ring mid + 2
    kq = scale_out + 2  # fraction bits of the public constant K: its rounding costs < ¼ ULP
    k_int = int(round(np.exp(c) * 2**kq))
    wide = mid + 2 + k_int.bit_length()
    if wide > 64:
        raise ParameterError(
            f"exp_saturating: output {bits_out} bits / scale {scale_out} needs a {wide}-bit "
            "intermediate (e^c·2^scale is too large); use a narrower output range or a lower scale")
    e = be.zext(e, wide, msb=zeros_msb(be, e.shape)).mul_public(k_int, scale=kq)
    return to_format(be, e, bits_out, scale_out, vmax=(1 << mid) * k_int)
