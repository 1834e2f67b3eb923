"""OT layer: primitives, every OT variant's functionality, communication formulas, and
sanity checks of what the receiver sees."""

import numpy as np
import pytest

from sirnn.errors import ParameterError
from sirnn.ot import PRG, CRHash
from sirnn.ot.bitmatrix import hadamard_codewords, transpose_bits, transpose_bits_numpy

MASKS = {b: (1 << b) - 1 for b in range(1, 65)}


def rand_vals(rng, shape, bits):
    return rng.integers(0, 2**63, size=shape, dtype=np.uint64, endpoint=True) & np.uint64(MASKS[bits])


# ----------------------------------------------------------------------------- primitives
def test_prg_is_a_deterministic_stream():
    a, b = PRG(b"k" * 16), PRG(b"k" * 16)
    whole = a.bytes(100)
    assert (np.concatenate([b.bytes(37), b.bytes(63)]) == whole).all()
    assert not (PRG(b"j" * 16).bytes(100) == whole).all()


def test_extension_columns_read_ahead_give_the_plain_streams(rng):
    """The extension's column streams, read ahead in chunks, hand out exactly each seed's
    AES-CTR stream in order, for any mix of small and large requests."""
    from sirnn.ot.extension import _Columns

    seeds = rng.integers(0, 256, (5, 16), dtype=np.uint8)
    cols = _Columns(seeds, chunk=64)
    sizes = [1, 7, 56, 3, 64, 65, 200, 10, 63, 0, 130, 2]
    got = []
    for n in sizes:
        out = cols.next(n)
        assert out.shape == (5, n) and out.flags.writeable
        out ^= 0xFF  # callers modify the result in place: must not touch the read-ahead
        got.append(out ^ 0xFF)
    want = np.stack([PRG(bytes(s)).bytes(sum(sizes)) for s in seeds])
    assert (np.concatenate(got, axis=1) == want).all()


def test_prg_ring_and_bits_ranges():
    g = PRG()
    assert (g.ring(1000, 5) < 32).all()
    assert set(np.unique(g.bits(1000))) == {0, 1}


def test_crhash_tweak_and_input_change_output():
    h = CRHash()
    x = PRG(b"x" * 16).uint64((4, 2))
    idx = np.arange(4, dtype=np.uint64)
    y = h.hash_expand(x, idx, 0, 40)
    assert y.shape == (4, 40)
    assert not (h.hash_expand(x, idx + 1, 0, 40) == y).all(axis=1).any()
    assert not (h.hash_expand(x, idx, 1, 40) == y).all(axis=1).any()
    x2 = x.copy()
    x2[:, 0] ^= np.uint64(1)
    assert not (h.hash_expand(x2, idx, 0, 40) == y).all(axis=1).any()
    # 256-bit pads: both halves matter
    z = PRG(b"z" * 16).uint64((4, 4))
    hz = h.hash_expand(z, idx, 2, 16)
    z2 = z.copy()
    z2[:, 3] ^= np.uint64(1 << 63)
    assert not (h.hash_expand(z2, idx, 2, 16) == hz).all(axis=1).any()


def _aes_fixed(blocks):
    """π: AES-128 under sirnn's public fixed key, block by block (reference for the hash tests)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from sirnn.ot.aes import _FIXED_KEY

    enc = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB()).encryptor()
    return np.frombuffer(enc.update(np.ascontiguousarray(blocks).tobytes()), "<u8").reshape(-1, 2)


def test_crhash_is_the_gkwy_tccr_and_ccr(rng):
    """hash_expand is π(π(x) ⊕ t) ⊕ π(x) with t = (index, domain‖block); ccr is π(σ(x)) ⊕ σ(x)."""
    h = CRHash()
    x = rng.integers(0, 2**63, (6, 2), dtype=np.uint64)
    idx = rng.integers(0, 2**40, 6, dtype=np.uint64)
    got = h.hash_expand(x, idx, 5, 32).view("<u8").reshape(6, 2, 2)
    u = _aes_fixed(x)
    for j in range(2):
        tw = np.stack([idx, np.full(6, (5 << 40) | j, np.uint64)], axis=1)
        assert (got[:, j] == _aes_fixed(u ^ tw) ^ u).all()
    sig = np.stack([x[:, 0] ^ x[:, 1], x[:, 0]], axis=1)
    assert (h.ccr(x) == _aes_fixed(sig) ^ sig).all()


@pytest.mark.parametrize("w,big,out_bytes", [(2, 2, 8), (2, 16, 40), (4, 4, 16), (4, 256, 3)])
def test_hash_pads_fused_equals_plain(rng, w, big, out_bytes):
    """The numba-fused sender hash of pads q ⊕ offsets equals hashing the pads one by one."""
    h = CRHash()
    q = rng.integers(0, 2**63, (37, w), dtype=np.uint64)
    offs = rng.integers(0, 2**63, (big, w), dtype=np.uint64)
    idx = np.arange(100, 137, dtype=np.uint64)
    pads = (q[:, None, :] ^ offs[None]).reshape(-1, w)
    want = h.hash_expand(pads, np.repeat(idx, big), 3, out_bytes)
    assert (h.hash_pads(q, offs, idx, 3, out_bytes) == want).all()


@pytest.mark.parametrize("w,m", [(8, 8), (128, 64), (128, 1000 * 8), (256, 24)])
def test_transpose_matches_reference(w, m, rng):
    cols = rng.integers(0, 256, (w, m // 8), dtype=np.uint8)
    ref = np.packbits(np.unpackbits(cols, axis=1, bitorder="little").T, axis=1, bitorder="little")
    assert (transpose_bits(cols) == ref).all()
    assert (transpose_bits_numpy(cols) == ref).all()


@pytest.mark.parametrize("k", range(1, 9))
def test_hadamard_code_distance(k):
    words = np.unpackbits(hadamard_codewords(k), axis=1)
    dist = (words[:, None, :] != words[None, :, :]).sum(axis=2)
    off = dist[~np.eye(1 << k, dtype=bool)]
    assert off.min() >= 128


# ----------------------------------------------------------------------------- functionality
@pytest.mark.parametrize("bits", [1, 7, 8, 13, 32, 37, 64])
@pytest.mark.parametrize("mshape", [(), (3,)])
def test_chosen_ot(ot_pair, rng, bits, mshape):
    n = 333
    m0, m1 = rand_vals(rng, (n,) + mshape, bits), rand_vals(rng, (n,) + mshape, bits)
    c = rng.integers(0, 2, n)
    for sender in (0, 1):  # both directions
        res = ot_pair.run_split(*[(lambda e: e.send(m0, m1, bits)) if r == sender
                                  else (lambda e: e.recv(c, bits, mshape)) for r in (0, 1)])
        got = res[1 - sender]
        want = np.where(c.reshape((-1,) + (1,) * len(mshape)) == 1, m1, m0)
        assert got.shape == want.shape and (got == want).all()


@pytest.mark.parametrize("bits", [1, 5, 16, 32, 41, 64])
def test_correlated_ot(ot_pair, rng, bits):
    n = 500
    corr = rand_vals(rng, (n, 2), bits)
    c = rng.integers(0, 2, n)
    for sender in (0, 1):
        res = ot_pair.run_split(*[(lambda e: e.cot_send(corr, bits)) if r == sender
                                  else (lambda e: e.cot_recv(c, bits, (2,))) for r in (0, 1)])
        x0, xc = res[sender], res[1 - sender]
        assert ((xc - x0) & np.uint64(MASKS[bits]) == corr * c[:, None].astype(np.uint64)).all()
        assert (x0 < 2**bits).all() if bits < 64 else True


def test_random_ot(ot_pair, rng):
    n, bits = 1000, 40
    c = rng.integers(0, 2, n)
    (m0, m1), mc = ot_pair.run_split(lambda e: e.rot_send(n, bits), lambda e: e.rot_recv(c, bits))
    assert (mc == np.where(c == 1, m1, m0)).all()
    assert (m0 != m1).mean() > 0.99 and (m0 < 2**bits).all()


@pytest.mark.parametrize("k", range(1, 9))
def test_one_of_n_ot_every_k(ot_pair, rng, k):
    n, big = 200, 1 << k
    for bits, mshape in ((1, ()), (11, (2,)), (64, ())):
        msgs = rand_vals(rng, (n, big) + mshape, bits)
        r = rng.integers(0, big, n)
        for sender in (0, 1):
            res = ot_pair.run_split(*[(lambda e: e.kkot_send(msgs, bits)) if role == sender
                                      else (lambda e: e.kkot_recv(r, big, bits, mshape)) for role in (0, 1)])
            assert (res[1 - sender] == msgs[np.arange(n), r]).all()


def test_empty_batches(ot_pair):
    z = np.zeros(0, np.uint64)
    _, got = ot_pair.run_split(lambda e: e.send(z, z, 8), lambda e: e.recv(z, 8))
    assert got.shape == (0,)


# ----------------------------------------------------------------------------- communication
def _measure_online(ot_pair, fa, fb):
    """Bytes each party sent, less what Ferret refills sent meanwhile (reported apart)."""
    before = [ch.stats.copy() for ch in ot_pair.channels]
    off = [e.offline["bytes_sent"] for e in ot_pair.contexts]
    ot_pair.run_split(fa, fb)
    return [(ch.stats - b).bytes_sent - (e.offline["bytes_sent"] - o)
            for ch, b, e, o in zip(ot_pair.channels, before, ot_pair.contexts, off)]


def _choice_cost(ot_pair, n):
    """Receiver's bytes for n 1-of-2 OTs: λ bits each (IKNP) or 1 bit each (Ferret)."""
    return n * 128 // 8 if ot_pair.contexts[0].kind == "iknp" else n // 8


def test_one_of_two_cost_formula(ot_pair):
    n, bits = 1 << 14, 32
    sent = _measure_online(ot_pair, lambda e: e.cot_send(np.ones(n, np.uint64), bits),
                           lambda e: e.cot_recv(np.ones(n, np.uint8), bits))
    assert sent == [n * bits // 8, _choice_cost(ot_pair, n)]  # sender: n·bits; receiver: λ·n or n
    sent = _measure_online(ot_pair, lambda e: e.send(np.ones(n, np.uint64), np.ones(n, np.uint64), 8),
                           lambda e: e.recv(np.ones(n, np.uint8), 8))
    assert sent == [2 * n * 8 // 8, _choice_cost(ot_pair, n)]


@pytest.mark.parametrize("k,bits", [(4, 2), (8, 8)])
def test_one_of_n_cost_formula(ot_pair, k, bits):
    n = 4096
    sent = _measure_online(ot_pair, lambda e: e.kkot_send(np.zeros((n, 1 << k), np.uint64), bits),
                           lambda e: e.kkot_recv(np.zeros(n, np.uint8), 1 << k, bits))
    want_recv = n * 256 // 8 if ot_pair.contexts[0].kind == "iknp" else n * k // 8  # 2λ·n or k·n
    assert sent == [n * (1 << k) * bits // 8, want_recv]


def test_ferret_refill_is_offline_and_amortised(ot_pair):
    """Ferret: using more COTs than a round holds runs refills, whose bytes are the round messages
    (t·depth blocks), counted as offline, ≤ 1.4 bits per COT for b10; IKNP has no offline part."""
    e = ot_pair.contexts
    if e[0].kind == "iknp":
        assert e[0].offline == {"seconds": 0, "bytes_sent": 0, "rounds": 0}
        return
    p = e[0].ferret_params
    n = p.usable + 1000  # at least one refill in each direction
    before = [x.offline for x in e]
    c = np.ones(n, np.uint8)
    ot_pair.run_split(lambda x: x.cot_both(np.ones(n, np.uint64), c, 1),
                      lambda x: x.cot_both(np.ones(n, np.uint64), c, 1))
    for x, b in zip(e, before):
        rounds = (x.offline["rounds"] - b["rounds"]) // 2  # as sender and as receiver
        assert rounds >= 1 and x.offline["bytes_sent"] - b["bytes_sent"] == rounds * p.message_bytes
    assert p.bits_per_cot < 1.4


# ----------------------------------------------------------------------------- security sanity
class _Recorder:
    """Wraps a channel's raw frame functions to keep every payload the party receives."""

    def __init__(self, chan):
        self.seen = bytearray()
        inner = chan._recv_frame

        def rec(*args):
            depth, payload = inner(*args)
            self.seen += payload
            return depth, payload

        chan._recv_frame = rec
        self.chan, self.inner = chan, inner

    def restore(self):
        self.chan._recv_frame = self.inner


def test_receiver_learns_nothing_of_unchosen_message(ot_pair, rng):
    n, bits = 4096, 64
    c = rng.integers(0, 2, n)
    m0 = rand_vals(rng, n, bits)
    m1_a, m1_b = rand_vals(rng, n, bits), rand_vals(rng, n, bits)
    rec = _Recorder(ot_pair.channels[1])
    try:
        outs = []
        for m1 in (m1_a, m1_b):
            _, got = ot_pair.run_split(lambda e: e.send(m0, m1, bits), lambda e: e.recv(c, bits))
            outs.append(got)
    finally:
        rec.restore()
    # where the receiver chose 0, changing m1 changes nothing it outputs
    assert (outs[0][c == 0] == outs[1][c == 0]).all() and (outs[0][c == 0] == m0[c == 0]).all()
    # no sender message appears in the clear in what the receiver received
    seen = bytes(rec.seen)
    for m in (m0, m1_a, m1_b):
        for v in m[:64]:
            assert int(v).to_bytes(8, "little") not in seen


def test_transcript_hides_choice_bits(ot_pair, rng):
    n = 8192
    c = rng.integers(0, 2, n)
    rec = _Recorder(ot_pair.channels[0])  # what the sender sees
    try:
        ot_pair.run_split(lambda e: e.cot_send(np.ones(n, np.uint64), 16), lambda e: e.cot_recv(c, 16))
    finally:
        rec.restore()
    packed = np.packbits(c.astype(np.uint8), bitorder="little").tobytes()
    seen = bytes(rec.seen)
    for off in range(0, len(packed) - 16, 97):
        assert packed[off:off + 16] not in seen
    # each column of U = T ⊕ G(k1) ⊕ c is pseudorandom: ones density ≈ 1/2 even though c is fixed
    assert abs(np.unpackbits(np.frombuffer(seen, np.uint8)).mean() - 0.5) < 0.01


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_are_rejected(ot_pair):
    e = ot_pair.contexts[0]
    with pytest.raises(ParameterError, match="fit in 4 bits"):
        e.send(np.array([16], np.uint64), np.array([1], np.uint64), 4)
    with pytest.raises(ParameterError, match="power of two"):
        e.kkot_send(np.zeros((3, 5), np.uint64), 4)
    with pytest.raises(ParameterError, match="choices"):
        e.recv(np.array([2]), 4)


def test_random_cots(ot_pair):
    """rcot_send/rcot_recv: M_i = K_i ⊕ b_i·Δ with one Δ per direction, uniform-looking choice
    bits; for Ferret across a round boundary (more COTs than a round holds)."""
    e = ot_pair.contexts[0]
    n = e.ferret_params.usable + 5 if e.kind == "ferret" else 5000
    for sender in (0, 1):
        res = ot_pair.run_split(*[(lambda x: x.rcot_send(n)) if r == sender else (lambda x: x.rcot_recv(n))
                                  for r in (0, 1)])
        (delta, k), (b, m) = res[sender], res[1 - sender]
        assert k.shape == m.shape == (n, 2) and b.shape == (n,)
        assert (m == k ^ (b.astype(np.uint64)[:, None] * delta)).all()
        assert abs(b.mean() - 0.5) < 0.01
