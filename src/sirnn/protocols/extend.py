"""Ring extensions: zero extension and signed extension Z_{2^m} → Z_{2^n} (n ≥ m).

Both rest on one sub-protocol, :func:`wrap_arith`: additive shares over Z_{2^k} of
Wrap(x) = 1{x0 + x1 ≥ 2^m} for a shared m-bit x. Zero extension only needs the wrap times 2^m in
Z_{2^n}, i.e. the wrap modulo 2^{n−m}, so k = n − m.

``wrap_arith`` picks, from public parameters only (so both parties agree), the cheapest of

==========  ========================================================  ====================  ===========
method      how                                                       bits per element      rounds
==========  ========================================================  ====================  ===========
``cot``     m = 1: Wrap = x0·x1; one correlated OT (ALICE corr x0)    128 + k               2
``lut``     2 ≤ m ≤ 8: 1-of-2^m OT on BOB's x1, ALICE sends           256 + 2^m·k           2
            r + 1{x0 + v ≥ 2^m} for every v
``mill``    millionaires' on m bits with arithmetic output: the tree  M(m) − 148 + 256 + 8k  R(m) + 1
            down to two nodes, then one 1-of-8 OT for root + B2A
            (:func:`compare.millionaire_arith`; m ≤ 4: M(m) + 128 + k, R(m) + 2)
``msb4``    MSB(x) known: 1-of-4 OT on (msb(x1), BOB's MSB share),    256 + 4k              2
            arithmetic output directly (MSB-to-Wrap, fused with B2A)
``msb2a``   MSB(x) known: boolean MSB-to-Wrap, then B2A to k          256 + 4 + 128 + k     4
==========  ========================================================  ====================  ===========

where M(m) is the millionaires' cost on m bits (:func:`millionaire_cost_bits`) and R(m) its rounds.
Ties go to the method with fewer rounds. All costs count the bits sent by both parties; the
figures above are IKNP/KK13's. Every cost function takes a parameter profile ``ot`` ("iknp"
default; "ferret", where a COT costs 1 + k bits and a 1-of-N OT log2 N + N·k; "ferret-lat", Ferret's
costs with iknp's round-relevant choices: :mod:`sirnn.protocols.tuning`) and :func:`wrap_arith`
uses the profile of its party's engine and batch, so the cheapest method can differ (both parties
agree: the engine is negotiated at set-up, the batch size is public). E.g. an 8-bit carry into 8
bits: "mill" on both engines, 896 / 115 bits; "mill"'s root also differs
(:func:`compare.root_method`).
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from ..ot import engine as _eng
from . import compare
from .boolean import b2a
from .party import Party
from .ring import U64, check_bits, mask
from .share import Share
from .share import check_msb_share as _check_msb, check_share as _check_share
from .tuning import profile, rule

ONE = U64(1)
MAX_LUT_BITS = 8  # the 1-of-N OT supports N ≤ 2^8


# -- cost model (bits sent by both parties, per element; ``ot``: the OT engine's kind) -----------
def cot_cost_bits(k: int, ot: str = "iknp") -> int:
    """Correlated OT with one k-bit correlation (iknp 128 + k, ferret 1 + k)."""
    return _eng.cot_cost_bits(ot, k)


def kkot_cost_bits(n_options: int, k: int, ot: str = "iknp") -> int:
    """Chosen-message 1-of-N OT with k-bit messages (iknp: N = 2 IKNP 128 + 2k, else KK13
    256 + N·k; ferret: log2 N + N·k)."""
    return _eng.kkot_cost_bits(ot, n_options, k)


def millionaire_cost_bits(bits: int, with_eq: bool = False, ot: str = "iknp") -> float:
    """M(ℓ): bits per element of :func:`compare.millionaire_bits` (its own cost formula,
    :func:`compare.millionaire_cost_bits`, so changes to the millionaire carry over)."""
    return compare.millionaire_cost_bits(bits, with_eq, ot=ot)


def b2a_cost_bits(k: int, ot: str = "iknp") -> int:
    return cot_cost_bits(k, ot)


def _wrap_candidates(m: int, k: int, with_msb: bool, ot: str = "iknp") -> list[tuple[str, float]]:
    """(method, cost) in order of increasing rounds."""
    if m == 1:
        return [("cot", cot_cost_bits(k, ot))]
    if with_msb:
        return [("msb4", kkot_cost_bits(4, k, ot)), ("msb2a", kkot_cost_bits(4, 1, ot) + b2a_cost_bits(k, ot))]
    cands = []
    if m <= MAX_LUT_BITS:
        cands.append(("lut", kkot_cost_bits(1 << m, k, ot)))
    cands.append(("mill", compare.millionaire_arith_cost_bits(m, k, ot)))
    return cands


def wrap_method(m: int, k: int, with_msb: bool = False, ot: str = "iknp") -> str:
    """The method :func:`wrap_arith` uses for an m-bit input and k-bit output under parameter
    profile ``ot`` (public choice: the cheapest, ties to fewer rounds; "ferret-lat": the method
    iknp would pick, see :mod:`sirnn.protocols.tuning`)."""
    best = None
    for name, cost in _wrap_candidates(m, k, with_msb, rule(ot)):
        if best is None or cost < best[1]:
            best = (name, cost)
    return best[0]


def wrap_arith_cost_bits(m: int, k: int, with_msb: bool = False, ot: str = "iknp") -> float:
    """Bits per element (both parties) of :func:`wrap_arith` (see the module table)."""
    return dict(_wrap_candidates(m, k, with_msb, ot))[wrap_method(m, k, with_msb, ot)]


def table_carry(ot: str) -> bool:
    """Whether a carry that a caller would read off a table for its rounds (``method="lut"`` of
    :func:`wrap_arith`: the two-digit decomposition, ``tr(by_table=True)``) is read off the table
    under profile ``ot`` (iknp and ferret-lat: yes, 2 rounds; ferret: no, the cheapest method
    instead, since a table costs its 2^m·k message bits while comparisons and COTs cost almost
    nothing)."""
    return rule(ot) == "iknp"


def zext_cost_bits(m: int, n: int, with_msb: bool = False, ot: str = "iknp") -> float:
    """Bits per element of :func:`zext` / :func:`sext` from m to n bits: wrap_arith(m, n − m).

    E.g. 32 → 64 without MSB: M(32) − 148 + 256 + 8·32 = 3932 + 364 = 4296 bits (537 bytes, with
    the millionaire as of now); with MSB: 256 + 4·32 = 384 bits (48 bytes).
    """
    return 0 if n == m else wrap_arith_cost_bits(m, n - m, with_msb, ot)


sext_cost_bits = zext_cost_bits


# -- validation helpers -------------------------------------------------------------------------




def _check_bits_out(x: Share, bits_out, what: str) -> int:
    n = check_bits(bits_out, f"{what}: bits_out")
    if n < x.bits:
        raise ParameterError(f"{what}: bits_out = {n} is smaller than the input's {x.bits} bits; "
                             "use truncate.tr or Share.reduce to go to a smaller ring")
    return n


# -- Wrap as arithmetic shares ------------------------------------------------------------------
def wrap_arith(party: Party, x: Share, k: int, msb: Share | None = None, method: str | None = None,
               sender: int = ALICE) -> np.ndarray:
    """Arithmetic shares over Z_{2^k} of Wrap(x) = 1{x0 + x1 ≥ 2^m} (x: m-bit shares, 1 ≤ k ≤ 64).

    ``msb``: optional boolean shares of MSB(x) (enables the MSB-to-Wrap methods). Returns this
    party's share as a uint64 array of x's shape. Cost: :func:`wrap_arith_cost_bits` (module table).
    ``method``: force one of the module table's methods (e.g. "lut": 2 rounds where the cheapest
    takes more), else the cheapest. ``sender``: the party that sends the last message of the "lut"
    and "mill" methods (the table, the root's 1-of-8 OT; a next OT received by the sender can then
    send its matrix in the same flight).
    """
    _check_share(x, "wrap_arith x")
    k = check_bits(k, "wrap_arith: k")
    _check_msb(msb, x, "wrap_arith")
    m = x.bits
    if method is None:
        method = wrap_method(m, k, msb is not None, profile(party, x.size))
    elif method not in dict(_wrap_candidates(m, k, msb is not None)):
        raise ParameterError(f"wrap_arith: method {method!r} does not apply to {m}-bit inputs")
    flat = x.data.ravel()
    n = flat.size
    km = mask(k)
    alice = party.role == ALICE
    if method == "cot":  # m = 1: wrap = x0 ∧ x1 = x0·x1
        if alice:
            out = (U64(0) - party.ot.cot_send(flat, k)) & km
        else:
            out = party.ot.cot_recv(flat, k)
    elif method == "lut":
        if party.role == sender:
            r = party.random(n, k)
            cand = np.arange(1 << m, dtype=U64)
            w = ((flat[:, None] + cand) >> U64(m)) & ONE  # x_s + v < 2^{m+1}, so bit m is the wrap
            party.ot.kkot_send((w + r[:, None]) & km, k)
            out = (U64(0) - r) & km
        else:
            out = party.ot.kkot_recv(flat, 1 << m, k)
    elif method == "msb4":
        top = (flat >> U64(m - 1)) & ONE
        ms = msb.data.ravel()
        if alice:
            r = party.random(n, k)
            t = np.array([0, 1, 0, 1], U64)  # choice j = msb(x1) + 2·(BOB's MSB share)
            m1 = np.array([0, 0, 1, 1], U64)
            a = top[:, None]
            not_msb = ms[:, None] ^ m1 ^ ONE
            w = (a & t) ^ ((a ^ t) & not_msb)
            party.ot.kkot_send((w + r[:, None]) & km, k)
            out = (U64(0) - r) & km
        else:
            out = party.ot.kkot_recv(top | (ms << ONE), 4, k)
    else:
        flat_x = x.ravel()
        if method == "msb2a":
            out = b2a(party, compare.msb_to_wrap(party, flat_x, msb.ravel()), k).data
        else:  # Wrap = 1{x0 > 2^m − 1 − x1}, arithmetic output
            out = compare.millionaire_arith(party, flat if alice else mask(m) - flat, m, k, sender=sender)
    return out.reshape(x.shape)


def wrap_arith_ref(x0: np.ndarray, x1: np.ndarray, m: int, k: int) -> np.ndarray:
    """Cleartext: Wrap(x0, x1) ∈ {0, 1} (as a Z_{2^k} element)."""
    return compare.wrap_ref(np.asarray(x0, U64) & mask(m), np.asarray(x1, U64) & mask(m), m)


# -- extensions ---------------------------------------------------------------------------------
def zext(party: Party, x: Share, bits_out: int, msb: Share | None = None) -> Share:
    """Zero extension: unsigned m-bit x ∈ Z_{2^m} → the same integer in Z_{2^n}, n = bits_out ≥ m.

    y = x0 + x1 − 2^m·Wrap(x) in Z_{2^n}; only Wrap mod 2^{n−m} matters, so :func:`wrap_arith`
    produces it directly as (n − m)-bit arithmetic shares (no separate full-width B2A).
    ``msb``: optional boolean shares of MSB(x) (bit m − 1), making Wrap cheap (MSB-to-Wrap).
    bits_out == m returns a copy (no communication). Scale and signedness label are kept.

    Cost per element (both parties): wrap_arith(m, n − m), e.g. 32 → 64: M(32) − 148 + 256 + 8·32
    = 4296 bits (537 bytes), 6 rounds (measured); with msb: 256 + 4·32 = 384 bits
    (48 bytes), 2 rounds. See :func:`zext_cost_bits`.
    """
    _check_share(x, "zext x")
    n = _check_bits_out(x, bits_out, "zext")
    _check_msb(msb, x, "zext")
    m = x.bits
    if n == m:
        return x.like(x.data)
    w = wrap_arith(party, x, n - m, msb)
    y = (x.data - (w << U64(m))) & mask(n)
    return Share(y, n, x.scale, x.signed, party.role)


def zext_ref(x: np.ndarray, bits: int, bits_out: int) -> np.ndarray:
    """Cleartext: the unsigned value of x mod 2^bits, as a bits_out-bit ring element."""
    return np.asarray(x, U64) & mask(bits)


def sext(party: Party, x: Share, bits_out: int, msb: Share | None = None) -> Share:
    """Signed extension: signed m-bit x ∈ Z_{2^m} → the same signed integer in Z_{2^n}, n ≥ m.

    u = x + 2^{m−1} (ALICE, public) is x's value shifted into [0, 2^m); y = zext(u) − 2^{m−1} in
    Z_{2^n}. MSB(u) = ¬MSB(x), so a given ``msb`` share is negated (ALICE flips hers) and passed on.
    bits_out == m returns a copy. Cost: exactly that of :func:`zext` (the shifts are local).
    """
    _check_share(x, "sext x")
    n = _check_bits_out(x, bits_out, "sext")
    _check_msb(msb, x, "sext")
    m = x.bits
    if n == m:
        return x.like(x.data)
    h = U64(1) << U64(m - 1)
    u = x.add_public(h)
    y = zext(party, u, n, None if msb is None else msb.invert())
    return y.add_public(U64(((1 << n) - (1 << (m - 1))) & ((1 << 64) - 1)))  # −2^{m−1} mod 2^n


def sext_ref(x: np.ndarray, bits: int, bits_out: int) -> np.ndarray:
    """Cleartext: the signed value of x (m-bit two's complement) as a bits_out-bit ring element."""
    x = np.asarray(x, U64) & mask(bits)
    if bits == 64:
        return x
    neg = (x >> U64(bits - 1)) & ONE
    return (x | (neg * (mask(bits_out) ^ mask(bits)))) & mask(bits_out)
