"""Exact truncations: truncate-and-reduce, logical / arithmetic right shift, division by 2^s.

All of them are exact (no probabilistic 1-bit error). Notation: x ∈ Z_{2^ℓ} shared as x0 + x1,
x_i = hi_i·2^s + lo_i with lo_i < 2^s, c = Wrap(lo) = 1{lo0 + lo1 ≥ 2^s}; then

    ⌊x_unsigned / 2^s⌋ = hi0 + hi1 + c − 2^{ℓ−s}·Wrap(x)          (as integers).

Shift amounts: 0 ≤ s ≤ ℓ − 1; s = 0 returns a copy (no communication), s ≥ ℓ is rejected.

Scale: shifting right by s divides the integer by 2^s, so the real number keeps its meaning at
scale − s; the result's scale is scale − s. If s > scale the result cannot keep the meaning and
a :class:`ParameterError` is raised, unless ``allow_scale_underflow=True``, in which case the result's
scale is max(scale − s, 0) (plain integer shift; the caller owns the interpretation).
The signedness label of the input is kept.

Costs are bits sent by both parties per element; W(m, k) is :func:`extend.wrap_arith_cost_bits`
(Wrap of an m-bit value as k-bit arithmetic shares), M(ℓ) the millionaires' cost. The figures in
the docstrings are IKNP/KK13's; the ``*_cost_bits`` functions take the OT engine ``ot`` and the
protocols pick their parameters for their party's engine (see :mod:`sirnn.protocols.extend`).
"""

from __future__ import annotations

import numpy as np

from .. import ALICE, BOB
from ..errors import ParameterError
from . import compare
from .boolean import and_
from .extend import (_check_msb, _check_share, kkot_cost_bits, millionaire_cost_bits,
                     sext, table_carry, wrap_arith, wrap_arith_cost_bits, zext, zext_cost_bits)
from .party import Party
from .ring import U64, mask, reduce
from .share import Share
from .tuning import profile, rule

ONE = U64(1)


def _check_shift(x: Share, s, what: str) -> int:
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
        raise ParameterError(f"{what}: shift s must be an integer, got {s!r}")
    s = int(s)
    if not 0 <= s < x.bits:
        raise ParameterError(f"{what}: shift s must lie in 0..{x.bits - 1} for a {x.bits}-bit input, got {s}")
    return s


def _out_scale(x: Share, s: int, allow: bool, what: str) -> int:
    if s > x.scale and not allow:
        raise ParameterError(f"{what}: shift s = {s} exceeds the input's scale {x.scale}; the result "
                             "would have a negative scale (pass allow_scale_underflow=True for a plain "
                             "integer shift)")
    return max(x.scale - s, 0)


# -- truncate and reduce ------------------------------------------------------------------------
def tr(party: Party, x: Share, s: int, allow_scale_underflow: bool = False, by_table: bool = False,
       bob_last: bool = False) -> Share:
    """Truncate-and-reduce: ℓ-bit x → (ℓ − s)-bit ⌊x_unsigned / 2^s⌋, exactly.

    (x0 >> s) + (x1 >> s) + c mod 2^{ℓ−s}: the 2^{ℓ−s}·Wrap(x) term vanishes in the smaller ring,
    only the carry c of the low s bits is needed, as (ℓ − s)-bit arithmetic shares (wrap_arith).
    Signed x: ⌊x_signed / 2^s⌋ ≡ ⌊x_unsigned / 2^s⌋ (mod 2^{ℓ−s}), so the same output read as a
    signed (ℓ − s)-bit value is the arithmetic shift (it always fits). Scale: scale − s (module doc).

    Cost: W(s, ℓ − s) bits per element; e.g. ℓ = 32, s = 12: M(12) − 148 + 256 + 8·20 = 1428
    bits (178.5 bytes), 5 rounds (measured; the millionaire's root AND is folded into the B2A,
    see :func:`compare.millionaire_arith`). See :func:`tr_cost_bits`.
    ``by_table`` (s ≤ 8): the carry from one 1-of-2^s OT sent by BOB (:func:`extend.wrap_arith`'s
    "lut": 256 + 2^s·(ℓ − s) bits, 2 rounds, and a lookup by BOB right after shares its flight)
    whatever its cost against the millionaires'. ``bob_last``: BOB sends the last message (also
    implied by ``by_table``), so that a lookup or extension by BOB right after shares its flight.
    """
    _check_share(x, "tr x")
    s = _check_shift(x, s, "tr")
    scale = _out_scale(x, s, allow_scale_underflow, "tr")
    if s == 0:
        return x.like(x.data)
    k = x.bits - s
    if by_table and 2 <= s <= 8 and table_carry(profile(party, x.size)):
        c = wrap_arith(party, x.reduce(s), k, method="lut", sender=BOB)
    elif by_table:  # (ferret: the cheapest carry, BOB still sending last)
        c = wrap_arith(party, x.reduce(s), k, sender=BOB)
    else:
        c = wrap_arith(party, x.reduce(s), k, sender=BOB if bob_last else ALICE)
    return Share((x.data >> U64(s)) + c, k, scale, x.signed, party.role)


def _lo_mid_compare(party: Party, flat: np.ndarray, s: int, w: int):
    """The comparisons shared by :func:`tr_msb` and :func:`tr_two`: with lo = the low s bits and
    mid = the w bits above them, boolean shares of c = Wrap(lo) (the carry into bit s), gm =
    1{mid0 + mid1 ≥ 2^w} and em = 1{mid0 + mid1 = 2^w − 1}; the carry into bit s + w is then
    gm ⊕ (em ∧ c) = gm + em·c. One millionaires' batch with equality at width max(s, w)."""
    n = flat.size
    alice = party.role == ALICE
    lo = flat & mask(s)
    mid = (flat >> U64(s)) & mask(w)
    vals = np.concatenate([lo if alice else mask(s) - lo, mid if alice else mask(w) - mid])
    g, e = compare.millionaire_bits(party, vals, max(s, w), with_eq=True)
    return g[:n], g[n:], e[n:]


def tr_msb(party: Party, x: Share, s: int, allow_scale_underflow: bool = False) -> tuple[Share, Share]:
    """:func:`tr` together with boolean shares of MSB(x) (= the MSB of the (ℓ − s)-bit output), in
    the rounds of one millionaires' instance plus 2 (a TR alone: the same; TR then :func:`msb`
    would add the MSB's millionaire rounds after it).

    With lo = low s bits, mid = bits s..ℓ−2 (w = ℓ − 1 − s of them) and c = Wrap(lo):
    MSB(x) = top0 ⊕ top1 ⊕ gt_mid ⊕ (eq_mid ∧ c), where gt_mid = 1{mid0 + mid1 ≥ 2^w} and eq_mid =
    1{mid0 + mid1 = 2^w − 1}. One millionaires' batch with equality gives c (lo0 vs 2^s − 1 − lo1)
    and (gt_mid, eq_mid) (mid0 vs 2^w − 1 − mid1) at width max(s, w); then one 1-of-4 OT on BOB's
    shares (c1, eq1) carries, per choice, ALICE's masked (ℓ − s)-bit arithmetic c (the B2A of
    :func:`tr`) and her masked boolean eq_mid ∧ c, packed in ℓ − s + 1 bits.

    Cost: 2·Meq(max(s, w)) + 256 + 4·(ℓ − s + 1) bits per element (:func:`tr_msb_cost_bits`);
    rounds R(max(s, w)) + 2, e.g. ℓ = 31, s = 15: 6. s = 0 or w = 0 fall back to tr then msb.
    """
    _check_share(x, "tr_msb x")
    s = _check_shift(x, s, "tr_msb")
    ell = x.bits
    w = ell - 1 - s
    if s == 0 or w <= 0:
        y = tr(party, x, s, allow_scale_underflow)
        return y, compare.msb(party, x)
    scale = _out_scale(x, s, allow_scale_underflow, "tr_msb")
    k = ell - s
    flat = x.data.ravel()
    n = flat.size
    top = (flat >> U64(ell - 1)) & ONE
    c, gm, em = _lo_mid_compare(party, flat, s, w)
    if party.role == ALICE:
        ra = party.random(n, k)
        rb = party.prg.bits(n).astype(U64)
        j = np.arange(4, dtype=U64)  # choice = c1 + 2·eq1
        cj = c[:, None] ^ (j & ONE)
        ej = em[:, None] ^ (j >> ONE)
        msgs = ((ra[:, None] + cj) & mask(k)) | (((ej & cj) ^ rb[:, None]) << U64(k))
        party.ot.kkot_send(msgs, k + 1)
        carry, band = (U64(0) - ra) & mask(k), rb
    else:
        got = party.ot.kkot_recv(c | (em << ONE), 4, k + 1)
        carry, band = got & mask(k), got >> U64(k)
    y = Share(((flat >> U64(s)) + carry).reshape(x.shape), k, scale, x.signed, party.role)
    return y, Share((top ^ gm ^ band).reshape(x.shape), 1, 0, False, party.role)


def tr_msb_cost_bits(bits: int, s: int, ot: str = "iknp") -> float:
    """Bits per element of :func:`tr_msb` (w = ℓ − 1 − s ≥ 1, s ≥ 1) on engine ``ot``."""
    w = bits - 1 - s
    return 2 * millionaire_cost_bits(max(s, w), True, ot) + kkot_cost_bits(4, bits - s + 1, ot)


def tr_two(party: Party, x: Share, s: int, t: int, allow_scale_underflow: bool = False) -> tuple[Share, Share]:
    """(tr(x, s), tr(x, t)) for 0 < s < t < ℓ in the rounds of one comparison: the truncations of
    one value at two positions, e.g. a value and the top bits that index a table.

    With c the carry into bit s (Wrap of the low s bits) and (gm, em) the comparisons of the
    w = t − s bits above (see :func:`tr_msb`), the carry into bit t is gm + em·c (exclusive
    terms). One millionaires' batch with equality at width max(s, w), then one 1-of-8 OT on BOB's
    shares (c1, em1, gm1) carrying ALICE's masked (ℓ − s)-bit c and (ℓ − t)-bit gm + em·c.

    Cost: 2·Meq(max(s, w)) + 256 + 8·(2ℓ − s − t) bits per element (:func:`tr_two_cost_bits`);
    rounds R(max(s, w)) + 2 — two TRs in sequence or apart would add their rounds.
    Scales: x.scale − s and x.scale − t (rules of :func:`tr`).
    """
    _check_share(x, "tr_two x")
    s = _check_shift(x, s, "tr_two")
    t = _check_shift(x, t, "tr_two")
    if not 0 < s < t:
        raise ParameterError(f"tr_two: need 0 < s < t, got s = {s}, t = {t}")
    sc1 = _out_scale(x, s, allow_scale_underflow, "tr_two")
    sc2 = _out_scale(x, t, allow_scale_underflow, "tr_two")
    ell = x.bits
    k1, k2 = ell - s, ell - t
    flat = x.data.ravel()
    n = flat.size
    c, gm, em = _lo_mid_compare(party, flat, s, t - s)
    if party.role == ALICE:
        ra = party.random(n, k1)
        rb = party.random(n, k2)
        j = np.arange(8, dtype=U64)  # choice = c1 + 2·em1 + 4·gm1
        cj = c[:, None] ^ (j & ONE)
        ej = em[:, None] ^ ((j >> ONE) & ONE)
        gj = gm[:, None] ^ (j >> U64(2))
        msgs = ((ra[:, None] + cj) & mask(k1)) | (((rb[:, None] + gj + (ej & cj)) & mask(k2)) << U64(k1))
        party.ot.kkot_send(msgs, k1 + k2)
        c1, c2 = (U64(0) - ra) & mask(k1), (U64(0) - rb) & mask(k2)
    else:
        got = party.ot.kkot_recv(c | (em << ONE) | (gm << U64(2)), 8, k1 + k2)
        c1, c2 = got & mask(k1), got >> U64(k1)
    y1 = Share(((flat >> U64(s)) + c1).reshape(x.shape) & mask(k1), k1, sc1, x.signed, party.role)
    y2 = Share(((flat >> U64(t)) + c2).reshape(x.shape) & mask(k2), k2, sc2, x.signed, party.role)
    return y1, y2


def tr_two_cost_bits(bits: int, s: int, t: int, ot: str = "iknp") -> float:
    """Bits per element of :func:`tr_two` on engine ``ot``."""
    return 2 * millionaire_cost_bits(max(s, t - s), True, ot) + kkot_cost_bits(8, 2 * bits - s - t, ot)


def tr_ref(x: np.ndarray, bits: int, s: int) -> np.ndarray:
    """Cleartext: ⌊unsigned(x) / 2^s⌋ as an (ℓ − s)-bit ring element (= signed floor mod 2^{ℓ−s})."""
    return (np.asarray(x, U64) & mask(bits)) >> U64(s)


def tr_cost_bits(bits: int, s: int, ot: str = "iknp") -> float:
    return 0 if s == 0 else wrap_arith_cost_bits(s, bits - s, ot=ot)


# -- shifts in the same ring --------------------------------------------------------------------
def lrs(party: Party, x: Share, s: int, msb: Share | None = None,
        allow_scale_underflow: bool = False) -> Share:
    """Logical right shift in the same ring: ℓ-bit x → ℓ-bit ⌊x_unsigned / 2^s⌋.

    Computed as zext(tr(x, s), ℓ): the (ℓ − s)-bit TR output's MSB is bit ℓ − 1 of x, so a given
    ``msb`` (boolean shares of MSB(x)) is passed to the extension. This costs W(s, ℓ − s) +
    W(ℓ − s, s) = M(s) + M(ℓ − s) − 296 + 512 + 8ℓ bits (for the millionaire methods), cheaper
    than the direct formula hi0 + hi1 + c − 2^{ℓ−s}·Wrap(x) with two wraps (M(ℓ) ≥ M(ℓ − s)); the
    two steps are sequential (the extension needs TR's output shares).
    E.g. ℓ = 32, s = 12: 1428 + (2180 − 148 + 256 + 96) = 3812 bits (476.5 bytes), 11 rounds; with
    msb 1428 + (256 + 4·12) = 1732 bits (216.5 bytes), 7 rounds (measured).
    """
    return _shift_in_ring(party, x, s, msb, allow_scale_underflow, zext, "lrs")


def _shift_in_ring(party: Party, x: Share, s, msb, allow: bool, extend, what: str) -> Share:
    """TR by s, then back to ℓ bits with ``extend`` (zext: logical, sext: arithmetic)."""
    _check_share(x, f"{what} x")
    s = _check_shift(x, s, what)
    _check_msb(msb, x, what)
    scale = _out_scale(x, s, allow, what)
    if s == 0:
        return x.like(x.data)
    y = tr(party, x, s, allow_scale_underflow=True)
    return extend(party, y, x.bits, msb).with_meta(scale=scale)


def lrs_ref(x: np.ndarray, bits: int, s: int) -> np.ndarray:
    return (np.asarray(x, U64) & mask(bits)) >> U64(s)


def lrs_cost_bits(bits: int, s: int, with_msb: bool = False, ot: str = "iknp") -> float:
    return 0 if s == 0 else tr_cost_bits(bits, s, ot) + zext_cost_bits(bits - s, bits, with_msb, ot)


def ars(party: Party, x: Share, s: int, msb: Share | None = None,
        allow_scale_underflow: bool = False) -> Share:
    """Arithmetic right shift in the same ring: ℓ-bit signed x → ℓ-bit ⌊x_signed / 2^s⌋.

    Computed as sext(tr(x, s), ℓ) (TR's output is ⌊x_signed/2^s⌋ as a signed (ℓ − s)-bit value,
    whose MSB is MSB(x): a given ``msb`` is passed on). The alternative, lrs(x + 2^{ℓ−1}) − 2^{ℓ−1−s},
    is the same TR + zero extension (sext adds its bias 2^{ℓ−s−1} after TR instead of 2^{ℓ−1}
    before), so it costs exactly the same; this is the direct one. Cost = :func:`lrs`'s.
    """
    return _shift_in_ring(party, x, s, msb, allow_scale_underflow, sext, "ars")


def _signed(x: np.ndarray, bits: int) -> np.ndarray:
    """ℓ-bit ring elements → int64 two's-complement values (sign extension by shifting)."""
    sh = U64(64 - bits)
    return ((np.asarray(x, U64) & mask(bits)) << sh).view(np.int64) >> np.int64(64 - bits)


def ars_ref(x: np.ndarray, bits: int, s: int) -> np.ndarray:
    return reduce((_signed(x, bits) >> np.int64(s)).view(U64), bits)


ars_cost_bits = lrs_cost_bits


# -- division by 2^s rounding towards zero ------------------------------------------------------
def _div_mid_batched(bits: int, s: int, ot: str = "iknp") -> bool:
    """Run the low-s and middle millionaires as one batch when padding costs nothing."""
    w = bits - 1 - s
    if w <= 0:
        return False
    m = lambda b: millionaire_cost_bits(b, True, rule(ot))  # noqa: E731
    return 2 * m(max(s, w)) <= m(s) + m(w)


def div_pow2_cost_bits(bits: int, s: int, with_msb: bool = False, ot: str = "iknp") -> float:
    """Meq(s) [+ Meq(ℓ − 1 − s) + 148 for the MSB] + 256 + 16·ℓ bits per element (Meq: the
    millionaires' cost with equality output; 148 = one AND with its triple)."""
    if s == 0:
        return 0
    w = bits - 1 - s
    cost = millionaire_cost_bits(s, True, ot) + kkot_cost_bits(16, bits, ot)
    if not with_msb and w > 0:
        if _div_mid_batched(bits, s, ot):
            cost += 2 * millionaire_cost_bits(max(s, w), True, ot) - millionaire_cost_bits(s, True, ot)
        else:
            cost += millionaire_cost_bits(w, True, ot)
        cost += kkot_cost_bits(16, 2, ot) / 2 + 4
    return cost


def div_pow2(party: Party, x: Share, s: int, msb: Share | None = None,
             allow_scale_underflow: bool = False) -> Share:
    """Signed division by 2^s rounding towards zero: ℓ-bit x → ℓ-bit trunc(x_signed / 2^s), exact.

    trunc(x/2^s) = ⌊x/2^s⌋ + b·nz with b = MSB(x), nz = 1{x mod 2^s ≠ 0}, and with u = x + 2^{ℓ−1}
    (MSB(u) = ¬b, same low bits): ⌊x/2^s⌋ = hi0(u) + hi1(u) + c − 2^{ℓ−s}·Wrap(u) − 2^{ℓ−1−s}.

    1. One millionaires' instance with equality on lo0 vs (2^s − lo1) mod 2^s gives both
       e = 1{lo0 + lo1 ≡ 0} = ¬nz and, up to BOB's local fix when lo1 = 0, c = gt ⊕ eq.
    2. Unless ``msb`` is given: b = msb(x0) ⊕ msb(x1) ⊕ (gt' ⊕ eq' ∧ c), with (gt', eq') from a
       millionaires' instance with equality on the middle bits s..ℓ−2 (batched with step 1 when that
       costs nothing), and one AND.
    3. One 1-of-16 OT on BOB's shares (c1, e1, b1, msb(u1)): ALICE sends r + c + b·(1 − e) −
       2^{ℓ−s}·Wrap(u) (Wrap(u) = a∧t ⊕ (a⊕t)∧b, MSB-to-Wrap) for all 16 choices.

    Cost: Meq(s) + Meq(ℓ − 1 − s) + 148 + 256 + 16ℓ bits (with msb: Meq(s) + 256 + 16ℓ; Meq the
    millionaires' cost with equality); e.g. ℓ = 32, s = 12: 1456 + 2624 + 148 + 768 = 4996 bits
    (624.5 bytes), 13 rounds (measured); with msb 2224 bits (278 bytes), 6 rounds. See :func:`div_pow2_cost_bits`.
    """
    _check_share(x, "div_pow2 x")
    s = _check_shift(x, s, "div_pow2")
    _check_msb(msb, x, "div_pow2")
    scale = _out_scale(x, s, allow_scale_underflow, "div_pow2")
    if s == 0:
        return x.like(x.data)
    ell = x.bits
    w = ell - 1 - s
    m_ell = mask(ell)
    flat = x.data.ravel()
    n = flat.size
    alice = party.role == ALICE
    top = (flat >> U64(ell - 1)) & ONE
    lo = flat & mask(s)
    lo_in = lo if alice else (U64(0) - lo) & mask(s)
    if w > 0 and msb is None:
        mid = (flat >> U64(s)) & mask(w)
        mid_in = mid if alice else mask(w) - mid
        if _div_mid_batched(ell, s, profile(party, n)):
            g, e = compare.millionaire_bits(party, np.concatenate([lo_in, mid_in]), max(s, w), with_eq=True)
            g, e, gm, em = g[:n], e[:n], g[n:], e[n:]
        else:
            g, e = compare.millionaire_bits(party, lo_in, s, with_eq=True)
            gm, em = compare.millionaire_bits(party, mid_in, w, with_eq=True)
    else:
        g, e = compare.millionaire_bits(party, lo_in, s, with_eq=True)
    c = g ^ e
    if not alice:
        c ^= (lo == 0).astype(U64)
    if msb is not None:
        b = msb.data.ravel()
    elif w == 0:
        b = top ^ c
    else:
        bshare = lambda d: Share(d, 1, 0, False, party.role)  # noqa: E731
        b = top ^ gm ^ and_(party, bshare(em), bshare(c)).data
    if alice:
        r = party.random(n, ell)
        j = np.arange(16, dtype=U64)
        cj = c[:, None] ^ (j & ONE)
        ej = e[:, None] ^ ((j >> ONE) & ONE)
        bj = b[:, None] ^ ((j >> U64(2)) & ONE)
        tj = (j >> U64(3)) & ONE
        a = (top ^ ONE)[:, None]  # msb(u0), u0 = x0 + 2^{ℓ−1}
        wrap_u = (a & tj) ^ ((a ^ tj) & bj)
        v = cj + bj * (ONE ^ ej) - (wrap_u << U64(ell - s))
        party.ot.kkot_send((v + r[:, None]) & m_ell, ell)
        u0 = (flat + (ONE << U64(ell - 1))) & m_ell
        out = (u0 >> U64(s)) - (ONE << U64(ell - 1 - s)) - r
    else:
        choice = c | (e << ONE) | (b << U64(2)) | (top << U64(3))
        out = (flat >> U64(s)) + party.ot.kkot_recv(choice, 16, ell)
    return Share(out.reshape(x.shape), ell, scale, x.signed, party.role)


def div_pow2_ref(x: np.ndarray, bits: int, s: int) -> np.ndarray:
    """Cleartext: trunc(signed(x) / 2^s) (rounding towards zero) as an ℓ-bit ring element."""
    t = _signed(x, bits)
    low_nonzero = (t & np.int64((1 << s) - 1)) != 0
    q = (t >> np.int64(s)) + ((t < 0) & low_nonzero).astype(np.int64)
    return reduce(q.view(U64), bits)
