"""Soak runs of ``sirnn serve`` on loopback: memory over many inferences, and a flood of malformed
connections. The short versions run in the default test suite (tests/test_serve_pool.py), the
long ones as ``@pytest.mark.slow`` tests and here.

*back-to-back*: ``--inferences`` inferences of a bundled model, one after the other, through one
server. After each, the resident memory of the server's parent process (``VmRSS``: the process that
lives as long as the server) and the proportional set size of the parent and its session
processes; the least-squares slope of each in KiB per inference (over the second half of the
run, after the allocator has settled). Each session's own start cost (fork to running) and peak
memory come from the server's session summaries.

*flood*: ``--connections`` connections, ``--concurrency`` at a time, each sending one of
:data:`KINDS` — random bytes, a truncated frame, a frame announcing a huge length, a large
non-hello frame, a valid hello followed by garbage, nothing (closed at once) — and then reading
until the server closes (or 10 s). Then one real inference must still give the right answer.
Reported: the parent's RSS growth, the peak PSS of the whole server during the flood, how each
connection ended, and the time.

Usage::

    PYTHONPATH=src python benchmarks/soak.py [--inferences 500] [--connections 1000]
        [--concurrency 16] [--model fastgrnn_lowrank_japanese_vowels] [--json benchmarks/soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servehelp import Server, children, proc_kb, tree_pss_kb  # noqa: E402

#: ``python -c`` body: serve a program with keyword arguments (JSON) and print the session
#: summaries (JSON) on stdout when it stops (SIGTERM).
_SERVE = ("import json, sys\nfrom sirnn.compiler import serve\n"
          "print(json.dumps(serve(sys.argv[1], **json.loads(sys.argv[2]))))")

KINDS = ("random", "truncated", "huge", "big-frame", "hello-then-garbage", "close")
#: a client that starts a real session (both hellos, the program, the batch size) and then, as
#: its first OT message, sends a frame header announcing ``MID_SESSION_LENGTH`` bytes
MID_SESSION = "session-then-huge"
MID_SESSION_LENGTH = 1 << 30
_HEADER = struct.Struct("<IQ")  # a sirnn frame header: depth, payload length


def start_server(model_path, **kw) -> Server:
    """``serve(model_path, port=0, **kw)`` in a subprocess that prints its summaries at SIGTERM."""
    kw.setdefault("port", 0)
    return Server(None, argv=[sys.executable, "-c", _SERVE, str(model_path), json.dumps(kw)])


def stop_server(srv: Server, timeout: float = 60.0) -> list[dict]:
    """SIGTERM, wait, and return the server's session summaries."""
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.finish(timeout) == 0, srv.log()[-3000:]
    time.sleep(0.2)  # (the stdout reader thread)
    return json.loads("".join(srv.out))


def _slope(y) -> float:
    """Least-squares slope of ``y`` over the second half of the run (per step)."""
    y = np.asarray(y, np.float64)
    half = y[len(y) // 2:]
    return float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) >= 2 else 0.0


def back_to_back(port: int, server_pid: int, x: np.ndarray, n: int, want: np.ndarray) -> dict:
    """``n`` inferences of ``x``, one after the other; memory after each; every output checked."""
    from sirnn.compiler import infer

    rss, pss, secs = [], [], []
    for i in range(n):
        t = time.perf_counter()
        res = infer("127.0.0.1", port, x)
        secs.append(time.perf_counter() - t)
        if not np.array_equal(np.asarray(res.output), want):
            raise AssertionError(f"inference {i}: output {res.output} differs from the cleartext {want}")
        deadline = time.monotonic() + 5.0
        while children(server_pid) and time.monotonic() < deadline:  # the session's process ends
            time.sleep(0.02)
        rss.append(proc_kb(server_pid))
        pss.append(tree_pss_kb(server_pid))
    return {"inferences": n, "parent_rss_kb": rss, "tree_pss_kb": pss,
            "parent_rss_slope_kb_per_inference": _slope(rss), "tree_pss_slope_kb_per_inference": _slope(pss),
            "seconds_median": float(np.median(secs))}


def garbage_connection(port: int, kind: str, rng: np.random.Generator, wait: float = 10.0) -> str:
    """One malformed connection of the given kind; returns how it ended: ``"closed"`` (the server
    closed it), ``"reset"``, ``"open"`` (still open after ``wait`` s) or ``"refused"``."""
    from sirnn import BOB
    from sirnn.compiler.session import _hello
    from sirnn.transport.handshake import canonical_json, make_hello

    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    except OSError:
        return "refused"
    with s:
        try:
            if kind == "random":
                s.sendall(rng.bytes(int(rng.integers(1, 4096))))
            elif kind == "truncated":  # a header announcing more than is sent, then close
                n = int(rng.integers(100, 100_000))
                s.sendall(_HEADER.pack(1, n) + rng.bytes(n // 2))
                s.shutdown(socket.SHUT_WR)
            elif kind == "huge":  # an announced length far beyond any limit
                s.sendall(_HEADER.pack(1, int(rng.integers(1 << 40, 1 << 63))) + rng.bytes(64))
            elif kind == "big-frame":  # a large frame that is not a hello
                n = int(rng.integers(1 << 18, 1 << 20))
                s.sendall(_HEADER.pack(1, n) + rng.bytes(n))
            elif kind == "hello-then-garbage":  # a real client's hello, then a frame of junk
                hello = canonical_json(make_hello(BOB, _hello()))
                s.sendall(_HEADER.pack(1, len(hello)) + hello)
                s.sendall(_HEADER.pack(3, int(rng.integers(1 << 20, 1 << 62))) + rng.bytes(256))
            elif kind == MID_SESSION:
                _start_session(s)
                s.sendall(_HEADER.pack(9, MID_SESSION_LENGTH) + rng.bytes(64))
            elif kind != "close":
                raise ValueError(kind)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not s.recv(1 << 16):
                    return "closed"
            return "open"
        except TimeoutError:
            return "open"
        except ConnectionError:
            return "reset"


def _start_session(s: socket.socket) -> None:
    """Speak a client's part up to the OT set-up, on a raw socket: the session's hello, the
    program, the batch size, the set-up's hello."""
    from sirnn import BOB
    from sirnn.compiler.program import Program
    from sirnn.compiler.session import _hello
    from sirnn.transport.handshake import canonical_json, make_hello

    def send(payload: bytes, depth: int) -> None:
        s.sendall(_HEADER.pack(depth, len(payload)) + payload)

    def recv() -> bytes:
        head = _recv_exactly(s, _HEADER.size)
        return _recv_exactly(s, _HEADER.unpack(head)[1])
    send(canonical_json(make_hello(BOB, _hello())), 1)
    recv()  # the server's hello
    digest = Program.from_public_bytes(recv()).digest()
    send(json.dumps({"status": "ok", "batch": 1}).encode(), 3)
    recv()  # {"status": "ok"}
    send(canonical_json(make_hello(BOB, {"program": digest, "batch": 1})), 5)
    recv()  # the set-up's hello


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            raise ConnectionError("the server closed the connection")
        buf += part
    return bytes(buf)


def flood(port: int, server_pid: int, n: int, concurrency: int, seed: int = 12, kinds=KINDS) -> dict:
    """``n`` malformed connections (cycling through ``kinds``), ``concurrency`` at a time; the
    server's memory meanwhile."""
    rng = np.random.default_rng(seed)
    kinds = [kinds[i % len(kinds)] for i in range(n)]
    rngs = [np.random.default_rng(r) for r in rng.integers(0, 2**63, n)]
    rss0, pss0 = proc_kb(server_pid), tree_pss_kb(server_pid)
    peak = {"pss": pss0, "rss": rss0}
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak["pss"] = max(peak["pss"], tree_pss_kb(server_pid))
            peak["rss"] = max(peak["rss"], proc_kb(server_pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ends = list(pool.map(lambda i: garbage_connection(port, kinds[i], rngs[i]), range(n)))
    secs = time.perf_counter() - t0
    done.set()
    sampler.join()
    outcome: dict = {}
    for kind, end in zip(kinds, ends):
        outcome.setdefault(kind, {}).setdefault(end, 0)
        outcome[kind][end] += 1
    return {"connections": n, "concurrency": concurrency, "seconds": secs, "outcomes": outcome,
            "parent_rss_kb_before": rss0, "parent_rss_kb_after": proc_kb(server_pid),
            "parent_rss_kb_peak": peak["rss"], "tree_pss_kb_before": pss0, "tree_pss_kb_peak": peak["pss"]}


def session_costs(summaries: list[dict]) -> dict:
    """Start cost (fork → running) and memory of the session processes, from their summaries."""
    start = [s["start_ms"] for s in summaries if "start_ms" in s]
    grow = [s["rss_peak_kb"] - s["rss_start_kb"] for s in summaries
            if s.get("rss_peak_kb") and s.get("rss_start_kb")]
    out = {"sessions": len(summaries)}
    if start:
        out.update(start_ms_median=float(np.median(start)), start_ms_max=float(np.max(start)))
    if grow:
        out.update(session_rss_growth_kb_median=float(np.median(grow)), session_rss_growth_kb_max=int(max(grow)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fastgrnn_lowrank_japanese_vowels", help="a bundled model")
    ap.add_argument("--inferences", type=int, default=500)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mid-session", type=int, default=4, dest="mid_session",
                    help=f"then this many {MID_SESSION!r} connections (a 1 GiB frame header after the set-up)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    from sirnn.compiler import Program, evaluate_clear
    from sirnn.data import load_samples, model_path

    path = model_path(args.model)
    x = load_samples(args.model)["x"][0]
    want = evaluate_clear(Program.load(path), x)
    srv = start_server(path, workers=args.workers, queue=64, handshake_timeout=5.0)
    try:
        t0 = time.perf_counter()
        b2b = back_to_back(srv.port, srv.proc.pid, x, args.inferences, want)
        b2b["seconds"] = time.perf_counter() - t0
        print(f"back-to-back: {args.inferences} inferences in {b2b['seconds']:.0f} s; parent RSS "
              f"{b2b['parent_rss_kb'][0]} → {b2b['parent_rss_kb'][-1]} KiB, slope "
              f"{b2b['parent_rss_slope_kb_per_inference']:.2f} KiB/inference; tree PSS slope "
              f"{b2b['tree_pss_slope_kb_per_inference']:.2f} KiB/inference", flush=True)
        fl = flood(srv.port, srv.proc.pid, args.connections, args.concurrency)
        from sirnn.compiler import infer

        fl["after_flood_ok"] = bool(np.array_equal(infer("127.0.0.1", srv.port, x).output, want))
        print(f"flood: {args.connections} connections in {fl['seconds']:.0f} s; parent RSS "
              f"{fl['parent_rss_kb_before']} → {fl['parent_rss_kb_after']} KiB (peak {fl['parent_rss_kb_peak']}); "
              f"server PSS {fl['tree_pss_kb_before']} → peak {fl['tree_pss_kb_peak']} KiB; a real inference "
              f"afterwards {'ok' if fl['after_flood_ok'] else 'WRONG'}; {fl['outcomes']}", flush=True)
        mid = flood(srv.port, srv.proc.pid, args.mid_session, 2, kinds=(MID_SESSION,)) if args.mid_session else None
    finally:
        summaries = stop_server(srv)
    n1, n2 = args.inferences, args.inferences + args.connections + 1
    costs = {"back_to_back": session_costs(summaries[:n1]), "flood": session_costs(summaries[n1:n2])}
    if mid is not None:
        costs["mid_session_huge_frame"] = session_costs(summaries[n2:])
        mid["note"] = ("a frame header announcing 1 GiB after the OT set-up's hello: refused against the "
                       "expected message size before anything is allocated")
    print(f"session processes: {costs}")
    out = {"model": args.model, "workers": args.workers, "cpu_count": os.cpu_count(),
           "command": "PYTHONPATH=src python benchmarks/soak.py " + " ".join(argv or sys.argv[1:]),
           "back_to_back": b2b, "flood": fl, "mid_session": mid, "session_processes": costs}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if fl["after_flood_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
