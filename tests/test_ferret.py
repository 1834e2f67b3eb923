"""Ferret silent OT (ot/ferret.py): the Half-Tree GGM single-point COTs, the LPN code, and whole
rounds of correlations."""

import numpy as np
import pytest

from sirnn.errors import ParameterError
from sirnn.ot.aes import PRG, CRHash
from sirnn.ot.ferret import (PARAMS, FerretParams, FerretReceiver, FerretSender, bootstrap_receiver,
                             bootstrap_sender, ferret_params, ggm_recv, ggm_send, lpn_encode,
                             noise_positions)

ONE = np.uint64(1)


class _Pipe:
    """A one-way in-memory channel (the Ferret round message goes sender → receiver only)."""

    def __init__(self):
        self.frames, self.sent = [], 0

    def send_bytes(self, payload):
        self.frames.append(bytes(payload))
        self.sent += len(payload)

    def recv_bytes(self, nbytes=None, what=""):
        frame = self.frames.pop(0)
        assert nbytes is None or len(frame) == nbytes
        return frame


def _delta(prg):
    d = prg.uint64(2).copy()
    d[0] |= ONE
    return d


@pytest.mark.parametrize("depth", [1, 2, 5, 9])
def test_half_tree_gives_single_point_cots(rng, depth):
    """W ⊕ V = e·Δ with e the unit vector at the receiver's path leaf, in every tree; all of V's
    LSBs are 0, and the receiver knows nothing but what the sender's level sums tell it."""
    h, prg, t = CRHash(), PRG(bytes(16)), 7
    delta = _delta(prg)
    leaves, k0 = ggm_send(h, delta, prg.uint64((t, 2)), depth)
    alpha = rng.integers(0, 2, (t, depth)).astype(np.uint8)
    # K_{¬α_i}: the left sum, or the right one (left ⊕ Δ, LSB-masked on the leaf level)
    k1 = k0 ^ delta
    k1[:, -1, 0] &= ~ONE
    k_recv = np.where((alpha == 0)[..., None], k1, k0)
    w = ggm_recv(h, alpha, k_recv, depth)
    pos = noise_positions(alpha)
    e = np.zeros((t, 1 << depth), bool)
    e[np.arange(t), pos] = True
    assert ((leaves[:, :, 0] & ONE) == 0).all()
    assert ((w ^ leaves) == np.where(e[..., None], delta, np.uint64(0))).all()
    assert len(set(pos.tolist())) > 1 or t == 1


def test_lpn_code_is_linear_and_same_on_bits_and_blocks(rng):
    k, n = 1 << 8, 5000
    pre = rng.integers(0, 2**63, (k, 2), dtype=np.uint64)
    bits = (pre[:, 0] & ONE).astype(np.uint8)
    out = np.zeros((n, 2), np.uint64)
    lpn_encode(out, pre)
    ob = np.zeros(n, np.uint8)
    lpn_encode(ob, bits)
    assert ((out[:, 0] & ONE).astype(np.uint8) == ob).all()
    pre2 = rng.integers(0, 2**63, (k, 2), dtype=np.uint64)
    o2, o12 = np.zeros((n, 2), np.uint64), np.zeros((n, 2), np.uint64)
    lpn_encode(o2, pre2)
    lpn_encode(o12, pre ^ pre2)
    assert (o12 == out ^ o2).all()
    # each output is the XOR of 10 rows: never all zero, about half of each bit set
    assert abs(ob.mean() - 0.5) < 0.05


def _bootstrap(p, seed=3):
    """Base COTs as the IKNP rows would give them (q ⊕ t = c·s)."""
    prg = PRG(bytes([seed]) * 16)
    s = prg.uint64(2)
    q = prg.uint64((p.base, 2))
    c = prg.bits(p.base)
    t = q ^ (c.astype(np.uint64)[:, None] * s)
    delta, keys = bootstrap_sender(q, s)
    return delta, keys, bootstrap_receiver(t, c)


@pytest.mark.parametrize("pattern", ["one_take", "many_takes"])
def test_ferret_rounds_give_a_million_cots(pattern):
    """≥ 10^6 COTs over several rounds (b10): M_i = K_i ⊕ b_i·Δ, LSB(M_i) = b_i, uniform-looking
    choice bits, fresh keys, and one message of t·depth blocks per round. ``one_take`` spans
    rounds inside one request (the receiver codes a round's bits before the previous round's
    message is in); ``many_takes`` asks for blocks after each request."""
    p = PARAMS["b10"]
    delta, keys, blocks = _bootstrap(p)
    pipe = _Pipe()
    snd = FerretSender(pipe, p, delta, keys, PRG(b"s" * 16))
    rcv = FerretReceiver(pipe, p, blocks)
    total = 1_100_000
    sizes = [total] if pattern == "one_take" else [1, 7, 300_000, 555_555, total - 855_563]
    ks, bs, ms = [], [], []
    for m in sizes:
        k, i1 = snd.take(m)
        b, ticket = rcv.take(m)
        mm, i2 = rcv.blocks(ticket)
        assert (i1 == i2).all() and k.shape == mm.shape == (m, 2) and b.shape == (m,)
        ks.append(k), bs.append(b), ms.append(mm)
    k, b, mm = np.concatenate(ks), np.concatenate(bs), np.concatenate(ms)
    assert (mm == k ^ (b.astype(np.uint64)[:, None] * delta)).all()
    assert ((mm[:, 0] & ONE) == b).all() and ((k[:, 0] & ONE) == 0).all()
    assert abs(b.mean() - 0.5) < 0.005
    assert np.unique(k[:, 1]).size == total  # no repeated key
    rounds = -(-total // p.usable)
    assert snd.rounds == rcv.rounds == rounds and not pipe.frames
    assert pipe.sent == rounds * 16 * p.t * p.depth


def test_parameter_sets():
    for p in PARAMS.values():
        assert p.n == p.t << p.depth and p.usable > 0.9 * p.n
    assert PARAMS["b11"].bits_per_cot < 1 and PARAMS["b13"].bits_per_cot < 0.25
    assert ferret_params(None) in PARAMS.values()
    assert ferret_params(FerretParams("x", 4, 6, 3)).n == 32
    with pytest.raises(ParameterError, match="Ferret parameter set"):
        ferret_params("b99")


def _setup_stats(kind):
    from sirnn.ot import OTEngine
    from sirnn.transport import ThreadedPair

    pair = ThreadedPair(lambda role, chan: OTEngine(role, chan, PRG(bytes([role]) * 16), kind=kind,
                                                    ferret="b10").setup())
    stats = [ch.stats.copy() for ch in pair.channels]
    for ch in pair.channels:
        ch.close()
    return pair.contexts, stats


def test_ferret_setup_skips_kk13():
    """Ferret's 1-of-N OTs use random OTs, so its set-up seeds no KK13: per party, the IKNP
    set-up's bytes less the 256 KK13 seed OTs it no longer receives (256 extension rows of 128
    bits, 4,096 bytes), plus Ferret's bootstrap (k + t·depth IKNP rows of 128 bits, as the
    receiver of one direction) and its first round's message (as the sender of the other)."""
    p = PARAMS["b10"]
    (fa, fb), fst = _setup_stats("ferret")
    (ia, ib), ist = _setup_stats("iknp")
    for e in (fa, fb):
        assert e._kk_s is None and e._kk_r is None
    assert ia._kk_s is not None and ib._kk_r is not None
    ferret_extra = 16 * ((p.base + 7) // 8 * 8) + p.message_bytes
    for f, i in zip(fst, ist):
        assert f.bytes_sent == i.bytes_sent - 256 * 16 + ferret_extra
    assert max(s.rounds for s in fst) <= max(s.rounds for s in ist) + 1


def test_ferret_tickets_redeemed_late_and_out_of_order_and_one_buffer_per_end():
    """Tickets that span rounds, redeemed long after (in reverse order), still get their blocks
    (the receiver copies the rows they want before a round takes over the previous one's
    buffer); each end generates every round into one reused buffer."""
    p = PARAMS["b10"]
    delta, keys, blocks = _bootstrap(p, seed=5)
    pipe = _Pipe()
    snd = FerretSender(pipe, p, delta, keys, PRG(b"t" * 16))
    rcv = FerretReceiver(pipe, p, blocks)
    sizes = [10, p.usable - 5, 20, 3 * p.usable // 2, 1000, p.usable]
    sent, tickets, bufs = [], [], set()
    for m in sizes:
        sent.append(snd.take(m)[0])
        tickets.append(rcv.take(m))
        bufs.add(id(snd._buf))
    for k, (b, ticket) in reversed(list(zip(sent, tickets))):
        mm, _ = rcv.blocks(ticket)
        assert (mm == k ^ (b.astype(np.uint64)[:, None] * delta)).all()
    assert len(bufs) == 1 and snd.rounds == rcv.rounds >= 4
    # taken and redeemed at once: every round in the same receiver buffer
    seen = set()
    for _ in range(3):
        k, _ = snd.take(p.usable)
        b, ticket = rcv.take(p.usable)
        mm, _ = rcv.blocks(ticket)
        assert (mm == k ^ (b.astype(np.uint64)[:, None] * delta)).all()
        seen.add(id(rcv._cur.blocks))
    assert len(seen) == 1
