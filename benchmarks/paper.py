"""The SiRNN paper's end-to-end rows (Table IV) next to sirnn's, on the paper-shaped models.

Rows (model × batch): Industrial-72 at batch 1 and 128, Google-30 at batch 1 and 128 (SiRNN's
low-rank shape), Heads at batch 1. Each model's ``model.onnx`` is compiled by the CLI in a
subprocess, exactly ``sirnn compile model.onnx --calib calib_x.npy -o model.sirnn``
(``benchmarks/e2e.py``'s :func:`compile_onnx_cli`); each row is one secure session between two
OS processes over loopback TCP (``e2e.run_secure``: time and bytes from the client's view, both
directions; each party's peak resident memory, VmHWM), its output checked against the cleartext
fixed-point interpreter bit for bit (exit 1 on any difference).

Inputs: the model's bundled samples then its calibration inputs; beyond those (batch 128), more
N(0, 1) draws from ``numpy.random.default_rng(1000 + batch)`` — the same distribution as the
bundled inputs of these untrained cost models.

Google-30 at batch 128 (25.2 GB in the paper) is estimated first: a batch-8 session is run, time,
bytes and each party's peak memory are extrapolated linearly from batches 1 and 8, and the
batch-128 session runs only if the estimate fits ``--max-seconds`` and 60 % of the available
memory (``--google30-128 run`` forces it, ``skip`` never runs it). Heads: the ONNX model is
generated (``examples/paper_models.py``, needs torch) if absent, compiled, and run as one session
(up to :data:`HEADS_TIMEOUT`; tens of GB of traffic, each party's memory bounded by the backend's
chunking, ``sirnn.protocols.backend.CHUNK_BYTES``); only if the importer refused it would the row
record the error and the ops it lacks (``paper_models.importer_gaps``) and its conv + RNNPool
front be measured on a 40×48 crop and extrapolated (:func:`heads_front_estimate`; ``--no-front``
skips it). Crops of the whole network: ``benchmarks/memprofile.py`` on
``paper_models.export_heads_crop`` exports (RESULTS.md).

The paper's figures: 4-core 3.7 GHz Xeon, LAN (377 MB/s, 0.8 ms RTT). ``--net lan`` runs every
session through the network emulation relay (:mod:`sirnn.transport.netem`) at the paper's LAN
(``--net SPEC`` any other profile, e.g. ``rtt=40ms,bw=100mbit``); ``--ot ferret|iknp`` picks the OT
engine of the sessions (default: the server's default).

Usage::

    python benchmarks/paper.py [--only industrial72 google30 heads] [--batches 1 128]
                               [--google30-128 auto|run|skip] [--max-seconds 300] [--no-front]
                               [--json benchmarks/paper.json] [--net lan|SPEC] [--ot ferret|iknp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))

from e2e import _ints, compile_onnx_cli, proc_bytes, run_secure  # noqa: E402

from sirnn.compiler.program import Program  # noqa: E402

MODELS = {
    "industrial72": ROOT / "examples" / "models" / "fastgrnn_industrial72_untrained",
    "google30": ROOT / "examples" / "models" / "fastgrnn_google30_lowrank_untrained",
    "heads": ROOT / "examples" / "models" / "rnnpool_heads_untrained",
}
MB, GB = 10**6, 10**9
#: SiRNN paper, Table IV (4-core Xeon, LAN): (model, batch) → (seconds, bytes); the paper's MB/GB
#: are read as 10^6 / 10^9 bytes (as 2^20 / 2^30 the ratios below would shrink by 5-7 %)
PAPER = {("industrial72", 1): (3.7, 23.8 * MB), ("industrial72", 128): (13.2, 1.04 * GB),
         ("google30", 1): (49.6, 0.45 * GB), ("google30", 128): (140.0, 25.2 * GB),
         ("heads", 1): (409.7, 85.5 * GB)}
HEADS_TIMEOUT = 6 * 3600.0  # the whole Heads session (tens of GB) may take an hour or more
MEMORY_SHARE = 0.6  # run a session only if both parties' estimated peak fits in this share of MemAvailable


#: how every session runs: {"net": a network profile spec or None (loopback), "ot": engine or None}
SESSION = {"net": None, "ot": None}


def inputs_for(model_dir: Path, batch: int) -> tuple[np.ndarray, str]:
    pool = np.concatenate([np.load(model_dir / "samples_x.npy"), np.load(model_dir / "calib_x.npy")])
    pool = pool.astype(np.float64)
    if batch <= len(pool):
        return pool[:batch], f"the {batch} first of samples_x + calib_x"
    extra = np.random.default_rng(1000 + batch).standard_normal((batch - len(pool),) + pool.shape[1:])
    return np.concatenate([pool, extra]), (f"samples_x + calib_x ({len(pool)}) and {batch - len(pool)} "
                                           f"N(0,1) draws of default_rng({1000 + batch})")



def session_row(name: str, prog_path: Path, batch: int, compiled: dict, model_dir: Path | None = None,
                timeout: float = 7200.0) -> dict:
    model_dir = model_dir or MODELS[name]
    prog = Program.load(prog_path)
    x, how = inputs_for(model_dir, batch)
    clear = _ints(prog, x)
    sec = run_secure(prog_path, x, batch, net=SESSION["net"], ot=SESSION["ot"], timeout=timeout)
    sec_int = np.round(sec.pop("output") * 2.0**prog.output_spec.scale).astype(np.int64)
    paper_s, paper_b = PAPER.get((name, batch), (None, None))
    row = {"model": name, "model_dir": str(model_dir.relative_to(ROOT)) if model_dir.is_relative_to(ROOT) else
           str(model_dir), "batch": batch, "inputs": how,
           "status": "measured", "net": SESSION["net"] or "loopback", "compile_command": compiled["command"], "digest": prog.digest(),
           "logit_mismatches": int((sec_int != clear).sum()), **sec,
           "paper_seconds": paper_s, "paper_bytes": paper_b}
    if paper_b:
        row["bytes_ratio"] = sec["bytes"] / paper_b
        row["seconds_ratio"] = sec["seconds"] / paper_s
    return row


def estimate(rows: list[dict], batch: int) -> dict:
    """Linear extrapolation in the batch size from two measured rows of one model."""
    (b1, r1), (b2, r2) = sorted((r["batch"], r) for r in rows)[:2]

    def lin(f):
        slope = (f(r2) - f(r1)) / (b2 - b1)
        return f(r1) + slope * (batch - b1)

    return {"from_batches": [b1, b2], "seconds": lin(lambda r: r["seconds"]), "bytes": lin(lambda r: r["bytes"]),
            "peak_rss_bytes": {p: lin(lambda r, p=p: r["peak_rss_bytes"][p]) for p in ("server", "client")}}


def heads_row(tmp: Path) -> dict:
    from paper_models import importer_gaps

    d = MODELS["heads"]
    onnx_path = d / "model.onnx"
    if not onnx_path.exists():
        gen = subprocess.run([sys.executable, str(ROOT / "examples" / "paper_models.py")], capture_output=True,
                             text=True, timeout=900)
        if gen.returncode != 0:
            return {"model": "heads", "batch": 1, "status": "not generated",
                    "error": (gen.stderr.strip().splitlines() or ["?"])[-1]}
    row = {"model": "heads", "model_dir": str(d.relative_to(ROOT)), "batch": 1,
           "paper_seconds": PAPER[("heads", 1)][0], "paper_bytes": PAPER[("heads", 1)][1]}
    try:
        compiled = compile_onnx_cli(d, tmp / "heads.sirnn")
    except RuntimeError as e:
        err = [ln for ln in str(e).splitlines() if ln.startswith("sirnn compile: error:")]
        return {**row, "status": "not compiled", "error": err[0] if err else str(e).splitlines()[0],
                "importer_gaps": importer_gaps(onnx_path)}
    return {**session_row("heads", tmp / "heads.sirnn", 1, compiled, timeout=HEADS_TIMEOUT), **row}


def si_bytes(n: float | None) -> str:
    """Bytes in the paper's units (MB = 10^6 B, GB = 10^9 B)."""
    if n is None:
        return "–"
    return f"{n / GB:.3g} GB" if n >= GB else f"{n / MB:.3g} MB"


FRONT_HW = (40, 48)  # Heads' front measured on this crop: 20 RNNPool patches


def heads_front_estimate(tmp: Path) -> dict:
    """Heads' conv + RNNPool front (the part today's importer compiles; ReLU for its ReLU6)
    measured on a 40×48 crop and extrapolated to the 240×320 input: the rnnpool layer's bytes and
    seconds per patch × 1131 patches, the conv, ReLU and input sharing per pixel, the session
    set-up as measured. A lower bound for Heads (its 14 MBConv blocks, L2Norms and heads are
    left out); rounds do not grow with the patches."""
    from paper_models import IN_HW, HeadsFront, HeadsNet, export_front

    d = tmp / "heads_front"
    d.mkdir()
    calib, patches = export_front(d / "model.onnx", FRONT_HW)
    full_patches = HeadsFront(HeadsNet()).patches(IN_HW)
    np.save(d / "calib_x.npy", calib)
    np.save(d / "samples_x.npy", calib[:1])
    compiled = compile_onnx_cli(d, d / "front.sirnn")
    r = session_row("heads", d / "front.sirnn", 1, compiled, model_dir=d)
    pixels = IN_HW[0] * IN_HW[1] / (FRONT_HW[0] * FRONT_HW[1])
    scale = {k: full_patches / patches if v["op"] == "rnnpool" else
             pixels if v["op"] != "-" or k == "share input" else 1.0 for k, v in r["layers"].items()}
    est = {key: sum(v[key] * scale[k] for k, v in r["layers"].items()) for key in ("bytes", "seconds")}
    p_s, p_b = PAPER[("heads", 1)]
    return {"model": "heads", "batch": 1, "status": "estimated (conv + RNNPool front only)",
            "reason": f"measured on a {FRONT_HW[0]}x{FRONT_HW[1]} crop ({patches} RNNPool patches), "
                      f"extrapolated to {IN_HW[0]}x{IN_HW[1]} ({full_patches} patches)",
            "bytes": est["bytes"], "seconds": est["seconds"], "rounds": r["rounds"],
            "paper_seconds": p_s, "paper_bytes": p_b, "bytes_ratio": est["bytes"] / p_b,
            "seconds_ratio": est["seconds"] / p_s, "front_measured": r, "scale": scale}


def table(rows: list[dict]) -> str:
    fb = si_bytes

    out = [f"{'model':13s} {'batch':>5s} | {'paper bytes':>11s} {'sirnn bytes':>11s} {'ratio':>6s} | "
           f"{'paper time':>10s} {'sirnn time':>10s} {'ratio':>6s} | {'rounds':>6s} {'peak RSS srv/cli':>19s} "
           f"{'mism.':>5s}  status"]
    for r in rows:
        if r["status"].startswith(("measured", "estimated")):
            m = r.get("peak_rss_bytes")
            peak = f"{fb(m['server'])} / {fb(m['client'])}" if m else "–"
            br = f"{r['bytes'] / r['paper_bytes']:.3f}" if r.get("paper_bytes") else "–"
            tr = f"{r['seconds'] / r['paper_seconds']:.2f}" if r.get("paper_seconds") else "–"
            pt = f"{r['paper_seconds']:.1f} s" if r.get("paper_seconds") else "–"
            out.append(f"{r['model']:13s} {r['batch']:5d} | {fb(r.get('paper_bytes')):>11s} {fb(r['bytes']):>11s} "
                       f"{br:>6s} | {pt:>10s} {r['seconds']:>8.1f} s {tr:>6s} | {r.get('rounds', '–')!s:>6s} "
                       f"{peak:>19s} {r.get('logit_mismatches', '–')!s:>5s}  {r['status']}")
        else:
            out.append(f"{r['model']:13s} {r['batch']:5d} | {fb(r.get('paper_bytes')):>11s} {'–':>11s} {'–':>6s} | "
                       f"{r.get('paper_seconds', 0):>8.1f} s {'–':>10s} {'–':>6s} |   {r['status']}: "
                       f"{r.get('error', r.get('reason', '')).split(' (supported:')[0]}")
    out.append("(MB = 10^6 B, GB = 10^9 B, as the paper's figures are read here; ratios: sirnn / paper)")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 128], metavar="B",
                    help="batch sizes of Industrial-72 and Google-30 (default 1 128)")
    ap.add_argument("--google30-128", choices=("auto", "run", "skip"), default="auto", dest="g30",
                    help="Google-30 at batch 128: run if the estimate from batches 1 and 8 fits (auto)")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="auto: the longest estimated Google-30 batch-128 session to run (default 300)")
    ap.add_argument("--net", default=None, metavar="SPEC", help="run the sessions through the network "
                    "emulation relay: lan (the paper's: 0.8 ms RTT, 377 MB/s), wan, or rtt=…,bw=… "
                    "(default: direct loopback)")
    ap.add_argument("--ot", choices=("ferret", "iknp"), default=None,
                    help="OT engine of the sessions (default: sirnn's default)")
    ap.add_argument("--no-front", action="store_true", dest="no_front",
                    help="while Heads does not compile: skip the estimate from its conv + RNNPool front")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.net is not None:
        from sirnn.errors import ParameterError
        from sirnn.transport.netem import NetworkProfile

        try:
            args.net = str(NetworkProfile.of(args.net))
        except ParameterError as e:
            ap.error(f"--net: {e}")
    SESSION.update(net=args.net, ot=args.ot)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "nproc": os.cpu_count(),
            "loadavg_start": os.getloadavg()[0], "net": args.net or "loopback", "ot": args.ot or "default"}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for name in [n for n in ("industrial72", "google30") if n in args.only]:
            path = tmp / f"{name}.sirnn"
            compiled = compile_onnx_cli(MODELS[name], path)
            print(f"== {name}: `{compiled['command']}` ({compiled['compile_seconds']} s)", flush=True)
            done: list[dict] = []
            batches = sorted(set(args.batches) | ({1, 8} if name == "google30" and 128 in args.batches else set()))
            for b in batches:
                if name == "google30" and b == 128:
                    est = estimate(done, 128)
                    avail = proc_bytes("/proc/meminfo", "MemAvailable")
                    need = est["peak_rss_bytes"]["server"] + est["peak_rss_bytes"]["client"]
                    fits = est["seconds"] <= args.max_seconds and (avail is None or need <= MEMORY_SHARE * avail)
                    print(f"   batch 128 estimate from batches 1 and 8: {est['seconds']:.0f} s, "
                          f"{si_bytes(est['bytes'])}, peak {si_bytes(need)} for both parties (linear in the "
                          "batch: an upper bound, chunking caps each op) "
                          f"(available {si_bytes(avail or 0)}) -> {'fits' if fits else 'does not fit'}", flush=True)
                    if args.g30 == "skip" or (args.g30 == "auto" and not fits):
                        reason = ("--google30-128 skip" if args.g30 == "skip" else
                                  f"estimate {est['seconds']:.0f} s > --max-seconds {args.max_seconds:.0f}"
                                  if est["seconds"] > args.max_seconds else
                                  f"estimated peak memory above {MEMORY_SHARE:.0%} of MemAvailable")
                        p_s, p_b = PAPER[(name, 128)]
                        rows.append({"model": name, "batch": 128, "status": "estimated", "reason": reason,
                                     "estimate": est, "seconds": est["seconds"], "bytes": est["bytes"],
                                     "peak_rss_bytes": est["peak_rss_bytes"], "rounds": done[0]["rounds"],
                                     "paper_seconds": p_s, "paper_bytes": p_b,
                                     "bytes_ratio": est["bytes"] / p_b, "seconds_ratio": est["seconds"] / p_s})
                        print(f"   batch 128 not run: {reason}", flush=True)
                        continue
                r = session_row(name, path, b, compiled)
                if b not in args.batches:
                    r["status"] = "measured (estimate basis)"
                done.append(r)
                rows.append(r)
                print(f"   batch {b}: {r['seconds']:.2f} s, {si_bytes(r['bytes'])}, {r['rounds']} rounds, peak "
                      f"{si_bytes(r['peak_rss_bytes']['server'])} / {si_bytes(r['peak_rss_bytes']['client'])}, "
                      f"{r['logit_mismatches']} mismatches", flush=True)
        if "heads" in args.only:
            r = heads_row(tmp)
            print(f"== heads: {r['status']}" + (f" — {r['error']}" if "error" in r else ""), flush=True)
            if "importer_gaps" in r:
                print("   the importer lacks: " + ", ".join(f"{k} x{v}" for k, v in r["importer_gaps"].items()))
            rows.append(r)
            if r["status"] == "not compiled" and not args.no_front:
                f = heads_front_estimate(tmp)
                m = f["front_measured"]
                print(f"   front (conv + RNNPool) on the crop: {m['seconds']:.2f} s, {si_bytes(m['bytes'])}, "
                      f"{m['rounds']} rounds, {m['logit_mismatches']} mismatches; extrapolated: "
                      f"{si_bytes(f['bytes'])}, {f['seconds']:.0f} s", flush=True)
                rows.append(f)
    shown = [r for r in rows if not r["status"].endswith("(estimate basis)")]
    print("\n" + table(shown), flush=True)
    meta["loadavg_end"] = os.getloadavg()[0]
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    return 1 if any(r.get("logit_mismatches") or r.get("front_measured", {}).get("logit_mismatches")
                    for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
