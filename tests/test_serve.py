"""Serving: `sirnn serve` and `sirnn infer` as separate processes (plain TCP and mutual TLS), a
client that dies mid-inference, and the client-side checks that stop a session before any secret
is used (in process)."""

import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from modelhelp import fastgrnn_model, inputs, tiny_compiled
from servehelp import Server, sirnn_cli as _sirnn
from sirnn.compiler import compile_model, evaluate_clear, infer
from sirnn.compiler.session import client_session, server_session
from sirnn.errors import InputError, ProgramError, ProtocolError, SirnnError
from sirnn.transport import make_self_signed_cert, run_inproc


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return (*tiny_compiled(d), d)


@pytest.mark.tcp
@pytest.mark.timeout(150)
def test_serve_several_clients_one_drops_out(model):
    prog, path, d = model
    x1 = inputs(fastgrnn_model(T=4), 1, seed=21)[0]
    np.save(d / "x1.npy", x1)
    srv = Server(path, "--max-sessions", "3")
    try:
        # 1. the CLI client with the per-layer report
        r = _sirnn("infer", "--port", str(srv.port), "--input", str(d / "x1.npy"), "--report")
        assert r.returncode == 0, r.stderr
        want = int(evaluate_clear(prog, x1))
        labels = prog.meta["labels"]
        assert f"prediction: {want} ({labels[want]})" in r.stdout
        for layer, op in (("rnn", "fastgrnn"), ("fc", "linear"), ("pred", "argmax"), ("OT set-up", "-")):
            assert re.search(rf"^{re.escape(layer)}\s+{op}\s+[\d.]+ms\s+[\d.,]+ [KM]?B\s+\d+$", r.stdout, re.M), layer
        assert re.search(r"^total\s+[\d.]+ms\s+[\d.,]+ [KM]?B\s+\d+$", r.stdout, re.M)
        assert "timestep 4/4" in r.stderr  # progress display (stderr)
        srv.wait_for(r"session 1: ok — batch 1")
        # 2. a client killed in the middle of the recurrent layer
        p = subprocess.Popen([sys.executable, "-m", "sirnn", "infer", "--port", str(srv.port), "--input",
                              str(d / "x1.npy")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if "timestep 2/4" in line:
                p.kill()
                break
        p.wait(30)
        assert p.returncode != 0
        srv.wait_for(r"session 2: failed after [\d.]+ s — PeerGoneError")
        # 3. the next client is served as usual (Python API, a batch)
        xb = inputs(fastgrnn_model(T=4), 3, seed=22)
        res = infer("127.0.0.1", srv.port, xb)
        assert (res.prediction == evaluate_clear(prog, xb)).all() and res.batched
        assert res.digest == prog.digest()
        assert srv.finish() == 0
        log = srv.log()
        assert "session 3: ok — batch 3" in log and "stopped after 3 session(s)" in log
    finally:
        srv.finish(5)


@pytest.mark.tcp
@pytest.mark.timeout(120)
def test_serve_infer_over_mutual_tls(model):
    prog, path, d = model
    scert, skey = make_self_signed_cert(d / "srv", "localhost", stem="server")
    ccert, ckey = make_self_signed_cert(d / "cli", "client", stem="client")
    x1 = inputs(fastgrnn_model(T=4), 1, seed=23)[0]
    np.save(d / "x2.npy", x1)
    srv = Server(path, "--tls-cert", scert, "--tls-key", skey, "--tls-ca", ccert, "--max-sessions", "1")
    try:
        assert "(TLS)" in srv.wait_for("listening on")
        # a client without a certificate is turned away at the TLS handshake (not a session)
        with pytest.raises(SirnnError):
            infer("127.0.0.1", srv.port, x1, tls_ca=scert, connect_timeout=10, timeout=10)
        r = _sirnn("infer", "--port", str(srv.port), "--input", str(d / "x2.npy"), "--tls-ca", scert,
                   "--tls-cert", ccert, "--tls-key", ckey, "--json", "--no-progress")
        assert r.returncode == 0, r.stderr
        import json

        out = json.loads(r.stdout)
        assert out["prediction"] == int(evaluate_clear(prog, x1)) and out["digest"] == prog.digest()
        assert out["label"] == prog.meta["labels"][out["prediction"]]
        assert srv.finish() == 0
        assert "session 1: ok" in srv.log()
    finally:
        srv.finish(5)


# ---- before any secret: the client's checks (in process) -----------------------------------------
def _session(prog, x, **client_kw):
    def fn(role, chan):
        if role == 0:
            return server_session(chan, prog, max_batch=4)
        try:
            return client_session(chan, x, **client_kw)
        except SirnnError as e:
            return e, chan.stats.copy()
    return run_inproc(fn, timeout=30)


@pytest.mark.parametrize("make_x,error,message", [
    (lambda: np.zeros((4, 5)), InputError, r"shape \(4, 5\), but the model takes \(4, 4\)"),
    (lambda: np.where(np.eye(4) > 0, np.nan, 0.0), InputError, "NaN or infinity"),
    (lambda: np.full((4, 4), np.inf), InputError, "NaN or infinity"),
    (lambda: np.full((4, 4), 100.0), InputError, "outside the range of the model's input format"),
    (lambda: np.zeros((2, 4, 4)), ProgramError, "the client expects 0000000000000000"),
])
def test_client_rejects_before_any_secret(model, make_x, error, message):
    prog = model[0]
    kw = {"expect_digest": "0" * 64} if error is ProgramError else {}
    srv, (err, stats) = _session(prog, make_x(), **kw)
    assert isinstance(err, error) and re.search(message, str(err)), err
    assert srv["status"] == "aborted" and srv["batch"] is None
    # only the hello, the answer to the program and the abort crossed the wire: no OT, no share
    assert stats.bytes_sent < 1000 and srv["bytes_sent"] < len(prog.public_bytes()) + 600


def test_batch_limit_and_matching_digest(model):
    prog = model[0]
    srv, (err, _) = _session(prog, np.zeros((5, 4, 4)))
    assert isinstance(err, ProtocolError) and "batch size 5 is not in 1..4" in str(err)
    assert srv["status"] == "refused"
    srv, res = _session(prog, np.zeros((4, 4)), expect_digest=prog.digest(), report=True)
    assert srv["status"] == "ok" and res.prediction == evaluate_clear(prog, np.zeros((4, 4)))
    assert res.digest == prog.digest()
    assert [r["layer"] for r in res.report["layers"]] == ["handshake + program", "OT set-up", "share input",
                                                          "rnn", "fc", "pred", "reveal output"]
    total = res.report["total"]
    assert total["bytes"] == sum(r["bytes"] for r in res.report["layers"])
    assert total["rounds"] == srv["rounds"]


def test_program_format_mismatch_fails_at_the_first_hello(model):
    """A server of another program format (another sirnn version) is refused at the session's
    first hello, before the program is even sent; the error says what to do."""
    from sirnn import ALICE
    from sirnn.compiler.program import FORMAT_VERSION
    from sirnn.compiler.session import SERVICE
    from sirnn.errors import HandshakeError
    from sirnn.transport.handshake import handshake

    def fn(role, chan):
        try:
            if role == ALICE:
                return handshake(chan, ALICE, {"service": SERVICE, "program_format": 99})
            return client_session(chan, np.zeros((4, 4)))
        except SirnnError as e:
            return e
    srv, cli = run_inproc(fn, timeout=30)
    assert isinstance(srv, HandshakeError) and isinstance(cli, HandshakeError)
    assert "program_format" in str(cli) and f"program format {FORMAT_VERSION}" in str(cli) and "same sirnn version" in str(cli)


def test_client_progress_names_every_step(model):
    prog = model[0]
    events = []
    _session(prog, np.zeros((4, 4)), progress=events.append)
    phases = [e.name for e in events if e.op == "phase"]
    assert phases == ["handshake + program", "OT set-up", "share input", "reveal output"]
    ops = [(e.name, e.step) for e in events if e.op != "phase"]
    assert ops[0] == ("rnn", 0) and ("rnn", 4) in ops and ops[-1] == ("pred", 0)
    assert all(e.n_ops == len(prog.ops) for e in events if e.op != "phase")


def test_progress_line_without_a_terminal():
    """`sirnn infer`'s progress display in a log: a line per step and op, timesteps every ~10%."""
    import io

    from sirnn.cli.model import ProgressLine
    from sirnn.compiler import ProgressEvent

    buf = io.StringIO()
    show = ProgressLine(buf, prefix="sirnn demo")
    show(ProgressEvent(-1, 0, "OT set-up", "phase"))
    for t in range(1, 101):
        show(ProgressEvent(0, 2, "rnn", "fastgrnn", t, 100))
    show(ProgressEvent(1, 2, "fc", "linear"))
    show.done()
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("sirnn demo: OT set-up ")
    assert [ln.split("timestep ")[1].split()[0] for ln in lines[1:-1]] == [f"{t}/100" for t in range(10, 101, 10)]
    assert lines[-1].startswith("sirnn demo: [2/2] fc (linear) ")
