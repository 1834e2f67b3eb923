"""The network emulator (``sirnn.transport.netem``): profile parsing, the relay's bytes (intact,
in order, both directions at once), its delay and bandwidth (coarse bounds: the machine is
shared), end of stream and failures, and ``sirnn bench/infer --net`` between processes."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sirnn.errors import ParameterError, TransportError
from sirnn.transport.netem import NetworkProfile, Relay, RelayProcess


# ---- parsing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("rtt=40ms,bw=100mbit", (0.02, 0.02, 12.5e6, 12.5e6)),
    ("lan", (0.0004, 0.0004, 377e6, 377e6)),
    ("wan", (0.02, 0.02, 12.5e6, 12.5e6)),
    ("loopback", (0.0, 0.0, math.inf, math.inf)),
    ("delay=5ms", (0.005, 0.005, math.inf, math.inf)),
    ("delay_up=1s, delay_down=800us, up=2kbit, down=3GB/s", (1.0, 0.0008, 250.0, 3e9)),
    ("wan,up=20mbit", (0.02, 0.02, 2.5e6, 12.5e6)),
    ("RTT=0.5s,BW=1Gbit", (0.25, 0.25, 1.25e8, 1.25e8)),
    ("bw=377MB,bw=inf", (0.0, 0.0, math.inf, math.inf)),  # later fields win
])
def test_profile_parses(text, want):
    p = NetworkProfile.parse(text)
    assert (p.delay_up, p.delay_down, p.bw_up, p.bw_down) == pytest.approx(want)
    q = NetworkProfile.parse(str(p))  # the canonical text parses back to the same profile
    assert (q.delay_up, q.delay_down, q.bw_up, q.bw_down) == pytest.approx(want)


def test_profile_text_and_model():
    assert str(NetworkProfile.parse("lan")) == "rtt=0.8ms,bw=377MB"
    assert str(NetworkProfile.parse("wan,down=1gbit")) == "rtt=40ms,up=100mbit,down=1gbit"
    assert str(NetworkProfile.parse("delay_up=3ms")) == "delay_up=3ms,delay_down=0ms,bw=inf"
    m = NetworkProfile.parse("wan").model_seconds(2.0, 100, 12_500_000, 25_000_000)
    assert m["latency"] == pytest.approx(2.0) and m["transfer"] == pytest.approx(3.0)
    assert m["total"] == pytest.approx(7.0) and m["issue_total"] == pytest.approx(9.0)
    assert m["duplex_total"] == pytest.approx(6.0)
    assert NetworkProfile.of(None) is None and NetworkProfile.parse("rtt=0ms").is_null


@pytest.mark.parametrize("text, field", [
    ("rtt=40", "rtt=40"),  # no unit
    ("rtt=40ms,bw=100mbps", "bw=100mbps"),  # ambiguous unit: rejected
    ("rtt=fast", "rtt=fast"),
    ("rtt=-4ms", "rtt=-4ms"),
    ("wan,jitter=5ms", "jitter=5ms"),
    ("bw=0mbit", "bw=0mbit"),
    ("satellite", "satellite"),
    ("rtt=40ms,,bw=1gbit", ""),
])
def test_bad_profile_is_one_line_naming_the_field(text, field):
    with pytest.raises(ParameterError) as e:
        NetworkProfile.parse(text)
    msg = str(e.value)
    assert "\n" not in msg and f"bad field {field!r}" in msg


def test_empty_profile():
    with pytest.raises(ParameterError, match="empty"):
        NetworkProfile.parse(" ")


# ---- the relay (in a thread) ------------------------------------------------------------------------
def _listening():
    ls = socket.create_server(("127.0.0.1", 0))
    return ls, ls.getsockname()[1]


def _recv_exactly(sock, n) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _through_relay(profile):
    """(client socket, server socket, relay): a connection through a Relay thread."""
    ls, port = _listening()
    relay = Relay(profile).start(("127.0.0.1", port), accept_timeout=30, connect_timeout=30)
    client = socket.create_connection(("127.0.0.1", relay.port), timeout=30)
    server, _ = ls.accept()
    ls.close()
    server.settimeout(30)
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, server, relay


@pytest.mark.timeout(60)
def test_relay_bytes_intact_in_order_both_ways_with_delay_and_bandwidth():
    """2 MB each way at once, in uneven writes, through 20 ms one way and 40 Mbit/s (5 MB/s):
    every byte arrives, in order, and the transfer takes at least its serialisation time."""
    rng = np.random.default_rng(1)
    up, down = rng.bytes(2_000_000), rng.bytes(2_000_000)
    client, server, relay = _through_relay("delay=20ms,bw=40mbit")
    got = {}

    def send(sock, data):
        cuts = np.sort(rng.integers(0, len(data), 50))
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(data)]):
            sock.sendall(data[a:b])

    def receive(sock, key, n):
        got[key] = _recv_exactly(sock, n)
        got[key + "_t"] = time.monotonic()

    t0 = time.monotonic()
    threads = [threading.Thread(target=send, args=(client, up)), threading.Thread(target=send, args=(server, down)),
               threading.Thread(target=receive, args=(server, "up", len(up))),
               threading.Thread(target=receive, args=(client, "down", len(down)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    assert got["up"] == up and got["down"] == down
    for key in ("up", "down"):  # 2 MB at 5 MB/s + 20 ms ≥ 0.42 s; generous upper bound (load)
        assert 0.4 <= got[key + "_t"] - t0 < 10.0
    assert [lk.bytes for lk in relay.links] == [len(up), len(down)]
    client.close()  # end of stream travels through the relay: the server reads EOF
    assert server.recv(1) == b""
    server.close()
    relay.close()


@pytest.mark.timeout(60)
def test_relay_one_way_delay_per_direction():
    """100 ms up, 0 down: a ping-pong takes ≥ 100 ms (and well under a second); the reply
    direction alone adds no delay."""
    client, server, relay = _through_relay("delay_up=100ms,delay_down=0ms")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        client.sendall(b"p")
        assert server.recv(1) == b"p"
        t_up = time.monotonic() - t0
        t1 = time.monotonic()
        server.sendall(b"q")
        assert client.recv(1) == b"q"
        times.append((t_up, time.monotonic() - t1))
    assert all(0.1 <= up < 1.0 for up, _ in times), times
    assert min(down for _, down in times) < 0.05, times
    client.close()
    server.close()
    relay.close()


@pytest.mark.timeout(60)
def test_relay_bandwidth_cap():
    """1 MB at 8 Mbit/s (1 MB/s) takes ≥ ~1 s; without a cap it is far quicker."""
    data = bytes(1_000_000)
    elapsed = {}
    for prof in ("bw=8mbit", "rtt=0ms"):
        client, server, relay = _through_relay(prof)
        t0 = time.monotonic()
        threading.Thread(target=client.sendall, args=(data,)).start()
        assert _recv_exactly(server, len(data)) == data
        elapsed[prof] = time.monotonic() - t0
        client.close()
        server.close()
        relay.close()
    assert 0.95 <= elapsed["bw=8mbit"] < 10.0 and elapsed["rtt=0ms"] < 0.5, elapsed


@pytest.mark.timeout(60)
def test_relay_process_reports_an_unreachable_server():
    ls, port = _listening()
    ls.close()  # nothing listens there any more
    relay = RelayProcess("wan", "127.0.0.1", port, connect_timeout=0.5)
    with pytest.raises(TransportError, match=f"could not connect to 127.0.0.1:{port}"):
        relay.wait_port()
    assert not relay.process.is_alive()


# ---- between processes ------------------------------------------------------------------------------
def _sirnn(tmp_path, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "sirnn", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.tcp
@pytest.mark.timeout(200)
def test_bench_through_the_relay(tmp_path):
    """`sirnn bench ... --net`: two party processes and a relay process; the result is exact and
    the time is at least one one-way delay per round."""
    proc = _sirnn(tmp_path, "bench", "relu", "--n", "1000", "--bw-in", "32", "--net", "rtt=20ms,bw=1gbit", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["mismatches"] == 0 and rep["net"] == "rtt=20ms,bw=1gbit"
    assert rep["rounds"] > 3 and rep["seconds"] >= 0.9 * rep["rounds"] * 0.010


@pytest.mark.parametrize("cmd", [["bench", "relu"], ["infer", "--port", "1", "--input", "x.npy"]])
def test_cli_rejects_a_bad_profile_in_one_line(tmp_path, cmd):
    proc = _sirnn(tmp_path, *cmd, "--net", "rtt=40ms,bw=fast")
    assert proc.returncode == 2
    assert "argument --net: network profile: bad field 'bw=fast'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.tcp
@pytest.mark.timeout(300)
def test_infer_through_the_relay(tmp_path):
    """`sirnn serve` in a subprocess, :func:`sirnn.infer` with ``net``: the same output as the
    cleartext interpreter, and at least one one-way delay per round."""
    from modelhelp import fastgrnn_model, inputs
    from test_serve import Server

    from sirnn.compiler import compile_model, evaluate_clear, infer

    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 64))
    path = tmp_path / "tiny.sirnn"
    prog.save(path)
    x = inputs(fm, 3)
    srv = Server(path, "--max-sessions", "1")
    res = infer("127.0.0.1", srv.port, x, net="rtt=10ms,down=200mbit", connect_timeout=30)
    assert srv.finish() == 0
    assert np.array_equal(np.asarray(res.output), np.asarray(evaluate_clear(prog, x)))
    assert res.rounds > 10 and res.seconds >= 0.9 * res.rounds * 0.005


def test_relay_sockets_are_blocking_without_a_timeout():
    """A direction may stay silent for minutes (a WAN session): no socket timeout may stay on
    the relay's connections from connecting or accepting."""
    client, server, relay = _through_relay("rtt=0ms")
    client.sendall(b"x")
    assert server.recv(1) == b"x"
    assert all(s.gettimeout() is None for s in relay._socks)
    client.close()
    server.close()
    relay.close()
