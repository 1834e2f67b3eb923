"""Where a secure inference's memory goes: per-op peak resident memory of both parties.

One session between two OS processes over loopback TCP (``sirnn.transport.launch``); in each
party every op runner of :data:`sirnn.compiler.runtime.RUNNERS` is wrapped: before the op the
process's high-water mark is reset to its current RSS (``5`` written to ``/proc/self/clear_refs``),
after it ``VmHWM`` is read. Printed per op (largest first): the op's peak above the RSS it started
at, its bytes (both directions) and rounds; and each party's VmHWM of the whole session (as
``benchmarks/paper.py`` records it). The secure output is checked against the cleartext
fixed-point interpreter (exit 1 on a difference).

Usage::

    python benchmarks/memprofile.py PROGRAM.sirnn INPUT.npy [--batch N] [--top 15] [--json FILE]
                                    [--chunk BYTES|none]

``--chunk``: the backend's chunk budget in both parties (default: ``CHUNK_BYTES``; ``none``: every
operation whole, as before chunking existed).

``INPUT.npy``: (n, *input shape) float inputs; the first ``--batch`` rows are used (repeated
cyclically when there are fewer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sirnn import ALICE


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _party(role: int, chan, prog_path: str, x: np.ndarray | None, chunk="default"):
    from sirnn.compiler import runtime
    from sirnn.protocols.backend import SecureBackend

    if chunk != "default":  # both parties alike
        SecureBackend.__init__.__defaults__ = (chunk,)
    from sirnn.compiler.program import Program
    from sirnn.compiler.session import client_session, server_session
    from sirnn.ot.warmup import warm_up

    warm_up()
    rows: dict[str, dict] = {}
    overall = [0]

    def wrap(fn):
        def run(ctx, op, ins):
            overall[0] = max(overall[0], _status("VmHWM"))
            _reset_hwm()
            rss0, b0, r0, t0 = _status("VmRSS"), chan.stats.bytes_sent + chan.stats.bytes_recv, chan.stats.rounds, \
                time.perf_counter()
            out = fn(ctx, op, ins)
            hwm = _status("VmHWM")
            overall[0] = max(overall[0], hwm)
            rows[op.name] = {"op": op.op, "rss_before": rss0, "peak": hwm, "above": hwm - rss0,
                             "bytes": chan.stats.bytes_sent + chan.stats.bytes_recv - b0,
                             "rounds": chan.stats.rounds - r0, "seconds": time.perf_counter() - t0,
                             "elements": int(np.prod(out[0].shape))}
            return out
        return run

    for k in list(runtime.RUNNERS):
        runtime.RUNNERS[k] = wrap(runtime.RUNNERS[k])
    if role == ALICE:
        s = server_session(chan, Program.load(prog_path))
        out = None
    else:
        res = client_session(chan, x)
        s = {"seconds": res.seconds, "bytes": res.bytes_sent + res.bytes_recv, "rounds": res.rounds}
        out = np.asarray(res.output)
    overall[0] = max(overall[0], _status("VmHWM"))
    return {"rows": rows, "session": s, "output": out, "vmhwm": overall[0]}


def main(argv=None) -> int:
    from sirnn.compiler import evaluate_clear
    from sirnn.compiler.program import Program
    from sirnn.transport.launch import run_two_processes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("program", type=Path)
    ap.add_argument("input", type=Path)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--chunk", default="default", help="chunk budget in bytes, or none (default: CHUNK_BYTES)")
    args = ap.parse_args(argv)
    chunk = args.chunk if args.chunk == "default" else None if args.chunk == "none" else int(args.chunk)
    prog = Program.load(args.program)
    pool = np.load(args.input).astype(np.float64)
    x = pool[np.arange(args.batch) % len(pool)]
    t0 = time.perf_counter()
    a, b = run_two_processes(_party, str(args.program), x, chunk, timeout=14400.0, channel_timeout=1200.0)
    wall = time.perf_counter() - t0
    o = prog.output_spec
    clear = np.asarray(evaluate_clear(prog, x, raw=True), np.uint64)
    sec = np.round(b["output"] * 2.0**o.scale).astype(np.int64)
    from sirnn.protocols.ring import mask, to_signed
    mism = int((sec != to_signed(clear & mask(o.bits), o.bits)).sum())
    MB = 1e6
    print(f"session: {b['session']['seconds']:.2f} s (wall {wall:.1f} s), {b['session']['bytes'] / MB:.1f} MB, "
          f"{b['session']['rounds']} rounds, {mism} mismatches; VmHWM server {a['vmhwm'] / MB:.0f} MB, "
          f"client {b['vmhwm'] / MB:.0f} MB")
    print(f"{'op':28s} {'kind':10s} {'elements':>9s} {'MB sent+recv':>12s} {'rounds':>6s} "
          f"{'srv peak+':>9s} {'cli peak+':>9s} {'srv RSS0':>8s} {'cli RSS0':>8s}  (MB)")
    names = sorted(b["rows"], key=lambda n: -max(a["rows"][n]["above"], b["rows"][n]["above"]))
    for n in names[:args.top]:
        ra, rb = a["rows"][n], b["rows"][n]
        print(f"{n[:28]:28s} {rb['op']:10s} {rb['elements']:9d} {rb['bytes'] / MB:12.1f} {rb['rounds']:6d} "
              f"{ra['above'] / MB:9.0f} {rb['above'] / MB:9.0f} {ra['rss_before'] / MB:8.0f} {rb['rss_before'] / MB:8.0f}")
    if args.json:
        args.json.write_text(json.dumps({"program": str(args.program), "batch": args.batch, "mismatches": mism,
                                         "chunk": args.chunk,
                                         "wall_seconds": wall, "session": b["session"],
                                         "vmhwm": {"server": a["vmhwm"], "client": b["vmhwm"]},
                                         "ops": {"server": a["rows"], "client": b["rows"]}}, indent=1))
    return 1 if mism else 0


if __name__ == "__main__":
    sys.exit(main())
