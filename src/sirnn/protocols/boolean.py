"""Boolean-share protocols: bit triples, AND, boolean→arithmetic conversion, and multiplexers.

Boolean shares are :class:`Share` objects with ``bits == 1`` (x = x0 ⊕ x1); XOR and NOT are local.
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from .party import Party
from .ring import U64, mask
from .share import Share, check_share

ONE = U64(1)

# -- bit triples from 1-of-16 OT ---------------------------------------------------------------
# One 1-of-16 OT with 2-bit messages gives two triples (CrypTFlow2): BOB chooses (a1, b1, a1', b1'),
# ALICE's message for choice v is, per triple t, c0_t ⊕ (a0_t ⊕ a_t(v)) ∧ (b0_t ⊕ b_t(v)).

_V = np.arange(16, dtype=np.uint8)
_VA = [(_V >> (2 * t)) & 1 for t in (0, 1)]  # a-part of choice v, triple t
_VB = [(_V >> (2 * t + 1)) & 1 for t in (0, 1)]


def triple_ot_messages(party: Party, n_ot: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """ALICE: messages (n_ot, 16) of 2 bits (uint8), and her triple shares (a0, b0, c0), each (2·n_ot,)."""
    a0, b0, c0 = party.prg.bits((3, n_ot, 2))
    msgs = np.zeros((n_ot, 16), np.uint8)
    for t in (0, 1):
        prod = (a0[:, t, None] ^ _VA[t]) & (b0[:, t, None] ^ _VB[t])
        msgs |= (c0[:, t, None] ^ prod) << t
    return msgs, (a0.ravel().astype(U64), b0.ravel().astype(U64), c0.ravel().astype(U64))


def triple_ot_choices(party: Party, n_ot: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """BOB: choices (n_ot,) and his (a1, b1), each (2·n_ot,)."""
    a1, b1 = party.prg.bits((2, n_ot, 2)).astype(U64)
    choice = a1[:, 0] | (b1[:, 0] << ONE) | (a1[:, 1] << U64(2)) | (b1[:, 1] << U64(3))
    return choice, (a1.ravel(), b1.ravel())


def triple_ot_finish(received: np.ndarray) -> np.ndarray:
    """BOB: his c1 shares (2·n_ot,) from the received 2-bit messages."""
    return np.stack([received & ONE, received >> ONE], axis=1).ravel()


class Triples:
    """Boolean triples (a, b, c = a ∧ b), this party's shares, consumed front to back."""

    def __init__(self, a: np.ndarray, b: np.ndarray, c: np.ndarray):
        self.a, self.b, self.c, self.pos = a, b, c, 0

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.pos + n > self.a.size:
            raise RuntimeError(f"triple pool exhausted: need {n}, have {self.a.size - self.pos}")
        sl = slice(self.pos, self.pos + n)
        self.pos += n
        return self.a[sl], self.b[sl], self.c[sl]


def bit_triples(party: Party, n: int) -> Triples:
    """n boolean AND triples. Cost: ⌈n/2⌉ 1-of-16 OTs with 2-bit messages: (256 + 32)/2 bits per
    triple, 2 rounds."""
    n_ot = (n + 1) // 2
    if party.role == ALICE:
        msgs, abc = triple_ot_messages(party, n_ot)
        party.ot.kkot_send(msgs, 2)
        return Triples(*abc)
    choice, (a1, b1) = triple_ot_choices(party, n_ot)
    return Triples(a1, b1, triple_ot_finish(party.ot.kkot_recv(choice, 16, 2)))


class _RotTriples:
    """Triples from random OTs with random choices (see :func:`triples_from_rot_start`)."""

    def __init__(self, m0, m1, choice, pending):
        self.m0, self.m1, self.choice, self.pending = m0, m1, choice, pending

    def finish(self) -> Triples:
        mb = self.pending.finish()
        a = self.m0 ^ self.m1
        b = self.choice.astype(U64)
        return Triples(a, b, (a & b) ^ self.m0 ^ mb)


def triples_from_rot_start(party: Party, n: int) -> _RotTriples:
    """n boolean AND triples from 2n random OTs with random choices, one per direction each (no
    message on Ferret, where such an OT is a hashed COT). ``finish()`` returns the
    :class:`Triples`; call it where the protocol next reads from the peer (it may read a Ferret
    round message the peer sent when taking these OTs).

    In each direction the sender's random pair (m0, m1) gives its a = m0 ⊕ m1 and the term m0;
    the receiver's random choice is its b and it gets m_b = m0 ⊕ b·a, so m0 ⊕ m_b = a_s ∧ b_r.
    With a = a0 ⊕ a1, b = b0 ⊕ b1: c_i = a_i ∧ b_i ⊕ m0_i ⊕ m_{b_i} (the cross terms of the
    two directions). Cost: ferret: none (2n COTs); iknp: 2·128·n bits, 1 round.
    """
    choice, pending = party.ot.rrot_recv_start(n, 1)  # (first: on IKNP this sends the matrix)
    m0, m1 = party.ot.rrot_send(n, 1)
    return _RotTriples(m0, m1, choice, pending)


def and_bits(party: Party, x: np.ndarray, y: np.ndarray, triples: Triples) -> np.ndarray:
    """AND of boolean shares given as 0/1 uint64 arrays of equal shape (Beaver, one round).

    Cost: 2 bits per AND from each party, 1 round (plus the triples).
    """
    a, b, c = triples.take(x.size)
    d_e = np.concatenate([x.ravel() ^ a, y.ravel() ^ b])
    opened = d_e ^ party.chan.exchange(d_e, 1)
    d, e = opened[: x.size], opened[x.size:]
    z = c ^ (d & b) ^ (e & a)
    if party.role == ALICE:
        z ^= d & e
    return z.reshape(x.shape)


def and_(party: Party, x: Share, y: Share, triples: Triples | None = None) -> Share:
    """Boolean AND of two boolean shares. Functionality: z = x ∧ y.

    Cost: 2 + 2 bits per element plus a triple (144 bits); 1 round (+2 if triples are generated here).
    """
    _check_bool(x, "and_ x")
    _check_bool(y, "and_ y")
    if x.shape != y.shape:
        raise ParameterError(f"and_: shapes differ, {x.shape} vs {y.shape}")
    if triples is None:
        triples = bit_triples(party, x.size)
    return x.like(and_bits(party, x.data, y.data, triples))


def and_ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x & y


def _check_bool(x: Share, what: str) -> None:
    check_share(x, what, boolean=True)


# -- boolean to arithmetic ---------------------------------------------------------------------
def b2a(party: Party, b: Share, bits: int, scale: int = 0, signed: bool = False) -> Share:
    """Boolean → arithmetic: shares of b ∈ {0, 1} in Z_{2^bits}.

    b = b0 + b1 − 2·b0·b1; the product comes from one correlated OT (ALICE sends corr = b0).
    Cost: 128 + bits bits per element, 2 rounds.
    """
    _check_bool(b, "b2a input")
    m = mask(bits)
    flat = b.data.ravel()
    if party.role == ALICE:
        x0 = party.ot.cot_send(flat, bits)
        out = (flat + (x0 << ONE)) & m
    else:
        y = party.ot.cot_recv(flat, bits)
        out = (flat - (y << ONE)) & m
    return Share(out.reshape(b.shape), bits, scale, signed, party.role)


def b2a_bits(party: Party, b: np.ndarray, bits: int, sender: int = ALICE) -> np.ndarray:
    """:func:`b2a` on flat 0/1 shares with a chosen COT ``sender`` (who sends the last message).

    b = b_s + b_r − 2·b_s·b_r: the sender's COT with correlation b_s gives it x0 and the
    receiver x0 + b_r·b_s. Cost: a correlated OT with a ``bits``-bit correlation, 2 rounds."""
    m = mask(bits)
    if party.role == sender:
        return (b + (party.ot.cot_send(b, bits) << ONE)) & m
    return (b - (party.ot.cot_recv(b, bits) << ONE)) & m


def b2a_ref(b: np.ndarray, bits: int) -> np.ndarray:
    return b.astype(U64)


# -- multiplexers ------------------------------------------------------------------------------
def select(party: Party, b: Share, x: Share) -> Share:
    """MUX: b · x for a boolean share b and an arithmetic share x of the same shape.

    b·x_i expands to b_i·x_i + b_{1−i}·(1 − 2b_i)·x_i; the cross term is one correlated OT per
    element in each direction, run at once. Cost: 2·(128 + ℓ) bits per element, 2 rounds.
    """
    _check_bool(b, "select condition")
    if b.shape != x.shape:
        raise ParameterError(f"select: condition shape {b.shape} differs from value shape {x.shape}")
    m = mask(x.bits)
    bi = b.data.ravel()
    xi = x.data.ravel()
    corr = ((ONE - (bi << ONE)) * xi) & m
    r, s = party.ot.cot_both(corr, bi, x.bits)
    return x.like(((bi * xi) - r + s).reshape(x.shape))


def select_ref(b: np.ndarray, x: np.ndarray, bits: int) -> np.ndarray:
    return (b.astype(U64) * x) & mask(bits)


def if_else(party: Party, b: Share, x: Share, y: Share) -> Share:
    """b ? x : y  =  y + b·(x − y). Cost of one :func:`select`."""
    return y + select(party, b, x - y)
