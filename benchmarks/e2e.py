"""End-to-end secure inference on real data: the bundled trained models on their WHOLE test
splits, plus the Google-30-shaped untrained FastGRNNs (cost only).

Per model, one pair of OS processes over loopback TCP (``sirnn.transport.launch``): ALICE holds
the compiled program (``sirnn.data``, weights), BOB the test inputs. BOB runs one inference
session (:func:`sirnn.compiler.session.client_session`, with the per-layer report) per batch of
``--batch`` samples, on the same connection. The parent then checks the secure logits against
the cleartext fixed-point interpreter (:func:`sirnn.compiler.evaluate_clear`), bit for bit
(exit 1 on any difference), and reports float / fixed-point / secure accuracy, time, bytes
(both directions), rounds, each party's peak resident memory and the per-layer breakdown summed
over the batches.

Google-30 (``examples/models/fastgrnn_google30_untrained``, full-rank W and U, and
``examples/models/fastgrnn_google30_lowrank_untrained``, SiRNN's rank 16 / 35; D=32, H=100,
T=99, 30 classes, random weights): each ``model.onnx`` is compiled by the CLI in a subprocess,
exactly ``python -m sirnn compile model.onnx --calib calib_x.npy -o model.sirnn``; the parent
checks that the result evaluates bit for bit like the program compiled from ``weights.npz``
(``examples/to_float_model.py``) and then runs one secure session per batch size in
``--google30-batches`` (default 1 and 8: rounds do not grow with the batch) on the model's
samples (then its calibration inputs), secure logits checked against the cleartext interpreter.

Usage::

    python benchmarks/e2e.py [--batch 128] [--limit N] [--only NAME ...] [--no-google30]
                             [--only-google30] [--google30-batches 1 8] [--net PROFILE]
                             [--ot {ferret,iknp}] [--json benchmarks/e2e.json]

Needs the data extras (``pip install -e '.[data]'``: sktime, scikit-image) for the test splits.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from sirnn import ALICE  # noqa: E402
from sirnn.compiler import compile_model, evaluate_clear  # noqa: E402
from sirnn.compiler.program import Program  # noqa: E402
from sirnn.compiler.session import format_bytes  # noqa: E402
from sirnn.data import bundled_models, load_bundled  # noqa: E402

GOOGLE30 = ROOT / "examples" / "models" / "fastgrnn_google30_untrained"
GOOGLE30_LOWRANK = ROOT / "examples" / "models" / "fastgrnn_google30_lowrank_untrained"
GOOGLE30_MODELS = (GOOGLE30, GOOGLE30_LOWRANK)


def _party(role: int, chan, program_bytes_path: str, x: np.ndarray | None, batch: int, n: int,
           ot: str | None = None):
    """One party: ALICE serves ceil(n / batch) sessions, BOB runs them on his batches."""
    from sirnn.compiler.session import client_session, server_session
    from sirnn.ot.warmup import warm_up

    warm_up()
    sessions = -(-n // batch)
    if role == ALICE:
        prog = Program.load(program_bytes_path)
        summaries = [server_session(chan, prog, max_batch=batch, ot=ot) for _ in range(sessions)]
        return {"sessions": summaries, "ot": summaries[0]["ot"], "peak_rss_bytes": _peak_rss()}
    from sirnn.compiler.progress import ProgressLog

    outs, reps = [], []
    for i in range(sessions):
        before = chan.snapshot()
        t0 = time.perf_counter()
        # long sessions: a progress line on stderr every 10 % (at most one per 5 s)
        progress = ProgressLog(lambda m: print(m, file=sys.stderr, flush=True),
                                     f"   session {i + 1}/{sessions}: ")
        res = client_session(chan, x[i * batch:(i + 1) * batch], report=True, progress=progress)
        used = chan.stats - before
        outs.append(np.asarray(res.output))
        reps.append({"seconds": time.perf_counter() - t0, "bytes": used.bytes_sent + used.bytes_recv,
                     "bytes_up": used.bytes_sent, "bytes_down": used.bytes_recv,
                     "rounds": used.rounds, "layers": res.report["layers"]})
    return {"output": np.concatenate(outs), "sessions": reps, "peak_rss_bytes": _peak_rss()}


def proc_bytes(path: str, key: str) -> int | None:
    """A ``key:  N kB`` line of a /proc file (``/proc/self/status``, ``/proc/meminfo``) in bytes,
    None if the file or the line is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss() -> int:
    """This process's peak resident set size in bytes: ``VmHWM`` of /proc/self/status (the
    high-water mark of this process image; ``ru_maxrss`` would also count the parent's RSS at
    the fork that started us), else ``ru_maxrss`` (KiB on Linux)."""
    hwm = proc_bytes("/proc/self/status", "VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_secure(path: Path, x: np.ndarray, batch: int, net: str | None = None, ot: str | None = None,
               timeout: float = 7200.0) -> dict:
    """Both parties in two processes (through an emulated network ``net``, see
    :mod:`sirnn.transport.netem`, if given); BOB's sessions summed. ``bytes_up`` is what BOB
    (the client) sent, ``bytes_down`` what he received. ``timeout``: of the whole run (s)."""
    from sirnn.transport.launch import run_two_processes

    t0 = time.perf_counter()
    a, b = run_two_processes(_party, str(path), x, batch, len(x), ot, timeout=timeout,
                             channel_timeout=600.0, net=net)
    wall = time.perf_counter() - t0
    layers: dict[str, dict] = {}
    for s in b["sessions"]:
        for r in s["layers"]:
            acc = layers.setdefault(r["layer"], {"op": r["op"], "seconds": 0.0, "bytes": 0, "rounds": 0})
            acc["seconds"] += r["seconds"]
            acc["bytes"] += r["bytes"]
            acc["rounds"] += r["rounds"]
    return {"output": b["output"], "wall_seconds": wall,
            "seconds": sum(s["seconds"] for s in b["sessions"]),
            "bytes": sum(s["bytes"] for s in b["sessions"]),
            "bytes_up": sum(s["bytes_up"] for s in b["sessions"]),
            "bytes_down": sum(s["bytes_down"] for s in b["sessions"]),
            "rounds": sum(s["rounds"] for s in b["sessions"]),
            "sessions": len(b["sessions"]), "layers": layers, "ot": a["ot"],
            "peak_rss_bytes": {"server": a["peak_rss_bytes"], "client": b["peak_rss_bytes"]}}


def _ints(program: Program, x: np.ndarray) -> np.ndarray:
    from sirnn.protocols.ring import mask, to_signed

    o = program.output_spec
    raw = np.asarray(evaluate_clear(program, x, raw=True), np.uint64)
    return to_signed(raw & mask(o.bits), o.bits)


def bench_model(name: str, batch: int, limit: int | None, net: str | None = None, ot: str | None = None) -> dict:
    import datasets
    from float_reference import forward, load_weights

    from sirnn.data import model_path

    program, _ = load_bundled(name)
    weights, meta = load_weights(ROOT / "examples" / "models" / name)
    ds = datasets.load(meta["data"]["name"])
    X, y = ds.X_test.astype(np.float64), ds.y_test
    if limit is not None:
        X, y = X[:limit], y[:limit]
    fl = forward(weights, meta, X)
    clear = np.concatenate([_ints(program, X[i:i + 64]) for i in range(0, len(X), 64)])
    sec = run_secure(model_path(name), X, batch, net, ot)
    o = program.output_spec
    sec_int = np.round(sec.pop("output") * 2.0**o.scale).astype(np.int64)
    mism = int((sec_int != clear).sum())
    return {"model": name, "n": int(len(y)), "n_test_split": int(len(ds.y_test)), "batch": batch,
            "float_accuracy": float((fl.argmax(1) == y).mean()),
            "fixed_accuracy": float((clear.argmax(1) == y).mean()),
            "secure_accuracy": float((sec_int.argmax(1) == y).mean()),
            "logit_mismatches": mism, **sec}


def compile_onnx_cli(model_dir: Path, out: Path) -> dict:
    """``sirnn compile model.onnx --calib calib_x.npy -o out`` in a subprocess (the CLI as a user
    runs it, default options); returns the command, its wall time and the compile time it prints."""
    cmd = [sys.executable, "-m", "sirnn", "compile", str(model_dir / "model.onnx"),
           "--calib", str(model_dir / "calib_x.npy"), "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    m = re.search(r"^wrote .* in ([0-9.]+) s", proc.stdout, re.M)
    check = [ln.strip() for ln in proc.stdout.splitlines() if ln.startswith("fixed point vs float")]
    rel = [str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd[4:]]
    return {"command": "sirnn compile " + " ".join(rel), "wall_seconds": wall,
            "compile_seconds": float(m.group(1)) if m else None, "check": check[0] if check else None}


def compare_routes(prog: Program, model_dir: Path, x: np.ndarray) -> dict:
    """The ONNX-compiled program against the one compiled from weights.npz (to_float_model):
    clear fixed-point outputs on ``x``, op kinds and attributes (formats), and the integer
    parameters op by op and role by role, bit for bit (tensor and layer names may differ: the
    ONNX importer names the linear layer after its output)."""
    from to_float_model import examples_to_float_model

    other = compile_model(examples_to_float_model(model_dir),
                          np.load(model_dir / "calib_x.npy").astype(np.float64))
    a, b = _ints(prog, x), _ints(other, x)
    same_ops = len(prog.ops) == len(other.ops) and all(
        oa.op == ob.op and oa.describe()["attrs"] == ob.describe()["attrs"] and oa.params.keys() == ob.params.keys()
        for oa, ob in zip(prog.ops, other.ops))
    params_equal = same_ops and all(
        np.array_equal(prog.params[oa.params[k]].values, other.params[ob.params[k]].values)
        and prog.params[oa.params[k]].spec().describe() == other.params[ob.params[k]].spec().describe()
        for oa, ob in zip(prog.ops, other.ops) for k in oa.params)
    return {"inputs": int(len(x)), "output_mismatches": int((a != b).sum()),
            "params_equal": bool(params_equal), "same_ops": bool(same_ops),
            "op_names": [[oa.name for oa in prog.ops], [ob.name for ob in other.ops]]}


def bench_google30(tmp: Path, model_dir: Path = GOOGLE30, batches=(1,), net: str | None = None,
                   ot: str | None = None) -> list[dict]:
    """Compile ``model_dir``'s ONNX through the CLI, then one secure session per batch size."""
    path = tmp / f"{model_dir.name}.sirnn"
    cli = compile_onnx_cli(model_dir, path)
    prog = Program.load(path)
    pool = np.concatenate([np.load(model_dir / "samples_x.npy"),
                           np.load(model_dir / "calib_x.npy")]).astype(np.float64)
    routes = compare_routes(prog, model_dir, pool)
    if routes["output_mismatches"] or not routes["params_equal"]:
        print(f"   WARNING {model_dir.name}: the ONNX-compiled program differs from the weights.npz one: "
              f"{routes}", flush=True)
    meta = json.loads((model_dir / "model.json").read_text())["architecture"]
    out = []
    for b in batches:
        if b > len(pool):
            raise ValueError(f"batch {b} > the {len(pool)} inputs bundled with {model_dir.name}")
        x = pool[:b]
        clear = _ints(prog, x)
        sec = run_secure(path, x, b, net, ot)
        sec_int = np.round(sec.pop("output") * 2.0**prog.output_spec.scale).astype(np.int64)
        out.append({"model": model_dir.name, "n": b, "batch": b, "compile_seconds": cli["compile_seconds"],
                    "compile_route": "onnx via CLI subprocess", "compile_command": cli["command"],
                    "compile_wall_seconds": cli["wall_seconds"], "compile_check": cli["check"],
                    "digest": prog.digest(), "w_rank": meta.get("w_rank"), "u_rank": meta.get("u_rank"),
                    "onnx_vs_weights_route": routes,
                    "logit_mismatches": int((sec_int != clear).sum()), **sec})
    return out


def show(r: dict) -> str:
    out = [f"== {r['model']}: {r['n']} sample(s)" + (f" of {r['n_test_split']} (test split), batch "
                                                       f"{r['batch']}" if "n_test_split" in r else "")]
    if "float_accuracy" in r:
        out.append(f"   accuracy: float {r['float_accuracy']:.4f}, fixed point {r['fixed_accuracy']:.4f}, "
                   f"secure {r['secure_accuracy']:.4f}")
    if "compile_command" in r:
        rt = r["onnx_vs_weights_route"]
        out.append(f"   batch {r['batch']}, rank W/U {r['w_rank']}/{r['u_rank']}; compiled by `{r['compile_command']}` "
                   f"({r['compile_seconds']} s; {r['compile_wall_seconds']:.2f} s wall with process start-up)")
        out.append(f"   ONNX route vs weights.npz route on {rt['inputs']} inputs: {rt['output_mismatches']} "
                   f"differing output value(s), parameters {'equal' if rt['params_equal'] else 'DIFFERENT'}, "
                   f"ops {'equal' if rt['same_ops'] else 'DIFFERENT'}")
    out.append(f"   secure logits vs cleartext fixed point: {r['logit_mismatches']} mismatching value(s)")
    out.append(f"   secure: {r['seconds']:.2f} s in {r['sessions']} session(s) ({r['seconds'] / r['n']:.3f} s "
               f"per sample), {format_bytes(r['bytes'])} ({format_bytes(r['bytes'] / r['n'])} per sample), "
               f"{r['rounds']} rounds, OT engine {r['ot']}; wall incl. process start-up {r['wall_seconds']:.2f} s")
    m = r["peak_rss_bytes"]
    out.append(f"   peak memory (resident): server {format_bytes(m['server'])}, client {format_bytes(m['client'])}")
    out.append(f"   {'layer':20s} {'op':9s} {'time':>9s} {'bytes':>11s} {'rounds':>7s}")
    for k, v in r["layers"].items():
        out.append(f"   {k:20s} {v['op']:9s} {v['seconds']:>8.2f}s {format_bytes(v['bytes']):>11s} {v['rounds']:>7d}")
    return "\n".join(out)


def google30_table(rs: list[dict]) -> str:
    out = [f"{'model':38s} {'batch':>5s} {'time':>8s} {'per inf.':>8s} {'bytes':>13s} {'per inf.':>11s} "
           f"{'rounds':>6s} {'mism.':>5s}"]
    for r in rs:
        out.append(f"{r['model']:38s} {r['batch']:5d} {r['seconds']:7.2f}s {r['seconds'] / r['n']:7.2f}s "
                   f"{r['bytes']:13,d} {format_bytes(r['bytes'] / r['n']):>11s} {r['rounds']:6d} {r['logit_mismatches']:5d}")
    return "\n".join(out)


def main(argv=None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None, help="first N test samples per model")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-google30", action="store_true")
    ap.add_argument("--only-google30", action="store_true",
                    help="only the two Google-30-shaped models (no data set needed)")
    ap.add_argument("--google30-batches", type=int, nargs="+", default=[1, 8], metavar="B",
                    help="batch sizes of the Google-30 sessions (default 1 8)")
    ap.add_argument("--net", default=None, metavar="PROFILE",
                    help="emulated network between the parties, e.g. rtt=40ms,bw=100mbit or lan "
                         "(sirnn.transport.netem; benchmarks/net.py runs the three settings)")
    ap.add_argument("--ot", choices=("ferret", "iknp"), default=None,
                    help="OT engine of the sessions (default: sirnn.ot.engine.DEFAULT_KIND)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    results = []
    names = [] if args.only_google30 else (args.only if args.only is not None else bundled_models())
    for name in names:
        r = bench_model(name, args.batch, args.limit, args.net, args.ot)
        print(show(r), flush=True)
        results.append(r)
    if not args.no_google30:
        g30 = []
        with tempfile.TemporaryDirectory() as tmp:
            for d in GOOGLE30_MODELS:
                for r in bench_google30(Path(tmp), d, args.google30_batches, args.net, args.ot):
                    print(show(r), flush=True)
                    g30.append(r)
        results += g30
        print("\n" + google30_table(g30), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if any(r["logit_mismatches"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
