"""Comparison protocols: millionaires', Wrap, MSB / DReLU and MSB-to-Wrap.

All outputs are boolean shares (1-bit :class:`Share`).
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from .boolean import (Triples, and_bits, triple_ot_choices, triple_ot_finish,
                      triple_ot_messages, _check_bool)
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share

ONE = U64(1)
LEAF_BITS = 4  # m: leaf width, as in SCI; leaves are compared by 1-of-16 OT


def _tree_and_count(leaves: int) -> int:
    """ANDs per element in the lt/eq combination tree over ``leaves`` leaves."""
    total, cnt = 0, leaves
    while cnt > 1:
        total += 2 * (cnt // 2)
        cnt = cnt - cnt // 2
    return total


def millionaire_bits(party: Party, v: np.ndarray, bits: int, with_eq: bool = False):
    """Millionaires' protocol on raw inputs: ALICE holds x = v, BOB holds y = v (uint64, < 2^bits).

    Returns this party's boolean share (0/1 uint64, same shape) of 1{x > y}; with ``with_eq``,
    the pair (share of 1{x > y}, share of 1{x = y}) (the equality costs nothing extra).

    Split into q = ⌈ℓ/4⌉ leaves of 4 bits; ALICE sends, per leaf and BOB's digit value, masked
    (1{x_j > y_j}, 1{x_j = y_j}) by one 1-of-16 OT, batched with the OTs that make the bit triples
    for the combination tree (lt = lt_hi ⊕ eq_hi ∧ lt_lo, eq = eq_hi ∧ eq_lo).
    Cost per element: q·(256 + 32) + (2q − 2)·(144 + 4) bits about; rounds 2 + ⌈log2 q⌉.
    """
    bits = check_bits(bits)
    shape = v.shape
    x = v.ravel()
    n = x.size
    q = -(-bits // LEAF_BITS)
    digits = (x[:, None] >> (U64(LEAF_BITS) * np.arange(q, dtype=U64))) & mask(LEAF_BITS)  # (n, q)
    n_and = n * _tree_and_count(q)
    n_tot = (n_and + 1) // 2
    if party.role == ALICE:
        lt, eq = party.prg.bits((2, n, q)).astype(U64)
        cand = np.arange(16, dtype=U64)
        leaf_msgs = (((digits[..., None] > cand).astype(U64) ^ lt[..., None])
                     | (((digits[..., None] == cand).astype(U64) ^ eq[..., None]) << ONE))
        tmsgs, abc = triple_ot_messages(party, n_tot)
        party.ot.kkot_send(np.concatenate([leaf_msgs.reshape(n * q, 16), tmsgs]), 2)
        triples = Triples(*abc)
    else:
        tchoice, (a1, b1) = triple_ot_choices(party, n_tot)
        got = party.ot.kkot_recv(np.concatenate([digits.ravel(), tchoice]), 16, 2)
        leaf = got[: n * q].reshape(n, q)
        lt, eq = leaf & ONE, leaf >> ONE
        triples = Triples(a1, b1, triple_ot_finish(got[n * q:]))
    # combine up the tree: node j covers leaves [j·2^level, ...); index 0 is least significant
    while lt.shape[1] > 1:
        p = lt.shape[1] // 2
        lt_lo, lt_hi = lt[:, 0:2 * p:2], lt[:, 1:2 * p:2]
        eq_lo, eq_hi = eq[:, 0:2 * p:2], eq[:, 1:2 * p:2]
        prod = and_bits(party, np.concatenate([eq_hi, eq_hi]), np.concatenate([lt_lo, eq_lo]), triples)
        new_lt, new_eq = lt_hi ^ prod[:n], prod[n:]
        if lt.shape[1] % 2:
            new_lt = np.concatenate([new_lt, lt[:, -1:]], axis=1)
            new_eq = np.concatenate([new_eq, eq[:, -1:]], axis=1)
        lt, eq = new_lt, new_eq
    if with_eq:
        return lt[:, 0].reshape(shape), eq[:, 0].reshape(shape)
    return lt[:, 0].reshape(shape)


def millionaire(party: Party, v, bits: int) -> Share:
    """Boolean shares of 1{x > y}: ALICE's private x vs BOB's private y (ℓ-bit unsigned)."""
    bits = check_bits(bits)
    a = np.asarray(v, dtype=U64)
    if bits < 64 and a.size and (a >> U64(bits)).any():
        raise ParameterError(f"millionaire: input does not fit in {bits} bits")
    return Share(millionaire_bits(party, a, bits), 1, 0, False, party.role)


def millionaire_ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.asarray(x, U64) > np.asarray(y, U64)).astype(U64)


# ---------------------------------------------------------------------------------------------
def wrap(party: Party, x: Share) -> Share:
    """Wrap(x) = 1{x0 + x1 ≥ 2^ℓ} (unsigned shares), as a boolean share.

    One millionaires' instance on (x0, 2^ℓ − 1 − x1). Cost: that of :func:`millionaire_bits`.
    """
    v = x.data if party.role == ALICE else mask(x.bits) - x.data
    return Share(millionaire_bits(party, v, x.bits), 1, 0, False, party.role)


def wrap_ref(x0: np.ndarray, x1: np.ndarray, bits: int) -> np.ndarray:
    return ((x0.astype(object) + x1.astype(object)) >= (1 << bits)).astype(U64)


def msb(party: Party, x: Share) -> Share:
    """MSB(x) of an ℓ-bit shared value, as a boolean share.

    msb(x) = msb(x0) ⊕ msb(x1) ⊕ carry, carry = Wrap of the low ℓ − 1 bits (a millionaires'
    instance on ℓ − 1 bits; free when ℓ = 1).
    """
    top = (x.data >> U64(x.bits - 1)) & ONE
    if x.bits == 1:
        return Share(top, 1, 0, False, party.role)
    low = x.reduce(x.bits - 1)
    return Share(top ^ wrap(party, low).data, 1, 0, False, party.role)


def msb_ref(x: np.ndarray, bits: int) -> np.ndarray:
    return (reduce(x, bits) >> U64(bits - 1)) & ONE


def drelu(party: Party, x: Share) -> Share:
    """DReLU(x) = 1{x ≥ 0} for signed x = 1 ⊕ MSB(x)."""
    return msb(party, x).invert()


def drelu_ref(x: np.ndarray, bits: int) -> np.ndarray:
    return msb_ref(x, bits) ^ ONE


def msb_to_wrap(party: Party, x: Share, m: Share) -> Share:
    """Wrap(x) given boolean shares m of MSB(x): one 1-of-4 OT instead of a millionaires' instance.

    With a = msb(x0), b = msb(x1): wrap = a ∧ b ⊕ (a ⊕ b) ∧ ¬msb(x). BOB chooses (b, m1), ALICE
    sends r ⊕ wrap(a, b', m0 ⊕ m1') for all four (b', m1'). Cost: 256 + 4 bits, 2 rounds.
    """
    _check_bool(m, "msb_to_wrap msb share")
    if m.shape != x.shape:
        raise ParameterError(f"msb_to_wrap: shapes differ, {x.shape} vs {m.shape}")
    top = ((x.data >> U64(x.bits - 1)) & ONE).ravel()
    mm = m.data.ravel()
    if party.role == ALICE:
        r = party.prg.bits(top.size).astype(U64)
        bb = np.array([0, 1, 0, 1], U64)  # choice v = b + 2·m1
        m1 = np.array([0, 0, 1, 1], U64)
        a = top[:, None]
        full_msb = mm[:, None] ^ m1
        w = (a & bb) ^ ((a ^ bb) & (full_msb ^ ONE))
        party.ot.kkot_send(w ^ r[:, None], 1)
        out = r
    else:
        out = party.ot.kkot_recv(top | (mm << ONE), 4, 1)
    return Share(out.reshape(x.shape), 1, 0, False, party.role)
