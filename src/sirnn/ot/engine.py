"""The OT engine of one party: OTs of every kind in both directions, set up once per session.

Two engines (``kind``), chosen per session (both parties must agree; ``Party.setup`` checks it):

* ``"ferret"`` — silent OT: Ferret COTs (ot/ferret.py) are generated in rounds, without
  any input, at set-up and again whenever a round is used up; every OT consumes precomputed COTs:
  random OT = COT hashed with the TCCR hash (receiver's choice derandomised with one bit), chosen
  and correlated OT on top, and 1-of-N OT from log2 N random OTs.
* ``"iknp"`` (default, see :data:`DEFAULT_KIND`) — IKNP OT extension for 1-of-2 OTs and KK13
  for 1-of-N, extended on demand.

Set-up bootstraps everything from 128 public-key base OTs (Chou–Orlandi):

1. 128 base OTs (BOB sends) seed IKNP with ALICE as OT sender;
2. 384 random OTs from (1) seed IKNP with BOB as sender (128) and KK13 with BOB as sender (256;
   iknp only: Ferret sends just the 128);
3. (iknp) 256 random OTs from (2) seed KK13 with ALICE as sender;
4. (ferret) k + t·depth raw IKNP COTs per direction seed Ferret, whose first round runs at once.

Every variant is one call on each side (the sender's method on one party, the receiver's on the
other) and is vectorised over the batch. Messages are arrays of ``bits``-bit values (uint64) with an
optional per-OT shape ``mshape``, so one OT can carry a vector of values.

Costs (m instances, n = bits·prod(mshape) message bits, N = 2^k options); the Ferret column omits
the COT generation itself, ``b·m`` more bits from the sender amortised (b = 0.73 for the default
parameters, see ``ot.ferret``; sent when a round is used up):

====================  ===========================  ======================  ======
variant               bits sent (iknp)             bits sent (ferret)      rounds
====================  ===========================  ======================  ======
random OT             128·m (receiver)             m (receiver)            1
chosen 1-of-2 OT      128·m + 2·n·m                m + 2·n·m               2
correlated OT         128·m + n·m                  m + n·m                 2
1-of-N OT (N ≥ 4)     256·m + N·n·m                k·m + N·n·m             2
random OT with a      128·m (receiver)             0                       1 (ferret 0)
random choice
(``rrot_*``)
====================  ===========================  ======================  ======

(IKNP batch sizes are rounded up to a multiple of 8 for the extension matrix. A Ferret refill
during an OT adds the round's message, in the same round as the sender's reply; a random OT that
triggers one gets one more round.)

1-of-N from random OTs (Naor–Pinkas style): instance i uses k random OTs with keys g_{i,j}^v; the
pad of option x is TCCR(⊕_j g_{i,j}^{x_j}, (i, x)). For x ≠ r_i the pad's input differs from the
receiver's known one by ⊕_{j: x_j≠r_j} (g^0 ⊕ g^1)_{i,j}, a sum of independent uniform secrets,
which is the correlation-robustness that KK13 already assumes of its hash (there with codeword
differences ∧ s), here with a distinct tweak per (instance, option).
"""

from __future__ import annotations

import math

import numpy as np

from .. import ALICE, BOB
from ..errors import ParameterError
from ..transport import Channel
from ..transport.packing import packed_nbytes, unpack_at, value_dtype
from .aes import PRG, CRHash
from .baseot import base_ot_recv, base_ot_send
from .bitmatrix import hadamard_codewords, hadamard_columns, pack_bits
from .extension import ExtReceiver, ExtSender
from ._kernels import option_pads
from .ferret import FerretReceiver, FerretSender, bootstrap_receiver, bootstrap_sender, ferret_params

IKNP_WIDTH = 128
KK_WIDTH = 256
MAX_LOG_N = 8
ONE = np.uint64(1)
_KK_CHUNK_KEYS = 1 << 18  # sender hashes at most this many (instance, candidate) pads at a time
_HASH_ROWS = 1 << 14  # pads hashed per call (arrays of 256 KiB stay in cache)
KINDS = ("ferret", "iknp")  #: OT engines
#: The default engine: IKNP, measured faster end to end on this project's machine (2 cores,
#: loopback): Ferret's set-up round and its COT generation cost more CPU than IKNP's extension for
#: the 1-of-N-heavy math functions, while its 2–7× fewer bytes are almost free on loopback. On a
#: real network the bytes decide: pick ``kind="ferret"`` (benchmarks/RESULTS.md, "Silent OT").
DEFAULT_KIND = "iknp"


def ot_base_bits(kind: str, n_options: int = 2) -> int:
    """Bits one OT costs besides its messages (both parties, the module table's first term):
    IKNP 128 per 1-of-2 OT, KK13 256 per 1-of-N OT (N ≥ 4); Ferret one choice bit per random
    OT, so log2 N (the COT generation itself, b bits per COT amortised, not counted). ``kind``
    may also be a parameter profile of the engine (``sirnn.protocols.tuning``: "ferret-lat")."""
    if kind.startswith("ferret"):
        return _log2_options(n_options)
    return IKNP_WIDTH if n_options == 2 else KK_WIDTH


def cot_cost_bits(kind: str, k: int) -> int:
    """Bits (both parties) of one correlated OT with a k-bit correlation on engine ``kind``."""
    return ot_base_bits(kind) + k


def kkot_cost_bits(kind: str, n_options: int, k: int) -> int:
    """Bits (both parties) of one chosen-message 1-of-N OT with k-bit messages (N = 2: 1-of-2 OT)."""
    return ot_base_bits(kind, n_options) + n_options * k


def ot_kind(kind: str | None) -> str:
    """The OT engine ``kind`` names, checked (None: :data:`DEFAULT_KIND`)."""
    kind = DEFAULT_KIND if kind is None else kind
    if kind not in KINDS:
        raise ParameterError(f"unknown OT engine {kind!r}; choose from {', '.join(KINDS)}")
    return kind


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)


def _bytes_to_values(raw: np.ndarray, count: int, bits: int, narrow: bool = False) -> np.ndarray:
    """(n, count·vb) pseudorandom bytes → (n, count) values of ``bits`` bits.

    uint64, or the narrowest dtype holding ``bits`` when ``narrow`` (the 1-of-N sender's bulk)."""
    vb = (bits + 7) // 8
    n = raw.shape[0]
    if narrow and vb in (1, 2, 4):
        vals = np.ascontiguousarray(raw[:, : count * vb]).view(f"<u{vb}")
        if bits < 8 * vb:
            vals = vals & vals.dtype.type((1 << bits) - 1)
        return vals.reshape(n, count)
    if vb in (1, 2, 4, 8):
        vals = np.ascontiguousarray(raw).view(f"<u{vb}").astype(np.uint64)
    else:
        wide = np.zeros((n * count, 8), np.uint8)
        wide[:, :vb] = raw.reshape(n * count, vb)
        vals = wide.view("<u8").astype(np.uint64, copy=False)
    vals = vals.reshape(n, count)
    if bits % 8 and vals.dtype == np.uint64:
        vals &= _mask(bits)
    return vals


def _check_values(x: np.ndarray, bits: int, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "ui":
        raise ParameterError(f"{what} must be an integer array, got dtype {x.dtype}")
    if x.dtype.kind == "i" and x.size and x.min() < 0:
        raise ParameterError(f"{what} has negative entries; pass ring elements in [0, 2^{bits})")
    if x.dtype.kind == "i" or x.dtype.itemsize < 8 and bits > 8 * x.dtype.itemsize:
        x = x.astype(np.uint64)
    if bits < 64 and x.size and int(x.max()) >> bits:
        raise ParameterError(f"{what} has values that do not fit in {bits} bits")
    return x


def _check_choice(choice: np.ndarray, n_options: int) -> np.ndarray:
    c = np.asarray(choice)
    if c.ndim != 1:
        raise ParameterError(f"choices must be a 1-D array, got shape {c.shape}")
    if c.dtype == bool:
        c = c.astype(np.uint8)
    if c.size and (c.dtype.kind not in "ui" or c.min() < 0 or c.max() >= n_options):
        raise ParameterError(f"choices must be integers in [0, {n_options})")
    return c.astype(np.uint64, copy=False)


def _log2_options(n_options: int) -> int:
    k = int(n_options).bit_length() - 1
    if n_options < 2 or (1 << k) != n_options or k > MAX_LOG_N:
        raise ParameterError(f"1-of-N OT needs N a power of two in 2..{1 << MAX_LOG_N}, got {n_options}")
    return k


class OTEngine:
    """All OT functionality of one party (``role`` = ALICE or BOB) over ``chan``.

    ``kind``: ``"ferret"`` or ``"iknp"`` (see the module docstring); ``ferret``: the Ferret
    parameter set's name (``ot.ferret.PARAMS``; None: the default)."""

    def __init__(self, role: int, chan: Channel, prg: PRG | None = None, kind: str = DEFAULT_KIND,
                 ferret: str | None = None):
        if role not in (ALICE, BOB):
            raise ParameterError(f"role must be ALICE (0) or BOB (1), got {role!r}")
        self.kind = ot_kind(kind)
        self.ferret_params = ferret_params(ferret) if kind == "ferret" else None
        self._fs: FerretSender | None = None
        self._fr: FerretReceiver | None = None
        self._f_offsets: np.ndarray | None = None  # Ferret sender: (0, Δ)
        self.role = role
        self.chan = chan
        self.prg = prg if prg is not None else PRG()
        self.hash = CRHash()
        self._iknp_s: ExtSender | None = None
        self._iknp_r: ExtReceiver | None = None
        self._kk_s: ExtSender | None = None
        self._kk_r: ExtReceiver | None = None
        self._kk_offsets: dict[int, np.ndarray] = {}  # 1-of-2^k sender: codewords ∧ s, per k
        self._iknp_offsets: np.ndarray | None = None  # IKNP sender: (0, s)

    # ------------------------------------------------------------------ set-up
    def setup(self) -> "OTEngine":
        """Base OTs and bootstrapping of the extensions (both parties call it): IKNP both ways, then
        KK13 both ways (iknp) or Ferret both ways (ferret, whose 1-of-N OTs need no KK13)."""
        self._kk_offsets = {}
        self._iknp_offsets = None
        self._kk_s = self._kk_r = None
        kk = KK_WIDTH if self.kind == "iknp" else 0  # Ferret does 1-of-N without KK13: no seeds
        if self.role == ALICE:
            s = self.prg.bits(IKNP_WIDTH)
            self._iknp_s = ExtSender(self.chan, s, base_ot_recv(self.chan, s))
            m0, m1 = self._seed_pairs_send(IKNP_WIDTH + kk)
            self._iknp_r = ExtReceiver(self.chan, m0[:IKNP_WIDTH], m1[:IKNP_WIDTH])
            if kk:
                self._kk_r = ExtReceiver(self.chan, m0[IKNP_WIDTH:], m1[IKNP_WIDTH:])
                c = self.prg.bits(KK_WIDTH)
                self._kk_s = ExtSender(self.chan, c, self._seed_recv(c))
        else:
            k0, k1 = base_ot_send(self.chan, IKNP_WIDTH)
            self._iknp_r = ExtReceiver(self.chan, k0, k1)
            c = self.prg.bits(IKNP_WIDTH + kk)
            seeds = self._seed_recv(c)
            self._iknp_s = ExtSender(self.chan, c[:IKNP_WIDTH], seeds[:IKNP_WIDTH])
            if kk:
                self._kk_s = ExtSender(self.chan, c[IKNP_WIDTH:], seeds[IKNP_WIDTH:])
                m0, m1 = self._seed_pairs_send(KK_WIDTH)
                self._kk_r = ExtReceiver(self.chan, m0, m1)
        if self.kind == "ferret":
            self._ferret_setup()
        return self

    def _ferret_setup(self) -> None:
        """Seed Ferret in both directions (ALICE's Δ first) with raw IKNP COTs and run the first
        rounds: the IKNP sender's rows q_i = t_i ⊕ c_i·s are COTs with Δ = s."""
        p = self.ferret_params
        self._f_offsets = None
        for sender in (ALICE, BOB):
            if self.role == sender:
                ext = self._need(self._iknp_s)
                q, _ = ext.extend(_pad8(p.base))
                delta, keys = bootstrap_sender(q[:p.base], ext.s)
                self._fs = FerretSender(self.chan, p, delta, keys, PRG(self.prg.bytes(16).tobytes()))
            else:
                c = self.prg.bits(p.base)
                t, _ = self._iknp_recv_pads(c)
                self._fr = FerretReceiver(self.chan, p, bootstrap_receiver(t, c))
        for sender in (ALICE, BOB):
            (self._fs if self.role == sender else self._fr).run_round()

    @property
    def offline(self) -> dict:
        """What COT generation has cost this party so far: seconds, bytes sent, rounds (Ferret
        rounds in both directions; zeros for IKNP, which has no input-independent phase)."""
        ends = [e for e in (self._fs, self._fr) if e is not None]
        return {"seconds": sum(e.seconds for e in ends), "bytes_sent": sum(e.bytes_sent for e in ends),
                "rounds": sum(e.rounds for e in ends)}

    def _seed_pairs_send(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        m0, m1 = self._iknp_send_keys(n, 64, (2,))
        return m0.view(np.uint8).reshape(n, 16), m1.view(np.uint8).reshape(n, 16)

    def _seed_recv(self, choice: np.ndarray) -> np.ndarray:
        return self._iknp_recv_keys(choice, 64, (2,)).view(np.uint8).reshape(len(choice), 16)

    def _need(self, ext):
        if ext is None:
            raise RuntimeError("OTEngine.setup() has not been run")
        return ext

    # ------------------------------------------------------------------ hashing helpers
    def _domain(self, kk: bool, sender: int, ferret: bool = False) -> int:
        return 4 * int(ferret) + 2 * int(kk) + sender

    def _hash_values(self, pads: np.ndarray, index: np.ndarray, domain: int,
                     mshape: tuple, bits: int, offsets: np.ndarray | None = None,
                     narrow: bool = False) -> np.ndarray:
        """Hash pads to values of ``bits`` bits, shape (n, *mshape).

        With ``offsets`` (N, w), the pads are pads[i] ⊕ offsets[x] and mshape's first axis is N.
        """
        mshape = tuple(mshape)
        n = pads.shape[0]
        if offsets is None:
            count = int(math.prod(mshape))
            raw = self.hash.hash_expand(pads, index, domain, count * ((bits + 7) // 8))
        else:
            count = int(math.prod(mshape[1:]))
            raw = self.hash.hash_pads(pads, offsets, index, domain, count * ((bits + 7) // 8))
        return _bytes_to_values(raw, count, bits, narrow).reshape((n,) + mshape)

    # ------------------------------------------------------------------ IKNP core
    def _iknp_recv_pads(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ext = self._need(self._iknp_r)
        n = choice.size
        col = pack_bits(choice, _pad8(n))
        t, idx = ext.extend(np.broadcast_to(col, (IKNP_WIDTH, col.size)))
        return t[:n], idx[:n]

    def _iknp_send_keys(self, n: int, bits: int, mshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Sender: the keys H(q_i) and H(q_i ⊕ Δ) as values, each (n, *mshape)."""
        ext = self._need(self._iknp_s)
        q, idx = ext.extend(_pad8(n))
        offsets = self._iknp_offsets
        if offsets is None:  # (0, s): fixed for the session (reset by setup)
            offsets = self._iknp_offsets = np.stack([np.zeros_like(ext.s), ext.s])
        keys = self._hash_values(q[:n], idx[:n], self._domain(False, self.role), (2,) + tuple(mshape),
                                 bits, offsets)
        return keys[:, 0], keys[:, 1]

    def _iknp_recv_keys(self, choice: np.ndarray, bits: int, mshape: tuple) -> np.ndarray:
        t, idx = self._iknp_recv_pads(choice)
        return self._hash_values(t, idx, self._domain(False, 1 - self.role), mshape, bits)

    # ------------------------------------------------------------------ Ferret core
    def _f_send_keys(self, n: int, bits: int, mshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Sender: the receiver's choice flips d in, then keys H(K ⊕ d·Δ) and H(K ⊕ (1 ⊕ d)·Δ).

        Taking the COTs may run new rounds (their messages go out before this OT's reply)."""
        d = self._f_recv_flips(n)
        fs = self._need(self._fs)
        q, idx = fs.take(n)
        q = q ^ (d.astype(np.uint64)[:, None] * fs.delta)
        if self._f_offsets is None:
            self._f_offsets = np.stack([np.zeros_like(fs.delta), fs.delta])
        keys = self._hash_values(q, idx, self._domain(False, self.role, True), (2,) + tuple(mshape),
                                 bits, self._f_offsets)
        return keys[:, 0], keys[:, 1]

    def _f_recv_flips(self, n: int) -> np.ndarray:
        raw = self.chan.recv_bytes((n + 7) // 8, what="OT choice flips")
        return np.unpackbits(np.frombuffer(raw, np.uint8), count=n, bitorder="little")

    def _f_recv_start(self, choice: np.ndarray) -> tuple:
        """Receiver: take COTs with random bits b, send d = c ⊕ b; returns the blocks' ticket."""
        b, ticket = self._need(self._fr).take(choice.size)
        self.chan.send_bytes(np.packbits(b ^ choice.astype(np.uint8), bitorder="little").tobytes())
        return ticket

    def _f_recv_keys(self, ticket: tuple, bits: int, mshape: tuple) -> np.ndarray:
        m, idx = self._fr.blocks(ticket)
        return self._hash_values(m, idx, self._domain(False, 1 - self.role, True), mshape, bits)

    def _rot_send_keys(self, n: int, bits: int, mshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "ferret":
            return self._f_send_keys(n, bits, tuple(mshape))
        return self._iknp_send_keys(n, bits, tuple(mshape))

    def _rot_recv_start(self, choice: np.ndarray, bits: int, mshape: tuple):
        """Receiver's first half of random OTs: a callable returning the keys m_c. Ferret keys are
        computed only then, since the blocks may wait for round messages the sender sends along
        with its reply; IKNP keys are ready at once."""
        if self.kind == "ferret":
            ticket = self._f_recv_start(choice)
            return lambda: self._f_recv_keys(ticket, bits, tuple(mshape))
        keys = self._iknp_recv_keys(choice, bits, tuple(mshape))
        return lambda: keys

    # ------------------------------------------------------------------ random correlated OT
    def rcot_send(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Random correlated OT (raw, unhashed), sender side: returns (Δ (2,), keys K (n, 2)) as
        uint64 blocks, the same Δ for the whole session.

        Functionality: the receiver gets random bits b and M_i = K_i ⊕ b_i·Δ. Cost: ferret: no
        message (b·n bits amortised in rounds); iknp: 128·n bits from the receiver, 1 round.
        """
        if self.kind == "ferret":
            fs = self._need(self._fs)
            return fs.delta, fs.take(n, index=False)[0]
        ext = self._need(self._iknp_s)
        return ext.s, ext.extend(_pad8(n))[0][:n]

    def rcot_recv(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Random correlated OT, receiver side: returns (b (n,) uint8, M (n, 2) uint64)."""
        if self.kind == "ferret":
            fr = self._need(self._fr)
            bits, blocks = np.empty(n, np.uint8), np.empty((n, 2), np.uint64)
            lo = 0
            while lo < n:  # within one round at a time: its blocks are coded in one pass
                hi = min(n, lo + fr.left())
                fr.blocks(fr.take(hi - lo, out=bits[lo:hi], index=False)[1], out=blocks[lo:hi])
                lo = hi
            return bits, blocks
        c = self.prg.bits(n)
        return c, self._iknp_recv_pads(c)[0]

    # ------------------------------------------------------------------ random OT, random choice
    def rrot_send(self, n: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """Random OT with a random choice, sender side: random (m0, m1) of ``bits`` bits, each (n,).

        Functionality: the receiver gets a random bit b and m_b. Cost: ferret: nothing (the COTs
        themselves, hashed: m_v = H(K ⊕ v·Δ)); iknp: 128·n bits from the receiver, 1 round (the
        receiver's :meth:`rrot_recv_start` sends them)."""
        if self.kind == "ferret":
            fs = self._need(self._fs)
            q, idx = fs.take(n)
            if self._f_offsets is None:
                self._f_offsets = np.stack([np.zeros_like(fs.delta), fs.delta])
            keys = self._hash_values(q, idx, self._domain(False, self.role, True), (2,), bits, self._f_offsets)
        else:
            keys = np.stack(self._iknp_send_keys(n, bits, ()), axis=1)
        return keys[:, 0], keys[:, 1]

    def rrot_recv_start(self, n: int, bits: int) -> tuple[np.ndarray, PendingROT]:
        """Random OT with a random choice, receiver side: (b (n,) uint8, pending whose ``finish()``
        returns m_b). Ferret: ``finish()`` may read a round message of the sender, so call it
        where the protocol reads the sender's next message in this direction."""
        if self.kind == "ferret":
            b, ticket = self._need(self._fr).take(n)
            return b, PendingROT(lambda: self._f_recv_keys(ticket, bits, ()))
        c = self.prg.bits(n)
        keys = self._iknp_recv_keys(c, bits, ())
        return c, PendingROT(lambda: keys)

    # ------------------------------------------------------------------ random OT
    def rot_send(self, n: int, bits: int, mshape: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """Random 1-of-2 OT, sender side: returns random (m0, m1), each (n, *mshape).

        Functionality: the receiver learns m_c for its choice c; the sender learns nothing.
        Cost: 128·n (iknp) or n (ferret) bits from the receiver, 1 round.
        """
        return self._rot_send_keys(n, bits, tuple(mshape))

    def rot_recv(self, choice: np.ndarray, bits: int, mshape: tuple = ()) -> np.ndarray:
        """Random 1-of-2 OT, receiver side: returns m_c, (n, *mshape).

        With Ferret this may wait for a round message from the sender (when the OTs start a new
        round), so a party that receives before it sends, while its peer does the same, must use
        :meth:`rot_recv_start` instead."""
        return self.rot_recv_start(choice, bits, mshape).finish()

    def rot_recv_start(self, choice: np.ndarray, bits: int, mshape: tuple = ()) -> "PendingROT":
        """First half of :meth:`rot_recv`: sends this side's message now; ``finish()`` returns m_c.

        Call ``finish()`` where the protocol reads the sender's next message in this direction
        (a refill's round message comes just before it)::

            pending = ot.rot_recv_start(my_choice, bits)   # my choice message out
            m0, m1 = ot.rot_send(n_peer, bits)             # peer's choice message in
            ot.chan.send(my_corrections)
            mc = pending.finish()                          # then the peer's corrections in
        """
        return PendingROT(self._rot_recv_start(_check_choice(choice, 2), bits, tuple(mshape)))

    # ------------------------------------------------------------------ chosen-message OT
    def send(self, m0: np.ndarray, m1: np.ndarray, bits: int) -> None:
        """Chosen-message 1-of-2 OT, sender side. m0, m1: (n, *mshape) values of ``bits`` bits.

        Functionality: the receiver learns m_c. Cost: 128·n (iknp) or n (ferret) + 2·n·|m| bits,
        2 rounds.
        """
        m0 = _check_values(m0, bits, "OT message m0")
        m1 = _check_values(m1, bits, "OT message m1")
        if m0.shape != m1.shape or m0.ndim == 0:
            raise ParameterError(f"OT messages must have equal shapes (n, ...), got {m0.shape}, {m1.shape}")
        k0, k1 = self._rot_send_keys(m0.shape[0], bits, m0.shape[1:])
        self.chan.send(np.stack([m0 ^ k0, m1 ^ k1], axis=1), bits)

    def recv(self, choice: np.ndarray, bits: int, mshape: tuple = ()) -> np.ndarray:
        """Chosen-message 1-of-2 OT, receiver side: returns m_c, (n, *mshape)."""
        return _PendingOT(self, choice, bits, tuple(mshape)).finish()

    # ------------------------------------------------------------------ correlated OT
    def cot_send(self, corr: np.ndarray, bits: int) -> np.ndarray:
        """Correlated OT over Z_{2^bits}, sender side. corr: (n, *mshape).

        Functionality: the sender gets random x0, the receiver with choice c gets x0 + c·corr
        (mod 2^bits). Cost: 128·n (iknp) or n (ferret) + n·|corr| bits, 2 rounds.
        """
        corr = _check_values(corr, bits, "COT correlation")
        if corr.ndim == 0:
            raise ParameterError("COT correlation must have shape (n, ...)")
        k0, k1 = self._rot_send_keys(corr.shape[0], bits, corr.shape[1:])
        self.chan.send((k0 + corr - k1) & _mask(bits), bits)
        return k0

    def cot_recv(self, choice: np.ndarray, bits: int, mshape: tuple = ()) -> np.ndarray:
        """Correlated OT, receiver side: returns x0 + c·corr, (n, *mshape)."""
        return self.cot_recv_start(choice, bits, mshape).finish()

    def cot_recv_start(self, choice: np.ndarray, bits: int, mshape: tuple = ()) -> "PendingCOT":
        """First half of :meth:`cot_recv`: sends the extension matrix now, receives on ``finish()``.

        Lets a party run OTs in both directions in the same two rounds::

            pending = ot.cot_recv_start(my_choice, bits)   # round 1: my U
            x0 = ot.cot_send(my_corr, bits)                # peer's U in, my y out (round 2)
            mine = pending.finish()                        # peer's y in
        """
        c = _check_choice(choice, 2)
        return PendingCOT(self.chan, c, self._rot_recv_start(c, bits, tuple(mshape)), bits, tuple(mshape))

    def cot_both(self, corr: np.ndarray, choice: np.ndarray, bits: int,
                 mshape: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """Correlated OTs in both directions at once (2 rounds in all).

        This party sends with correlation ``corr`` and receives with ``choice`` (message shape
        ``mshape``); returns (x0 as sender, x0' + c·corr' as receiver).
        """
        pending = self.cot_recv_start(choice, bits, mshape)
        x0 = self.cot_send(corr, bits)
        return x0, pending.finish()

    # ------------------------------------------------------------------ 1-of-N OT (KK13)
    def kkot_send(self, msgs: np.ndarray, bits: int) -> None:
        """Chosen-message 1-of-N OT, sender side. msgs: (n, N, *mshape), N = 2^k, 1 ≤ k ≤ 8.

        Functionality: the receiver learns msgs[i, r_i]. Cost: 256·n (iknp: KK13) or k·n (ferret:
        k random OTs) + N·n·|m| bits, 2 rounds (N = 2 is the chosen-message 1-of-2 OT).
        """
        msgs = _check_values(msgs, bits, "1-of-N OT messages")
        if msgs.ndim < 2:
            raise ParameterError(f"1-of-N OT messages must have shape (n, N, ...), got {msgs.shape}")
        n, n_opt = msgs.shape[:2]
        k = _log2_options(n_opt)
        if k == 1:
            return self.send(msgs[:, 0], msgs[:, 1], bits)
        if self.kind == "ferret":
            return self._f_kkot_send(msgs, k, bits)
        ext = self._need(self._kk_s)
        q, idx = ext.extend(_pad8(n))
        offsets = self._kk_offsets.get(k)
        if offsets is None:  # C(x) ∧ s for every option x: fixed for the session, made once per N
            offsets = hadamard_codewords(k, KK_WIDTH).view("<u8").astype(np.uint64) & ext.s  # (N, 4)
            self._kk_offsets[k] = offsets
        dom = self._domain(True, self.role)
        mshape = msgs.shape[2:]
        narrow = (bits + 7) // 8 in (1, 2, 4)  # keep the bulk in uint8/16/32
        if narrow:
            msgs = msgs.astype(value_dtype(bits), copy=False)
        for lo, hi in self._kk_chunks(n, n_opt):
            keys = self._hash_values(q[lo:hi], idx[lo:hi], dom, (n_opt,) + mshape, bits, offsets, narrow)
            keys ^= msgs[lo:hi]
            self.chan.send(keys, bits)

    def kkot_recv(self, choice: np.ndarray, n_options: int, bits: int, mshape: tuple = ()) -> np.ndarray:
        """Chosen-message 1-of-N OT, receiver side: returns msgs[i, choice_i], (n, *mshape)."""
        return self.kkot_recv_start(choice, n_options, bits, mshape).finish()

    def kkot_recv_start(self, choice: np.ndarray, n_options: int, bits: int,
                        mshape: tuple = ()) -> "PendingKK":
        """First half of :meth:`kkot_recv` (sends the extension matrix now; ``finish()`` receives).

        Lets both parties be 1-of-N senders at once, each hashing on its own core::

            pending = ot.kkot_recv_start(my_choices, N, bits)   # my U out
            ot.kkot_send(my_messages, bits)                      # peer's U in, my messages out
            mine = pending.finish()                              # peer's messages in
        """
        k = _log2_options(n_options)
        if k == 1:
            return _PendingOT(self, choice, bits, tuple(mshape))
        c = _check_choice(choice, n_options)
        n = c.size
        if self.kind == "ferret":
            ticket = self._f_recv_start(((c[:, None] >> np.arange(k, dtype=np.uint64)) & ONE).ravel())
            return PendingKK(self, c, lambda: self._f_kkot_recv_keys(ticket, c, k, bits, tuple(mshape)),
                             n_options, bits, tuple(mshape))
        ext = self._need(self._kk_r)
        cols = hadamard_columns(np.concatenate([c, np.zeros(_pad8(n) - n, np.uint64)]), k, KK_WIDTH)
        t, idx = ext.extend(cols)
        keys = self._hash_values(t[:n], idx[:n], self._domain(True, 1 - self.role), mshape, bits)
        return PendingKK(self, c, lambda: keys, n_options, bits, tuple(mshape))

    # ------------------------------------------------------------------ 1-of-N OT from random OTs
    def _f_kkot_send(self, msgs: np.ndarray, k: int, bits: int) -> None:
        """Ferret 1-of-2^k sender: k random OTs per instance, option x masked by
        TCCR(⊕_j g_j^{x_j}, (i, x)) (see the module docstring)."""
        n, n_opt = msgs.shape[:2]
        mshape = msgs.shape[2:]
        d = self._f_recv_flips(n * k)
        fs = self._need(self._fs)
        q, idx = fs.take(n * k)
        q = q ^ (d.astype(np.uint64)[:, None] * fs.delta)
        if self._f_offsets is None:
            self._f_offsets = np.stack([np.zeros_like(fs.delta), fs.delta])
        g = self.hash.hash_pads(q, self._f_offsets, idx, self._domain(False, self.role, True), 16)
        g = np.ascontiguousarray(g).view(np.uint64).reshape(n, k, 2, 2)  # [instance, j, bit value, word]
        tags = idx[::k] << np.uint64(MAX_LOG_N)  # (instance's first COT, option): a unique tweak
        dom = self._domain(True, self.role, True)
        count = int(math.prod(mshape))
        narrow = (bits + 7) // 8 in (1, 2, 4)
        if narrow:
            msgs = msgs.astype(value_dtype(bits), copy=False)
        opts = np.arange(n_opt, dtype=np.uint64)
        for lo, hi in self._kk_chunks(n, n_opt):
            pads = option_pads(g[lo:hi], n_opt)  # (m·N, 2), row i·N + x
            tweaks = (tags[lo:hi, None] | opts).ravel()
            raw = np.concatenate([self.hash.hash_expand(pads[a:a + _HASH_ROWS], tweaks[a:a + _HASH_ROWS], dom,
                                                        count * ((bits + 7) // 8))
                                  for a in range(0, pads.shape[0], _HASH_ROWS)])  # cache-sized pieces
            keys = _bytes_to_values(raw, count, bits, narrow).reshape((hi - lo, n_opt) + mshape)
            keys ^= msgs[lo:hi]
            self.chan.send(keys, bits)

    def _f_kkot_recv_keys(self, ticket: tuple, c: np.ndarray, k: int, bits: int, mshape: tuple) -> np.ndarray:
        m, idx = self._fr.blocks(ticket)
        n = c.size
        g = self.hash.hash_expand(m, idx, self._domain(False, 1 - self.role, True), 16)
        pad = np.bitwise_xor.reduce(g.view(np.uint64).reshape(n, k, 2), axis=1)
        tags = (idx[::k] << np.uint64(MAX_LOG_N)) | c
        return self._hash_values(pad, tags, self._domain(True, 1 - self.role, True), mshape, bits)

    @staticmethod
    def _kk_chunks(n: int, n_options: int):
        step = max(1, _KK_CHUNK_KEYS // n_options)
        for lo in range(0, n, step):
            yield lo, min(n, lo + step)


class PendingROT:
    """A random-OT receiver whose keys may wait for a Ferret round message (``rot_recv_start``)."""

    def __init__(self, keys):
        self.keys = keys

    def finish(self) -> np.ndarray:
        return self.keys()


class PendingCOT:
    """A correlated-OT receiver waiting for the sender's correction (see ``cot_recv_start``)."""

    def __init__(self, chan: Channel, choice: np.ndarray, keys, bits: int, mshape: tuple):
        self.chan, self.choice, self.keys, self.bits, self.mshape = chan, choice, keys, bits, mshape

    def finish(self) -> np.ndarray:
        keys = self.keys()  # (first: may read Ferret round messages sent before the reply)
        y = self.chan.recv((self.choice.size,) + self.mshape, self.bits)
        sel = self.choice.reshape((-1,) + (1,) * len(self.mshape)).astype(bool)
        return np.where(sel, (y + keys) & _mask(self.bits), keys)


class PendingKK:
    """A 1-of-N OT receiver waiting for the sender's masked messages (see ``kkot_recv_start``)."""

    def __init__(self, engine: "OTEngine", choice, keys, n_options: int, bits: int, mshape: tuple):
        self.engine, self.choice, self.keys = engine, choice, keys
        self.n_options, self.bits, self.mshape = n_options, bits, mshape

    def finish(self) -> np.ndarray:
        keys = self.keys()
        c, n_opt, bits = self.choice, self.n_options, self.bits
        n = c.size
        width = int(math.prod(self.mshape))
        out = np.empty((n, width), np.uint64)
        for lo, hi in OTEngine._kk_chunks(n, n_opt):
            count = (hi - lo) * n_opt * width
            buf = self.engine.chan.recv_bytes(packed_nbytes(count, bits), what="1-of-N OT messages")
            first = (np.arange(hi - lo) * n_opt + c[lo:hi].astype(np.int64)) * width
            pos = (first[:, None] + np.arange(width)).ravel()
            out[lo:hi] = unpack_at(buf, count, bits, pos).reshape(hi - lo, width)
        return out.reshape((n,) + self.mshape) ^ keys


class _PendingOT:
    """N = 2: the chosen-message 1-of-2 OT, split the same way."""

    def __init__(self, engine: "OTEngine", choice, bits: int, mshape: tuple):
        self.engine, self.bits, self.mshape = engine, bits, mshape
        self.choice = _check_choice(choice, 2)
        self.keys = engine._rot_recv_start(self.choice, bits, mshape)

    def finish(self) -> np.ndarray:
        keys = self.keys()
        c = self.choice
        y = self.engine.chan.recv((c.size, 2) + self.mshape, self.bits)
        return y[np.arange(c.size), c.astype(np.intp)] ^ keys
