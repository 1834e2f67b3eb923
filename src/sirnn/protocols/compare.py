"""Comparison protocols: millionaires', Wrap, MSB / DReLU and MSB-to-Wrap.

All outputs are boolean shares (1-bit :class:`Share`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from ..ot.engine import cot_cost_bits, kkot_cost_bits
from .boolean import (Triples, and_bits, b2a, b2a_bits, triple_ot_choices, triple_ot_finish,
                      triple_ot_messages, triples_from_rot_start, _check_bool)
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share
from .tuning import profile, rule

ONE = U64(1)
LEAF_BITS = 4  # m: SCI's leaf width (1-of-16 OT per leaf); the narrowest used here
MAX_LEAF_BITS = 8  # the 1-of-N OT supports N ≤ 2^8


def _levels(q: int, stop: int = 1) -> int:
    """AND levels (rounds) of the combination tree over q leaves down to ``stop`` nodes."""
    n = 0
    while q > stop:
        q -= q // 2
        n += 1
    return n


def rot_triples(ot: str) -> bool:
    """Whether the millionaires' AND triples come from random OTs with random choices (two per
    triple, no message: Ferret, where such an OT is a hashed COT) instead of 1-of-16 OTs (two
    triples per OT, 144 bits a triple on IKNP/KK13). An engine choice only: same functionality."""
    return ot.startswith("ferret")  # (also the ferret-lat profile: it adds no round)


def triple_cost_bits(ot: str = "iknp") -> float:
    """Bits (both parties) per AND triple of the millionaires' tree on engine ``ot``."""
    return 0 if rot_triples(ot) else kkot_cost_bits(ot, 16, 2) / 2


def and_cost_bits(ot: str = "iknp") -> float:
    """Bits (both parties) per AND gate of the tree: its triple and 2 + 2 opened bits."""
    return triple_cost_bits(ot) + 4


def _leaf_cost_bits(m: int, ot: str) -> int:
    """One leaf: a 1-of-2^m OT with 2-bit messages (m = 1: the 1-of-2 OT)."""
    return kkot_cost_bits(ot, 1 << m, 2)


def _tree_cost_bits(bits: int, m: int, with_eq: bool, stop: int, ot: str) -> float:
    q = -(-bits // m)
    return q * _leaf_cost_bits(min(m, bits), ot) + _tree_and_count(q, with_eq, stop) * and_cost_bits(ot)


def leaf_width(bits: int, stop: int = 1, ot: str = "iknp") -> int:
    """Leaf width m of an ℓ-bit millionaires' instance whose tree stops at ``stop`` nodes, on OT
    engine ``ot`` (a public choice both parties make alike; the functionality does not depend
    on it).

    iknp: the fewest tree levels (rounds) over m = 4..8, then the narrowest such m (a leaf costs
    its sender 2^m hashes). E.g. ℓ = 15 or 16: two 8-bit leaves, one level instead of two
    (4-bit leaves); ℓ = 12: two 6-bit leaves, one level instead of two; ℓ = 19 down to two
    nodes: four 5-bit leaves, one level instead of two; ℓ = 32: four 8-bit leaves, two levels
    instead of three.
    ferret: the fewest bits over m = 4..8 (a leaf's 2^{m+1} message bits dominate once the OT
    itself costs m bits and the triples nothing), then the fewest levels: m = 4 for every ℓ > 4
    (e.g. ℓ = 16: 160 bits against 1,044 with two 8-bit leaves, one level more)."""
    if bits <= LEAF_BITS:
        return bits
    widths = range(LEAF_BITS, MAX_LEAF_BITS + 1)
    if rule(ot) == "iknp":  # (also "ferret-lat": the rounds of iknp)
        return min(widths, key=lambda m: (_levels(-(-bits // m), stop), m))
    return min(widths, key=lambda m: (_tree_cost_bits(bits, m, False, stop, ot), _levels(-(-bits // m), stop), m))


def _tree_and_count(leaves: int, with_eq: bool = False, stop: int = 1) -> int:
    """ANDs per element in the lt/eq combination tree over ``leaves`` leaves (combined until at
    most ``stop`` nodes remain).

    Each level pairs nodes (2k, 2k+1) and needs lt_hi ⊕ eq_hi ∧ lt_lo and eq_hi ∧ eq_lo; the
    equality of the pair holding the least significant leaf is never used unless ``with_eq``.
    """
    total, cnt = 0, leaves
    while cnt > stop:
        p = cnt // 2
        total += 2 * p - (0 if with_eq else 1)
        cnt -= p
    return total


def millionaire_cost_bits(bits: int, with_eq: bool = False, leaf_bits: int | None = None,
                          ot: str = "iknp") -> float:
    """Bits both parties send per element in :func:`millionaire_bits` (the cost formula) on OT
    engine ``ot``.

    q = ⌈ℓ/m⌉ leaves (m = ``leaf_bits``, default :func:`leaf_width`), one 1-of-2^m OT with 2-bit
    messages each (iknp 256 + 2^{m+1}, ferret m + 2^{m+1}), and per AND its triple (iknp: half of
    a 1-of-16 OT making two triples, 144; ferret: two random OTs, no message) plus 2 + 2 opened
    bits.
    """
    if leaf_bits is None:
        leaf_bits = leaf_width(bits, ot=ot)
    return _tree_cost_bits(bits, leaf_bits, with_eq, 1, ot)


@lru_cache(maxsize=None)
def _leaf_table(m: int) -> np.ndarray:
    """T[d, v] = 1{d > v} | 1{d = v} << 1 for m-bit d, v (uint8)."""
    d = np.arange(1 << m)[:, None]
    v = np.arange(1 << m)[None, :]
    return ((d > v) | ((d == v) << 1)).astype(np.uint8)


def leaf_compare(party: Party, v: np.ndarray, m: int, n_and: int) -> tuple[np.ndarray, np.ndarray, Triples]:
    """Leaf comparisons of the millionaires' protocol, plus bit triples, in one OT batch.

    ``v`` (n, L) values < 2^m: ALICE's a_j, BOB's u_j. Returns this party's boolean shares
    (0/1 uint64) of 1{a > u} and 1{a = u}, each (n, L), and ``n_and`` AND triples.
    The sender masks (1{a > t}, 1{a = t}) for every candidate t and the receiver picks its own by
    a 1-of-2^m OT (2-bit messages); the triples come from 1-of-16 OTs in the same batch (m = 4:
    one extension). Rows [0, n/2) have ALICE as the sender, the rest BOB, who compares
    complements (1{~u > ~a} = 1{a > u}), so both parties hash at once in the same two rounds.
    On Ferret (:func:`rot_triples`) the triples come instead from two random OTs each with
    random choices, taken after the batch (no message). Cost: :func:`_leaf_cost_bits` per leaf +
    :func:`triple_cost_bits` per triple (iknp: (256 + 2^{m+1}) and (256 + 32)/2), 2 rounds.
    """
    n, L = v.shape
    h = n // 2
    rows = [slice(0, h), slice(h, n)]
    mine, theirs = (rows[0], rows[1]) if party.role == ALICE else (rows[1], rows[0])
    comp = mask(m) - v
    send_v = (v if party.role == ALICE else comp)[mine]
    recv_v = (comp if party.role == ALICE else v)[theirs]
    by_rot = rot_triples(party.ot.kind)  # triples from random OTs after the batch (Ferret)
    n_tri = 0 if by_rot else (n_and + 1) // 2  # 1-of-16 OTs, two triples each: ALICE makes the first half
    n_tri_alice = n_tri // 2
    n_tri_send, n_tri_recv = ((n_tri_alice, n_tri - n_tri_alice) if party.role == ALICE
                              else (n_tri - n_tri_alice, n_tri_alice))
    lt_s, eq_s = party.prg.bits((2,) + send_v.shape)
    # message for the receiver's value t: (1{a > t} ⊕ lt) | (1{a = t} ⊕ eq) << 1, via a table
    leaf_msgs = (_leaf_table(m)[send_v.astype(np.intp)]
                 ^ (lt_s | (eq_s << 1))[..., None]).reshape(send_v.size, 1 << m)
    tmsgs, abc_s = triple_ot_messages(party, n_tri_send)
    tchoice, (a_r, b_r) = triple_ot_choices(party, n_tri_recv)
    leaf_choice = recv_v.ravel()
    ot = party.ot
    merged = m == 4
    if merged:
        batches_recv = [(np.concatenate([leaf_choice, tchoice]), 16)]
        batches_send = [np.concatenate([leaf_msgs, tmsgs])]
    else:
        batches_recv = [(leaf_choice, 1 << m), (tchoice, 16)]
        batches_send = [leaf_msgs, tmsgs]
    # every receive starts before any send so both directions share the same two rounds;
    # empty batches (one-element comparisons, no triples) are skipped by both parties alike
    pending = [ot.kkot_recv_start(c, big, 2) if c.size else None for c, big in batches_recv]
    for msgs in batches_send:
        if msgs.shape[0]:
            ot.kkot_send(msgs, 2)
    rot = triples_from_rot_start(party, n_and) if by_rot else None  # (COTs taken after the batch's)
    got = [pd.finish() if pd is not None else np.zeros(0, U64) for pd in pending]
    leaf, tgot = (got[0][:leaf_choice.size], got[0][leaf_choice.size:]) if merged else got
    lt = np.empty((n, L), U64)
    eq = np.empty((n, L), U64)
    lt[mine], eq[mine] = lt_s, eq_s
    leaf = leaf.reshape(lt[theirs].shape)
    lt[theirs], eq[theirs] = leaf & ONE, leaf >> ONE
    if rot is not None:  # (after the batch's replies: a round message for these comes after them)
        return lt, eq, rot.finish()
    abc_r = (a_r, b_r, triple_ot_finish(tgot))
    first, second = (abc_s, abc_r) if party.role == ALICE else (abc_r, abc_s)  # ALICE's first
    return lt, eq, Triples(*(np.concatenate([f, g]) for f, g in zip(first, second)))


def millionaire_bits(party: Party, v: np.ndarray, bits: int, with_eq: bool = False,
                     leaf_bits: int | None = None):
    """Millionaires' protocol on raw inputs: ALICE holds x = v, BOB holds y = v (uint64, < 2^bits).

    Returns this party's boolean share (0/1 uint64, same shape) of 1{x > y}; with ``with_eq``,
    the pair (share of 1{x > y}, share of 1{x = y}) (the equality costs nothing extra).

    Split into q = ⌈ℓ/m⌉ leaves of m = ``leaf_bits`` bits (default :func:`leaf_width`: the
    fewest rounds); the sender sends, per leaf and the
    receiver's digit value, masked (1{x_j > y_j}, 1{x_j = y_j}) by one 1-of-2^m OT, batched (m = 4)
    with the OTs that make the bit triples for the combination tree (lt = lt_hi ⊕ eq_hi ∧ lt_lo,
    eq = eq_hi ∧ eq_lo). Half of the batch has ALICE as the sender, the other half BOB (comparing
    complements), in the same two rounds, so both cores hash. Cost per element:
    :func:`millionaire_cost_bits` (3,932 bits for ℓ = 32, m = 4; 3,664 with the default m = 8);
    rounds 2 + ⌈log2 q⌉.
    """
    bits = check_bits(bits)
    if leaf_bits is None:
        leaf_bits = leaf_width(bits, ot=profile(party, v.size))
    shape = v.shape
    lt, eq = _millionaire_tree(party, v.ravel(), bits, with_eq, leaf_bits, 1)
    if with_eq:
        return lt[:, 0].reshape(shape), eq[:, 0].reshape(shape)
    return lt[:, 0].reshape(shape)


def _millionaire_tree(party: Party, x: np.ndarray, bits: int, with_eq: bool, leaf_bits: int,
                      stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Leaf comparisons and the combination tree down to at most ``stop`` nodes: (lt, eq), each
    (n, nodes), node 0 the least significant (eq of node 0 only meaningful with ``with_eq``)."""
    n = x.size
    m = min(leaf_bits, bits)
    q = -(-bits // m)
    digits = (x[:, None] >> (U64(m) * np.arange(q, dtype=U64))) & mask(m)  # (n, q)
    lt, eq, triples = leaf_compare(party, digits, m, n * _tree_and_count(q, with_eq, stop))
    # combine up the tree: node j covers leaves [j·2^level, ...); index 0 is least significant
    while lt.shape[1] > stop:
        p = lt.shape[1] // 2
        lt_lo, lt_hi = lt[:, 0:2 * p:2], lt[:, 1:2 * p:2]
        eq_lo, eq_hi = eq[:, 0:2 * p:2], eq[:, 1:2 * p:2]
        skip = 0 if with_eq else 1  # the lowest pair's equality is never needed
        k = eq_hi.shape[1]
        prod = and_bits(party, np.concatenate([eq_hi, eq_hi[:, skip:]], axis=1),
                        np.concatenate([lt_lo, eq_lo[:, skip:]], axis=1), triples)
        new_lt = lt_hi ^ prod[:, :k]
        new_eq = np.concatenate([np.zeros((n, skip), U64), prod[:, k:]], axis=1)
        if lt.shape[1] % 2:
            new_lt = np.concatenate([new_lt, lt[:, -1:]], axis=1)
            new_eq = np.concatenate([new_eq, eq[:, -1:]], axis=1)
        lt, eq = new_lt, new_eq
    return lt, eq


ROOT_METHODS = ("kk8", "kk4", "and")


def _root_candidates(bits: int, k: int, ot: str) -> list[tuple[str, float]]:
    """(root method, bits per element of :func:`millionaire_arith`) in order of increasing rounds."""
    m2 = leaf_width(bits, 2, ot)
    cands = []
    if -(-bits // m2) >= 2:
        tree2 = _tree_cost_bits(bits, m2, False, 2, ot)
        cands += [("kk8", tree2 + kkot_cost_bits(ot, 8, k)),
                  ("kk4", tree2 + kkot_cost_bits(ot, 4, k) + cot_cost_bits(ot, k))]
    cands.append(("and", millionaire_cost_bits(bits, ot=ot) + cot_cost_bits(ot, k)))
    return cands


def root_method(bits: int, k: int, ot: str = "iknp") -> str:
    """How :func:`millionaire_arith` turns the tree into a k-bit arithmetic output on engine ``ot``
    (a public choice; the same functionality either way):

    * ``kk8``: the tree down to two nodes (lo, hi), then one 1-of-8 OT on the receiver's shares of
      (lt_lo, lt_hi, eq_hi) carrying lt_hi + eq_hi·lt_lo (exclusive terms) as k-bit shares;
    * ``kk4``: the same two nodes; a 1-of-4 OT on (lt_lo, eq_hi) carrying eq_hi·lt_lo and a
      correlated OT converting lt_hi, in the same 2 rounds (3k bits fewer than kk8 when an OT
      costs almost nothing beyond its messages);
    * ``and``: the whole tree (one AND more, one round more), then a B2A by one correlated OT.

    iknp: kk8 (the fewest rounds). ferret: the fewer bits of the two-round roots, kk4 for every
    k ≥ 1 (``and`` would save 4k − 2 bits more but adds a round to every comparison-based
    truncation: measured 16/12 → 16/12, n = 16,384, exp 1,011.5 B/elem in 14 rounds against
    1,023.0 in 11 with kk4, rsqrt 1,570.8 / 42 against 1,592.5 / 36, sigmoid 1,667.9 / 32
    against 1,679.4 / 31; benchmarks/RESULTS.md, "Re-tune"). With one leaf (ℓ ≤ 4): ``and``."""
    cands = _root_candidates(bits, k, ot)
    if ot == "iknp" or len(cands) == 1:
        return cands[0][0]
    return min(cands[:2], key=lambda c: c[1])[0]


def millionaire_arith(party: Party, v: np.ndarray, bits: int, k: int, sender: int = ALICE,
                      root: str | None = None) -> np.ndarray:
    """Millionaires' protocol with an arithmetic output: this party's share over Z_{2^k} of
    1{x > y} (inputs as in :func:`millionaire_bits`), i.e. the millionaire followed by a B2A, with
    the root of the tree folded into the conversion where that pays (:func:`root_method`).

    kk8: the tree is combined down to two nodes (lo, hi); since 1{hi greater} and 1{hi equal} are
    exclusive, 1{x > y} = lt_hi + eq_hi·lt_lo as integers, a function of three shared bits: one
    1-of-8 OT on BOB's shares, ALICE sending r + f(her bits, choice) mod 2^k for all 8 choices.
    This replaces the root AND (1 round) and the B2A (2 rounds) by 2 rounds. kk4: eq_hi·lt_lo by a
    1-of-4 OT, lt_hi by a COT (B2A), in one batch. and: the root AND, then a B2A. ``sender``
    sends the last OT's messages (the roles of the description swap for BOB; a next OT received
    by the sender can send its matrix in the same flight).
    Cost: :func:`millionaire_arith_cost_bits` (iknp, kk8: M(ℓ) − 148 + 256 + 8k bits, M with
    leaves of :func:`leaf_width` (ℓ, 2)); rounds 2 + ⌈log2 q⌉ + 1 (q ≥ 2 leaves; ``and``: one
    more). With one leaf (ℓ ≤ 4): the millionaire, then B2A. ``root``: force one of
    :data:`ROOT_METHODS` (tests; both parties must pass the same), else :func:`root_method`'s.
    """
    bits = check_bits(bits)
    k = check_bits(k)
    shape = v.shape
    x = v.ravel()
    n = x.size
    ot = profile(party, n)
    method = root_method(bits, k, ot)
    if root is not None:
        if root not in dict(_root_candidates(bits, k, ot)):
            raise ParameterError(f"millionaire_arith: root {root!r} does not apply to {bits}-bit inputs "
                                 f"(one of {', '.join(c for c, _ in _root_candidates(bits, k, ot))})")
        method = root
    if method == "and":
        lt = millionaire_bits(party, x, bits)
        if rule(ot) == "iknp":  # (the B2A with ALICE as COT sender, as on IKNP before version 4)
            return b2a(party, Share(lt, 1, 0, False, party.role), k).data.reshape(shape)
        return b2a_bits(party, lt, k, sender).reshape(shape)
    lt, eq = _millionaire_tree(party, x, bits, False, leaf_width(bits, 2, ot), 2)
    lo, hi, ehi = lt[:, 0], lt[:, 1], eq[:, 1]
    if method == "kk8":
        if party.role == sender:
            r = party.random(n, k)
            j = np.arange(8, dtype=U64)  # choice = lo1 + 2·hi1 + 4·ehi1
            lj = lo[:, None] ^ (j & ONE)
            hj = hi[:, None] ^ ((j >> ONE) & ONE)
            ej = ehi[:, None] ^ (j >> U64(2))
            party.ot.kkot_send((r[:, None] + hj + (ej & lj)) & mask(k), k)
            out = (U64(0) - r) & mask(k)
        else:
            out = party.ot.kkot_recv(lo | (hi << ONE) | (ehi << U64(2)), 8, k)
        return out.reshape(shape)
    # kk4: eq_hi·lt_lo by a 1-of-4 OT, lt_hi converted by a COT, both sent by ``sender``
    if party.role == sender:
        r = party.random(n, k)
        j = np.arange(4, dtype=U64)  # choice = lo1 + 2·ehi1
        prod = (lo[:, None] ^ (j & ONE)) & (ehi[:, None] ^ (j >> ONE))
        party.ot.kkot_send((r[:, None] + prod) & mask(k), k)
        x0 = party.ot.cot_send(hi, k)
        out = (hi + (x0 << ONE) - r) & mask(k)
    else:
        pk = party.ot.kkot_recv_start(lo | (ehi << ONE), 4, k)
        pc = party.ot.cot_recv_start(hi, k)
        out = (pk.finish() + hi - (pc.finish() << ONE)) & mask(k)
    return out.reshape(shape)


def millionaire_arith_cost_bits(bits: int, k: int, ot: str = "iknp") -> float:
    """Bits per element (both parties) of :func:`millionaire_arith` on engine ``ot``."""
    return dict(_root_candidates(bits, k, ot))[root_method(bits, k, ot)]


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
