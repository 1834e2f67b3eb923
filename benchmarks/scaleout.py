"""Scale-out behind an L4 load balancer: HAProxy (TCP mode, TLS passed through, the tested
config ``docs/deploy/haproxy.cfg``) in front of 1 or 2 ``sirnn serve`` replicas on loopback, each
with 1, 2 or 4 workers; ``--clients`` client processes (default 16) run ``--per-client``
inferences each, all starting together. Reported per configuration: inferences/s (all
inferences over the wall time from the common start to the last answer), client latency p50 /
p95 (connect to answer, queue wait included), the median time spent in a replica's queue, and
how the sessions were spread over the replicas. Every answer is checked against the cleartext
interpreter.

The replicas, HAProxy and the clients share this machine's cores: the figures show how the
pieces behave together (queueing, spreading), not what separate machines would reach.

Usage::

    PYTHONPATH=src python benchmarks/scaleout.py [--model fastgrnn_lowrank_japanese_vowels]
        [--replicas 1 2] [--workers 1 2 4] [--clients 16] [--per-client 2] [--json benchmarks/scaleout.json]

Needs the ``haproxy`` binary (Debian: ``apt-get install haproxy``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servehelp import Server  # noqa: E402

HAPROXY_CFG = ROOT / "docs" / "deploy" / "haproxy.cfg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replicas(model_path, n: int, workers: int, cert: str, key: str, queue: int = 32) -> list[Server]:
    """``n`` × ``sirnn serve MODEL --workers W --tls-cert … --tls-key …`` on loopback."""
    return [Server(model_path, "--workers", str(workers), "--queue", str(queue), "--tls-cert", cert,
                   "--tls-key", key) for _ in range(n)]


def start_haproxy(replica_ports: list[int]) -> tuple[subprocess.Popen, int]:
    """HAProxy with ``docs/deploy/haproxy.cfg`` in front of the given replicas (unused
    ``server`` lines point at the first replica); returns (process, port)."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise FileNotFoundError("no haproxy binary (Debian: apt-get install haproxy)")
    port = free_port()
    env = dict(os.environ, SIRNN_LB_BIND=f"127.0.0.1:{port}")
    for i in (1, 2):
        env[f"SIRNN_REPLICA_{i}"] = f"127.0.0.1:{replica_ports[min(i, len(replica_ports)) - 1]}"
    proc = subprocess.Popen([binary, "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited ({proc.returncode}): {proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("haproxy did not start listening within 20 s") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(port: int, x, want, n: int, cafile: str, start, out) -> None:
    """One client process: wait for the common start, then ``n`` inferences one after another."""
    from sirnn.compiler import infer

    start.wait()
    for _ in range(n):
        t = time.perf_counter()
        try:
            res = infer("127.0.0.1", port, x, tls_ca=cafile, timeout=600)
            ok = bool(np.array_equal(np.asarray(res.output), want))
            out.put({"latency": time.perf_counter() - t, "queue": res.queue_seconds, "ok": ok,
                     "end": time.time()})
        except Exception as e:  # noqa: BLE001 - reported, counted as a failure
            out.put({"latency": time.perf_counter() - t, "error": f"{type(e).__name__}: {e}", "ok": False,
                     "end": time.time()})


def run_clients(port: int, x, want, clients: int, per_client: int, cafile: str) -> dict:
    """``clients`` processes × ``per_client`` inferences, all released at once."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, x, want, per_client, cafile, start, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # let the client processes import sirnn and load the kernels
    t0 = time.time()
    start.set()
    rows = [out.get(timeout=3600) for _ in range(clients * per_client)]
    for p in procs:
        p.join(30)
    lat = np.array([r["latency"] for r in rows])
    wall = max(r["end"] for r in rows) - t0
    failures = [r.get("error", "wrong answer") for r in rows if not r["ok"]]
    return {"inferences": len(rows), "failures": len(failures), "failure_examples": failures[:3],
            "wall_seconds": wall, "inferences_per_second": (len(rows) - len(failures)) / wall,
            "latency_p50": float(np.percentile(lat, 50)), "latency_p95": float(np.percentile(lat, 95)),
            "queue_median": float(np.median([r.get("queue", 0.0) for r in rows]))}


def measure(model_path, x, want, replicas: int, workers: int, clients: int, per_client: int,
            cert: str, key: str) -> dict:
    """One configuration: replicas + HAProxy up, the clients, everything down again."""
    servers = start_replicas(model_path, replicas, workers, cert, key, queue=clients)
    lb = None
    try:
        lb, port = start_haproxy([s.port for s in servers])
        r = run_clients(port, x, want, clients, per_client, cert)
    finally:
        if lb is not None:
            stop(lb)
        for s in servers:
            stop(s.proc)
    r["sessions_per_replica"] = [s.log().count(": ok — ") for s in servers]
    r.update(replicas=replicas, workers=workers, clients=clients, per_client=per_client)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fastgrnn_lowrank_japanese_vowels", help="a bundled model")
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--per-client", type=int, default=2, dest="per_client")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from sirnn.compiler import Program, evaluate_clear
    from sirnn.data import load_samples, model_path
    from sirnn.transport import make_self_signed_cert

    path = model_path(args.model)
    x = load_samples(args.model)["x"][0]
    want = evaluate_clear(Program.load(path), x)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_self_signed_cert(d, "localhost")
        for replicas in args.replicas:
            for workers in args.workers:
                r = measure(path, x, want, replicas, workers, args.clients, args.per_client, cert, key)
                rows.append(r)
                print(f"{replicas} replica(s) × {workers} worker(s): {r['inferences_per_second']:.2f} inferences/s, "
                      f"latency p50 {r['latency_p50']:.1f} s, p95 {r['latency_p95']:.1f} s, queue median "
                      f"{r['queue_median']:.1f} s, sessions per replica {r['sessions_per_replica']}, "
                      f"failures {r['failures']}", flush=True)
    out = {"model": args.model, "cpu_count": os.cpu_count(), "tls": True, "load_balancer": "haproxy (tcp mode)",
           "command": "PYTHONPATH=src python benchmarks/scaleout.py " + " ".join(argv or sys.argv[1:]),
           "note": "replicas, HAProxy and the clients share one machine's cores", "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
