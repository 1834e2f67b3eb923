"""Ferret silent correlated OT (Yang, Weng, Lan, Zhang, Wang, CCS 2020), semi-honest version.

Output: random correlated OTs (COTs) with one global Δ per direction. The sender holds Δ and keys
K_i, the receiver random choice bits b_i and M_i = K_i ⊕ b_i·Δ (128-bit blocks). Following
emp-ot, the least significant bit carries the choice: LSB(Δ) = 1 and LSB(K_i) = 0, so
LSB(M_i) = b_i (Δ has 127 secret bits).

One round turns ``base = k + t·depth`` COTs into ``n = t·2^depth``, of which ``base`` are kept to
seed the next round (the first round is seeded from IKNP, see :func:`bootstrap_sender`):

1. **Single-point COTs (Half-Tree GGM).** For each of t trees the sender builds a correlated GGM
   tree of depth ``depth`` (Guo, Yang, Wang, Zhang, Xie, Liu, Zhao, Eurocrypt 2023, "Half-Tree",
   ePrint 2022/1431, Fig. 3): the root's children are (s, s ⊕ Δ); a node x has children
   (H(x), x ⊕ H(x)) with H the circular correlation-robust ``π(σ(x)) ⊕ σ(x)`` (GKWY). Then the
   XOR of each level is Δ, so one block per level suffices: the sender sends c_i = K0_i ⊕ K_i
   (K0_i the XOR of the level's left children, K_i the key of a reserved COT); the receiver, whose
   reserved choice bit b_i fixes its path bit α_i = ¬b_i, gets c_i ⊕ M_i = K0_i ⊕ b_i·Δ, the XOR
   of the side it does not walk, and so every node off its path. Leaves have their LSB cleared;
   the punctured leaf is filled with the XOR of the other leaves ⊕ 1, which is V_α ⊕ Δ. So
   W ⊕ V = e·Δ with e the unit vector at α (regular noise: one error per tree).
2. **Primal LPN with a local linear code.** Each output is y_i = ⊕_{j<10} u_{A(i,j)} ⊕ e_i with
   d = 10 positions A(i, j) in [0, k) per row, drawn from AES-CTR under a public fixed seed (the
   same public random matrix every round); u are the choice bits of k reserved COTs. Blocks follow
   linearly: K_i = ⊕_j K_{A(i,j)} ⊕ V_i and M_i = ⊕_j M_{A(i,j)} ⊕ W_i = K_i ⊕ y_i·Δ.

Communication: the sender sends t·depth blocks per round, the receiver nothing; one message.

Parameters (t, log2 k, depth) are emp-ot's Ferret LPN sets (emp-ot/tuning.h, "ferret_b10" ..
"ferret_b13"), chosen there "to give ~128-bit security against the published regular-LPN attacks
(Gauss / SD-ISD / BJMM / hybrid / ...) per the lpnestimator", with LPN row weight d = 10 ("not
tunable"). This implementation does not re-derive those estimates; every set here carries that
claimed 128-bit computational security (plus the hash assumptions of GKWY and Half-Tree, in the
random-permutation model for fixed-key AES). Bits per COT below = 128·t·depth / (n − base).

=====  =====  ======  =====  ===========  ========  ===========
name   t      log2 k  depth  n            usable    bits / COT
=====  =====  ======  =====  ===========  ========  ===========
b13    1900   19      13     15,564,800   15.0 M    0.21
b12    1520   18      12      6,225,920    5.9 M    0.39
b11    1170   17      11      2,396,160    2.25 M   0.73
b10     850   16      10        870,400    0.80 M   1.37
=====  =====  ======  =====  ===========  ========  ===========

Semi-honest only: no consistency check (emp-ot's malicious version spends 128 more COTs per round
on one); a malicious sender could make the receiver's outputs inconsistent.

Computation and memory, per round and end: about n AES calls for the trees (one per inner node,
Half-Tree), expanded 16 trees at a time so that a level's nodes stay in cache; n·d = 10·n random
16-byte reads from the table of k reserved blocks (2 MB for b11: this CPU's L2) plus 40·n bytes
of AES-CTR for the code's indices — the LPN code is 70–80 % of a round and bounds the rate
(benchmarks/RESULTS.md, "Silent OT"). Each end generates every round into one reused buffer of
n blocks (38 MB for b11) and copies the COTs it hands out of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import ParameterError
from ..transport import Channel
from . import _kernels as _kern
from .aes import PRG, CRHash

LPN_D = 10  #: non-zeros per row of the LPN code
_LPN_SEED = b"sirnn/ferret/lpn"  #: public seed of the LPN matrix (the same for everyone)
_LPN_CHUNK = 1 << 12  #: outputs whose code indices are drawn at once (160 KB of indices)
_TREES = 16  #: GGM trees expanded together: their nodes (512 KB at depth 11) stay in cache
_LSB = np.uint64(1)
_NOT_LSB = ~np.uint64(1)
_ALL = ~np.uint64(0)


@dataclass(frozen=True)
class FerretParams:
    """One Ferret parameter set: t trees of depth ``depth``, LPN dimension k = 2^log_k."""

    name: str
    t: int
    log_k: int
    depth: int

    @property
    def k(self) -> int:
        return 1 << self.log_k

    @property
    def n(self) -> int:
        """COTs produced per round."""
        return self.t << self.depth

    @property
    def base(self) -> int:
        """COTs a round consumes (kept from the previous round): k for LPN, t·depth for the trees."""
        return self.k + self.t * self.depth

    @property
    def usable(self) -> int:
        """COTs a round hands out."""
        return self.n - self.base

    @property
    def message_bytes(self) -> int:
        """Bytes the sender sends per round."""
        return 16 * self.t * self.depth

    @property
    def bits_per_cot(self) -> float:
        return 8 * self.message_bytes / self.usable


PARAMS = {p.name: p for p in (FerretParams("b13", 1900, 19, 13), FerretParams("b12", 1520, 18, 12),
                              FerretParams("b11", 1170, 17, 11), FerretParams("b10", 850, 16, 10))}
DEFAULT_PARAMS = "b11"


def ferret_params(name: str | FerretParams | None) -> FerretParams:
    if isinstance(name, FerretParams):
        return name
    p = PARAMS.get(DEFAULT_PARAMS if name is None else name)
    if p is None:
        raise ParameterError(f"unknown Ferret parameter set {name!r}; choose from {', '.join(PARAMS)}")
    return p


# ------------------------------------------------------------------ LPN
class LpnRows:
    """The public LPN matrix A (k columns, k a power of two), row after row: each call codes the
    next rows. Row i holds LPN_D uint32 words of the AES-CTR stream under _LPN_SEED (bytes
    [4·LPN_D·i, 4·LPN_D·(i + 1))), each reduced mod k. The stream is drawn in chunks of
    _LPN_CHUNK rows straight into one reused buffer (it stays in cache next to the code table)."""

    def __init__(self, k: int):
        self.mask = np.uint32(k - 1)
        self._stream = Cipher(algorithms.AES(_LPN_SEED), modes.CTR(bytes(16))).encryptor()
        self._zeros = np.zeros(4 * LPN_D * _LPN_CHUNK, np.uint8)
        self._buf = np.empty(4 * LPN_D * _LPN_CHUNK + 16, np.uint8)  # + the block OpenSSL wants spare

    def encode(self, out: np.ndarray, pre: np.ndarray, assign: bool = False) -> None:
        """out[i] ^= ⊕_j pre[A(i, j)] for the next out.shape[0] rows (``assign``: out[i] = ...);
        ``out`` (m, 2) uint64 blocks or (m,) uint8 bits, ``pre`` (k, 2) or (k,)."""
        kernel = _kern.lpn_blocks if out.ndim == 2 else _kern.lpn_bits
        for lo in range(0, out.shape[0], _LPN_CHUNK):  # chunks of rows, not rows
            hi = min(out.shape[0], lo + _LPN_CHUNK)
            nb = 4 * LPN_D * (hi - lo)
            self._stream.update_into(memoryview(self._zeros[:nb]), memoryview(self._buf[:nb + 16]))
            kernel(out[lo:hi], pre, self._buf[:nb].view("<u4"), LPN_D, self.mask, assign)


def lpn_encode(out: np.ndarray, pre: np.ndarray, assign: bool = False) -> None:
    """out[i] ^= ⊕_j pre[A(i, j)] in place (``assign``: out[i] = ...) for the rows 0, 1, ... of
    the public code A (:class:`LpnRows`); ``out`` (n, 2) uint64 blocks or (n,) uint8 bits, ``pre``
    (k, 2) or (k,) contiguous with k a power of two."""
    LpnRows(pre.shape[0]).encode(out, np.ascontiguousarray(pre), assign)


# ------------------------------------------------------------------ Half-Tree GGM
def _expand(h: CRHash, tree: np.ndarray, half: int, leaf: bool) -> np.ndarray:
    """Expand the nodes tree[:, :half] into their children (H(x), x ⊕ H(x)): left ones in place
    of the parents, right ones at [:, half:2·half]; leaves get their LSB cleared. One AES call
    for the whole level of every tree. Returns the XOR of each tree's left and right children,
    (t, 2, 2)."""
    s = _kern.ggm_sigma(tree, half)
    sums = np.empty((tree.shape[0], 2, 2), np.uint64)
    _kern.ggm_children(tree, half, s, h.permute(s), _NOT_LSB if leaf else _ALL, sums)
    return sums


def _tree_out(out: np.ndarray | None, t: int, depth: int) -> np.ndarray:
    if out is None:
        return np.empty((t, 1 << depth, 2), np.uint64)
    if out.shape != (t, 1 << depth, 2) or out.dtype != np.uint64 or not out.flags.c_contiguous:
        raise ValueError("GGM output must be a contiguous (t, 2^depth, 2) uint64 array")
    return out


def ggm_send(h: CRHash, delta: np.ndarray, seeds: np.ndarray, depth: int,
             out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sender's trees: leaves (t, 2^depth, 2) (into ``out`` if given) and the left sums K0
    (t, depth, 2) of every level. Cost: 2^depth − 2 AES calls per tree, one per inner node
    below the root (Half-Tree), in depth − 1 OpenSSL calls for all t trees."""
    t = seeds.shape[0]
    tree = _tree_out(out, t, depth)
    k0 = np.empty((t, depth, 2), np.uint64)
    tree[:, 0] = seeds
    tree[:, 1] = seeds ^ delta
    if depth == 1:
        tree[:, :, 0] &= _NOT_LSB
    k0[:, 0] = tree[:, 0]
    for i in range(2, depth + 1):  # levels, not nodes
        k0[:, i - 1] = _expand(h, tree, 1 << (i - 1), i == depth)[:, 0]
    return tree, k0


def noise_positions(alpha: np.ndarray) -> np.ndarray:
    """Leaf index of the receiver's path in each tree; ``alpha`` (t, depth) bits, level 1 first.

    Children of node j at level i sit at j (left) and j + 2^(i-1) (right), so the path leaf is
    Σ α_i·2^(i-1)."""
    return (alpha.astype(np.int64) << np.arange(alpha.shape[1], dtype=np.int64)).sum(axis=1)


def ggm_recv(h: CRHash, alpha: np.ndarray, k_recv: np.ndarray, depth: int,
             out: np.ndarray | None = None) -> np.ndarray:
    """Receiver's trees from its path bits ``alpha`` (t, depth) and the sums K_{¬α_i} (t, depth, 2)
    of the sides it does not walk: leaves (t, 2^depth, 2) (into ``out`` if given), with
    W_α = V_α ⊕ Δ at the path leaf. Cost: the sender's AES calls (the zero path node is expanded
    as junk along with the rest) and O(t) fix-ups per level."""
    t = alpha.shape[0]
    tree = _tree_out(out, t, depth)
    a8 = np.ascontiguousarray(alpha, np.uint8)
    kr = np.ascontiguousarray(k_recv, np.uint64)
    pos = np.empty(t, np.int64)
    known = np.empty((t, 2), np.uint64)  # XOR of the known nodes of the current level
    _kern.ggm_recv_start(tree, a8, kr, pos, known, _NOT_LSB if depth == 1 else _ALL)
    for i in range(2, depth + 1):  # levels, not nodes
        sums = _expand(h, tree, 1 << (i - 1), i == depth)
        _kern.ggm_recv_level(tree, 1 << (i - 1), sums, a8, i, kr, pos, known, _NOT_LSB if i == depth else _ALL)
    # XOR of the known leaves = V_α ⊕ (Δ with LSB cleared); ⊕ 1: V_α ⊕ Δ
    _kern.ggm_recv_finish(tree, pos, known)
    return tree


# ------------------------------------------------------------------ bootstrap from IKNP
def bootstrap_sender(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IKNP sender rows q_i = t_i ⊕ c_i·s ((m, 2) uint64, before hashing) → (Δ, keys) in
    Ferret's LSB convention: Δ = s with LSB set, K_i = q_i with LSB cleared."""
    delta = s.astype(np.uint64).copy()
    delta[0] |= _LSB
    keys = q.copy()
    keys[:, 0] &= _NOT_LSB
    return delta, keys


def bootstrap_receiver(t_rows: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """IKNP receiver rows t_i for choice bits c_i → M_i = (t_i with LSB := c_i) = K_i ⊕ c_i·Δ."""
    m = t_rows.copy()
    m[:, 0] = (m[:, 0] & _NOT_LSB) | choice.astype(np.uint64)
    return m


# ------------------------------------------------------------------ the two ends
class _End:
    """Bookkeeping common to both ends: the current round's COTs and where the next one starts."""

    def __init__(self, chan: Channel, params: FerretParams):
        self.chan, self.p = chan, params
        self.hash = CRHash()
        self.pos = self.end = 0  # next unused COT of the current round, and its end
        self.count = 0  #: COTs handed out so far (their global index numbers the hash tweaks)
        self.rounds = 0
        self.seconds = 0.0  #: time spent generating rounds
        self.bytes_sent = 0  #: bytes sent for rounds

    def _index(self, m: int, index: bool) -> np.ndarray | None:
        start = self.count
        self.count += m
        return np.arange(start, start + m, dtype=np.uint64) if index else None

    def left(self) -> int:
        """COTs that :meth:`take` hands out before it starts a round (a whole round's if none)."""
        return self.end - self.pos or self.p.usable

    def _chunks(self):
        """Tree ranges [a0, a1) expanded together."""
        for a0 in range(0, self.p.t, _TREES):
            yield a0, min(self.p.t, a0 + _TREES)


def _lsb_bits(blocks: np.ndarray) -> np.ndarray:
    """LSB of every (n, 2) uint64 block as (n,) uint8, through a byte view (no n-word temporary)."""
    if np.little_endian and blocks.flags.c_contiguous:
        return blocks.view(np.uint8)[:, 0] & np.uint8(1)
    return (blocks[:, 0] & _LSB).astype(np.uint8)


def _out(out: np.ndarray | None, shape: tuple, dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"output must be a {shape} {np.dtype(dtype).name} array")
    return out


class FerretSender(_End):
    """The Δ holder of one direction. ``base``: (params.base, 2) keys from IKNP, LSB cleared.

    Memory: one round buffer (n blocks, reused by every round) and the base COTs reserved for
    the next round; :meth:`take` copies out of the buffer."""

    def __init__(self, chan: Channel, params: FerretParams, delta: np.ndarray, base: np.ndarray, prg: PRG):
        super().__init__(chan, params)
        self.delta, self.prg = delta, prg
        self._reserve = np.array(base[:params.base], np.uint64)  # the bootstrap COTs are all reserved
        self._buf: np.ndarray | None = None

    def _round(self) -> None:
        t0 = time.perf_counter()
        p, res = self.p, self._reserve
        if self._buf is None:
            self._buf = np.empty((p.n, 2), np.uint64)
        buf = self._buf
        trees = buf.reshape(p.t, 1 << p.depth, 2)
        seeds = self.prg.uint64((p.t, 2))
        k_res = res[p.k:].reshape(p.t, p.depth, 2)
        msg = np.empty((p.t, p.depth, 2), np.uint64)
        for a0, a1 in self._chunks():  # a few trees at a time, in cache
            _, k0 = ggm_send(self.hash, self.delta, seeds[a0:a1], p.depth, out=trees[a0:a1])
            np.bitwise_xor(k0, k_res[a0:a1], out=msg[a0:a1])
        self.chan.send_bytes(msg.tobytes())
        LpnRows(p.k).encode(buf, res[:p.k])
        res[:] = buf[:p.base]
        self.pos, self.end = p.base, p.n
        self.rounds += 1
        self.bytes_sent += msg.nbytes
        self.seconds += time.perf_counter() - t0

    def run_round(self) -> None:
        """Run a round now (session set-up); the rest of the current round is dropped."""
        self._round()

    def take(self, m: int, out: np.ndarray | None = None,
             index: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The next m COT keys K_i ((m, 2) uint64, written into ``out`` if given) and their
        global indices (None if not ``index``); runs (and sends) new rounds when the current one
        is used up."""
        keys, done = _out(out, (m, 2), np.uint64), 0
        while done < m:
            if self.pos == self.end:
                self._round()
            step = min(m - done, self.end - self.pos)
            keys[done:done + step] = self._buf[self.pos:self.pos + step]
            self.pos += step
            done += step
        return keys, self._index(m, index)


class _RecvRound:
    """A receiver's round: choice bits known at once, blocks once the sender's message is in.

    ``blocks`` (when ``coded``) holds the LPN part ⊕_j M_{A(i,j)} until
    :meth:`FerretReceiver._finish` adds the tree leaves (not coded: that had to wait for the
    previous round's blocks). ``reserve``: the blocks kept for the next round, once done;
    ``open``: the [round, lo, hi] parts of tickets not yet redeemed by :meth:`FerretReceiver.blocks`."""

    def __init__(self, bits, blocks=None, alpha=None, prev=None, done=False, reserve=None):
        self.bits, self.blocks, self.alpha, self.prev, self.done = bits, blocks, alpha, prev, done
        self.coded, self.reserve, self.open = blocks is not None, reserve, []


class FerretReceiver(_End):
    """The choice-bit holder of one direction. ``base``: (params.base, 2) blocks M_i from IKNP.

    A new round's choice bits need nothing from the sender, its blocks need the sender's message.
    So :meth:`take` hands out choice bits at once and :meth:`blocks` reads the pending messages, in
    order, only when the blocks are wanted: callers ask for blocks at the point of their protocol
    where they read the sender's reply, which the sender sends after its round messages.

    Memory: a round's block buffer (n blocks) is recycled for a later round once the round is
    finished, used up and every ticket on it redeemed (:meth:`blocks` copies out); a round
    that starts when the previous one is finished takes over its buffer, copying out the rows
    that unredeemed tickets still want: usually one buffer in all.
    """

    def __init__(self, chan: Channel, params: FerretParams, base: np.ndarray):
        super().__init__(chan, params)
        base = np.array(base[:params.base], np.uint64)
        self._cur = _RecvRound(_lsb_bits(base), done=True, reserve=base)
        self._pending: list[_RecvRound] = []
        self._free: list[np.ndarray] = []  # a recycled block buffer
        self._scratch: np.ndarray | None = None  # leaves of a few trees
        self.pos = self.end = 0

    def _alloc(self) -> np.ndarray:
        return self._free.pop() if self._free else np.empty((self.p.n, 2), np.uint64)

    def _release(self, r: _RecvRound, detach: bool = False) -> None:
        """Recycle r's block buffer if nothing will read it any more; ``detach``: first copy the
        rows that unredeemed tickets still want out of it (r is finished and used up)."""
        if not (r.done and r is not self._cur and r.blocks is not None and r.blocks.shape[0] == self.p.n):
            return
        if detach:
            for part in r.open:  # the part now points at a copy of its rows
                _, lo, hi = part
                part[:] = [_RecvRound(None, r.blocks[lo:hi].copy(), done=True), 0, hi - lo]
                part[0].open.append(part)
            r.open = []
        if not r.open:
            if not self._free:
                self._free.append(r.blocks)
            r.blocks = None

    def _start_round(self) -> None:
        t0 = time.perf_counter()
        p, prev = self.p, self._cur
        alpha = 1 - prev.bits[p.k:p.base].reshape(p.t, p.depth)
        if prev.done:  # usual case: code the blocks now, their LSBs are the bits
            self._cur = None
            self._release(prev, detach=True)  # prev is used up: its buffer can hold this round
            acc = self._alloc()
            LpnRows(p.k).encode(acc, prev.reserve[:p.k], assign=True)
            r = _RecvRound(_lsb_bits(acc), acc, alpha, prev)
        else:  # the previous round still waits for its message: code its bits alone
            bits = np.empty(p.n, np.uint8)
            LpnRows(p.k).encode(bits, np.ascontiguousarray(prev.bits[:p.k]), assign=True)
            r = _RecvRound(bits, None, alpha, prev)
        r.bits[(np.arange(p.t) << p.depth) + noise_positions(alpha)] ^= 1  # e: one 1 per tree
        self._pending.append(r)
        self._cur, self.pos, self.end = r, p.base, p.n
        self._release(prev)
        self.rounds += 1
        self.seconds += time.perf_counter() - t0

    def _finish(self) -> None:
        """Read the oldest pending round's message and complete its blocks."""
        t0 = time.perf_counter()
        p, r = self.p, self._pending.pop(0)
        msg = np.frombuffer(self.chan.recv_bytes(p.message_bytes, what="Ferret round message"),
                            np.uint64).reshape(p.t, p.depth, 2)
        prev = r.prev  # done: rounds finish in order
        k_recv = msg ^ prev.reserve[p.k:].reshape(p.t, p.depth, 2)
        width = 1 << p.depth
        if r.coded:  # leaves of a few trees at a time, XORed into the coded blocks
            if self._scratch is None:
                self._scratch = np.empty((_TREES, width, 2), np.uint64)
            for a0, a1 in self._chunks():
                leaves = ggm_recv(self.hash, r.alpha[a0:a1], k_recv[a0:a1], p.depth, out=self._scratch[:a1 - a0])
                rows = r.blocks[a0 * width:a1 * width]
                np.bitwise_xor(rows, leaves.reshape(-1, 2), out=rows)
        else:  # leaves in place, then the code on top
            r.blocks = self._alloc()
            trees = r.blocks.reshape(p.t, width, 2)
            for a0, a1 in self._chunks():
                ggm_recv(self.hash, r.alpha[a0:a1], k_recv[a0:a1], p.depth, out=trees[a0:a1])
            LpnRows(p.k).encode(r.blocks, prev.reserve[:p.k])
        r.reserve = r.blocks[:p.base].copy()
        r.prev, r.done, prev.reserve = None, True, None
        self._release(r)
        self.seconds += time.perf_counter() - t0

    def run_round(self) -> None:
        """Run a round now, reading its message (session set-up); the rest of the current round
        is dropped."""
        self._start_round()
        while self._pending:
            self._finish()

    def take(self, m: int, out: np.ndarray | None = None, index: bool = True) -> tuple[np.ndarray, tuple]:
        """The next m choice bits ((m,) uint8, written into ``out`` if given) and a ticket for
        their blocks (see :meth:`blocks`); ``index``: the ticket carries their global indices."""
        bits, parts, done = _out(out, (m,), np.uint8), [], 0
        while done < m:
            if self.pos == self.end:
                self._start_round()
            step = min(m - done, self.end - self.pos)
            bits[done:done + step] = self._cur.bits[self.pos:self.pos + step]
            part = [self._cur, self.pos, self.pos + step]
            parts.append(part)
            self._cur.open.append(part)
            self.pos += step
            done += step
        return bits, (parts, m, self._index(m, index))

    def blocks(self, ticket: tuple, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Blocks M_i ((m, 2) uint64, written into ``out`` if given) and global indices of the COTs
        a :meth:`take` handed out; redeem each ticket once."""
        parts, m, idx = ticket
        for r, _, _ in parts:
            while not r.done:
                self._finish()
        blocks, done = _out(out, (m, 2), np.uint64), 0
        for part in parts:
            r, lo, hi = part
            blocks[done:done + hi - lo] = r.blocks[lo:hi]
            done += hi - lo
            r.open.remove(part)
            self._release(r)
        return blocks, idx
