"""Model sessions on either OT engine: the server picks it (``serve --ot``) and announces it, the
client follows it unless it asked for another one (then both sides fail with one line)."""

import json

import numpy as np
import pytest

from modelhelp import fastgrnn_model, inputs, tiny_compiled
from servehelp import Server, sirnn_cli
from sirnn.cli.args import OT_DEFAULT, OT_KINDS
from sirnn.compiler import evaluate_clear, infer
from sirnn.compiler.session import client_session, server_session
from sirnn.data import load_bundled
from sirnn.errors import HandshakeError, ParameterError, SirnnError
from sirnn.ot.engine import DEFAULT_KIND, KINDS
from sirnn.protocols.ring import mask, to_signed
from sirnn.transport import run_inproc


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return (*tiny_compiled(d), d)


def test_cli_engine_names_agree_with_the_engine():
    assert OT_KINDS == KINDS and OT_DEFAULT == DEFAULT_KIND


def _session(prog, x, server_ot, client_ot):
    def fn(role, chan):
        try:
            if role == 0:
                return server_session(chan, prog, ot=server_ot)
            return client_session(chan, x, ot=client_ot)
        except SirnnError as e:
            return e
    return run_inproc(fn, timeout=120)


@pytest.mark.parametrize("client_ot", [None, "ferret"])
def test_ferret_session_in_process_equals_the_clear_interpreter(client_ot):
    """The bundled model's logits (signed output) on Ferret, bit for bit against the interpreter."""
    prog, samples = load_bundled("fastgrnn_japanese_vowels")
    x = samples["x"][:2]
    srv, res = _session(prog, x, "ferret", client_ot)
    assert srv["status"] == "ok" and srv["ot"] == "ferret" and res.ot == "ferret"
    o = prog.output_spec
    clear = to_signed(np.asarray(evaluate_clear(prog, x, raw=True), np.uint64) & mask(o.bits), o.bits)
    secure = np.round(np.asarray(res.output, np.float64) * 2.0 ** o.scale).astype(np.int64)
    assert o.signed and secure.shape == clear.shape and np.array_equal(secure, clear)


def test_engine_mismatch_fails_on_both_sides_before_any_share(model):
    prog = model[0]
    x = inputs(fastgrnn_model(T=4), 1, seed=32)[0]
    srv, cli = _session(prog, x, None, "ferret")  # the server on the default (IKNP)
    for err in (srv, cli):
        assert isinstance(err, HandshakeError), err
        assert "OT engine mismatch" in str(err) and "\n" not in str(err)
    with pytest.raises(ParameterError, match="unknown OT engine 'silent'"):
        server_session(None, prog, ot="silent")


@pytest.mark.tcp
@pytest.mark.timeout(240)
def test_serve_and_infer_on_ferret_over_tcp(model):
    prog, path, d = model
    x1 = inputs(fastgrnn_model(T=4), 1, seed=33)[0]
    np.save(d / "x1.npy", x1)
    srv = Server(path, "--ot", "ferret", "--max-sessions", "3")
    try:
        assert "OT engine ferret" in srv.wait_for("listening on")
        # 1. the CLI client follows the server's engine
        r = sirnn_cli("infer", "--port", str(srv.port), "--input", str(d / "x1.npy"), "--json", "--no-progress")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["ot"] == "ferret" and out["prediction"] == int(evaluate_clear(prog, x1))
        srv.wait_for(r"session 1: ok")
        # 2. a client that insists on IKNP: one line on its side, the session fails on the server's
        r = sirnn_cli("infer", "--port", str(srv.port), "--input", str(d / "x1.npy"), "--ot", "iknp",
                      "--no-progress")
        assert r.returncode == 1 and "OT engine mismatch" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        srv.wait_for(r"session 2: failed after [\d.]+ s — HandshakeError: OT engine mismatch")
        # 3. the Python API asking for Ferret explicitly, a batch
        xb = inputs(fastgrnn_model(T=4), 3, seed=34)
        res = infer("127.0.0.1", srv.port, xb, ot="ferret")
        assert res.ot == "ferret" and (res.prediction == evaluate_clear(prog, xb)).all()
        assert srv.finish() == 0
    finally:
        srv.finish(5)
