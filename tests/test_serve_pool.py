"""`sirnn serve` with several clients (sirnn.compiler.server): sessions in parallel, the queue and
its notices, a busy server, idle and slow connections, deadlines, SIGTERM, and soak runs
(benchmarks/soak.py: memory over back-to-back inferences, a flood of malformed connections).
All on loopback; the servers run in subprocesses (they fork a process per connection)."""

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from modelhelp import fastgrnn_model, inputs
from servehelp import Server
from sirnn.compiler import compile_model, evaluate_clear, infer
from sirnn.errors import PeerGoneError, ServerBusyError, SirnnError, TransportError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import soak  # noqa: E402

pytestmark = pytest.mark.tcp
T = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    fm = fastgrnn_model(T=T)
    prog = compile_model(fm, inputs(fm, 64))
    path = d / "tiny.sirnn"
    prog.save(path)
    return prog, path, d


def _in_threads(fn, n):
    """``fn(i)`` for i < n in threads at once; returns the results (or the exceptions)."""
    out = [None] * n

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - handed to the test
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    return out


@pytest.mark.timeout(300)
def test_eight_clients_in_parallel_one_killed_mid_session(model):
    """8 `sirnn infer` processes at once on 4 workers: one killed in the recurrent layer, the other
    7 get the cleartext answer; the sessions overlap (not one after another)."""
    prog, path, d = model
    xs = inputs(fastgrnn_model(T=T), 8, seed=31)
    for i, x in enumerate(xs):
        np.save(d / f"x{i}.npy", x)
    srv = Server(path, "--workers", "4", "--queue", "8", "--max-sessions", "8")
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "sirnn", "infer", "--port", str(srv.port), "--input",
                                   str(d / f"x{i}.npy")] + (["--json", "--no-progress"] if i else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
        for line in procs[0].stderr:
            if f"timestep 3/{T}" in line:
                procs[0].kill()
                break
        procs[0].wait(60)
        assert procs[0].returncode != 0
        import json

        for i, p in enumerate(procs[1:], 1):
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
            res = json.loads(out)
            assert res["prediction"] == int(evaluate_clear(prog, xs[i])), i
        assert srv.finish(60) == 0
        log = srv.log()
        assert log.count(": ok — batch 1") == 7, log
        assert len([ln for ln in log.splitlines() if "failed after" in ln and "PeerGoneError" in ln]) == 1, log
        events = [ln for ln in log.splitlines() if "client 127.0.0.1" in ln or ": ok —" in ln]
        assert "connected" in events[1], "the second session started only after the first ended:\n" + log
    finally:
        srv.finish(5)


@pytest.mark.timeout(240)
def test_idle_sockets_do_not_hold_real_clients(model):
    """4 connections that send nothing, then 4 real clients on 2 workers: the real ones are served
    while the idle ones are still waiting for their (60 s) handshake deadline."""
    prog, path, _ = model
    xs = inputs(fastgrnn_model(T=T), 4, seed=32)
    srv = Server(path, "--workers", "2", "--queue", "4", "--handshake-timeout", "60")
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(4)]
    try:
        t0 = time.monotonic()
        res = _in_threads(lambda i: infer("127.0.0.1", srv.port, xs[i], timeout=60), 4)
        wall = time.monotonic() - t0
        for i, r in enumerate(res):
            assert not isinstance(r, Exception), r
            assert r.prediction == evaluate_clear(prog, xs[i])
        assert wall < 50, wall
        assert "handshake deadline" not in srv.log()  # the idle ones are still there …
        for s in idle:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):  # … connected, not closed by the server
                s.recv(1)
        for s in idle:
            s.close()  # (a connection closed without a byte is not logged: a health check)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.finish() == 0  # (after the last session process has ended)
        log = srv.log()
        assert log.count(": ok — batch 1") == 4
        assert "session 5" not in log and "connection from" not in log, log  # the idle ones: no session
    finally:
        for s in idle:
            s.close()
        srv.finish(5)


@pytest.mark.timeout(180)
def test_queue_notices_busy_server_and_handshake_deadline(model):
    """1 worker, a queue of 1: of 3 clients at once, one runs, one is told it is queued (its
    report separates the wait from the session), one is told the server is busy at once. A
    connection that sends nothing is dropped at the handshake deadline, which is logged."""
    prog, path, _ = model
    x = inputs(fastgrnn_model(T=T), 24, seed=33)
    srv = Server(path, "--workers", "1", "--queue", "1", "--handshake-timeout", "1")
    try:
        idle = socket.create_connection(("127.0.0.1", srv.port))
        idle.settimeout(30)
        t0 = time.monotonic()
        assert idle.recv(1) == b""  # closed by the server
        assert 0.9 < time.monotonic() - t0 < 20
        srv.wait_for(r"connection from 127\.0\.0\.1:\d+: dropped after [\d.]+ s — no valid hello within "
                     r"the handshake deadline of 1 s \(--handshake-timeout\)")
        events = [[] for _ in range(3)]
        res = _in_threads(lambda i: infer("127.0.0.1", srv.port, x, progress=events[i].append, report=True), 3)
        busy = [r for r in res if isinstance(r, ServerBusyError)]
        done = [r for r in res if not isinstance(r, Exception)]
        assert len(busy) == 1 and len(done) == 2, res
        assert "all 1 session slot(s) are taken and 1 client(s) are already waiting" in str(busy[0])
        want = evaluate_clear(prog, x)
        assert all((r.prediction == want).all() for r in done)
        waited = max(done, key=lambda r: r.queue_seconds)
        assert waited.queue_seconds > 0.1 and min(r.queue_seconds for r in done) == 0
        i = next(k for k, r in enumerate(res) if r is waited)
        assert "queued at the server: position 1 of 1" in [e.name for e in events[i]]
        assert waited.report["total"]["queue_seconds"] == waited.queue_seconds
        assert waited.report["layers"][0]["seconds"] < waited.queue_seconds  # not counted in the session
        from sirnn.compiler import format_report

        assert "s in the server's queue, not counted above" in format_report(waited.report)
        srv.wait_count(": ok —", 2)
        srv.wait_count("busy — the client was told", 1)
        log = srv.log()
        assert "queued at position 1 (1 running)" in log and "busy — the client was told" in log
        assert "after" in log.split(": ok —")[2].splitlines()[0]  # "… after X s in the queue"
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        srv.finish(30)


@pytest.mark.timeout(180)
def test_sigterm_finishes_running_sessions_refuses_the_rest(model):
    """SIGTERM: the running session finishes, the queued client is told the server is shutting
    down, new connections are refused, and the server exits 0."""
    prog, path, _ = model
    x = inputs(fastgrnn_model(T=T), 48, seed=34)
    srv = Server(path, "--workers", "1", "--queue", "2")
    try:
        res = [None, None]
        first = threading.Thread(target=lambda: res.__setitem__(0, _try(lambda: infer("127.0.0.1", srv.port, x))))
        first.start()
        srv.wait_for(r"session 1: client .* connected")
        second = threading.Thread(target=lambda: res.__setitem__(1, _try(lambda: infer("127.0.0.1", srv.port, x))))
        second.start()
        srv.wait_for(r"session 2: queued at position 1")
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_for(r"signal received: no new clients; finishing 1 running session\(s\)")
        with pytest.raises(TransportError, match="could not connect"):
            infer("127.0.0.1", srv.port, x, connect_timeout=0.5)
        first.join(120)
        second.join(120)
        assert not isinstance(res[0], Exception), res[0]
        assert (res[0].prediction == evaluate_clear(prog, x)).all()
        assert isinstance(res[1], ServerBusyError) and "shutting down" in str(res[1])
        assert srv.finish(60) == 0
        assert "session 1: ok — batch 48" in srv.log() and "stopped after 2 session(s)" in srv.log()
    finally:
        srv.finish(5)


def _wait_until(cond, srv, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.1)


def _try(fn):
    try:
        return fn()
    except SirnnError as e:
        return e


@pytest.mark.timeout(180)
@pytest.mark.parametrize("limits,message", [
    ({"session_timeout": 0.3}, r"session deadline of 0\.3 s passed \(--session-timeout\)"),
    ({"min_rate": 1e12, "rate_window": 0.3}, r"the client sent \d+ B/s over the last [\d.]+ s, below the minimum "
                                              r"rate of 1e\+12 B/s \(--min-rate\)"),
])
def test_session_deadline_and_minimum_rate_fire_and_are_logged(model, limits, message):
    prog, path, _ = model
    x = inputs(fastgrnn_model(T=T), 32, seed=35)
    srv = soak.start_server(path, workers=1, **limits)
    try:
        with pytest.raises(PeerGoneError):
            infer("127.0.0.1", srv.port, x)
        line = srv.wait_for(message)
        assert line.startswith("[") and "session 1: dropped after" in line
        (summary,) = soak.stop_server(srv)
        assert summary["status"] == "timeout" and summary["session"] == 1
    finally:
        srv.finish(5)


# ---- soak (benchmarks/soak.py); the long versions are marked slow ---------------------------------
def _bundled():
    from sirnn.compiler import Program
    from sirnn.data import load_samples, model_path

    name = "fastgrnn_lowrank_japanese_vowels"
    x = load_samples(name)["x"][0]
    return model_path(name), x, evaluate_clear(Program.load(model_path(name)), x)


def _back_to_back(n):
    path, x, want = _bundled()
    srv = soak.start_server(path, workers=2)
    try:
        r = soak.back_to_back(srv.port, srv.proc.pid, x, n, want)  # (checks every output)
    finally:
        summaries = soak.stop_server(srv)
    assert len(summaries) == n and all(s["status"] == "ok" for s in summaries)
    # the parent (the long-lived process) does not grow with the sessions it has served
    assert abs(r["parent_rss_slope_kb_per_inference"]) < 64, r["parent_rss_kb"]
    assert r["parent_rss_kb"][-1] - r["parent_rss_kb"][0] < 16 * 1024, r["parent_rss_kb"]
    costs = soak.session_costs(summaries)
    assert costs["session_rss_growth_kb_max"] < 200 * 1024, costs


@pytest.mark.timeout(400)
def test_soak_back_to_back_short():
    _back_to_back(10)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_soak_back_to_back_500():
    _back_to_back(500)


def _flood(n, kinds=soak.KINDS):
    path, x, want = _bundled()
    srv = soak.start_server(path, workers=2, queue=64, handshake_timeout=5.0)
    try:
        r = soak.flood(srv.port, srv.proc.pid, n, concurrency=8, kinds=kinds)
        assert srv.proc.poll() is None, srv.log()[-3000:]
        assert np.array_equal(infer("127.0.0.1", srv.port, x).output, want)  # still serving
    finally:
        summaries = soak.stop_server(srv)
    malformed = [s for s in summaries if s.get("status") != "ok"]  # (not the real inference after the flood)
    grow = soak.session_costs(malformed)["session_rss_growth_kb_max"]
    assert grow <= 50 * 1024, f"a session process grew by {grow} KiB on a malformed connection"
    assert r["parent_rss_kb_after"] - r["parent_rss_kb_before"] <= 50 * 1024, r
    # every malformed connection was closed by the server (none refused, none left hanging)
    assert all(set(ends) == {"closed"} for ends in r["outcomes"].values()), r["outcomes"]
    return r


@pytest.mark.timeout(400)
def test_soak_malformed_connections_short():
    _flood(120)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_soak_malformed_connections_1000():
    _flood(1000)


@pytest.mark.timeout(400)
def test_soak_mid_session_huge_frames_bounded_memory():
    _flood(1, kinds=(soak.MID_SESSION,))


@pytest.mark.parametrize("kw,message", [
    ({"workers": 0}, "workers must be an integer >= 1, got 0"),
    ({"queue": -1}, "queue must be an integer >= 0, got -1"),
    ({"handshake_timeout": 0}, "handshake_timeout must be > 0 seconds"),
    ({"min_rate": -5}, "min_rate must be >= 0 bytes/s"),
])
def test_serve_limits_are_checked(model, kw, message):
    from sirnn.compiler.server import ServeLimits
    from sirnn.errors import ParameterError

    with pytest.raises(ParameterError, match=message):
        ServeLimits(**kw)
    flag = "--" + next(iter(kw)).replace("_", "-")
    r = subprocess.run([sys.executable, "-m", "sirnn", "serve", str(model[1]), "--port", "0", flag,
                        str(next(iter(kw.values())))], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("sirnn serve: error: ") and flag in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
