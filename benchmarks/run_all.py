#!/usr/bin/env python
"""Run the benchmark suite: every configuration below via ``sirnn bench ... --json`` (two OS
processes over loopback each), ``--repeat`` times (default 3), and report the median.

    python benchmarks/run_all.py [--repeat 3] [--only relu6,cot [--merge]] [--ot ferret,iknp]
                                 [--out benchmarks/results.json]

Writes all runs and the medians to ``--out`` and prints a Markdown table (the one in
``benchmarks/RESULTS.md``). Bytes and rounds are deterministic; seconds and set-up seconds are
the medians of the runs; mismatches is the worst run's; ``load`` is the 1-minute load average
when the configuration started (the machine may be shared). ``--merge`` keeps the other
configurations' results already in ``--out`` (to re-measure a few rows). ``--ot`` runs every
configuration on each named OT engine (``--ot X`` appended; default: both, Ferret first), so each
row has its IKNP twin; "offline s" is set-up plus Ferret refills, "online B/elem" the bytes
without them. Exit status 1 if any run mismatched.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
N = "--n 65536"


def _fmt_rate(r: float) -> str:
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def _rate(unit: str, target: float | None = None):
    """Comparison text: throughput in `unit`/s, against a target rate if given."""
    def text(rep):
        r = rep["n"] / rep["seconds"]
        s = f"{_fmt_rate(r)} {unit}/s"
        return s if target is None else f"{s}; target ≥ {_fmt_rate(target)}/s {'✓' if r >= target else '✗'}"
    return text


def _relu6(rep):
    ok = "✓" if rep["seconds"] <= 1.5 else "✗"
    return (f"SCI: 1,081 B/elem, 0.74 s (1 thread); ours {rep['bytes_per_element'] / 1081:.2f}× the bytes; "
            f"target ≤ 1.5 s {ok}")


# SCI (SiRNN's C++ library, 1 thread) on this machine type, N = 65536, 16-bit in/out, scale 12:
# seconds, bytes per element (both parties), max ULP — the reference figures
SCI_MATH = {"exp": (1.27, 2004, 2), "sigmoid": (2.18, 4430, 3), "tanh": (2.23, 4383, 4),
            "rsqrt": (2.91, 5701, 4)}
MATH_DEFAULT = "--bw-in 16 --scale-in 12 --bw-out 16 --scale-out 12"
MATH_OTHER = ["--bw-in 32 --scale-in 16 --bw-out 32 --scale-out 16",
              "--bw-in 12 --scale-in 8 --bw-out 16 --scale-out 12",
              "--bw-in 16 --scale-in 12 --bw-out 24 --scale-out 20"]


def _math(name: str, default: bool):
    def text(rep):
        s = f"max ULP {rep['max_ulp']:.2f} (mean {rep['mean_ulp']:.2f})"
        if default and name in SCI_MATH:
            t, b, u = SCI_MATH[name]
            ok = lambda c: "✓" if c else "✗"  # noqa: E731
            s += (f"; SCI {t} s, {b:,} B, {u} ULP → targets ≤ {3 * t:.2f} s {ok(rep['seconds'] <= 3 * t)}, "
                  f"≤ {b:,} B {ok(rep['bytes_per_element'] <= b)}, ≤ {u} ULP {ok(rep['max_ulp'] <= u)}")
        return s
    return text


def _math_configs() -> list:
    out = []
    for name in ("exp", "exp_sat", "sigmoid", "tanh", "rsqrt", "sqrt", "reciprocal", "div"):
        out.append((f"{name} {N} {MATH_DEFAULT}", _math(name, True)))
        for cfg in MATH_OTHER:
            if name == "exp_sat" and cfg.startswith("--bw-in 32"):
                cfg = "--bw-in 32 --scale-in 16 --bw-out 24 --scale-out 16"  # 32/16 out is rejected
            out.append((f"{name} {N} {cfg}", _math(name, False)))
    return out


# (arguments of `sirnn bench`, comparison text from the median report or None)
def _rcot(rep):
    """Random COT generation: throughput and bits per COT (the silent-OT targets)."""
    bits = 8 * rep["bytes_per_element"]
    cpu = f" ({_fmt_rate(rep['n'] / rep['cpu_seconds'])}/s per CPU second)" if rep.get("cpu_seconds") else ""
    setup = rep["offline"]["bytes"] - rep["offline"]["refill_bytes"]  # both directions' set-up
    return (f"{_rate('COT', 10e6)(rep)}{cpu}; {bits:.2f} bits/COT (with the whole session set-up: "
            f"{8 * (rep['bytes_sent']['total'] + setup) / rep['n']:.2f}); "
            f"target ≤ 1 bit {'✓' if bits <= 1 else '✗'}")


CONFIGS: list[tuple[str, object]] = [
    ("rcot --n 16777216", _rcot),
    ("cot --n 1048576 --bits 32", _rate("COT", 2e6)),
    ("kkot --n 262144 --N 16 --bits 8", _rate("OT", 2e5)),
    ("kkot --n 65536 --N 256 --bits 16", _rate("OT")),
    ("ot --n 1048576 --bits 32", _rate("OT")),
    (f"millionaire {N} --bw-in 32", None),
    (f"wrap {N} --bw-in 32", None),
    (f"msb {N} --bw-in 32", None),
    (f"drelu {N} --bw-in 32", None),
    (f"b2a {N} --bw-out 32", None),
    (f"mux {N} --bw-in 32", None),
    (f"lut {N} --bw-in 8 --bw-out 16", None),
    (f"zext {N} --bw-in 32 --bw-out 64", None),
    (f"sext {N} --bw-in 32 --bw-out 64", None),
    (f"tr {N} --bw-in 32 --opt s=12", None),
    (f"ars {N} --bw-in 32 --opt s=12", None),
    (f"lrs {N} --bw-in 32 --opt s=12", None),
    (f"div_pow2 {N} --bw-in 32 --opt s=12", None),
    (f"mul {N} --bw-in 32 --bw-out 32", None),
    (f"mul {N} --bw-in 16 --bw-out 32", None),
    (f"mul {N} --bw-in 32 --bw-out 64", None),
    (f"mul {N} --bw-in 32 --bw-out 32 --opt known=1", None),
    ("matmul --n 4096 --bw-in 32 --bw-out 32 --opt a=64 --opt b=64 --opt c=64", None),
    ("matmul --n 4096 --bw-in 32 --bw-out 32 --opt a=64 --opt b=64 --opt c=64 --opt known=1", None),
    (f"digits {N} --bw-in 32 --opt d=8", None),
    (f"msnzb {N} --bw-in 32", None),
    (f"relu {N} --bw-in 32", None),
    (f"relu6 {N} --bw-in 32 --scale-in 28", _relu6),
    ("maxpool --n 16384 --bw-in 32 --opt k=4", None),
    ("argmax --n 8192 --bw-in 32 --opt k=8", None),
    *_math_configs(),
]


def run_one(args: str, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "sirnn.cli.main", "bench", *shlex.split(args), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"`sirnn bench {args}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def median_report(runs: list[dict]) -> dict:
    rep = dict(runs[0])
    for k in ("seconds", "setup_seconds", "warmup_seconds", "cpu_seconds"):
        if k in rep:
            rep[k] = statistics.median(r[k] for r in runs)
    for part in ("offline", "online"):
        if part in rep:
            rep[part] = dict(rep[part], seconds=statistics.median(r[part]["seconds"] for r in runs))
    rep["throughput_per_s"] = rep["n"] / rep["seconds"]
    rep["mismatches"] = max(r.get("mismatches", 0) for r in runs)
    if len({r["bytes_sent"]["total"] for r in runs}) != 1 or len({r["rounds"] for r in runs}) != 1:
        rep["note"] = "bytes or rounds differ between runs"
    return rep


def config_text(args: str) -> str:
    """The command line without the function name."""
    return args.partition(" ")[2]


def table(rows: list[dict]) -> str:
    out = ["| function | config | seconds | setup s | bytes/elem | rounds | offline s | online B/elem "
           "| mismatches | load | vs. reference / target |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        m = r["median"]
        off, on = m.get("offline"), m.get("online")
        split = (f"{off['seconds']:.3f} | {on['bytes_per_element']:,.1f}" if off and on else "– | –")
        out.append(f"| {m['function']} | `{config_text(r['args'])}` | {m['seconds']:.3f} | {m['setup_seconds']:.3f} "
                   f"| {m['bytes_per_element']:,.1f} | {m['rounds']} | {split} | {m['mismatches']} | {r['load']:.1f} "
                   f"| {r['compare']} |")
    return "\n".join(out)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform()}


def code_version() -> str:
    """The checked-out commit, with "+dirty" when the working tree differs from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def loadavg() -> list[float]:
    return list(os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="comma-separated function names")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--merge", action="store_true", help="keep the other results already in --out")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--ot", default="ferret,iknp", help="comma-separated OT engines to run each configuration on")
    a = ap.parse_args(argv)
    only = set(a.only.split(",")) if a.only else None
    engines = a.ot.split(",")
    every = [(f"{args} --ot {e}", cmp) for args, cmp in CONFIGS for e in engines]
    configs = [(args, cmp) for args, cmp in every if only is None or args.split()[0] in only]

    info = {"date": _now(), "machine": machine(), "code": code_version(), "repeat": a.repeat,
            "loadavg_before": loadavg()}
    old = {}
    if a.merge and a.out.exists():
        prev = json.loads(a.out.read_text())
        old = {r["args"]: r for r in prev["results"]}
        info["loadavg_before"] = prev["loadavg_before"]
    rows = {}
    for args, cmp in configs:
        load = loadavg()[0]
        runs = []
        for i in range(a.repeat):
            runs.append(run_one(args, a.timeout))
            print(f"  {args}  [{i + 1}/{a.repeat}] {runs[-1]['seconds']:.3f} s, "
                  f"mismatches {runs[-1].get('mismatches')}", file=sys.stderr, flush=True)
        med = median_report(runs)
        rows[args] = {"args": args, "command": f"sirnn bench {args} --json", "median": med, "runs": runs,
                      "compare": cmp(med) if cmp else "", "load": load, "date": _now()}
    rows = [rows.get(args) or old[args] for args, _ in every if args in rows or args in old]
    info["loadavg_after"] = loadavg()
    a.out.write_text(json.dumps({**info, "results": rows}, indent=1) + "\n")
    repeats = "/".join(str(k) for k in sorted({len(r["runs"]) for r in rows}))
    print(f"<!-- {info['date']}, {info['machine']['nproc']} × {info['machine']['cpu']}, median of {repeats} runs, "
          f"load average before {info['loadavg_before'][0]:.2f}, after {info['loadavg_after'][0]:.2f} -->")
    print(table(rows))
    return 1 if any(r["median"]["mismatches"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
