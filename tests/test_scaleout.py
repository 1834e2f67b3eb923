"""Scale-out: HAProxy in TCP mode (the documented config, docs/deploy/haproxy.cfg) in front of
two `sirnn serve` replicas on loopback, TLS passed through to the replicas; 16 clients at once.
Needs the haproxy binary (Debian: apt-get install haproxy)."""

import shutil
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from modelhelp import fastgrnn_model, inputs
from sirnn.compiler import compile_model, evaluate_clear, infer
from sirnn.errors import SirnnError
from sirnn.transport import make_self_signed_cert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import scaleout  # noqa: E402

pytestmark = [pytest.mark.tcp,
              pytest.mark.skipif(shutil.which("haproxy") is None,
                                 reason="the haproxy binary is not installed (Debian: apt-get install haproxy)")]


@pytest.mark.timeout(300)
def test_haproxy_two_tls_replicas_sixteen_clients(tmp_path):
    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 64))
    prog.save(tmp_path / "m.sirnn")
    cert, key = make_self_signed_cert(tmp_path, "localhost")
    xs = inputs(fm, 20, seed=41)
    replicas = scaleout.start_replicas(tmp_path / "m.sirnn", 2, workers=2, cert=cert, key=key, queue=16)
    lb = None
    try:
        lb, port = scaleout.start_haproxy([s.port for s in replicas])
        out = [None] * 16

        def client(i):
            try:
                out[i] = infer("127.0.0.1", port, xs[i], tls_ca=cert, timeout=120).prediction
            except SirnnError as e:
                out[i] = e
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        assert out == [evaluate_clear(prog, x) for x in xs[:16]], out
        _wait_total(replicas, ": ok — batch 1", 16)
        served = [s.log().count(": ok — batch 1") for s in replicas]
        assert sum(served) == 16 and min(served) >= 1, served  # both replicas took sessions
        # TLS is end to end: the load balancer does not terminate it
        with pytest.raises(SirnnError):
            infer("127.0.0.1", port, xs[0], timeout=20, connect_timeout=5)
        # stateless replicas: with one stopped, the other serves every client
        replicas[0].proc.send_signal(signal.SIGTERM)
        assert replicas[0].finish(60) == 0
        for x in xs[16:]:
            assert infer("127.0.0.1", port, x, tls_ca=cert, timeout=120).prediction == evaluate_clear(prog, x)
        replicas[1].wait_count(": ok — batch 1", served[1] + 4)
    finally:
        if lb is not None:
            scaleout.stop(lb)
        for s in replicas:
            scaleout.stop(s.proc)


def _wait_total(servers, text, n, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while sum(s.log().count(text) for s in servers) < n:
        assert time.monotonic() < deadline, [s.log() for s in servers]
        time.sleep(0.1)


def test_kubernetes_manifest_runs_a_valid_serve_command():
    """docs/deploy/k8s.yaml: the container's command line parses with `sirnn serve`'s own parser,
    the probe and Service use the port it listens on, and the grace period covers a session."""
    import json
    import re

    from sirnn.cli.main import build_parser

    text = (Path(__file__).resolve().parent.parent / "docs" / "deploy" / "k8s.yaml").read_text()
    argv = json.loads(re.search(r"args: (\[.*?\])", text, re.S)[1])
    assert argv[:2] == ["sirnn", "serve"]
    args = build_parser().parse_args(argv[1:])
    assert args.host == "0.0.0.0" and f"containerPort: {args.port}" in text and f"port: {args.port}," in text
    assert args.workers == 2 and args.tls_cert == "/tls/tls.crt" and args.model == "/model/model.sirnn"
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", text)[1])
    assert grace > args.session_timeout
    assert "kind: Deployment" in text and "kind: Service" in text and "type: LoadBalancer" in text


def test_deploy_doc_shows_the_tested_haproxy_config():
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "deploy.md").read_text()
    lines = [ln for ln in (root / "docs" / "deploy" / "haproxy.cfg").read_text().splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    block = ("global\n" + doc.split("```\nglobal\n")[1].split("```")[0]).splitlines()
    assert [ln for ln in block if ln.strip()] == lines
