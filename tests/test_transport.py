"""Transport layer without sockets: packing, counters, rounds, in-process pair, handshake."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sirnn import ALICE, BOB, PROTOCOL_VERSION
from sirnn.errors import (HandshakeError, ParameterError, PeerGoneError, PeerTimeoutError,
                          ProtocolError)
from sirnn.transport import (ChannelStats, handshake, inproc_pair, pack, packed_nbytes,
                             params_digest, run_inproc, unpack)
from sirnn.transport.channel import HEADER


def _mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def _random_values(rng: np.random.Generator, count: int, bits: int) -> np.ndarray:
    """Uniform ``bits``-bit values, with the extremes 0 and 2^bits - 1 included."""
    v = rng.integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False) & _mask(bits)
    if count >= 2:
        v[0], v[-1] = 0, _mask(bits)
    return v


# ---- packing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 65))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1001])
def test_pack_round_trip_every_bitwidth(bits, count):
    rng = np.random.default_rng(1000 * bits + count)
    values = _random_values(rng, count, bits)
    buf = pack(values, bits)
    assert len(buf) == packed_nbytes(count, bits) == (count * bits + 7) // 8
    back = unpack(buf, count, bits)
    assert back.dtype == np.uint64
    np.testing.assert_array_equal(back, values)


@settings(max_examples=200, deadline=None)
@given(bits=st.integers(1, 64), data=st.data())
def test_pack_round_trip_property(bits, data):
    values = data.draw(st.lists(st.integers(0, 2**bits - 1), max_size=70))
    arr = np.array(values, dtype=np.uint64)
    np.testing.assert_array_equal(unpack(pack(arr, bits), len(values), bits), arr)


def test_pack_is_dense_little_endian():
    # 3-bit values 1, 2, 7 -> bits 100 010 111 (LSB first) -> bytes 0b11010001, 0b00000001
    assert pack(np.array([1, 2, 7], dtype=np.uint64), 3) == bytes([0b11010001, 0b1])


def test_pack_keeps_multidimensional_order():
    values = np.arange(24, dtype=np.uint64).reshape(2, 3, 4)
    np.testing.assert_array_equal(unpack(pack(values, 5), 24, 5).reshape(2, 3, 4), values)


@pytest.mark.parametrize("bits", [0, 65, -1, 2.5])
def test_pack_rejects_bad_bitwidths(bits):
    with pytest.raises(ParameterError, match="bitwidth"):
        pack(np.zeros(3, dtype=np.uint64), bits)


def test_unpack_rejects_wrong_length():
    with pytest.raises(ParameterError, match="expected 2"):
        unpack(b"\x00\x00\x00", 3, 5)


# ---- counters and rounds -------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 5, 8, 13, 32, 63, 64])
def test_bytes_sent_equals_packed_size(bits):
    a, b = inproc_pair(timeout=5)
    shapes = [(10,), (3, 7), (1000,), (0,)]
    rng = np.random.default_rng(bits)
    for shape in shapes:
        values = _random_values(rng, int(np.prod(shape)), bits).reshape(shape)
        a.send(values, bits)
        np.testing.assert_array_equal(b.recv(shape, bits), values)
    expected = sum(packed_nbytes(int(np.prod(s)), bits) for s in shapes)
    assert a.stats.bytes_sent == expected == b.stats.bytes_recv
    assert a.stats.messages_sent == len(shapes)
    assert a.stats.wire_bytes_sent == expected + len(shapes) * HEADER.size
    assert b.stats.bytes_sent == 0 and a.stats.bytes_recv == 0


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_alternating_messages_count_k_rounds(k):
    def ping_pong(role, ch):
        for i in range(k):
            if i % 2 == role:
                ch.send(np.array([i], dtype=np.uint64), 8)
            else:
                assert ch.recv(1, 8)[0] == i
        return ch.stats.rounds

    assert run_inproc(ping_pong, timeout=5) == (k, k)


def test_simultaneous_exchange_is_one_round():
    def swap(role, ch):
        big = np.full(100_000, role + 1, dtype=np.uint64)
        got = ch.exchange(big, 2)
        assert (got == 2 - role).all()
        return ch.stats.copy()

    sa, sb = run_inproc(swap, timeout=5)
    assert sa.rounds == sb.rounds == 1
    assert sa.bytes_sent == sb.bytes_recv == packed_nbytes(100_000, 2)


def test_consecutive_sends_share_a_round_and_exchanges_add_up():
    def flow(role, ch):
        for _ in range(3):  # three exchanges in a row -> 3 rounds
            ch.exchange(np.zeros(4, dtype=np.uint64), 1)
        if role == ALICE:  # several messages in one direction -> one more round
            for _ in range(5):
                ch.send_bytes(b"x")
        else:
            for _ in range(5):
                ch.recv_bytes(1)
        return ch.stats.rounds

    assert run_inproc(flow, timeout=5) == (4, 4)


def test_stats_difference_and_dict():
    s1 = ChannelStats(bytes_sent=10, rounds=2)
    s2 = ChannelStats(bytes_sent=25, rounds=5, messages_sent=3)
    d = s2 - s1
    assert (d.bytes_sent, d.rounds, d.messages_sent) == (15, 3, 3)
    assert d.as_dict()["bytes_sent"] == 15


# ---- in-process pair -----------------------------------------------------------------------------
def test_recv_of_wrong_size_is_a_protocol_error():
    a, b = inproc_pair(timeout=5)
    a.send(np.zeros(10, dtype=np.uint64), 8)
    with pytest.raises(ProtocolError, match="expected a .* of 20 bytes, the peer announced 10"):
        b.recv(10, 16)


def test_inproc_closed_peer_and_silent_peer():
    a, b = inproc_pair(timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(PeerTimeoutError):
        b.recv_bytes()
    assert time.monotonic() - t0 < 2
    a.close()
    with pytest.raises(PeerGoneError, match="closed"):
        b.recv_bytes()
    with pytest.raises(PeerGoneError):  # stays closed
        b.recv_bytes()


def test_run_inproc_reraises_the_root_cause():
    def fails_on_bob(role, ch):
        if role == BOB:
            raise ValueError("bob broke")
        return ch.recv_bytes()

    with pytest.raises(ValueError, match="bob broke"):
        run_inproc(fails_on_bob, timeout=5)


# ---- handshake -----------------------------------------------------------------------------------
PARAMS = {"model": "fastgrnn", "bits": [16, 16], "scale": 12, "hidden": np.int64(100),
          "weights_shape": (32, 100)}


def _handshake_both(alice_kwargs: dict, bob_kwargs: dict):
    """Run a handshake on an in-process pair; return each side's hello or exception."""
    a, b = inproc_pair(timeout=5)
    out: dict = {}

    def run(name, ch, kwargs):
        try:
            out[name] = handshake(ch, **kwargs)
        except Exception as e:  # noqa: BLE001 - inspected by the tests
            out[name] = e

    t = threading.Thread(target=run, args=("alice", a, alice_kwargs))
    t.start()
    run("bob", b, bob_kwargs)
    t.join()
    return out["alice"], out["bob"]


def test_handshake_success_returns_peer_hello_in_one_round():
    a, b = inproc_pair(timeout=5)
    results = {}
    t = threading.Thread(target=lambda: results.update(a=handshake(a, ALICE, PARAMS)))
    t.start()
    hb = handshake(b, BOB, dict(reversed(list(PARAMS.items()))))  # key order does not matter
    t.join()
    assert hb["role"] == ALICE and results["a"]["role"] == BOB
    assert hb["version"] == PROTOCOL_VERSION and hb["digest"] == params_digest(PARAMS)
    assert a.stats.rounds == b.stats.rounds == 1


def test_handshake_version_mismatch_fails_on_both_sides():
    ea, eb = _handshake_both({"role": ALICE}, {"role": BOB, "version": PROTOCOL_VERSION + 1})
    for e, ours, theirs in ((ea, PROTOCOL_VERSION, PROTOCOL_VERSION + 1),
                            (eb, PROTOCOL_VERSION + 1, PROTOCOL_VERSION)):
        assert isinstance(e, HandshakeError)
        assert f"protocol version mismatch: we speak {ours}, peer speaks {theirs}" in str(e)


def test_handshake_role_clash_fails_on_both_sides():
    ea, eb = _handshake_both({"role": BOB}, {"role": BOB})
    for e in (ea, eb):
        assert isinstance(e, HandshakeError)
        assert "both parties claim role BOB (client)" in str(e)


def test_handshake_param_mismatch_names_the_keys():
    other = dict(PARAMS, scale=13, extra=1)
    del other["model"]
    ea, eb = _handshake_both({"role": ALICE, "params": PARAMS}, {"role": BOB, "params": other})
    for e in (ea, eb):
        assert isinstance(e, HandshakeError)
        assert "public parameters differ" in str(e) and "values differ for scale" in str(e)
    assert params_digest(PARAMS)[:12] in str(ea) and params_digest(other)[:12] in str(ea)
    assert "only we have model" in str(ea) and "only the peer has extra" in str(ea)
    assert "only we have extra" in str(eb) and "only the peer has model" in str(eb)


def test_handshake_bytes_params():
    ea, eb = _handshake_both({"role": ALICE, "params": b"model-a"},
                             {"role": BOB, "params": b"model-b"})
    assert isinstance(ea, HandshakeError) and isinstance(eb, HandshakeError)
    ha, hb = _handshake_both({"role": ALICE, "params": b"same"}, {"role": BOB, "params": b"same"})
    assert ha["role"] == BOB and hb["role"] == ALICE


def test_handshake_rejects_a_foreign_peer():
    a, b = inproc_pair(timeout=5)
    a.send_bytes(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(HandshakeError, match="peer is not a sirnn party"):
        handshake(b, BOB)


def test_handshake_with_silent_peer_times_out():
    _, b = inproc_pair(timeout=0.2)
    with pytest.raises(PeerTimeoutError):
        handshake(b, BOB)


def test_handshake_rejects_an_invalid_own_role():
    a, _ = inproc_pair(timeout=1)
    with pytest.raises(ParameterError, match="role must be 0"):
        handshake(a, 2)


def test_params_digest_is_canonical():
    assert params_digest({"a": 1, "b": [1, 2]}) == params_digest({"b": (1, 2), "a": np.int32(1)})
    assert params_digest({"a": 1}) != params_digest({"a": 2})
    assert params_digest({"w": np.arange(3)}) != params_digest({"w": np.arange(3.0)})
    with pytest.raises(ParameterError):
        params_digest({"x": float("nan")})
    with pytest.raises(ParameterError):
        params_digest({"x": object()})


@pytest.mark.parametrize("bits", [1, 2, 3, 7, 13, 31, 55, 56, 57, 63, 64])
def test_unpack_at_and_narrow_pack(bits):
    from sirnn.transport.packing import pack, unpack, unpack_at

    rng = np.random.default_rng(bits)
    v = rng.integers(0, 2**63, 1000, dtype=np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else 2**64 - 1)
    buf = pack(v, bits)
    pos = rng.integers(0, 1000, 300)
    assert (unpack_at(buf, 1000, bits, pos) == v[pos]).all()
    if bits < 8:
        assert pack(v.astype(np.uint8), bits) == buf
        assert (unpack(buf, 1000, bits) == v).all()
