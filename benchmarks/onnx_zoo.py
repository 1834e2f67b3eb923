#!/usr/bin/env python
"""Per-model table of the ONNX conformance zoo (tests/onnx_zoo/): IR ops, fixed point vs
onnxruntime error, and the secure run's time, bytes and rounds for one sample.

    PYTHONPATH=src python benchmarks/onnx_zoo.py [--export ts|dynamo] [--out benchmarks/onnx_zoo.json]

Per model (one export, TorchScript by default; the static-shape and external-data models use their
dynamo export): the float model's max |error| against onnxruntime, fixed point (16-bit activations,
calibrated on calib.npy) against onnxruntime as a percentage of the output's range over the test
samples, and whether the argmax agrees on all of them; then one sample run securely by both
parties in this process over an in-process channel pair (secure == clear checked bit for bit):
bytes (both parties) and rounds are exact; the wall time is of both parties sharing this machine's
cores, so compare times only within one run. The models with several inputs or outputs (test.npz):
every output is compared, the worst error reported; bigru_packed_lens (a static batch of 3, its
TorchScript export only) runs its 3 samples securely. Writes JSON and benchmarks/onnx_zoo.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZOO = HERE.parent / "tests" / "onnx_zoo"
sys.path.insert(0, str(HERE.parent / "tests"))


def _multi_row(m, tag, path, pair, ort, load_onnx, compile_model, evaluate_clear, secure_vs_clear) -> dict:
    """A model with several inputs / outputs (test.npz, calib.npz): each output against
    onnxruntime (the worst % of range, argmax on all), the secure run on one sample (or its fixed
    batch)."""
    d = ZOO / m["name"]
    axes = {e["name"]: e["batch_axis"] for e in m["inputs"] + m["outputs"]}
    with np.load(d / "test.npz") as z:
        test = {k: z[k] for k in z.files}
    with np.load(d / "calib.npz") as z:
        calib = {k: z[k] for k in z.files}
    fm = load_onnx(path, **m.get("load", {}))
    prog = compile_model(fm, calib if len(fm.inputs) > 1 else calib["x"])
    n = test["x"].shape[axes["x"]]
    step = prog.fixed_batch or n

    def rows(x, i, j):
        return {k: np.moveaxis(np.moveaxis(v, axes[k], 0)[i:j], 0, axes[k]) for k, v in x.items()}

    sess = ort.InferenceSession(str(path))
    names = [o.name for o in sess.get_outputs()]
    pct, same, ferr = 0.0, True, 0.0
    for i in range(0, n, step):
        xi = rows(test, i, i + step)
        want = dict(zip(names, sess.run(None, xi)))
        fixed = evaluate_clear(prog, xi if len(fm.inputs) > 1 else xi["x"])
        fixed = fixed if isinstance(fixed, dict) else {names[0]: fixed}
        flt = fm.run({k: np.moveaxis(v, axes[k], 0) for k, v in xi.items()} if len(fm.inputs) > 1
                     else np.moveaxis(xi["x"], axes["x"], 0))
        flt = flt if isinstance(flt, dict) else {names[0]: flt}
        for k, w in want.items():
            w2 = np.moveaxis(w, axes.get(k, 0), 0).reshape(step, -1)
            f2 = np.moveaxis(fixed[k], axes.get(k, 0), 0).reshape(step, -1)
            ferr = max(ferr, float(np.abs(flt[k].reshape(step, -1) - w2).max()))
            pct = max(pct, float(100 * np.abs(f2 - w2).max() / np.ptp(w2)))
            same &= bool((f2.argmax(1) == w2.argmax(1)).all())
    one = rows(test, 0, prog.fixed_batch or 1)
    t0 = time.perf_counter()
    _, cost, _ = secure_vs_clear(pair, prog, one if len(fm.inputs) > 1 else one["x"], meter=True)
    secs = time.perf_counter() - t0
    return {"model": m["name"], "export": tag, "description": m["description"],
            "ir_ops": sorted({o.op for o in fm.ops}), "n_ops": len(prog.ops), "float_max_abs_err": ferr,
            "fixed_err_pct_of_range": pct, "argmax_equal": same, "test_samples": n,
            "secure_seconds": secs, "bytes": int(sum(b for b, _ in cost.values())),
            "rounds": int(sum(r for _, r in cost.values())), "samples_secure": prog.fixed_batch or 1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", default="ts", choices=["ts", "dynamo"])
    ap.add_argument("--out", default=str(HERE / "onnx_zoo.json"))
    ap.add_argument("--only", nargs="*", help="just print these models' rows (no files written)")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    from sirnn.compiler import compile_model, evaluate_clear
    from sirnn.compiler.onnx_import import load_onnx
    from sirnn.protocols.party import Party
    from sirnn.transport import ThreadedPair
    from test_compiler import secure_vs_clear

    models = json.loads((ZOO / "models.json").read_text())
    pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([7 + role]) * 16))
    rows = []
    try:
        for m in models:
            if args.only and m["name"] not in args.only:
                continue
            tag = args.export if args.export in m["files"] and not (m["static"] or m["external_data"]) else "dynamo"
            tag = tag if tag in m["files"] else next(iter(m["files"]))
            d = ZOO / m["name"]
            path = d / m["files"][tag]
            if "outputs" in m:  # several inputs / outputs: every output compared, worst reported
                rows.append(_multi_row(m, tag, path, pair, ort, load_onnx, compile_model, evaluate_clear,
                                       secure_vs_clear))
            else:
                fm = load_onnx(path)
                prog = compile_model(fm, np.load(d / "calib.npy"))
                test = np.load(d / "test.npy")
                sess = ort.InferenceSession(str(path))
                want = (np.stack([sess.run(None, {"x": t})[0] for t in test]) if m["static"]
                        else sess.run(None, {"x": test})[0]).reshape(len(test), -1)
                fixed = evaluate_clear(prog, test).reshape(len(test), -1)
                t0 = time.perf_counter()
                _, cost, _ = secure_vs_clear(pair, prog, test[:1], meter=True)
                secs = time.perf_counter() - t0
                rows.append({
                    "model": m["name"], "export": tag, "description": m["description"],
                    "ir_ops": sorted({o.op for o in fm.ops}), "n_ops": len(prog.ops),
                    "float_max_abs_err": float(np.abs(fm.run(test).reshape(len(test), -1) - want).max()),
                    "fixed_err_pct_of_range": float(100 * np.abs(fixed - want).max() / np.ptp(want)),
                    "argmax_equal": bool((fixed.argmax(1) == want.argmax(1)).all()), "test_samples": len(test),
                    "secure_seconds": secs, "bytes": int(sum(b for b, _ in cost.values())),
                    "rounds": int(sum(r for _, r in cost.values()))})
            r = rows[-1]
            print(f"{r['model']:24s} {r['fixed_err_pct_of_range']:.3f}% {r['bytes']:>12,} B {r['rounds']:>6} rounds "
                  f"{r['secure_seconds']:.2f} s", flush=True)
    finally:
        for ch in pair.channels:
            ch.close()
    md = ["# ONNX conformance zoo: per-model cost (one sample)", "",
          "Generated by `PYTHONPATH=src python benchmarks/onnx_zoo.py` (" + __doc__.split("\n\n")[2].replace("\n", " ")
          + ")", "",
          "| model | export | IR ops | fixed vs onnxruntime (% of range) | same argmax | secure time (s) | bytes | rounds |",
          "|---|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['export']} | {', '.join(r['ir_ops'])} | {r['fixed_err_pct_of_range']:.3f} | "
                  f"{'yes' if r['argmax_equal'] else 'NO'} ({r['test_samples']}) | {r['secure_seconds']:.2f} | "
                  f"{r['bytes']:,} | {r['rounds']:,} |")
    if not args.only:  # the tables are of the whole zoo; --only just prints
        Path(args.out).write_text(json.dumps({"export": args.export, "rows": rows}, indent=1) + "\n")
        (HERE / "onnx_zoo.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
