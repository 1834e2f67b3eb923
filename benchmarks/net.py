#!/usr/bin/env python
"""sirnn over emulated networks: the math functions, the bundled models and the Google-30 shape
in several network settings, each checked against the cost model.

Every row runs between two OS processes (``sirnn.transport.launch``), in each setting in turn:

* ``loopback``  — direct loopback TCP (no relay): the *compute* term of the model;
* ``relay``     — through the relay with no delay and no bandwidth cap (``rtt=0ms,bw=inf``): the
  relay's own overhead against ``loopback``;
* ``lan``       — the SiRNN paper's LAN (Table IV): 0.8 ms RTT, 377 MB/s;
* ``wan``       — 40 ms RTT, 100 Mbit/s;
* or ``NAME:PROFILE`` for any other profile (``wan20:rtt=20ms,bw=100mbit``).

The relay (:mod:`sirnn.transport.netem`) runs in its own process between the parties. The model
is :meth:`~sirnn.transport.netem.NetworkProfile.model_seconds`: ``loopback time of the same row in
the same run + rounds · one-way delay + bytes_up / bw_up + bytes_down / bw_down`` (a sirnn round
is a one-way flight of messages; the issue's rough figure charges a whole RTT per round, shown as
``model_rtt_seconds``).

Rows (``--rows``): ``relay`` — the relay alone on plain sockets (ping-pong and stream, direct
and through the relay in each setting); ``math`` — exp, sigmoid, tanh, rsqrt at 16-bit in/out, scale 12, N = 65,536
(``sirnn bench``'s machinery, :func:`sirnn.cli.bench.run_bench`); ``models`` — each bundled model
on its first ``--model-batch`` bundled samples, one session (``benchmarks/e2e.py``'s
``run_secure``); ``google30`` — the Google-30-shaped FastGRNN
(``examples/models/fastgrnn_google30_untrained``, compiled from its ONNX by ``sirnn compile``
once), one session per batch in ``--google30-batches`` (``--google30-lowrank`` adds SiRNN's rank
16/35 variant). Every secure output is checked against the cleartext fixed point (math: against
the functionality; models: the interpreter) — exit 1 on any mismatch.

Usage::

    python benchmarks/net.py [--settings loopback relay lan wan] [--rows relay math models google30]
                             [--only SUBSTRING ...] [--n 65536] [--model-batch 1]
                             [--google30-batches 1 8] [--google30-lowrank]
                             [--json benchmarks/net.json] [--merge] [--table]

Time: the WAN rows are mostly latency — Google-30 batch 1 ≈ 2.5 min, batch 8 ≈ 4 min, the
bundled models ≈ 5.5 min, the math rows ≈ 1.5 min; all rows and settings took 48 min on a
heavily loaded 2-core machine (2026-12-02; skip WAN with ``--settings loopback relay lan``). ``--merge`` keeps the other rows/settings
already in ``--json`` (re-measure a few). Results are written after every row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402  (benchmarks/e2e.py: two-process model sessions, Google-30 compile)

from sirnn.cli.bench import run_bench  # noqa: E402
from sirnn.compiler.program import Program  # noqa: E402
from sirnn.compiler.session import format_bytes  # noqa: E402
from sirnn.data import bundled_models, load_bundled, model_path  # noqa: E402
from sirnn.transport.netem import NetworkProfile  # noqa: E402

SETTINGS = {"loopback": None, "relay": "rtt=0ms,bw=inf", "lan": "lan", "wan": "wan"}
MATH = ("exp", "sigmoid", "tanh", "rsqrt")
MATH_OPTS = {"bw_in": 16, "scale_in": 12, "bw_out": 16, "scale_out": 12}


# ---- one measurement per (row, setting) ---------------------------------------------------------
def math_runner(fn: str, n: int):
    def run(net):
        rep = run_bench(fn, {"n": n, **MATH_OPTS}, net=net, timeout=7200.0)
        return {"seconds": rep["seconds"], "rounds": rep["rounds"], "bytes_up": rep["bytes_sent"]["bob"],
                "bytes_down": rep["bytes_sent"]["alice"], "mismatches": rep["mismatches"],
                "max_ulp": rep.get("max_ulp")}
    return run


def _model_runner(path: Path, prog: Program, x: np.ndarray):
    clear = e2e._ints(prog, x)

    def run(net):
        sec = e2e.run_secure(path, x, len(x), net)
        out = np.round(sec["output"] * 2.0**prog.output_spec.scale).astype(np.int64)
        return {"seconds": sec["seconds"], "rounds": sec["rounds"], "bytes_up": sec["bytes_up"],
                "bytes_down": sec["bytes_down"], "mismatches": int((out != clear).sum()),
                "wall_seconds": sec["wall_seconds"]}
    return run


def model_rows(batch: int) -> list:
    rows = []
    for name in bundled_models():
        prog, samples = load_bundled(name)
        x = np.asarray(samples["x"][:batch], np.float64)
        rows.append((f"{name} batch {len(x)}", _model_runner(model_path(name), prog, x)))
    return rows


def google30_rows(tmp: Path, batches, lowrank: bool) -> list:
    rows = []
    for d in e2e.GOOGLE30_MODELS[:2 if lowrank else 1]:
        path = tmp / f"{d.name}.sirnn"
        cli = e2e.compile_onnx_cli(d, path)
        print(f"compiled `{cli['command']}` in {cli['wall_seconds']:.1f} s", flush=True)
        prog = Program.load(path)
        pool = np.concatenate([np.load(d / "samples_x.npy"), np.load(d / "calib_x.npy")]).astype(np.float64)
        for b in batches:
            rows.append((f"{d.name} batch {b}", _model_runner(path, prog, pool[:b])))
    return rows


# ---- the relay alone -----------------------------------------------------------------------------
def _raw_server(port_q, pings: int, size: int) -> None:
    import socket

    ls = socket.create_server(("127.0.0.1", 0))
    port_q.put(ls.getsockname()[1])
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(pings):
        c.sendall(c.recv(1))
    got, buf = 0, bytearray(1 << 20)
    while got < size:
        n = c.recv_into(buf)
        if not n:  # the client gave up
            return
        got += n
    c.sendall(b"k")
    c.close()


def relay_raw(net: str | None, pings: int = 1000) -> dict:
    """Plain sockets, a server process and this process as the client, directly or through a
    relay process: the median 1-byte ping-pong time and the upload throughput of 1 GiB (or of
    4 s at the profile's rate, if that is less)."""
    import multiprocessing as mp
    import socket

    from sirnn.transport.netem import RelayProcess

    rate = math.inf if net is None else NetworkProfile.parse(net).bw_up
    size = min(1 << 30, int(rate * 4) >> 22 << 22) if math.isfinite(rate) else 1 << 30

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    server = ctx.Process(target=_raw_server, args=(q, pings, size))
    server.start()
    port, relay = q.get(timeout=60), None
    if net is not None:
        relay = RelayProcess(net, "127.0.0.1", port)
        port = relay.wait_port()
    try:
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(pings):
            t0 = time.perf_counter()
            c.sendall(b"p")
            c.recv(1)
            times.append(time.perf_counter() - t0)
        block = bytes(1 << 22)
        t0 = time.perf_counter()
        for _ in range(size // len(block)):
            c.sendall(block)
        c.recv(1)
        seconds = time.perf_counter() - t0
        c.close()
    finally:
        server.join(60)
        if relay is not None:
            relay.stop()
    return {"ping_pong_median_ms": float(np.median(times)) * 1e3,
            "ping_pong_p90_ms": float(np.percentile(times, 90)) * 1e3,
            "throughput_MB_per_s": size / seconds / 1e6, "bytes": size}


# ---- the model and the tables ---------------------------------------------------------------------
def add_model(results: list[dict]) -> None:
    """Fill ``model_*`` fields of every networked result from the loopback result of its row."""
    loop = {r["row"]: r for r in results if r["setting"] == "loopback"}
    for r in results:
        base = loop.get(r["row"])
        if r["net"] is None or base is None:
            continue
        m = NetworkProfile.parse(r["net"]).model_seconds(base["seconds"], r["rounds"], r["bytes_up"],
                                                          r["bytes_down"])
        r.update(model_seconds=m["total"], model_latency=m["latency"], model_transfer=m["transfer"],
                 model_compute=m["compute"], model_rtt_seconds=m["issue_total"],
                 model_duplex_seconds=m["duplex_total"], ratio=r["seconds"] / m["total"])


def table(results: list[dict], settings: list[str]) -> str:
    """Markdown: a row per benchmark (bytes in MB = 10^6 B, as network rates are); per setting
    the measured time, and for networked settings the model (with the two directions' bytes
    overlapping – one after the other) and measured / model (serial)."""
    rows = list(dict.fromkeys(r["row"] for r in results))
    by = {(r["row"], r["setting"]): r for r in results}
    head = ["row", "rounds", "MB up / down"]
    for s in settings:
        head += [s] if SETTINGS.get(s, "") is None else [f"{s}", f"{s} model (duplex–serial)", "ratio"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        any_r = next((by[row, s] for s in settings if (row, s) in by), None)
        if any_r is None:
            continue
        cells = [row, f"{any_r['rounds']:,}",
                 f"{any_r['bytes_up'] / 1e6:,.1f} / {any_r['bytes_down'] / 1e6:,.1f}"]
        for s in settings:
            r = by.get((row, s))
            t = "–" if r is None else f"{r['seconds']:.2f} s" + (" ✗" if r["mismatches"] else "")
            if SETTINGS.get(s, "") is None:
                cells.append(t)
            elif r is None or "model_seconds" not in r:
                cells += [t, "–", "–"]
            else:
                lo = r.get("model_duplex_seconds", r["model_seconds"])
                cells += [t, f"{lo:.1f}–{r['model_seconds']:.1f} s", f"{r['ratio']:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _settings(items: list[str]) -> dict[str, str | None]:
    out = {}
    for item in items:
        name, colon, prof = item.partition(":")
        if colon:
            NetworkProfile.parse(prof)
            SETTINGS[name] = prof
        elif name not in SETTINGS:
            raise SystemExit(f"unknown setting {name!r}: choose from {', '.join(SETTINGS)} or NAME:PROFILE")
        out[name] = SETTINGS[name]
    return out


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), metavar="S",
                    help="network settings, in this order (default: loopback relay lan wan); NAME:PROFILE "
                         "for another profile")
    ap.add_argument("--rows", nargs="+", default=["relay", "math", "models", "google30"],
                    choices=["relay", "math", "models", "google30"],
                    help="relay: the relay alone on plain sockets (ping-pong, 1 GiB stream)")
    ap.add_argument("--only", nargs="+", default=None, metavar="SUBSTRING",
                    help="only the rows whose name contains one of these")
    ap.add_argument("--n", type=int, default=65536, help="math functions: batch size (default 65536)")
    ap.add_argument("--model-batch", type=int, default=1, help="bundled models: samples per session")
    ap.add_argument("--google30-batches", type=int, nargs="+", default=[1, 8], metavar="B")
    ap.add_argument("--google30-lowrank", action="store_true", help="also the rank 16/35 Google-30 model")
    ap.add_argument("--json", type=Path, default=HERE / "net.json")
    ap.add_argument("--merge", action="store_true", help="keep other results already in --json")
    ap.add_argument("--table", action="store_true", help="only print the table of --json")
    args = ap.parse_args(argv)
    if args.table:
        res = json.loads(args.json.read_text())["results"]
        add_model(res)
        print(table(res, list(dict.fromkeys(r["setting"] for r in res))))
        return 0
    settings = _settings(args.settings)
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "code": _commit(), "command": " ".join(["python", "benchmarks/net.py", *(argv or sys.argv[1:])]),
           "settings": {k: (None if v is None else str(NetworkProfile.parse(v))) for k, v in settings.items()},
           "results": []}
    old = json.loads(args.json.read_text()) if args.merge and args.json.exists() else {}
    kept = old.get("results", [])
    doc["relay_raw"] = old.get("relay_raw", {})

    if "relay" in args.rows:
        for setting, net in settings.items():
            doc["relay_raw"][setting] = r = {"net": net, **relay_raw(net)}
            print(f"relay alone {setting:9s} ping-pong median {r['ping_pong_median_ms']:.3f} ms "
                  f"(p90 {r['ping_pong_p90_ms']:.3f}), {r['throughput_MB_per_s']:.0f} MB/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        if "math" in args.rows:
            rows += [(f"{fn} N={args.n}", math_runner(fn, args.n)) for fn in MATH]
        if "models" in args.rows:
            rows += model_rows(args.model_batch)
        if "google30" in args.rows:
            rows += google30_rows(Path(tmp), args.google30_batches, args.google30_lowrank)
        if args.only:
            rows = [(n, f) for n, f in rows if any(s in n for s in args.only)]
        done = []
        for name, run in rows:
            for setting, net in settings.items():
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                r = {"row": name, "setting": setting, "net": None if net is None else str(NetworkProfile.parse(net)),
                     **run(net), "loadavg_1min_before": round(load, 2), "wall_with_startup": time.perf_counter() - t0}
                done.append(r)
                print(f"{name:44s} {setting:9s} {r['seconds']:9.2f} s  {r['rounds']:6,d} rounds  "
                      f"up {format_bytes(r['bytes_up'])}, down {format_bytes(r['bytes_down'])}  "
                      f"mismatches {r['mismatches']}  (load {load:.2f})", flush=True)
                fresh = {(x["row"], x["setting"]) for x in done}
                doc["results"] = [x for x in kept if (x["row"], x["setting"]) not in fresh] + done
                add_model(doc["results"])
                args.json.write_text(json.dumps(doc, indent=1))
    doc["results"] = doc["results"] or kept
    args.json.write_text(json.dumps(doc, indent=1))
    all_settings = list(dict.fromkeys([*settings, *(x["setting"] for x in doc["results"])]))
    print("\n" + table(doc["results"], all_settings))
    return 1 if any(r["mismatches"] for r in doc["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
