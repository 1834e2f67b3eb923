"""Digit decomposition, MSNZB (most significant non-zero bit), and the carry-lookahead core they
share with constant-offset MSB computation.

The core problem: two parties hold a0 and a1 (local, private) and want boolean shares of the
carries of a0 + a1. Both split their values into leaves of at most 4 bits. For leaf j of width w,
with ALICE's a and BOB's b:

* G_j = 1{a + b ≥ 2^w}      (the leaf *generates* a carry),
* P_j = 1{a + b = 2^w − 1}  (the leaf *propagates* an incoming carry),

both from one 1-of-16 OT per leaf (ALICE's message for BOB's candidate v = 2^w − 1 − b is
(1{a > v} ⊕ g, 1{a = v} ⊕ p); this is the leaf step of the millionaires' protocol). Blocks combine as
(G, P) ∘ (G', P') = (G ⊕ P ∧ G', P ∧ P') (G and P ∧ G' are exclusive, so ⊕ is ∨), with AND gates
from bit triples made in the *same* OT batch as the leaves. A block that contains the least
significant leaf never needs its P (there is no carry into it), which saves one AND per such
combination. The combination schedule (a :class:`Plan`) is public and depends on shapes only.

Public protocols here:

* :func:`digit_decompose`  ℓ-bit x → c = ⌈ℓ/d⌉ digits, digit i in Z_{2^d} (top digit narrower);
* :func:`msb_shifted`      MSB(x − C_j) for several public constants at the price of little more
  than one MSB (the carries of the low bits that the constants leave untouched are shared);
* :func:`msnzb_onehot`     boolean one-hot vector of the most significant non-zero bit;
* :func:`onehot_dot`       Σ_j onehot_j · W_j over Z_{2^n} for a public weight table W (B2A by COT);
* :func:`msnzb_index`      the MSNZB index k as an arithmetic share.
"""

from __future__ import annotations

import operator

import numpy as np

from .. import ALICE, BOB
from ..errors import ParameterError
from .boolean import Triples, _check_bool, and_bits, b2a
from .compare import leaf_compare
from .extend import MAX_LUT_BITS, table_carry, wrap_arith
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share
from .share import check_share as _check_share
from .tuning import profile

ONE = U64(1)
LEAF = 4  # leaf width of the carry computation (1-of-16 OT per leaf)
_V16 = np.arange(16, dtype=U64)
MSNZB_DEFAULT_DIGIT = 4


# ---------------------------------------------------------------------------------------------
# Carry-lookahead plans (public schedules of AND gates)
# ---------------------------------------------------------------------------------------------
class Plan:
    """Levels of combination ops over nodes 0..L−1; op (t, s, need_p): node t ← t ∘ s.

    Each level is one round of ANDs; ops of a level read the values from before the level.
    """

    def __init__(self, levels: list[list[tuple[int, int, bool]]] | None = None):
        self.levels = [lv for lv in (levels or []) if lv]

    def ands(self) -> int:
        """AND gates per element: one per op, plus one per op that keeps P."""
        return sum(len(lv) + sum(1 for op in lv if op[2]) for lv in self.levels)

    def then(self, other: "Plan") -> "Plan":
        return Plan(self.levels + other.levels)

    @staticmethod
    def parallel(*plans: "Plan") -> "Plan":
        depth = max((len(p.levels) for p in plans), default=0)
        return Plan([[op for p in plans if i < len(p.levels) for op in p.levels[i]]
                     for i in range(depth)])


def plan_reduce(nodes: list[int], bottom: bool) -> tuple[Plan, int]:
    """Pairwise tree combining the blocks ``nodes`` (least significant first) into one.

    Returns the plan and the node that ends up holding (G, P) of the whole range. ``bottom``: the
    first node is the least significant block overall (no incoming carry, its P is not needed).
    Depth ⌈log2 L⌉, L − 1 combinations.
    """
    live, cover = list(nodes), [bottom] + [False] * (len(nodes) - 1)
    levels = []
    while len(live) > 1:
        ops, nl, nc = [], [], []
        for k in range(0, len(live) - 1, 2):
            ops.append((live[k + 1], live[k], not cover[k]))
            nl.append(live[k + 1])
            nc.append(cover[k])
        if len(live) % 2:
            nl.append(live[-1])
            nc.append(cover[-1])
        levels.append(ops)
        live, cover = nl, nc
    return Plan(levels), live[0]


def plan_prefix(nodes: list[int], bottom: bool) -> Plan:
    """Sklansky parallel prefix: afterwards nodes[i] holds the combination of nodes[0..i].

    Depth ⌈log2 L⌉, about (L/2)·log2 L combinations.
    """
    size, levels, k = len(nodes), [], 0
    while (1 << k) < size:
        ops = []
        for i in range(size):
            if (i >> k) & 1:
                j = ((i >> k) << k) - 1
                start = (i >> (k + 1)) << (k + 1)
                ops.append((nodes[i], nodes[j], not (bottom and start == 0)))
        levels.append(ops)
        k += 1
    return Plan(levels)


def leaf_ot(party: Party, v: np.ndarray, n_and: int) -> tuple[np.ndarray, np.ndarray, Triples]:
    """Leaf step of the carry computation: ``v`` (n, L) values < 16 (ALICE's a_j, BOB's
    2^w − 1 − b_j) → shares of G = 1{a > v_B}, P = 1{a = v_B} and ``n_and`` triples: the
    millionaires' leaf step (:func:`compare.leaf_compare`, 4-bit leaves)."""
    return leaf_compare(party, v, LEAF, n_and)


def run_plan(party: Party, G: np.ndarray, P: np.ndarray, plan: Plan, triples: Triples) -> None:
    """Execute ``plan`` in place on boolean shares G, P (n, L): one AND round per level."""
    n = G.shape[0]
    for ops in plan.levels:
        t = np.array([o[0] for o in ops], np.intp)
        s = np.array([o[1] for o in ops], np.intp)
        keep = np.array([o[2] for o in ops], bool)
        tp, sp = t[keep], s[keep]
        z = and_bits(party, np.concatenate([P[:, t].ravel(), P[:, tp].ravel()]),
                     np.concatenate([G[:, s].ravel(), P[:, sp].ravel()]), triples)
        newp = z[n * t.size:].reshape(n, tp.size)
        G[:, t] ^= z[: n * t.size].reshape(n, t.size)
        P[:, tp] = newp


def and_prefix(party: Party, V: np.ndarray, triples: Triples) -> np.ndarray:
    """Prefix AND along the last axis of boolean shares V (n, L): out[:, i] = ∧ V[:, 0..i].

    Sklansky schedule, ⌈log2 L⌉ rounds, :func:`and_prefix_count` ANDs per element.
    """
    V = V.copy()
    n = V.shape[0]
    for ops in plan_prefix(list(range(V.shape[1])), True).levels:
        t = np.array([o[0] for o in ops], np.intp)
        s = np.array([o[1] for o in ops], np.intp)
        V[:, t] = and_bits(party, V[:, t].ravel(), V[:, s].ravel(), triples).reshape(n, t.size)
    return V


def and_prefix_count(L: int) -> int:
    return sum(len(lv) for lv in plan_prefix(list(range(L)), True).levels)


def _leaf_split(bits_from: int, width: int) -> list[tuple[int, int]]:
    """(shift, width) of the ≤4-bit leaves covering bits [bits_from, bits_from + width)."""
    return [(bits_from + o, min(LEAF, width - o)) for o in range(0, width, LEAF)]


def _leaf_values(party: Party, own: np.ndarray, leaves: list[tuple[int, int]]) -> np.ndarray:
    """(n, L) leaf values of this party's input: ALICE's raw leaves, BOB's 2^w − 1 − leaf."""
    cols = []
    for shift, w in leaves:
        v = (own >> U64(shift)) & mask(w)
        cols.append(v if party.role == ALICE else mask(w) - v)
    return np.stack(cols, axis=1) if cols else np.zeros((own.size, 0), U64)


# ---------------------------------------------------------------------------------------------
# Digit decomposition
# ---------------------------------------------------------------------------------------------


def _check_digit(d, bits: int, what: str = "d") -> int:
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or not 1 <= d <= 8:
        raise ParameterError(f"{what} (digit width) must be an integer in 1..8, got {d!r}")
    return int(d)


def digit_widths(bits: int, d: int) -> list[int]:
    """Widths of the c = ⌈ℓ/d⌉ digits of an ℓ-bit value (the top digit may be narrower)."""
    c = -(-bits // d)
    return [d] * (c - 1) + [bits - (c - 1) * d]


def _digit_plan(c: int, d: int) -> tuple[Plan, list[tuple[int, int]], list[int]]:
    """Leaves of digits 0..c−2, and the plan leaving carry_{i+1} in G of node ``roots[i]``."""
    k = -(-d // LEAF)
    leaves = [lf for i in range(c - 1) for lf in _leaf_split(i * d, d)]
    subs, roots = [], []
    for i in range(c - 1):
        p, r = plan_reduce(list(range(i * k, (i + 1) * k)), bottom=(i == 0))
        subs.append(p)
        roots.append(r)
    return Plan.parallel(*subs).then(plan_prefix(roots, bottom=True)), leaves, roots


def digit_carries(party: Party, x: Share, d: int, extra_and: int = 0) -> tuple[np.ndarray, Triples]:
    """Boolean shares (n, c − 1) of the carries into digits 1..c−1 of x0 + x1, and ``extra_and``
    spare triples from the same OT batch. x is flattened (n = x.size)."""
    c = len(digit_widths(x.bits, d))
    plan, leaves, roots = _digit_plan(c, d)
    own = x.data.ravel()
    n = own.size
    G, P, triples = leaf_ot(party, _leaf_values(party, own, leaves), n * plan.ands() + extra_and)
    run_plan(party, G, P, plan, triples)
    return G[:, roots], triples


def digit_decompose(party: Party, x: Share, d: int) -> list[Share]:
    """Digits of an ℓ-bit shared x: c = ⌈ℓ/d⌉ shares, digit i = (x >> d·i) mod 2^{d_i} in its own
    ring Z_{2^{d_i}} (d_i = d, the top one ℓ − (c − 1)·d), unsigned, scale 0, shape x.shape.

    x is read as a ring element (its signedness and scale are ignored). d in 1..8.
    Each party splits its share locally; digit i = x0_i + x1_i + carry_i mod 2^{d_i}, the carries
    by carry-lookahead over (G, P) of the digits (leaf OTs of ≤ 4 bits, see the module doc), then
    B2A of the c − 1 carries into d bits. Two digits (c = 2): the one carry is the wrap of the low
    digit, read off a 1-of-2^d OT on BOB's low digit with ALICE's masked d_1-bit carries for every
    value (:func:`extend.wrap_arith`'s "lut": 256 + 2^d·d_1 bits, 2 rounds; on Ferret the
    cheapest method instead, see :func:`extend.table_carry`: for ℓ = 16, d = 8 a millionaires'
    instance with arithmetic output, 14.375 B, 4 rounds).
    Cost per element (c > 2): (c − 1)·(⌈d/4⌉·288 + 128 + d) bits + 148 per AND (digit-internal
    trees, then a Sklansky prefix over the c − 1 digits); rounds 2 + ⌈log2⌈d/4⌉⌉ + ⌈log2(c − 1)⌉ + 2.
    Measured (both parties, n = 4096): ℓ = 16, d = 8: 288 B, 2 rounds (107.5 B, 4 rounds by the
    carry-lookahead before protocol version 3); ℓ = 32, d = 8: 396.5 B,
    6 rounds; ℓ = 32, d = 4: 589.5 B; ℓ = 64, d = 8: 1,085.5 B. d = 1..3 pay a full 1-of-16 leaf
    OT per digit (ℓ = 32, d = 1: 3,836 B). ℓ ≤ d: free.
    """
    _check_share(x, "digit_decompose x")
    d = _check_digit(d, x.bits)
    widths = digit_widths(x.bits, d)
    own = x.data.ravel()
    local = [(own >> U64(d * i)) & mask(w) for i, w in enumerate(widths)]
    if len(widths) == 2 and 2 <= d <= MAX_LUT_BITS:  # one carry: a 1-of-2^d OT, 2 rounds
        # BOB sends the carry table: his lookups on the digits then share that flight
        method = "lut" if table_carry(profile(party, x.size)) else None  # (else the cheapest)
        carry = wrap_arith(party, x.reduce(d), widths[1], method=method, sender=BOB).ravel()
        local[1] = (local[1] + carry) & mask(widths[1])
    elif len(widths) > 1:
        carries, _ = digit_carries(party, x, d)
        arith = b2a(party, Share(carries, 1, 0, False, party.role), d).data
        for i in range(1, len(widths)):
            local[i] = (local[i] + arith[:, i - 1]) & mask(widths[i])
    return [Share(v.reshape(x.shape), w, 0, False, party.role) for v, w in zip(local, widths)]


def digit_decompose_ref(x: np.ndarray, bits: int, d: int) -> list[np.ndarray]:
    x = reduce(np.asarray(x, U64), bits)
    return [(x >> U64(d * i)) & mask(w) for i, w in enumerate(digit_widths(bits, d))]


# ---------------------------------------------------------------------------------------------
# MSB of x − C for several public constants at once
# ---------------------------------------------------------------------------------------------
def _msb_shifted_plan(bits: int, consts: list[int]):
    """Leaves and plan for the carries out of the low h = ℓ − 1 bits of (x0 − C_j) + x1.

    Returns (leaves as (shift, width, residue)), plan, node per constant holding its carry).
    The low leaves that no constant changes (C_j ≡ 0 below them) are shared by all constants.
    """
    h = bits - 1
    base = _leaf_split(0, h)
    q = len(base)
    res = [c % (1 << h) if h else 0 for c in consts]
    tz = [((r & -r).bit_length() - 1) // LEAF if r else q for r in res]
    f = min(tz, default=q)
    leaves = [(s, w, 0) for s, w in base]
    groups = {}  # residue -> node ids of leaves f..q−1
    for r in res:
        if r not in groups:
            if r == 0:
                groups[0] = list(range(f, q))
            else:
                groups[r] = list(range(len(leaves), len(leaves) + q - f))
                leaves += [(s, w, r) for s, w in base[f:]]
    low_plan, low_root = plan_reduce(list(range(f)), bottom=True) if f else (Plan(), None)
    subs, roots = [low_plan], {}
    for r, nodes in groups.items():
        if nodes:
            p, roots[r] = plan_reduce(nodes, bottom=(f == 0))
            subs.append(p)
        else:
            roots[r] = low_root
    plan = Plan.parallel(*subs)
    if f and f < q:
        plan = plan.then(Plan([[(roots[r], low_root, False) for r in groups if roots[r] != low_root]]))
    return leaves, plan, [roots[r] for r in res]


def msb_shifted_cost_ands(bits: int, consts) -> int:
    """AND gates per element used by :func:`msb_shifted` (for cost estimates)."""
    if bits == 1:
        return 0
    return _msb_shifted_plan(bits, [int(c) % (1 << bits) for c in consts])[1].ands()


def msb_shifted_bits(party: Party, x: Share, consts, extra_and: int = 0) -> tuple[np.ndarray, Triples]:
    """Core of :func:`msb_shifted`: (n, k) 0/1 shares and ``extra_and`` spare triples."""
    bits = x.bits
    cs = [int(c) % (1 << bits) for c in consts]
    own = x.data.ravel()
    n, h = own.size, bits - 1
    if party.role == ALICE:
        shifted = [(own - U64(c)) & mask(bits) for c in cs]
        tops = np.stack([(s >> U64(h)) & ONE for s in shifted], axis=1) if cs else np.zeros((n, 0), U64)
    else:
        tops = np.repeat(((own >> U64(h)) & ONE)[:, None], len(cs), axis=1)
    if h == 0:
        _, _, triples = leaf_ot(party, np.zeros((n, 0), U64), extra_and)
        return tops, triples
    leaves, plan, node_of = _msb_shifted_plan(bits, cs)
    cols = []
    for s, w, r in leaves:
        src = own if (party.role != ALICE or r == 0) else (own - U64(r))
        v = (src >> U64(s)) & mask(w)
        cols.append(v if party.role == ALICE else mask(w) - v)
    G, P, triples = leaf_ot(party, np.stack(cols, axis=1), n * plan.ands() + extra_and)
    run_plan(party, G, P, plan, triples)
    return tops ^ G[:, node_of], triples


def msb_shifted(party: Party, x: Share, consts) -> Share:
    """MSB((x − C_j) mod 2^ℓ) for public integers C_j (any sign), as boolean shares of shape
    x.shape + (k,). ``consts = [0]`` gives MSB(x); 1 ⊕ MSB(x − C) is 1{x ≥ C} when x − C does not
    overflow.

    msb(x − C) = msb(x0 − C) ⊕ msb(x1) ⊕ carry of the low ℓ − 1 bits of (x0 − C) + x1. The carry
    is a tree over 4-bit leaves (one 1-of-16 OT each); leaves below the lowest set bit of every
    C_j mod 2^{ℓ−1} are shared, so e.g. {0, 6·2^28} in Z_{2^32} costs 9 leaves instead of 16.
    Cost for k = 1, ℓ-bit: q = ⌈(ℓ − 1)/4⌉ leaves · 288 + (2q − 2 − ⌈log2 q⌉)·148 bits
    (ℓ = 32: 2,304 + 1,628 = 3,932 bits = 491.5 bytes, as compare.msb; {0, 6·2^28}: 527.5 bytes);
    rounds 2 + ⌈log2 q⌉ (+1 when the constants split the tree). ℓ = 1: free.
    """
    _check_share(x, "msb_shifted x")
    try:
        cs = [operator.index(c) for c in np.atleast_1d(np.asarray(consts, dtype=object)).ravel()]
    except TypeError:
        raise ParameterError(f"msb_shifted consts must be integers, got {consts!r}") from None
    out, _ = msb_shifted_bits(party, x, cs)
    return Share(out.reshape(x.shape + (len(cs),)), 1, 0, False, party.role)


def msb_shifted_ref(x: np.ndarray, bits: int, consts) -> np.ndarray:
    x = reduce(np.asarray(x, U64), bits)
    cs = [int(c) % (1 << bits) for c in np.atleast_1d(np.asarray(consts, dtype=object)).ravel()]
    return np.stack([(((x - U64(c)) & mask(bits)) >> U64(bits - 1)) & ONE for c in cs], axis=-1)


# ---------------------------------------------------------------------------------------------
# MSNZB
# ---------------------------------------------------------------------------------------------
def _onehot_table(d: int) -> np.ndarray:
    """T[v] for v < 2^d: bit msnzb(v) set (bits 0..d−1), and bit d set iff v = 0."""
    t = np.zeros(1 << d, U64)
    t[0] = U64(1 << d)
    for v in range(1, 1 << d):
        t[v] = U64(1 << (v.bit_length() - 1))
    return t


def msnzb_onehot(party: Party, x: Share, d: int = MSNZB_DEFAULT_DIGIT) -> Share:
    """One-hot of the most significant non-zero bit of an ℓ-bit x read as unsigned.

    Output: boolean shares of shape x.shape + (ℓ,), position k set iff 2^k ≤ x < 2^{k+1};
    **all positions zero when x = 0**. Signedness and scale of x are ignored (ring element).

    Digits of d bits (default 4, the cheapest for every ℓ we measured; d in 1..8):
    1. carries of the digit sum (carry-lookahead, as in :func:`digit_decompose`, no B2A), plus the
       triples for step 3 in the same OT batch;
    2. per digit one boolean LUT by 1-of-2^{d+1} OT indexed by (BOB's local digit, BOB's carry
       share), ALICE's table rotated by her digit and carry share and XOR-masked: d bits of the
       digit's one-hot and its zero flag z_i packed in one (d + 1)-bit message (for d = 8 the
       carries are converted by B2A and the table is 1-of-256);
    3. S_i = ∧_{k>i} z_k by a prefix AND (Sklansky);
    4. onehot[i·d + j] = onehot_i[j] ∧ S_i (top digit unchanged): one correlated OT each way
       per digit with a d-bit vector message.
    Cost per element (both parties, measured at n = 4096, d = 4): ℓ = 8: 173 B, ℓ = 16: 489 B,
    ℓ = 32: 1,287.5 B (11 rounds), ℓ = 64: 3,162 B; d = 2, 3, 5, 6, 8 cost 13–130 % more at
    every ℓ ≥ 8. Rounds 2 + ⌈log2(c − 1)⌉ + 2 + ⌈log2(c − 1)⌉ + 2.
    """
    _check_share(x, "msnzb_onehot x")
    d = _check_digit(d, x.bits)
    bits = x.bits
    own = x.data.ravel()
    n = own.size
    if bits == 1:
        return Share(x.data.reshape(x.shape + (1,)), 1, 0, False, party.role)
    widths = digit_widths(bits, d)
    c = len(widths)
    de = min(d, bits)  # digit width used for the table
    fold = c > 1 and de + 1 <= 8
    n_suffix = and_prefix_count(c - 1) if c > 2 else 0
    idx = np.stack([(own >> U64(d * i)) & mask(w) for i, w in enumerate(widths)], axis=1)  # (n, c)
    cb = np.zeros((n, c), U64)
    triples = None
    if c > 1:
        carries, triples = digit_carries(party, x, d, extra_and=n * n_suffix)
        if fold:
            cb[:, 1:] = carries
        else:
            arith = b2a(party, Share(carries, 1, 0, False, party.role), de).data
            idx[:, 1:] = (idx[:, 1:] + arith) & np.array([mask(w) for w in widths[1:]], U64)
    n_opt = 1 << (de + 1 if fold else de)
    mbits = de + 1
    table = _onehot_table(de)
    wmask = np.array([mask(w) for w in widths], U64)
    if party.role == ALICE:
        u = np.arange(n_opt, dtype=U64)
        j1, cbit = u & mask(de), u >> U64(de)
        # (n, c, N) entries of at most 9 bits: build them in uint16 to keep large batches small
        i16, c16 = idx.astype(np.uint16), cb.astype(np.uint16)
        val = (i16[..., None] + j1.astype(np.uint16) + (c16[..., None] ^ cbit.astype(np.uint16)))
        val &= wmask.astype(np.uint16)[None, :, None]
        r = party.prg.ring((n, c), mbits)
        msgs = table.astype(np.uint16)[val] ^ r.astype(np.uint16)[..., None]
        party.ot.kkot_send(msgs.reshape(n * c, n_opt), mbits)
        got = r
    else:
        choice = idx | (cb << U64(de)) if fold else idx
        got = party.ot.kkot_recv(choice.ravel(), n_opt, mbits).reshape(n, c)
    oh = (got[..., None] >> np.arange(de, dtype=U64)) & ONE  # (n, c, de)
    if c == 1:
        return Share(oh[:, 0, :bits].reshape(x.shape + (bits,)), 1, 0, False, party.role)
    z = (got >> U64(de)) & ONE
    # S_i = ∧_{k>i} z_k for i = 0..c−2: prefix AND over z_{c−1}, z_{c−2}, ..., z_1
    pre = and_prefix(party, z[:, :0:-1], triples) if c > 2 else z[:, :0:-1]
    S = pre[:, ::-1]  # S[:, i] = ∧ z_{i+1..c−1}
    low = oh[:, : c - 1, :].reshape(n * (c - 1), de)
    sel = S.reshape(-1)
    r, s = party.ot.cot_both(low, sel, 1, (de,))
    anded = ((sel[:, None] & low) ^ r ^ s).reshape(n, (c - 1) * de)
    out = np.concatenate([anded, oh[:, c - 1, : widths[-1]]], axis=1)
    return Share(out.reshape(x.shape + (bits,)), 1, 0, False, party.role)


def msnzb_onehot_ref(x: np.ndarray, bits: int) -> np.ndarray:
    x = reduce(np.asarray(x, U64), bits)
    k = np.arange(bits, dtype=U64)
    lo = ONE << k
    within = (x[..., None] >= lo) & ((k == U64(63)) | (x[..., None] < (lo << ONE)))
    return within.astype(U64)


def onehot_dot(party: Party, onehot: Share, weights, bits: int, scale: int = 0,
               signed: bool = False) -> Share:
    """Σ_j b_j · W[j] over Z_{2^bits} for boolean shares b (shape S + (L,)) and a public table W
    of shape (L,) (output shape S) or (L, m) (output S + (m,)); W may hold negative integers.

    Each bit is converted by one correlated OT carrying the whole row W[j] (b = b0 + b1 − 2·b0·b1):
    cost L·(128 + m·bits) bits per element, 2 rounds. Useful on a one-hot: it reads off W at the
    set position (0 if none), e.g. the public power 2^{−k} or the index k.
    """
    _check_bool(onehot, "onehot_dot onehot")
    bits = check_bits(bits)
    if onehot.data.ndim < 1:
        raise ParameterError("onehot_dot onehot must have a last axis of positions")
    L = onehot.shape[-1]
    w = np.asarray(weights)
    if w.dtype.kind not in "iu" or w.shape[:1] != (L,) or w.ndim > 2:
        raise ParameterError(f"onehot_dot weights must be integers of shape ({L},) or ({L}, m), "
                             f"got {w.dtype} {w.shape}")
    vec = w.ndim == 2
    W = reduce(w.astype(np.int64).view(U64) if w.dtype.kind == "i" else w.astype(U64), bits)
    W = W.reshape(L, -1)
    m = W.shape[1]
    b = onehot.data.reshape(-1, L)
    n = b.shape[0]
    local = (b[..., None] * W[None]).sum(axis=1)  # (n, m)
    if party.role == ALICE:
        x0 = party.ot.cot_send(((b[..., None] * W[None]) & mask(bits)).reshape(n * L, m), bits)
        out = local + (x0.reshape(n, L, m).sum(axis=1) << ONE)
    else:
        y = party.ot.cot_recv(b.ravel(), bits, (m,))
        out = local - (y.reshape(n, L, m).sum(axis=1) << ONE)
    shape = onehot.shape[:-1] + ((m,) if vec else ())
    return Share(out.reshape(shape), bits, scale, signed, party.role)


def onehot_dot_ref(onehot: np.ndarray, weights, bits: int) -> np.ndarray:
    w = np.asarray(weights)
    W = reduce(w.astype(np.int64).view(U64) if w.dtype.kind == "i" else w.astype(U64), bits)
    W = W.reshape(w.shape[0], -1)
    out = (onehot.astype(U64)[..., None] * W).sum(axis=-2) & mask(bits)
    return out if w.ndim == 2 else out[..., 0]


def msnzb_index(party: Party, x: Share, bits: int, d: int = MSNZB_DEFAULT_DIGIT) -> Share:
    """k = ⌊log2 x⌋ for unsigned ℓ-bit x as an arithmetic share in Z_{2^bits} (**0 when x = 0**,
    same as for x = 1). Cost: :func:`msnzb_onehot` + ℓ·(128 + bits).

    The parity of k needs no protocol: it is the XOR of the one-hot's odd positions (local).
    """
    oh = msnzb_onehot(party, x, d)
    return onehot_dot(party, oh, np.arange(x.bits, dtype=np.int64), bits)


def msnzb_index_ref(x: np.ndarray, bits_in: int, bits: int) -> np.ndarray:
    oh = msnzb_onehot_ref(x, bits_in)
    return onehot_dot_ref(oh, np.arange(bits_in), bits)
