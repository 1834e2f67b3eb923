"""Multiplication of secret-shared values with mixed bitwidths (SiRNN's Mult), Hadamard and matrix.

Notation. x ∈ Z_{2^m} is shared as x0 (ALICE) + x1 (BOB) mod 2^m, y ∈ Z_{2^n} likewise; the output
lives in Z_{2^ℓ} with ℓ ≤ m + n. As integers X = x0 + x1 = x_u + 2^m·wx with wx = Wrap(x) and x_u the
unsigned value of x (likewise Y, wy, y_u). Then

    x_u·y_u ≡ x0·y0 + x1·y1 + (x0·y1 + x1·y0) − 2^m·wx·y_u − 2^n·wy·x_u    (mod 2^{m+n}).

* x0·y0, x1·y1 are local.
* Cross terms x0·y1 and x1·y0: bit i of the *driving* share (one party's share of one operand)
  chooses a correlated OT whose correlation is the other party's share of the other operand,
  reduced mod 2^{ℓ−i} (bit i only matters mod 2^{ℓ−i}): Σ_{i<k} (128 + ℓ − i) bits per direction,
  k = min(driver bits, ℓ). The operand with fewer bits drives. Both directions and all bit positions
  share the same 2 rounds, and all bit positions of one direction share one OT extension (the
  COTs are derived from random OTs, see :class:`_CotRound`).
* Wrap terms: only wx·y_u mod 2^{ℓ−m} matters (it is multiplied by 2^m), so it vanishes for ℓ ≤ m;
  otherwise it is a MUX of the boolean share of wx with the shares of y reduced to ℓ − m bits (two
  COTs of 128 + ℓ − m bits, in the same 2 rounds as the cross terms). The boolean wraps come
  from the cheaper of (see :func:`wrap_method`) a 1-of-2^m OT lookup for m ≤ 8 and a millionaires'
  instance, x's and y's in one batch when they use the same method at the same cost. When the
  caller passes MSB shares of an operand, no wrap protocol runs: MSB-to-Wrap is folded into the
  COT round (:func:`_mux_msb`, one 1-of-4 OT per element carrying the wrap term; public MSBs:
  :func:`_mux_pub`).

Signed operands are offset to unsigned ones first: x' = x + 2^{m−1} (ALICE adds, locally), so
x_s = x'_u − 2^{m−1} and

    x_s·y_s = x'_u·y'_u − 2^{n−1}·x'_u − 2^{m−1}·y'_u + 2^{m+n−2}.

The last three terms are local: 2^{n−1}·x'_u = 2^{n−1}(x'0 + x'1) − 2^{m+n−1}·wx', and the wrap
term survives mod 2^ℓ only when ℓ = m + n, where 2^{ℓ−1}·(w0 ⊕ w1) ≡ 2^{ℓ−1}·(w0 + w1) — and then
wx' is already at hand. So signed multiplication costs exactly what unsigned multiplication costs;
mixed signedness (one signed, one unsigned operand) drops the terms of the unsigned operand.

Costs are bits sent by both parties together (COT = 128 + message bits, 1-of-N OT = 256 +
N·message bits, millionaire M(ℓ) = :func:`compare.millionaire_cost_bits`); the ``*_cost_bits``
functions give them exactly, as the protocols send them. Those are IKNP/KK13's figures; with
``ot="ferret"`` the cost functions count a COT as 1 + message bits and a 1-of-N OT as log2 N +
N·message bits, and the wrap method and the matrix product's driving operand are chosen for the
party's engine.
"""

from __future__ import annotations

import numpy as np

from .. import ALICE, BOB
from ..errors import ParameterError
from ..ot.engine import kkot_cost_bits, ot_base_bits
from . import compare
from .party import Party
from .ring import U64, check_bits, from_int, mask, reduce
from .share import PublicBits, Share
from .share import check_msb_share, check_share as _check_share
from .tuning import profile, rule

ONE = U64(1)
_BOTH = (ALICE, BOB)

__all__ = ["mul", "mul_ref", "matmul", "matmul_ref", "mul_known", "mul_known_ref",
           "matmul_known", "matmul_known_ref", "mul_cost_bits", "matmul_cost_bits",
           "mul_known_cost_bits", "matmul_known_cost_bits", "wrap_method"]


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _shl(v, s: int, bits: int) -> np.ndarray:
    """v · 2^s mod 2^bits (zero when s ≥ bits)."""
    v = np.asarray(v, dtype=U64)
    if s >= bits:
        return np.zeros_like(v)
    return reduce(v << U64(s), bits)


def _ext64(v: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Ring elements of Z_{2^bits} → their (signed or unsigned) integer value mod 2^64 (uint64)."""
    v = reduce(np.asarray(v, dtype=U64), bits)
    if signed and bits < 64:
        return np.where((v >> U64(bits - 1)) & ONE, v | ~mask(bits), v)
    return v


def _cot_cost(count: int, k: int, vec: int, bits_out: int, ot: str = "iknp") -> int:
    """Bits of k bit-position COT batches of ``count`` OTs carrying ``vec`` values of ℓ − i bits."""
    base = ot_base_bits(ot)
    return sum(base * count + count * vec * (bits_out - i) for i in range(k))




def _check_msb(msb, x: Share, what: str):
    """Validate an optional boolean MSB share of x; return its flat 0/1 data or None."""
    msb = check_msb_share(msb, x, what)
    return None if msb is None else msb.data.ravel()


def _check_out(bits_out, m: int, n: int) -> int:
    bits_out = check_bits(bits_out, "bits_out")
    if bits_out > m + n:
        raise ParameterError(f"bits_out = {bits_out} exceeds the operands' bitwidths {m} + {n}: "
                             "the product of an m-bit and an n-bit value fits m + n bits")
    return bits_out


def _signedness(x: Share, y: Share, signed) -> tuple[bool, bool]:
    if signed is None:
        return x.signed, y.signed
    if not isinstance(signed, (bool, np.bool_)):
        raise ParameterError(f"signed must be None (use the Shares' flags) or a bool, got {signed!r}")
    return bool(signed), bool(signed)


def _offset(party: Party, data: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """x' = x + 2^{bits−1} for a signed operand (ALICE adds), so that x_s = x'_u − 2^{bits−1}."""
    if signed and party.role == ALICE:
        return reduce(data + (ONE << U64(bits - 1)), bits)
    return data


def _offset_msb(party: Party, msb: np.ndarray | None, signed: bool):
    """MSB(x') = MSB(x) ⊕ 1 for the offset operand (ALICE flips her share)."""
    if msb is not None and signed and party.role == ALICE:
        return msb ^ ONE
    return msb


def _known_values(w, bits: int, signed: bool, shape, what: str) -> np.ndarray:
    """The owner's plaintext operand → its integer value mod 2^64 (uint64).

    Unsigned-integer arrays are ring elements of Z_{2^bits} (read as signed if ``signed``); signed
    integer (or integral float) arrays are the integer values themselves. Both are range-checked.
    """
    if w is None:
        raise ParameterError(f"{what}: the owner must pass its plaintext operand")
    a = np.asarray(w)
    if shape is not None and a.shape != tuple(shape):
        raise ParameterError(f"{what} has shape {a.shape}, expected {tuple(shape)}")
    if a.dtype.kind == "u":
        a = a.astype(U64)
        if bits < 64 and a.size and (a >> U64(bits)).any():
            raise ParameterError(f"{what} has ring elements that do not fit {bits} bits")
        return _ext64(a, bits, signed)
    if a.dtype.kind not in "ifb":
        raise ParameterError(f"{what} must be an integer array, got dtype {a.dtype}")
    return _ext64(from_int(a, bits, signed, what=what), bits, signed)


# ---------------------------------------------------------------------------------------------
# one batch of correlated OTs in both directions (2 rounds)
# ---------------------------------------------------------------------------------------------
class _CotRound:
    """Collects correlated-OT jobs (in the same order on both sides) and runs them in 2 rounds.

    Each job names its receiver role and its own bitwidth; the receiver supplies ``choice``, the
    sender ``corr`` (rows of shape ``mshape``). Jobs with the same receiver and row shape share one
    random-OT extension (:meth:`OTEngine.rot_send` / ``rot_recv``, hashed to the widest job's
    bits); each job's COT is derived from it: the sender keeps x0 = m0 mod 2^bits and sends
    m0 + corr − m1 mod 2^bits, so a job costs exactly 128 + bits·|mshape| per OT, as a COT, while
    all bit positions of a product share one extension instead of one per bit position.
    Round 1: every receiver sends its extension matrices; round 2: every sender its corrections.
    """

    def __init__(self, party: Party):
        self.party = party
        self.groups: dict[tuple, list[tuple]] = {}
        self.kk: list[tuple] = []

    def add(self, receiver: int, bits: int, mshape: tuple, done, choice=None, corr=None) -> None:
        self.groups.setdefault((receiver, tuple(mshape)), []).append((bits, choice, corr, done))

    def add_kk(self, receiver: int, n_options: int, bits: int, mshape: tuple, done, choice=None,
               msgs=None) -> None:
        """A chosen-message 1-of-N OT in the same two rounds: the receiver passes ``choice``, the
        sender ``msgs`` (count, N, *mshape); ``done`` gets the receiver's messages."""
        self.kk.append((receiver, n_options, bits, tuple(mshape), done, choice, msgs))

    def run(self) -> None:
        me, ot, chan = self.party.role, self.party.ot, self.party.chan
        mine = {k: g for k, g in self.groups.items() if k[0] == me}
        theirs = {k: g for k, g in self.groups.items() if k[0] != me}
        got = {}
        kk_pending = [(ot.kkot_recv_start(ch, n_opt, bits, mshape), done)
                      for recv, n_opt, bits, mshape, done, ch, _ in self.kk if recv == me]
        for (_, mshape), jobs in mine.items():  # round 1: extension matrices out
            choice = np.concatenate([j[1] for j in jobs])
            got[mshape] = (choice, ot.rot_recv_start(choice, max(j[0] for j in jobs), mshape))
        for recv, _, bits, _, _, _, msgs in self.kk:  # round 2: 1-of-N messages, then corrections
            if recv != me:
                ot.kkot_send(msgs, bits)
        for (_, mshape), jobs in theirs.items():
            sizes = [j[2].shape[0] for j in jobs]
            m0, m1 = ot.rot_send(sum(sizes), max(j[0] for j in jobs), mshape)
            pos = 0
            for (bits, _, corr, done), size in zip(jobs, sizes):
                x0 = reduce(m0[pos:pos + size], bits)
                chan.send(reduce(x0 + corr - m1[pos:pos + size], bits), bits)
                done(x0)
                pos += size
        for pending, done in kk_pending:  # the peer's 1-of-N messages came before its corrections
            done(pending.finish())
        for (_, mshape), jobs in mine.items():
            choice, pending = got[mshape]
            mc = pending.finish()  # (Ferret: may read a round message sent before the corrections)
            sel = choice.reshape((-1,) + (1,) * len(mshape)).astype(U64)
            pos = 0
            for bits, ch, _, done in jobs:
                size = ch.shape[0]
                d = chan.recv((size,) + mshape, bits)
                done(reduce(mc[pos:pos + size] + sel[pos:pos + size] * d, bits))
                pos += size
        self.groups, self.kk = {}, []


class _Acc:
    """An accumulator of ring elements (mod 2^64; reduce at the end)."""

    def __init__(self, shape):
        self.v = np.zeros(shape, U64)

    def adder(self, shift: int = 0, negative: bool = False):
        def done(val: np.ndarray) -> None:
            t = val << U64(shift) if shift else val
            if negative:
                self.v -= t
            else:
                self.v += t
        return done


def _cross(rnd: _CotRound, party: Party, receivers, corr, drive, k: int, bits_out: int,
           count: int, mshape: tuple = (), neg_bit: int | None = None) -> _Acc:
    """Shares of Σ_{i<k} ±2^i · bit_i(drive) · corr  mod 2^ℓ, one product per receiver role.

    For each role R in ``receivers``, R's ``drive`` (count,) supplies the choice bits and the other
    party's ``corr`` (count, *mshape) the correlation (its own data; the same on every bit
    position, reduced mod 2^{ℓ−i}). Bit ``neg_bit`` carries weight −2^i (a two's complement sign
    bit). Cost: Σ_{i<k} (128 + |mshape|·(ℓ − i)) bits per OT row and per receiver role.
    """
    acc = _Acc((count,) + tuple(mshape))
    # the sender's correlation: one array for all k bit positions (the COT reduces m0 + corr − m1
    # mod 2^{ℓ−i} itself), not k reduced copies held until the round runs
    corr = None if corr is None else np.asarray(corr, dtype=U64)
    for recv in receivers:
        for i in range(k):
            neg = i == neg_bit
            b = bits_out - i
            if party.role == recv:
                rnd.add(recv, b, mshape, acc.adder(i, neg), choice=(drive >> U64(i)) & ONE)
            else:
                rnd.add(recv, b, mshape, acc.adder(i, not neg), corr=corr)
    return acc


def _mux(rnd: _CotRound, party: Party, holders, w, v, bits: int, count: int, mshape: tuple = ()) -> _Acc:
    """Shares of (w0 ⊕ w1) · Σ_{h ∈ holders} v_h  mod 2^bits.

    w: this party's boolean share (count,); v: this party's vector (count, *mshape) if it is one of
    the ``holders`` (else ignored). Holder h: local w_h·v_h, and sends corr (1 − 2w_h)·v_h in a COT
    that the peer drives with its share of w. Cost: 128 + |mshape|·bits per row and per holder.
    """
    return _cot_mux(rnd, party, holders, w, w, ONE - (w << ONE), v, bits, count, mshape)


def _cot_mux(rnd: _CotRound, party: Party, holders, choice, local, corr, v, bits: int, count: int,
             mshape: tuple) -> _Acc:
    """The COT pattern of :func:`_mux` and :func:`_mux_pub`: a holder h adds ``local``·v_h to its
    share and sends ``corr``·v_h in a COT that the peer drives with its bit ``choice``, so the
    shares add up to Σ_h (local_h + choice_peer·corr_h)·v_h. ``choice``, ``local``, ``corr``:
    (count,) 0/1 (``corr`` may be ±1) per row, this party's."""
    acc = _Acc((count,) + tuple(mshape))
    ext = (count,) + (1,) * len(mshape)
    mine = None
    if party.role in holders:
        vv = reduce(v, bits)
        acc.v += local.reshape(ext) * vv
        mine = reduce(corr.reshape(ext) * vv, bits)
    for h in holders:
        if party.role == h:
            rnd.add(1 - h, bits, mshape, acc.adder(negative=True), corr=mine)
        else:
            rnd.add(1 - h, bits, mshape, acc.adder(), choice=choice)
    return acc


def _public_msb(msb, signed: bool, needed: bool) -> np.ndarray | None:
    """β = the public MSB of the *offset* operand (flat 0/1) when ``msb`` is a
    :class:`PublicBits` and the operand's wrap is ``needed``; None otherwise."""
    if not needed or not isinstance(msb, PublicBits):
        return None
    beta = msb.public.ravel()
    return beta ^ ONE if signed else beta


def _top(v: np.ndarray, bits: int) -> np.ndarray:
    return (v >> U64(bits - 1)) & ONE


def _pub_vec(party: Party, v: np.ndarray, half: int, signed_full: bool) -> np.ndarray:
    """The MUX vector of a folded wrap: v, or v − 2^half (ALICE) when the signed correction
    2^{ℓ−1}·Wrap of a full-width (ℓ = m + n) product must ride on it: −2^m·w·(v_u − 2^{n−1}) =
    −2^m·w·v_u + 2^{ℓ−1}·w (see :func:`_signed_terms`)."""
    if signed_full and party.role == ALICE:
        return v - (ONE << U64(half))
    return v


def _mux_pub(rnd: _CotRound, party: Party, holders, top, beta, v, bits: int, count: int,
             mshape: tuple = ()) -> _Acc:
    """Shares of Wrap(x) · Σ_{h ∈ holders} v_h mod 2^bits for an x whose MSB β is public, with the
    wrap folded into the COT round (no separate Wrap protocol).

    With a = msb(x0), b = msb(x1): Wrap(x) = a∧b ⊕ (a⊕b)∧¬β, i.e. a ∨ b when β = 0 and a ∧ b when
    β = 1 (MSB-to-Wrap with a public MSB). ``top``: this party's own bit (a or b). Holder h with
    bit t adds locally (1 − β)·t·v_h and sends corr (t ⊕ β ⊕ 1)·v_h in a COT driven by the peer's
    bit p: (1 − β)·t + p·(t ⊕ ¬β) is t ∨ p (β = 0) or t ∧ p (β = 1). Cost: that of :func:`_mux`
    (128 + |mshape|·bits per row and per holder), 2 rounds shared with the cross terms.
    """
    return _cot_mux(rnd, party, holders, top, (ONE - beta) * top, top ^ beta ^ ONE, v, bits, count,
                    mshape)


def _mux_msb(rnd: _CotRound, party: Party, holders, top, msb, v, bits: int, count: int,
             mshape: tuple = ()) -> _Acc:
    """Shares of Wrap(x) · Σ_{h ∈ holders} v_h mod 2^bits for an x whose MSB is secret-shared
    (boolean shares ``msb``), with MSB-to-Wrap folded into the COT round: Wrap(x) = a∧b ⊕
    (a⊕b)∧¬(m0 ⊕ m1) is a function of each party's pair (own top bit, own MSB share). Holder h
    sends, per row, a 1-of-4 OT that the peer drives with its pair: r + f(h's pair, j)·v_h for
    the 4 pairs j, keeping −r. Cost: 256 + 4·|mshape|·bits per row and per holder, in the 2 rounds
    of the cross terms (instead of MSB-to-Wrap's 2 rounds before them, 260 bits, and a MUX).
    ``top``, ``msb``: this party's (count,) 0/1 top bits and MSB shares."""
    acc = _Acc((count,) + tuple(mshape))
    mine = top | (msb << ONE)
    for h in holders:
        if party.role == h:
            vv = reduce(v, bits)
            j = np.arange(4, dtype=U64)
            a, m_own = top[:, None], msb[:, None]
            b, m_peer = j & ONE, j >> ONE
            w = (a & b) ^ ((a ^ b) & (m_own ^ m_peer ^ ONE))  # (count, 4)
            r = party.random((count,) + tuple(mshape), bits)
            ext = (count, 4) + (1,) * len(mshape)
            msgs = reduce(w.reshape(ext) * vv[:, None] + r[:, None], bits)
            acc.v -= r
            rnd.add_kk(1 - h, 4, bits, mshape, acc.adder(), msgs=msgs)
        else:
            rnd.add_kk(1 - h, 4, bits, mshape, acc.adder(), choice=mine)
    return acc


def _secret_msb(msb, needed: bool) -> bool:
    """Whether an operand's wrap is folded from secret MSB shares (:func:`_mux_msb`)."""
    return needed and msb is not None and not isinstance(msb, PublicBits)


MAX_LUT_BITS = 8  # the 1-of-N OT supports N ≤ 2^8


def wrap_method(bits: int, ot: str = "iknp") -> tuple[str, float]:
    """(method, bits per element) of the boolean Wrap of a ``bits``-bit operand whose MSB is not
    known (a known MSB folds the wrap into the COT round: :func:`_mux_pub`, :func:`_mux_msb`).

    ``lut``: bits ≤ 8, one 1-of-2^bits OT on BOB's share, ALICE sends r ⊕ 1{x0 + v ≥ 2^bits} for
    every v (iknp 256 + 2^bits, 128 + 2 for one bit; ferret log2 N + N); ``mill``: a millionaires'
    instance (:func:`compare.millionaire_cost_bits`, more rounds). The cheapest on engine ``ot``
    wins, ties to fewer rounds.
    """
    def cands(ot):
        c = [("lut", kkot_cost_bits(ot, 1 << bits, 1))] if bits <= MAX_LUT_BITS else []
        return c + [("mill", compare.millionaire_cost_bits(bits, ot=ot))]
    method = min(cands(rule(ot)), key=lambda t: t[1])[0]  # ("ferret-lat": iknp's choice)
    return method, dict(cands(ot))[method]


def _wraps_cost_bits(reqs, ot: str = "iknp") -> float:
    """Total bits of :func:`_wraps` for requests (count, bits, with_msb) or None (its batches
    merge only requests of equal per-element cost, so costs add up). with_msb = "public" (a
    :class:`PublicBits` MSB) or True (secret MSB shares): the wrap is folded into the COT round
    (:func:`_mux_pub`, :func:`_mux_msb`) and no wrap protocol runs."""
    return sum(r[0] * wrap_method(r[1], ot)[1] for r in reqs if r is not None and r[2] not in ("public", True))


def _wraps(party: Party, reqs):
    """Boolean shares (0/1 uint64, flat) of Wrap for each request, None where the request is None.

    A request is (this party's flat data, bits); the method is :func:`wrap_method`'s. Requests
    with the same method run in one batch where that costs nothing extra: LUT requests of equal
    width in one 1-of-N OT; millionaires' instances of equal cost (same leaf count) in one call at
    the larger width. Batches run one after the other.
    """
    out = [None] * len(reqs)
    groups: dict[tuple, list[int]] = {}
    prof = profile(party, max((r[0].size for r in reqs if r is not None), default=0))  # one for all
    for i, r in enumerate(reqs):
        if r is not None:
            method, cost = wrap_method(r[1], prof)
            groups.setdefault((method, r[1] if method == "lut" else cost), []).append(i)
    role = party.role
    for key, idx in groups.items():
        sizes = [reqs[i][0].size for i in idx]
        if key[0] == "lut":
            bits = key[1]
            flat = np.concatenate([reqs[i][0] for i in idx])
            if role == ALICE:
                r = party.prg.bits(flat.size).astype(U64)
                cand = np.arange(1 << bits, dtype=U64)
                msgs = (((flat[:, None] + cand) >> U64(bits)) & ONE) ^ r[:, None]  # x0 + v < 2^{bits+1}
                party.ot.kkot_send(msgs, 1)
                w = r
            else:
                w = party.ot.kkot_recv(flat, 1 << bits, 1)
        else:
            bits = max(reqs[i][1] for i in idx)
            vals = [reqs[i][0] if role == ALICE else mask(reqs[i][1]) - reqs[i][0] for i in idx]
            w = compare.millionaire_bits(party, np.concatenate(vals), bits,
                                         leaf_bits=compare.leaf_width(bits, ot=prof))
        _split_into(out, idx, w, sizes)
    return out


# -- cost model: bits sent by both parties (OT batches are padded to a multiple of 8 instances;
#    those ≤ 7·128 bits per batch are not counted) ----------------------------------------------
def _cross_k(m: int, n: int, l: int) -> int:
    """Bit positions of the driving operand in :func:`mul` (the one with fewer relevant bits)."""
    return min(n, l) if min(n, l) <= min(m, l) else min(m, l)


def _wrap_term_cost(rows: int, vec: int, bits: int, msb, holders: int, ot: str = "iknp") -> float:
    """Bits of one operand's wrap term: ``rows`` wraps times vectors of ``vec`` values of ``bits``
    bits, from ``holders`` parties. msb: False (wrap protocol, then a MUX), "public" (folded MUX,
    :func:`_mux_pub`) or True (secret MSB shares folded by 1-of-4 OTs, :func:`_mux_msb`)."""
    if msb is True:
        return holders * rows * (ot_base_bits(ot, 4) + 4 * vec * bits)
    return holders * (ot_base_bits(ot) * rows + rows * vec * bits)


def mul_cost_bits(m: int, n: int, bits_out: int, msb_x: bool = False, msb_y: bool = False,
                  count: int | None = None, ot: str = "iknp") -> float:
    """Bits (both parties) of :func:`mul` of an m-bit by an n-bit operand: per element, or the
    total for ``count`` elements. msb_x, msb_y: False, True (secret MSB shares) or "public"."""
    l = bits_out
    count = 1 if count is None else count
    total = 2 * _cot_cost(count, _cross_k(m, n, l), 1, l, ot)
    if l > m:
        total += _wrap_term_cost(count, 1, l - m, msb_x, 2, ot)
    if l > n:
        total += _wrap_term_cost(count, 1, l - n, msb_y, 2, ot)
    return total + _wraps_cost_bits([(count, m, msb_x) if l > m else None, (count, n, msb_y) if l > n else None],
                                    ot)


def matmul_cost_bits(a: int, b: int, c: int, m: int, n: int, bits_out: int, msb_x: bool = False,
                     msb_y: bool = False, ot: str = "iknp") -> float:
    """Bits (both parties) of :func:`matmul` of an (a, b) m-bit by a (b, c) n-bit matrix."""
    l = bits_out
    total = 2 * min(_cot_cost(b * c, min(n, l), a, l, ot), _cot_cost(a * b, min(m, l), c, l, ot))
    if l > m:
        total += _wrap_term_cost(a * b, c, l - m, msb_x, 2, ot)
    if l > n:
        total += _wrap_term_cost(b * c, a, l - n, msb_y, 2, ot)
    return total + _wraps_cost_bits([(a * b, m, msb_x) if l > m else None,
                                     (b * c, n, msb_y) if l > n else None], ot)


def mul_known_cost_bits(m: int, bits_out: int, w_bits: int | None = None, msb_x: bool = False,
                        count: int | None = None, ot: str = "iknp") -> float:
    """Bits (both parties) of :func:`mul_known` (x: m bits): per element, or the total for
    ``count`` elements."""
    l = bits_out
    n = l if w_bits is None else w_bits
    count = 1 if count is None else count
    total = _cot_cost(count, min(m, l) if min(m, l) <= min(n, l) else min(n, l), 1, l, ot)
    if l > m:
        total += _wrap_term_cost(count, 1, l - m, msb_x, 1, ot)
    return total + _wraps_cost_bits([(count, m, msb_x) if l > m else None], ot)


def matmul_known_cost_bits(a: int, b: int, c: int, m: int, bits_out: int, w_bits: int | None = None,
                           msb_x: bool = False, ot: str = "iknp") -> float:
    """Bits (both parties) of :func:`matmul_known` with W (a, b) and x (b, c) (w_left=True)."""
    l = bits_out
    n = l if w_bits is None else w_bits
    total = min(_cot_cost(b * c, min(m, l), a, l, ot), _cot_cost(a * b, min(n, l), c, l, ot))
    if l > m:
        total += _wrap_term_cost(b * c, a, l - m, msb_x, 1, ot)
    return total + _wraps_cost_bits([(b * c, m, msb_x) if l > m else None], ot)


def _split_into(out, idx, flat, sizes) -> None:
    pos = 0
    for i, s in zip(idx, sizes):
        out[i] = flat[pos:pos + s]
        pos += s


def _signed_terms(party: Party, z, sx: bool, sy: bool, xsum, ysum, wxsum, wysum, m: int, n: int,
                  bits_out: int, count: int = 1):
    """Add the local signed corrections −2^{n−1}·x'_u − 2^{m−1}·y'_u + count·2^{m+n−2} to z."""
    full = bits_out == m + n
    if sy:
        z = z - _shl(xsum, n - 1, bits_out)
        if full:
            z = z + _shl(wxsum, bits_out - 1, bits_out)
    if sx:
        z = z - _shl(ysum, m - 1, bits_out)
        if full:
            z = z + _shl(wysum, bits_out - 1, bits_out)
    if sx and sy and party.role == ALICE:
        z = z + _shl(U64(count), m + n - 2, bits_out)
    return z


# ---------------------------------------------------------------------------------------------
# Hadamard product of two shared operands
# ---------------------------------------------------------------------------------------------
def mul(party: Party, x: Share, y: Share, bits_out: int, signed: bool | None = None,
        msb_x: Share | None = None, msb_y: Share | None = None) -> Share:
    """Elementwise product of shared x ∈ Z_{2^m} and y ∈ Z_{2^n} into Z_{2^ℓ}, ℓ = bits_out ≤ m + n.

    Functionality: z = (val(x)·val(y)) mod 2^ℓ, exactly, where val is the signed or unsigned value
    of each operand according to its ``signed`` flag (``signed`` = True/False overrides both flags;
    mixed signedness is allowed). Output scale x.scale + y.scale, signed if either operand is.
    x and y must have equal shapes.

    ``msb_x`` / ``msb_y``: optional boolean shares of MSB(x) / MSB(y) (the top bit of the m-bit ring
    element, i.e. the sign bit of a signed operand; pass a public zero share for an operand known
    to be non-negative and < 2^{m−1}). With secret MSB shares no wrap protocol runs: MSB-to-Wrap
    is folded into the round of the cross terms by one 1-of-4 OT per element and holder carrying
    the wrap term (:func:`_mux_msb`; cost formulas: ``msb_x=True``). A *public* MSB
    (:class:`PublicBits`, e.g. ``Backend.public_bits``): Wrap is then msb(x0) ∨ msb(x1) (MSB 0)
    or msb(x0) ∧ msb(x1) (MSB 1), each party's bit known to it, and is folded into the wrap
    term's COTs (:func:`_mux_pub`) in the 2 rounds of the cross terms (cost formulas:
    ``msb_x="public"``). E.g. m = n = 16, ℓ = 32 with both MSBs public: 4880 + 576 = 5456 bits =
    682 bytes, 2 rounds (measured).

    Cost per element (k = min(m, n, ℓ), both parties together; :func:`mul_cost_bits`):
      2·Σ_{i<k} (128 + ℓ − i)                 cross terms
      + [ℓ > m]·(2·(128 + ℓ − m) + Wrap(x))   Wrap: M(m) or 256 + 2^m (m ≤ 8); with secret
      + [ℓ > n]·(2·(128 + ℓ − n) + Wrap(y))   MSB shares 2·(256 + 4(ℓ − m)) instead
    e.g. m = n = 16, ℓ = 32: 4880 + 576 + 2·1684 = 8824 bits = 1103 bytes, 5 rounds;
    with both MSBs secret-shared 4880 + 4·(256 + 64) = 6160 bits = 770 bytes, 2 rounds;
    m = n = 8, ℓ = 16: 2248 + 544 + 2·512 = 3816 bits = 477 bytes, 4 rounds.
    Rounds: rounds(Wrap) + 2 (millionaire on 16 bits: 3; LUT: 2; none when ℓ ≤ min(m, n) or the
    MSB is known, secret or public); batches of different methods/widths add up.
    """
    _check_share(x, "x")
    _check_share(y, "y")
    if x.shape != y.shape:
        raise ParameterError(f"mul: operand shapes differ, x {x.shape} vs y {y.shape}; use matmul for "
                             "matrix products")
    m, n = x.bits, y.bits
    l = _check_out(bits_out, m, n)
    sx, sy = _signedness(x, y, signed)
    mx = _check_msb(msb_x, x, "msb_x")
    my = _check_msb(msb_y, y, "msb_y")
    count = x.size
    out_meta = dict(bits=l, scale=x.scale + y.scale, signed=sx or sy, role=party.role)
    if count == 0:
        return Share(np.zeros(x.shape, U64), **out_meta)

    xd = _offset(party, x.data.ravel(), m, sx)
    yd = _offset(party, y.data.ravel(), n, sy)
    bx = _public_msb(msb_x, sx, l > m)
    by = _public_msb(msb_y, sy, l > n)
    fx, fy = _secret_msb(msb_x, l > m), _secret_msb(msb_y, l > n)
    wx, wy = _wraps(party, [(xd, m) if l > m and bx is None and not fx else None,
                            (yd, n) if l > n and by is None and not fy else None])
    rnd = _CotRound(party)
    if min(n, l) <= min(m, l):  # y's shares drive (see _cross_k)
        cross = _cross(rnd, party, _BOTH, xd, yd, min(n, l), l, count)
    else:
        cross = _cross(rnd, party, _BOTH, yd, xd, min(m, l), l, count)
    full = l == m + n
    if bx is not None:  # public MSB: Wrap(x) folded into this round; the signed term's
        mux_x = _mux_pub(rnd, party, _BOTH, _top(xd, m), bx,  # 2^{ℓ−1}·wx rides on y − 2^{n−1}
                         _pub_vec(party, yd, n - 1, full and sy), l - m, count)
        wx = np.zeros(count, U64)
    elif fx:  # secret MSB: MSB-to-Wrap folded into this round, the signed term as above
        mux_x = _mux_msb(rnd, party, _BOTH, _top(xd, m), _offset_msb(party, mx, sx),
                         _pub_vec(party, yd, n - 1, full and sy), l - m, count)
        wx = np.zeros(count, U64)
    else:
        mux_x = _mux(rnd, party, _BOTH, wx, yd, l - m, count) if l > m else None
    if by is not None:
        mux_y = _mux_pub(rnd, party, _BOTH, _top(yd, n), by, _pub_vec(party, xd, m - 1, full and sx),
                         l - n, count)
        wy = np.zeros(count, U64)
    elif fy:
        mux_y = _mux_msb(rnd, party, _BOTH, _top(yd, n), _offset_msb(party, my, sy),
                         _pub_vec(party, xd, m - 1, full and sx), l - n, count)
        wy = np.zeros(count, U64)
    else:
        mux_y = _mux(rnd, party, _BOTH, wy, xd, l - n, count) if l > n else None
    rnd.run()

    z = xd * yd + cross.v
    if mux_x is not None:
        z = z - _shl(mux_x.v, m, l)
    if mux_y is not None:
        z = z - _shl(mux_y.v, n, l)
    z = _signed_terms(party, z, sx, sy, xd, yd, wx, wy, m, n, l)
    return Share(reduce(z, l).reshape(x.shape), **out_meta)


def mul_ref(x: np.ndarray, y: np.ndarray, x_bits: int, y_bits: int, bits_out: int,
            x_signed: bool = False, y_signed: bool = False) -> np.ndarray:
    """Cleartext :func:`mul`: (val(x)·val(y)) mod 2^ℓ for ring elements x ∈ Z_{2^m}, y ∈ Z_{2^n}.

    Exact: the values are taken mod 2^64 and multiplied in uint64, which is the product mod 2^64,
    and ℓ ≤ 64.
    """
    return reduce(_ext64(x, x_bits, x_signed) * _ext64(y, y_bits, y_signed), bits_out)


# ---------------------------------------------------------------------------------------------
# matrix product of two shared operands
# ---------------------------------------------------------------------------------------------
def _check_matrices(x: Share, y_shape: tuple, what_y: str) -> tuple[int, int, int]:
    if len(x.shape) != 2 or len(y_shape) != 2:
        raise ParameterError(f"matmul: operands must be 2-D, got x {x.shape} and {what_y} {y_shape}")
    if x.shape[1] != y_shape[0]:
        raise ParameterError(f"matmul: inner dimensions differ, x {x.shape} vs {what_y} {y_shape}")
    return x.shape[0], x.shape[1], y_shape[1]


def matmul(party: Party, x: Share, y: Share, bits_out: int, signed: bool | None = None,
           msb_x: Share | None = None, msb_y: Share | None = None) -> Share:
    """Matrix product of shared x (a, b) over Z_{2^m} and y (b, c) over Z_{2^n} into Z_{2^ℓ}, ℓ ≤ m + n.

    Functionality: z[i, j] = Σ_k val(x[i, k])·val(y[k, j]) mod 2^ℓ, exactly (signedness, scale and
    MSB hints as in :func:`mul`; output shape (a, c)).

    Cross terms by COTs carrying vectors: either every bit of y's shares [k, j] drives a COT
    carrying the other party's column x[:, k] (b·c·Σ_{i<min(n,ℓ)} (128 + a(ℓ − i)) bits per
    direction) or every bit of x's shares [i, k] drives one carrying the row y[k, :]
    (a·b·Σ_{i<min(m,ℓ)} (128 + c(ℓ − i))); the cheaper is taken. Wrap terms: a MUX per x entry
    carrying the row y[k, :] (2·a·b·(128 + c(ℓ − m)) when ℓ > m) and one per y entry carrying the
    column x[:, k] (2·b·c·(128 + a(ℓ − n)) when ℓ > n), plus the wraps of the a·b + b·c entries.
    Exact total: :func:`matmul_cost_bits`; e.g. (64, 32)·(32, 16), 16 × 16 → 32 bits:
    2·512·(16·128 + 64·392) + 2·2048·(128 + 256) + 2·512·(128 + 1024) + 2560·1744 bits
    = 35.0 Mbit = 4.38 MB, 4,273 bytes per output element; 6 rounds. Rounds as :func:`mul`.
    """
    _check_share(x, "x")
    _check_share(y, "y")
    a, b, c = _check_matrices(x, y.shape, "y")
    m, n = x.bits, y.bits
    l = _check_out(bits_out, m, n)
    sx, sy = _signedness(x, y, signed)
    mx = _check_msb(msb_x, x, "msb_x")
    my = _check_msb(msb_y, y, "msb_y")
    out_meta = dict(bits=l, scale=x.scale + y.scale, signed=sx or sy, role=party.role)
    if a * c == 0:
        return Share(np.zeros((a, c), U64), **out_meta)
    if b == 0:
        return Share(np.zeros((a, c), U64), **out_meta)

    X = _offset(party, x.data, m, sx)
    Y = _offset(party, y.data, n, sy)
    bx = _public_msb(msb_x, sx, l > m)
    by = _public_msb(msb_y, sy, l > n)
    fx, fy = _secret_msb(msb_x, l > m), _secret_msb(msb_y, l > n)
    wx, wy = _wraps(party, [(X.ravel(), m) if l > m and bx is None and not fx else None,
                            (Y.ravel(), n) if l > n and by is None and not fy else None])
    rnd = _CotRound(party)
    if _cot_cost(b * c, min(n, l), a, l, party.ot.kind) <= _cot_cost(a * b, min(m, l), c, l, party.ot.kind):
        cols = np.repeat(X.T, c, axis=0)  # row (k, j) = X[:, k]
        cross = _cross(rnd, party, _BOTH, cols, Y.ravel(), min(n, l), l, b * c, (a,))
        cross_post = lambda v: v.reshape(b, c, a).sum(axis=0, dtype=U64).T  # noqa: E731
    else:
        rows = np.tile(Y, (a, 1))  # row (i, k) = Y[k, :]
        cross = _cross(rnd, party, _BOTH, rows, X.ravel(), min(m, l), l, a * b, (c,))
        cross_post = lambda v: v.reshape(a, b, c).sum(axis=1, dtype=U64)  # noqa: E731
    full = l == m + n
    if bx is not None:  # public MSBs: wraps folded into this round (see mul)
        mux_x = _mux_pub(rnd, party, _BOTH, _top(X.ravel(), m), bx,
                         np.tile(_pub_vec(party, Y, n - 1, full and sy), (a, 1)), l - m, a * b, (c,))
        wx = np.zeros(a * b, U64)
    elif fx:
        mux_x = _mux_msb(rnd, party, _BOTH, _top(X.ravel(), m), _offset_msb(party, mx, sx),
                         np.tile(_pub_vec(party, Y, n - 1, full and sy), (a, 1)), l - m, a * b, (c,))
        wx = np.zeros(a * b, U64)
    else:
        mux_x = (_mux(rnd, party, _BOTH, wx, np.tile(Y, (a, 1)), l - m, a * b, (c,)) if l > m else None)
    if by is not None:
        mux_y = _mux_pub(rnd, party, _BOTH, _top(Y.ravel(), n), by,
                         np.repeat(_pub_vec(party, X, m - 1, full and sx).T, c, axis=0), l - n, b * c, (a,))
        wy = np.zeros(b * c, U64)
    elif fy:
        mux_y = _mux_msb(rnd, party, _BOTH, _top(Y.ravel(), n), _offset_msb(party, my, sy),
                         np.repeat(_pub_vec(party, X, m - 1, full and sx).T, c, axis=0), l - n, b * c, (a,))
        wy = np.zeros(b * c, U64)
    else:
        mux_y = (_mux(rnd, party, _BOTH, wy, np.repeat(X.T, c, axis=0), l - n, b * c, (a,)) if l > n else None)
    rnd.run()

    z = np.matmul(X, Y) + cross_post(cross.v)
    if mux_x is not None:
        z = z - _shl(mux_x.v.reshape(a, b, c).sum(axis=1, dtype=U64), m, l)
    if mux_y is not None:
        z = z - _shl(mux_y.v.reshape(b, c, a).sum(axis=0, dtype=U64).T, n, l)
    z = _signed_terms(party, z, sx, sy,
                      X.sum(axis=1, dtype=U64)[:, None], Y.sum(axis=0, dtype=U64)[None, :],
                      wx.reshape(a, b).sum(axis=1, dtype=U64)[:, None] if wx is not None else None,
                      wy.reshape(b, c).sum(axis=0, dtype=U64)[None, :] if wy is not None else None,
                      m, n, l, count=b)
    return Share(reduce(z, l), **out_meta)


def matmul_ref(x: np.ndarray, y: np.ndarray, x_bits: int, y_bits: int, bits_out: int,
               x_signed: bool = False, y_signed: bool = False) -> np.ndarray:
    """Cleartext :func:`matmul`: Σ_k val(x[i,k])·val(y[k,j]) mod 2^ℓ (exact, uint64 arithmetic)."""
    return reduce(np.matmul(_ext64(x, x_bits, x_signed), _ext64(y, y_bits, y_signed)), bits_out)


# ---------------------------------------------------------------------------------------------
# products with an operand one party knows in the clear
# ---------------------------------------------------------------------------------------------
def _check_owner(party: Party, owner, w, what: str) -> bool:
    if owner not in (ALICE, BOB):
        raise ParameterError(f"owner must be ALICE (0) or BOB (1), got {owner!r}")
    if party.role != owner and w is not None:
        raise ParameterError(f"{what}: only the owner passes its plaintext operand; the other "
                             "party passes None")
    return party.role == owner


def mul_known(party: Party, owner: int, w, x: Share, bits_out: int, *, w_bits: int | None = None,
              w_signed: bool = True, w_scale: int = 0, msb_x: Share | None = None) -> Share:
    """Elementwise product of the owner's private plaintext w with a shared x ∈ Z_{2^m}, into Z_{2^ℓ}.

    ``owner`` (ALICE or BOB) passes ``w`` (shape x.shape); the other party passes None. w is an
    integer array of ``w_bits``-bit values (default ℓ: any value mod 2^ℓ), signed if ``w_signed``;
    an unsigned-integer array is read as ring elements of Z_{2^{w_bits}}. ℓ ≤ m + w_bits.
    Functionality: z = (val(w)·val(x)) mod 2^ℓ; scale w_scale + x.scale; signed if either is.

    w·x_owner is local; w·x_other by COTs: either the non-owner's share bits drive and the owner's
    correlation is w mod 2^{ℓ−i} (k = min(m, ℓ)), or the bits of w drive (its sign bit with weight
    −2^{n−1}) and the non-owner's share is the correlation (k = min(w_bits, ℓ)), whichever is
    fewer; the wrap term 2^m·w·Wrap(x) is one COT driven by the non-owner's wrap share.
    Cost per element: Σ_{i<k} (128 + ℓ − i) + [ℓ > m]·(128 + ℓ − m + Wrap(x))
    (:func:`mul_known_cost_bits`); e.g. m = w_bits = 16, ℓ = 32: 2440 + 144 + 1744 = 4328 bits =
    541 bytes, 6 rounds. Rounds: rounds(Wrap) + 2.
    """
    _check_share(x, "x")
    is_owner = _check_owner(party, owner, w, "mul_known")
    m = x.bits
    n = check_bits(w_bits, "w_bits") if w_bits is not None else check_bits(bits_out, "bits_out")
    l = _check_out(bits_out, m, n)
    mx = _check_msb(msb_x, x, "msb_x")
    wv = _known_values(w, n, w_signed, x.shape, "w").ravel() if is_owner else None
    out = _known_product(party, owner, wv, x, mx, l, n, w_signed, x.size, 1, x.size, 1, msb_x)
    return Share(out.reshape(x.shape), l, w_scale + x.scale, w_signed or x.signed, party.role)


def _known_product(party, owner, wv, x: Share, mx, l: int, n: int, w_signed: bool,
                   a: int, b: int, c: int, mode: int, msb_obj=None) -> np.ndarray:
    """Shares of W·x for the owner's W (value mod 2^64, flat) and shared x.

    mode 1: elementwise (a = b = c = count, flat); mode 2: W (a, b) times x (b, c).
    """
    is_owner = party.role == owner
    other = 1 - owner
    m = x.bits
    count = x.size
    out_shape = (count,) if mode == 1 else (a, c)
    if count == 0 or (mode == 2 and a * c == 0):
        return np.zeros(out_shape, U64)
    xd = _offset(party, x.data.ravel(), m, x.signed)
    bx = _public_msb(msb_obj, x.signed, l > m)
    fx = _secret_msb(msb_obj, l > m)
    (wx,) = _wraps(party, [(xd, m) if l > m and bx is None and not fx else None])
    fmsb = _offset_msb(party, mx, x.signed) if fx else None
    wring = reduce(wv, n) if is_owner else None  # w as an n-bit ring element (its bits drive)
    neg_bit = n - 1 if w_signed else None
    rnd = _CotRound(party)
    if mode == 1:
        if min(m, l) <= min(n, l):
            cross = _cross(rnd, party, (other,), wv, xd, min(m, l), l, count)
        else:
            cross = _cross(rnd, party, (owner,), xd, wring, min(n, l), l, count, neg_bit=neg_bit)
        post = lambda v: v  # noqa: E731
        if bx is not None:
            mux = _mux_pub(rnd, party, (owner,), _top(xd, m), bx, wv, l - m, count)
        elif fx:
            mux = _mux_msb(rnd, party, (owner,), _top(xd, m), fmsb, wv, l - m, count)
        else:
            mux = _mux(rnd, party, (owner,), wx, wv, l - m, count) if l > m else None
        mux_post = post
    else:
        Xm = xd.reshape(b, c)
        W = wv.reshape(a, b) if is_owner else None
        w_cols = np.repeat(W.T, c, axis=0) if is_owner else None  # row (k, j) = W[:, k]
        if _cot_cost(b * c, min(m, l), a, l, party.ot.kind) <= _cot_cost(a * b, min(n, l), c, l, party.ot.kind):
            cross = _cross(rnd, party, (other,), w_cols, Xm.ravel(), min(m, l), l, b * c, (a,))
            post = lambda v: v.reshape(b, c, a).sum(axis=0, dtype=U64).T  # noqa: E731
        else:
            rows = np.tile(Xm, (a, 1))  # row (i, k) = x[k, :]
            cross = _cross(rnd, party, (owner,), rows, wring, min(n, l), l, a * b, (c,), neg_bit=neg_bit)
            post = lambda v: v.reshape(a, b, c).sum(axis=1, dtype=U64)  # noqa: E731
        if bx is not None:
            mux = _mux_pub(rnd, party, (owner,), _top(xd, m), bx, w_cols, l - m, b * c, (a,))
        elif fx:
            mux = _mux_msb(rnd, party, (owner,), _top(xd, m), fmsb, w_cols, l - m, b * c, (a,))
        else:
            mux = _mux(rnd, party, (owner,), wx, w_cols, l - m, b * c, (a,)) if l > m else None
        mux_post = lambda v: v.reshape(b, c, a).sum(axis=0, dtype=U64).T  # noqa: E731
    rnd.run()

    z = post(cross.v)
    if mux is not None:
        z = z - _shl(mux_post(mux.v), m, l)
    if is_owner:
        if mode == 1:
            z = z + wv * xd
            if x.signed:
                z = z - _shl(wv, m - 1, l)
        else:
            z = z + np.matmul(W, Xm)
            if x.signed:
                z = z - _shl(W.sum(axis=1, dtype=U64)[:, None], m - 1, l)
    return reduce(z, l)


def mul_known_ref(w, x: np.ndarray, x_bits: int, bits_out: int, *, w_bits: int | None = None,
                  w_signed: bool = True, x_signed: bool = False) -> np.ndarray:
    """Cleartext :func:`mul_known` (w as the owner passes it)."""
    n = bits_out if w_bits is None else w_bits
    return reduce(_known_values(w, n, w_signed, None, "w") * _ext64(x, x_bits, x_signed), bits_out)


def matmul_known(party: Party, owner: int, W, x: Share, bits_out: int, *, w_bits: int | None = None,
                 w_signed: bool = True, w_scale: int = 0, w_shape=None, w_left: bool = True,
                 msb_x: Share | None = None) -> Share:
    """Matrix product of the owner's private plaintext matrix W with a shared matrix x, into Z_{2^ℓ}.

    w_left (default): W (a, b) · x (b, c) → (a, c); else x (a, b) · W (b, c) → (a, c) (computed as
    (Wᵀ·xᵀ)ᵀ). The owner passes W, the other party None and ``w_shape`` (W's shape, public).
    W's values as in :func:`mul_known`; x ∈ Z_{2^m}, ℓ ≤ m + w_bits. Functionality: the exact
    integer matrix product of the values mod 2^ℓ; scale w_scale + x.scale.

    W·x_owner is local; W·x_other by COTs: either each bit of the non-owner's x[k, j] drives a COT
    carrying the column W[:, k] (b·c·Σ_{i<min(m,ℓ)} (128 + a(ℓ − i)) bits) or each bit of W[i, k]
    drives one carrying the non-owner's row x[k, :] (a·b·Σ_{i<min(w_bits,ℓ)} (128 + c(ℓ − i))),
    whichever is cheaper; wrap term: one COT per x entry carrying a column of W,
    b·c·(128 + a(ℓ − m)) bits, plus b·c wraps (:func:`matmul_known_cost_bits`). E.g. W (100, 32)
    16-bit times x (32, 4) 16-bit → 32 bits: 128·(16·128 + 100·392) + 128·(128 + 1600) + 128·1744
    = 5.72 Mbit, 1,789 bytes per output element. Rounds: rounds(Wrap) + 2.
    """
    _check_share(x, "x")
    is_owner = _check_owner(party, owner, W, "matmul_known")
    if not isinstance(w_left, (bool, np.bool_)):
        raise ParameterError(f"w_left must be a bool, got {w_left!r}")
    m = x.bits
    n = check_bits(w_bits, "w_bits") if w_bits is not None else check_bits(bits_out, "bits_out")
    l = _check_out(bits_out, m, n)
    if is_owner:
        shape = np.shape(W)
        if w_shape is not None and tuple(w_shape) != shape:
            raise ParameterError(f"w_shape {tuple(w_shape)} differs from W's shape {shape}")
    else:
        if w_shape is None:
            raise ParameterError("matmul_known: the party that does not own W must pass w_shape")
        shape = tuple(int(s) for s in w_shape)
    if len(shape) != 2:
        raise ParameterError(f"matmul_known: W must be 2-D, got shape {shape}")
    if len(x.shape) != 2:
        raise ParameterError(f"matmul_known: x must be 2-D, got shape {x.shape}")
    if not w_left:  # x·W = (Wᵀ·xᵀ)ᵀ
        if x.shape[1] != shape[0]:
            raise ParameterError(f"matmul_known: inner dimensions differ, x {x.shape} vs W {shape}")
        xt = x.like(x.data.T)
        mt = None if msb_x is None else _check_msb_share(msb_x, x).like(msb_x.data.T)
        if isinstance(msb_x, PublicBits):
            mt = PublicBits(msb_x.public.T, party.role)
        wt = None if W is None else np.asarray(W).T
        z = matmul_known(party, owner, wt, xt, bits_out, w_bits=w_bits, w_signed=w_signed,
                         w_scale=w_scale, w_shape=(shape[1], shape[0]), w_left=True, msb_x=mt)
        return z.like(np.ascontiguousarray(z.data.T))
    a, b, c = _check_matrices_known(shape, x.shape)
    mx = _check_msb(msb_x, x, "msb_x")
    wv = _known_values(W, n, w_signed, shape, "W").ravel() if is_owner else None
    out = _known_product(party, owner, wv, x, mx, l, n, w_signed, a, b, c, 2, msb_x)
    return Share(out, l, w_scale + x.scale, w_signed or x.signed, party.role)


def _check_msb_share(msb, x: Share) -> Share:
    _check_msb(msb, x, "msb_x")
    return msb


def _check_matrices_known(w_shape: tuple, x_shape: tuple) -> tuple[int, int, int]:
    if w_shape[1] != x_shape[0]:
        raise ParameterError(f"matmul_known: inner dimensions differ, W {w_shape} vs x {x_shape}")
    return w_shape[0], w_shape[1], x_shape[1]


def matmul_known_ref(W, x: np.ndarray, x_bits: int, bits_out: int, *, w_bits: int | None = None,
                     w_signed: bool = True, x_signed: bool = False, w_left: bool = True) -> np.ndarray:
    """Cleartext :func:`matmul_known` (W as the owner passes it)."""
    n = bits_out if w_bits is None else w_bits
    wv = _known_values(W, n, w_signed, None, "W")
    xv = _ext64(x, x_bits, x_signed)
    return reduce(np.matmul(wv, xv) if w_left else np.matmul(xv, wv), bits_out)
