"""TCP transport: two OS processes over loopback, TLS, dead and silent peers, handshake, launcher.

The functions starting with ``_`` at module level run inside ``spawn``ed child processes (they
must be importable, hence module-level).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import socket
import threading
import time

import numpy as np
import pytest

from sirnn import ALICE, BOB, PROTOCOL_VERSION
from sirnn.errors import (HandshakeError, PeerGoneError, PeerTimeoutError, ProtocolError,
                          SirnnError, TransportError)
from sirnn.transport import (connect, handshake, listen, make_self_signed_cert, packed_nbytes,
                             run_two_processes, tls_client_context, tls_server_context)
from sirnn.transport.channel import HEADER
from sirnn.transport.tcp import _READ_AHEAD

pytestmark = pytest.mark.tcp

BITS = [1, 2, 7, 8, 13, 16, 31, 32, 33, 48, 63, 64]
PARAMS = {"model": "fastgrnn", "hidden": 100, "bits": {"x": 16, "h": 16}, "scale": 12}


# ---- helpers -------------------------------------------------------------------------------------
def _connected_pair(listener_kwargs=None, connect_kwargs=None):
    """(server channel, client channel) over loopback, built in this process."""
    with listen("127.0.0.1", 0, **(listener_kwargs or {})) as listener:
        accepted: dict = {}
        t = threading.Thread(target=lambda: accepted.update(ch=listener.accept(timeout=10)))
        t.start()
        client = connect("127.0.0.1", listener.port, connect_timeout=10, **(connect_kwargs or {}))
        t.join(10)
    return accepted["ch"], client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- child-process functions ---------------------------------------------------------------------
def _exchange_bitwidths(role, ch, n):
    """Handshake, exchange one array per bitwidth, then one alternating ping-pong."""
    peer = handshake(ch, role, PARAMS)
    before = ch.stats.copy()
    rng = np.random.default_rng(100 + role)
    sent, got = {}, {}
    for bits in BITS:
        sent[bits] = rng.integers(0, 2**64, size=n, dtype=np.uint64) & np.uint64(2**bits - 1)
        got[bits] = ch.exchange(sent[bits], bits)
    if role == ALICE:  # two more rounds: ALICE -> BOB, then BOB -> ALICE
        ch.send(sent[13][:5], 13)
        got["pong"] = ch.recv(5, 13)
    else:
        got["ping"] = ch.recv(5, 13)
        ch.send(got["ping"], 13)
    return {"sent": sent, "got": got, "stats": (ch.stats - before).as_dict(),
            "peer_role": peer["role"], "tls": ch.is_tls}


def _swap_large(role, ch, count):
    """Both parties send ``count`` 64-bit values at the same time, then receive."""
    mine = np.arange(count, dtype=np.uint64) * np.uint64(role + 1)
    t0 = time.monotonic()
    got = ch.exchange(mine, 64)
    elapsed = time.monotonic() - t0
    expected = np.arange(count, dtype=np.uint64) * np.uint64(2 - role)
    return bool(np.array_equal(got, expected)), elapsed, ch.stats.bytes_sent, ch.stats.rounds


def _handshake_cases(role, ch):
    """Run several handshakes on one channel; return the error message of each (None if ok)."""
    other_params = dict(PARAMS, scale=13)
    cases = {  # case -> (ALICE's overrides, BOB's overrides)
        "ok": ({}, {}),
        "version": ({}, {"version": PROTOCOL_VERSION + 1}),
        "role": ({"role": BOB}, {}),
        "params": ({}, {"params": other_params}),
    }
    messages = {}
    for name, overrides in cases.items():
        kwargs = dict({"role": role, "params": PARAMS}, **overrides[role])
        try:
            handshake(ch, **kwargs)
            messages[name] = None
        except HandshakeError as e:
            messages[name] = str(e)
    return messages


def _raise_in(role, ch, who, exc_type):
    if role == who:
        raise exc_type(f"boom in role {role}")
    return ch.recv_bytes()  # blocks until the failing party closes its channel


class _TwoArgumentError(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


def _raise_two_argument_error(role, ch):
    if role == BOB:
        raise _TwoArgumentError("this", "that")
    return ch.recv_bytes()


def _bob_dies(role, ch):
    if role == BOB:
        ch.send_bytes(b"last words")
        time.sleep(0.2)
        os._exit(7)  # dies without reporting and without closing the channel cleanly
    assert ch.recv_bytes() == b"last words"
    t0 = time.monotonic()
    try:
        ch.recv_bytes()
    except PeerGoneError as e:
        raise PeerGoneError(f"{e} after {time.monotonic() - t0:.2f} s") from e


def _sleep_forever(role, ch, pid_dir):
    path = os.path.join(pid_dir, f"pid{role}")
    with open(path + ".tmp", "w") as f:  # written whole or not at all, even if killed meanwhile
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(600)


def _connect_then_get_killed(port):
    """Child of test_dead_peer: connect, say hello, wait for the ack, then SIGKILL itself."""
    ch = connect("127.0.0.1", port, connect_timeout=10, timeout=10)
    ch.send_bytes(b"hello")
    ch.recv_bytes()
    os.kill(os.getpid(), signal.SIGKILL)


# ---- connection set-up ---------------------------------------------------------------------------
def test_listen_on_port_zero_reports_the_port_and_connect_waits_for_the_server():
    port = _free_port()
    result: dict = {}

    def client():  # starts before the server listens: must retry
        try:
            ch = connect("127.0.0.1", port, connect_timeout=10)
            ch.send_bytes(b"hi")
            result["ch"] = ch
        except Exception as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.4)
    with listen("127.0.0.1", port) as listener:
        assert listener.port == port
        server = listener.accept(timeout=10)
    t.join(10)
    assert "error" not in result
    assert server.recv_bytes() == b"hi"
    server.close()
    result["ch"].close()
    with listen("127.0.0.1", 0) as any_port:
        assert any_port.port > 0


def test_connect_gives_up_with_a_clear_error():
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(TransportError, match=f"could not connect to 127.0.0.1:{port} within 0.3 s"):
        connect("127.0.0.1", port, connect_timeout=0.3)
    assert time.monotonic() - t0 < 3


def test_accept_times_out():
    with listen("127.0.0.1", 0) as listener:
        with pytest.raises(PeerTimeoutError, match="no party connected"):
            listener.accept(timeout=0.2)


# ---- two processes -------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_two_processes_exchange_arrays_of_several_bitwidths():
    n = 1000
    ra, rb = run_two_processes(_exchange_bitwidths, n, timeout=45)
    assert ra["peer_role"] == BOB and rb["peer_role"] == ALICE
    assert not ra["tls"] and not rb["tls"]
    for bits in BITS:
        np.testing.assert_array_equal(ra["got"][bits], rb["sent"][bits])
        np.testing.assert_array_equal(rb["got"][bits], ra["sent"][bits])
        assert ra["got"][bits].dtype == np.uint64
    np.testing.assert_array_equal(ra["got"]["pong"], ra["sent"][13][:5])
    payload = sum(packed_nbytes(n, b) for b in BITS) + packed_nbytes(5, 13)
    for stats in (ra["stats"], rb["stats"]):
        assert stats["bytes_sent"] == stats["bytes_recv"] == payload
        assert stats["messages_sent"] == len(BITS) + 1
        assert stats["rounds"] == len(BITS) + 2  # after the 1-round handshake


@pytest.mark.timeout(60)
def test_both_parties_send_200_mb_at_once_without_deadlock():
    count = 25_000_000  # 200 MB of 64-bit values in each direction
    t0 = time.monotonic()
    ra, rb = run_two_processes(_swap_large, count, timeout=45)
    for ok, elapsed, bytes_sent, rounds in (ra, rb):
        assert ok
        assert bytes_sent == 200_000_000
        assert rounds == 1
        assert elapsed < 20
    assert time.monotonic() - t0 < 40


@pytest.mark.timeout(60)
def test_tls_round_trip_in_two_processes():
    ra, rb = run_two_processes(_exchange_bitwidths, 100, timeout=45, tls=True)
    assert ra["tls"] and rb["tls"]
    for bits in BITS:
        np.testing.assert_array_equal(ra["got"][bits], rb["sent"][bits])
        np.testing.assert_array_equal(rb["got"][bits], ra["sent"][bits])


@pytest.mark.timeout(60)
def test_handshake_mismatches_fail_on_both_sides():
    ma, mb = run_two_processes(_handshake_cases, timeout=45)
    for m in (ma, mb):
        assert m["ok"] is None
        assert "both parties claim role BOB (client)" in m["role"]
        assert "public parameters differ" in m["params"]
        assert "values differ for scale" in m["params"]
    assert f"we speak {PROTOCOL_VERSION}, peer speaks {PROTOCOL_VERSION + 1}" in ma["version"]
    assert f"we speak {PROTOCOL_VERSION + 1}, peer speaks {PROTOCOL_VERSION}" in mb["version"]


# ---- failures ------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_dead_peer_raises_peer_gone_quickly():
    ctx = mp.get_context("spawn")
    with listen("127.0.0.1", 0, timeout=30) as listener:
        child = ctx.Process(target=_connect_then_get_killed, args=(listener.port,))
        child.start()
        try:
            ch = listener.accept(timeout=30)
            assert ch.recv_bytes() == b"hello"
            ch.send_bytes(b"ack")
            t0 = time.monotonic()
            with pytest.raises(PeerGoneError, match="peer closed the connection"):
                ch.recv_bytes()
            assert time.monotonic() - t0 < 5  # far below the 30 s channel timeout
            ch.close()
        finally:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
    assert child.exitcode == -signal.SIGKILL


def test_silent_peer_times_out():
    server, client = _connected_pair({"timeout": 0.5})
    t0 = time.monotonic()
    with pytest.raises(PeerTimeoutError, match=r"peer sent nothing for 0\.5 s"):
        server.recv_bytes()
    assert 0.4 < time.monotonic() - t0 < 3
    client.send_bytes(b"late")  # a timeout between messages leaves the channel usable
    assert server.recv_bytes() == b"late"
    client._write_now([memoryview(HEADER.pack(1, 10) + b"abc")])  # a message cut short
    with pytest.raises(PeerTimeoutError):
        server.recv_bytes()
    with pytest.raises(ProtocolError, match="out of step"):
        server.recv_bytes()
    server.close()
    client.close()


def test_send_to_a_closed_peer_raises_peer_gone():
    server, client = _connected_pair()
    client.close()
    chunk = b"\0" * (1 << 20)
    deadline = time.monotonic() + 10
    with pytest.raises(PeerGoneError, match="sending to .* failed"):
        while time.monotonic() < deadline:
            server.send_bytes(chunk)
            time.sleep(0.001)
    server.close()


@pytest.mark.parametrize("first_bytes", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",  # announces an absurd length
    HEADER.pack(1, 100_000_000),  # a plausible length, but far too long for a hello
    HEADER.pack(1, 7) + b"not json",
])
def test_foreign_peer_fails_the_handshake_at_once(first_bytes):
    with listen("127.0.0.1", 0, timeout=5) as listener:
        raw = socket.create_connection(("127.0.0.1", listener.port))
        ch = listener.accept(timeout=5)
    raw.sendall(first_bytes)
    t0 = time.monotonic()
    with pytest.raises(HandshakeError, match="peer is not a sirnn party"):
        handshake(ch, ALICE)
    assert time.monotonic() - t0 < 2
    ch.close()
    raw.close()


@pytest.mark.timeout(60)
def test_launcher_reports_a_child_that_dies():
    t0 = time.monotonic()
    with pytest.raises(PeerGoneError, match=r"BOB \(client\) process died .*exit code 7") as info:
        run_two_processes(_bob_dies, timeout=45, channel_timeout=30)
    assert time.monotonic() - t0 < 20
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "ALICE (server) process failed with PeerGoneError" in notes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("who, exc_type", [(BOB, ValueError), (ALICE, ProtocolError)])
def test_launcher_propagates_a_child_exception(who, exc_type):
    with pytest.raises(exc_type) as info:
        run_two_processes(_raise_in, who, exc_type, timeout=45)
    text = str(info.value)
    assert f"boom in role {who}" in text
    assert "Traceback" in text and "_raise_in" in text
    name = "ALICE (server)" if who == ALICE else "BOB (client)"
    assert f"--- traceback in the {name} process" in text


@pytest.mark.timeout(60)
def test_launcher_falls_back_to_sirnn_error_for_odd_exception_types():
    with pytest.raises(SirnnError, match="_TwoArgumentError: this and that") as info:
        run_two_processes(_raise_two_argument_error, timeout=45)
    assert "--- traceback in the BOB (client) process ---" in str(info.value)


@pytest.mark.timeout(120)
def test_launcher_timeout_kills_both_children(tmp_path, monkeypatch):
    """Both children are inside ``fn`` (asleep) when the overall timeout fires: both are killed
    and reaped. Starting two ``spawn``ed interpreters can take longer than the first timeout on a
    loaded machine (then a child is killed before it reaches ``fn``): retry with a longer one."""
    from sirnn.transport import launch

    started: list[int] = []  # the children's pids, as the parent sees them
    real_start = launch._start_party

    def recording_start(*args, **kwargs):
        party = real_start(*args, **kwargs)
        started.append(party.process.pid)
        return party

    monkeypatch.setattr(launch, "_start_party", recording_start)
    for attempt, timeout in enumerate((3, 10, 30)):
        pid_dir = tmp_path / f"attempt{attempt}"
        pid_dir.mkdir()
        started.clear()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=f"did not finish within {timeout} s"):
            run_two_processes(_sleep_forever, str(pid_dir), timeout=timeout)
        assert time.monotonic() - t0 < timeout + 7  # at most terminate's grace after the timeout
        assert len(started) == 2
        for pid in started:
            with pytest.raises(ProcessLookupError):  # reaped: not even a zombie is left
                os.kill(pid, 0)
        assert not mp.active_children()
        written = [pid_dir / f"pid{role}" for role in (ALICE, BOB)]
        if all(p.exists() for p in written):  # both were asleep in fn when killed
            assert [int(p.read_text()) for p in written] == started
            return
    pytest.fail("the children never both reached fn, even with a 30 s timeout")


# ---- framing through the read-ahead buffer (in this process) -------------------------------------
_FRAME_SIZES = [0, 1, 12, 100, _READ_AHEAD - HEADER.size - 1, _READ_AHEAD - HEADER.size,
                _READ_AHEAD - HEADER.size + 1, 3, _READ_AHEAD, 3 * _READ_AHEAD + 7, 5, 70_000, 2,
                _READ_AHEAD // 2, _READ_AHEAD // 2, 1]


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("cut", ["whole", "trickle"])
def test_frames_of_every_size_arrive_intact_however_the_stream_is_cut(tmp_path, tls, cut):
    """Frames around the read-ahead size, larger ones, and several in one write; 'trickle' cuts
    the stream inside headers and payloads (the buffer must keep partial frames)."""
    listener_kwargs, connect_kwargs = {}, {}
    if tls:
        cert, key = make_self_signed_cert(tmp_path)
        listener_kwargs = {"tls": tls_server_context(cert, key)}
        connect_kwargs = {"tls": tls_client_context(cafile=cert), "server_hostname": "localhost"}
    server, client = _connected_pair(listener_kwargs, connect_kwargs)
    rng = np.random.default_rng(7)
    payloads = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in _FRAME_SIZES]
    wire = b"".join(HEADER.pack(i + 1, len(p)) + p for i, p in enumerate(payloads))
    cuts = {0, len(wire)}
    if cut == "trickle":
        boundary = 0
        for p in payloads:  # cut inside every header and just after it, and at random points
            cuts.update({boundary + 5, boundary + HEADER.size + 1})
            boundary += HEADER.size + len(p)
        cuts.update(int(c) for c in rng.integers(0, len(wire), 40))
    cuts = sorted(c for c in cuts if 0 <= c <= len(wire))

    def write():
        for a, b in zip(cuts, cuts[1:]):
            client._write_all(memoryview(wire)[a:b])
            if cut == "trickle":
                time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    received = [server.recv_bytes() for _ in payloads]
    writer.join(10)
    assert [bytes(r) for r in received] == payloads
    assert server.stats.rounds == len(payloads)
    server.close()
    client.close()


def test_silence_inside_a_header_makes_the_channel_unusable():
    server, client = _connected_pair({"timeout": 0.3})
    client._write_now([memoryview(HEADER.pack(1, 3)[:5])])
    with pytest.raises(PeerTimeoutError):
        server.recv_bytes()
    with pytest.raises(ProtocolError, match="out of step"):
        server.recv_bytes()
    server.close()
    client.close()


@pytest.mark.parametrize("wire, expected", [
    (HEADER.pack(1, 10)[:5], "a message header (5 of 12 bytes received)"),
    (HEADER.pack(1, 10) + b"abc", "a message of 10 bytes (3 of 10 bytes received)"),
    (HEADER.pack(1, 10), "a message of 10 bytes"),
    (HEADER.pack(1, 100_000) + b"x" * 100, "a message of 100000 bytes (100 of 100000 bytes"),
])
def test_peer_closing_inside_a_frame_says_how_much_arrived(wire, expected):
    server, client = _connected_pair({"timeout": 10})
    client._write_now([memoryview(wire)])
    client.close()
    with pytest.raises(PeerGoneError, match=re.escape(expected)):
        server.recv_bytes()
    server.close()


# ---- TLS in this process -------------------------------------------------------------------------
def test_tls_client_verifies_the_server_certificate(tmp_path):
    cert, key = make_self_signed_cert(tmp_path / "server")
    server_ctx = tls_server_context(cert, key)
    server, client = _connected_pair({"tls": server_ctx},
                                     {"tls": tls_client_context(cafile=cert),
                                      "server_hostname": "localhost"})
    assert server.is_tls and client.is_tls
    values = np.arange(1000, dtype=np.uint64) % np.uint64(1 << 11)
    client.send(values, 11)
    np.testing.assert_array_equal(server.recv(1000, 11), values)
    server.close()
    client.close()

    other_cert, _ = make_self_signed_cert(tmp_path / "impostor")
    server_error = _accept_error_in_thread(server_ctx, lambda port: connect(
        "127.0.0.1", port, connect_timeout=5, tls=tls_client_context(cafile=other_cert)),
        client_error=(TransportError, "certificate verify failed"))
    assert isinstance(server_error, TransportError)


def _accept_error_in_thread(server_ctx, client_fn, client_error):
    """Accept in a thread while ``client_fn(port)`` fails as expected; return the server's error."""
    errors: dict = {}

    def accept(listener):
        try:
            listener.accept(timeout=5).recv_bytes()
        except Exception as e:  # noqa: BLE001 - returned to the test
            errors["server"] = e

    with listen("127.0.0.1", 0, tls=server_ctx, timeout=5) as listener:
        t = threading.Thread(target=accept, args=(listener,))
        t.start()
        with pytest.raises(client_error[0], match=client_error[1]):
            client_fn(listener.port)
        t.join(10)
    return errors.get("server")


def test_mutual_tls_requires_a_client_certificate(tmp_path):
    cert, key = make_self_signed_cert(tmp_path)
    server_ctx = tls_server_context(cert, key, cafile=cert)
    server, client = _connected_pair(
        {"tls": server_ctx},
        {"tls": tls_client_context(cafile=cert, certfile=cert, keyfile=key)})
    client.send_bytes(b"mutual")
    assert server.recv_bytes() == b"mutual"
    assert server._sock.getpeercert() is not None  # the server saw the client's certificate
    server.close()
    client.close()

    def client_without_certificate(port):
        ch = connect("127.0.0.1", port, connect_timeout=5, timeout=5,
                     tls=tls_client_context(cafile=cert))
        try:
            ch.recv_bytes()  # with TLS 1.3 the server's refusal arrives after the handshake
        finally:
            ch.close()

    server_error = _accept_error_in_thread(server_ctx, client_without_certificate,
                                           client_error=(TransportError, "certificate"))
    assert isinstance(server_error, TransportError)


def test_missing_or_bad_tls_files_are_clear_errors(tmp_path):
    """A wrong path or a non-PEM file names the file and its role (no raw OSError/SSLError)."""
    from sirnn.errors import ParameterError
    from sirnn.transport.tcp import tls_client_context, tls_server_context

    cert, key = make_self_signed_cert(tmp_path)
    with pytest.raises(ParameterError, match=r"TLS server certificate/key: no such file .*nope\.pem"):
        tls_server_context(str(tmp_path / "nope.pem"), key)
    with pytest.raises(ParameterError, match=r"TLS CA for the server certificate: no such file"):
        tls_client_context(cafile=str(tmp_path / "ca.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ParameterError, match=r"TLS client certificate/key: cannot load .*junk\.pem"):
        tls_client_context(cafile=cert, certfile=str(junk), keyfile=key)
    assert tls_server_context(cert, key) is not None  # the good files still load
