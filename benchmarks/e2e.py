"""End-to-end secure inference on real data: the bundled trained models on their WHOLE test
splits, plus one inference of the Google-30-shaped untrained FastGRNN (cost only).

Per model, one pair of OS processes over loopback TCP (``sirnn.transport.launch``): ALICE holds
the compiled program (``sirnn.data``, weights), BOB the test inputs. BOB runs one inference
session (:func:`sirnn.compiler.session.client_session`, with the per-layer report) per batch of
``--batch`` samples, on the same connection. The parent then checks the secure logits against
the cleartext fixed-point interpreter (:func:`sirnn.compiler.evaluate_clear`), bit for bit
(exit 1 on any difference), and reports float / fixed-point / secure accuracy, time, bytes
(both directions), rounds and the per-layer breakdown summed over the batches.

Usage::

    python benchmarks/e2e.py [--batch 128] [--limit N] [--only NAME ...] [--no-google30]
                             [--json benchmarks/e2e.json]

Needs the data extras (``pip install -e '.[data]'``: sktime, scikit-image) for the test splits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from sirnn import ALICE  # noqa: E402
from sirnn.compiler import compile_model, evaluate_clear  # noqa: E402
from sirnn.compiler.program import Program  # noqa: E402
from sirnn.data import bundled_models, load_bundled  # noqa: E402

GOOGLE30 = ROOT / "examples" / "models" / "fastgrnn_google30_untrained"


def _party(role: int, chan, program_bytes_path: str, x: np.ndarray | None, batch: int, n: int):
    """One party: ALICE serves ceil(n / batch) sessions, BOB runs them on his batches."""
    from sirnn.compiler.session import client_session, server_session
    from sirnn.ot.warmup import warm_up

    warm_up()
    sessions = -(-n // batch)
    if role == ALICE:
        prog = Program.load(program_bytes_path)
        return [server_session(chan, prog, max_batch=batch) for _ in range(sessions)]
    outs, reps = [], []
    for i in range(sessions):
        before = chan.snapshot()
        t0 = time.perf_counter()
        res = client_session(chan, x[i * batch:(i + 1) * batch], report=True)
        used = chan.stats - before
        outs.append(np.asarray(res.output))
        reps.append({"seconds": time.perf_counter() - t0, "bytes": used.bytes_sent + used.bytes_recv,
                     "rounds": used.rounds, "layers": res.report["layers"]})
    return {"output": np.concatenate(outs), "sessions": reps}


def run_secure(path: Path, x: np.ndarray, batch: int) -> dict:
    from sirnn.transport.launch import run_two_processes

    t0 = time.perf_counter()
    _, b = run_two_processes(_party, str(path), x, batch, len(x), timeout=7200.0,
                             channel_timeout=600.0)
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
            "rounds": sum(s["rounds"] for s in b["sessions"]),
            "sessions": len(b["sessions"]), "layers": layers}


def _ints(program: Program, x: np.ndarray) -> np.ndarray:
    from sirnn.protocols.ring import mask, to_signed

    o = program.output_spec
    raw = np.asarray(evaluate_clear(program, x, raw=True), np.uint64)
    return to_signed(raw & mask(o.bits), o.bits)


def bench_model(name: str, batch: int, limit: int | None) -> dict:
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
    sec = run_secure(model_path(name), X, batch)
    o = program.output_spec
    sec_int = np.round(sec.pop("output") * 2.0**o.scale).astype(np.int64)
    mism = int((sec_int != clear).sum())
    return {"model": name, "n": int(len(y)), "n_test_split": int(len(ds.y_test)), "batch": batch,
            "float_accuracy": float((fl.argmax(1) == y).mean()),
            "fixed_accuracy": float((clear.argmax(1) == y).mean()),
            "secure_accuracy": float((sec_int.argmax(1) == y).mean()),
            "logit_mismatches": mism, **sec}


def bench_google30(tmp: Path) -> dict:
    from to_float_model import examples_to_float_model

    t0 = time.perf_counter()
    prog = compile_model(examples_to_float_model(GOOGLE30), np.load(GOOGLE30 / "calib_x.npy").astype(np.float64))
    compile_s = time.perf_counter() - t0
    path = tmp / "google30.sirnn"
    prog.save(path)
    x = np.load(GOOGLE30 / "samples_x.npy").astype(np.float64)[:1]
    clear = _ints(prog, x)
    sec = run_secure(path, x, 1)
    sec_int = np.round(sec.pop("output") * 2.0**prog.output_spec.scale).astype(np.int64)
    return {"model": "fastgrnn_google30_untrained", "n": 1, "compile_seconds": compile_s,
            "logit_mismatches": int((sec_int != clear).sum()), **sec}


def _fmt_b(n: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{int(n)} B"


def show(r: dict) -> str:
    out = [f"== {r['model']}: {r['n']} sample(s)" + (f" of {r['n_test_split']} (test split), batch "
                                                       f"{r['batch']}" if "n_test_split" in r else "")]
    if "float_accuracy" in r:
        out.append(f"   accuracy: float {r['float_accuracy']:.4f}, fixed point {r['fixed_accuracy']:.4f}, "
                   f"secure {r['secure_accuracy']:.4f}")
    out.append(f"   secure logits vs cleartext fixed point: {r['logit_mismatches']} mismatching value(s)")
    out.append(f"   secure: {r['seconds']:.2f} s in {r['sessions']} session(s) ({r['seconds'] / r['n']:.3f} s "
               f"per sample), {_fmt_b(r['bytes'])} ({_fmt_b(r['bytes'] / r['n'])} per sample), "
               f"{r['rounds']} rounds; wall incl. process start-up {r['wall_seconds']:.2f} s")
    out.append(f"   {'layer':20s} {'op':9s} {'time':>9s} {'bytes':>11s} {'rounds':>7s}")
    for k, v in r["layers"].items():
        out.append(f"   {k:20s} {v['op']:9s} {v['seconds']:>8.2f}s {_fmt_b(v['bytes']):>11s} {v['rounds']:>7d}")
    return "\n".join(out)


def main(argv=None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None, help="first N test samples per model")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-google30", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    results = []
    for name in args.only if args.only is not None else bundled_models():
        r = bench_model(name, args.batch, args.limit)
        print(show(r), flush=True)
        results.append(r)
    if not args.no_google30:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench_google30(Path(tmp))
        print(show(r), flush=True)
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if any(r["logit_mismatches"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
