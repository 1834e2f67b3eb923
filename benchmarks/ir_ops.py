#!/usr/bin/env python
"""Bytes and rounds of every float-IR op of issue 10, on the tiny models of tests/test_ir_ops.py
(compiled with 16-bit activations; one sample, both parties in one process over an in-process
channel pair: bytes and rounds are exact, times are not reported).

    PYTHONPATH=src python benchmarks/ir_ops.py [--out benchmarks/ir_ops.json]

Prints a Markdown table (the cost column of docs/onnx_ops.md) and writes JSON: per case the op,
input and output shapes and formats, total bytes (both parties), bytes per output element,
rounds of the op's section, and the model's fixed-point error against float64 on 200 samples
(max, in output ULPs and in % of the output's range; inputs rounded to the input format included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "ir_ops.json"))
    args = ap.parse_args(argv)

    from sirnn.compiler import compare, compile_model
    from sirnn.protocols.party import Party
    from sirnn.transport import ThreadedPair
    from test_compiler import secure_vs_clear
    from test_ir_ops import CASES, _case

    pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([7 + role]) * 16))
    rows = []
    try:
        for name in sorted(CASES):
            fm, calib = _case(name, 64, 1)
            prog = compile_model(fm, calib)
            _, x = _case(name, 1, 3)
            _, cost, _ = secure_vs_clear(pair, prog, x, meter=True)
            op = prog.ops[-1]
            spec = [prog.tensors[t] for t in op.inputs]
            o = prog.tensors[op.outputs[0]]
            nbytes, rounds = cost[op.name]
            _, xs = _case(name, 200, 2)
            rep = compare(fm, prog, xs)
            want = fm.run(xs)
            span = float(want.max() - want.min()) or 1.0
            rows.append({"case": name, "op": op.op, "inputs": [str(t) for t in spec], "output": str(o),
                         "bytes": int(nbytes), "bytes_per_output": nbytes / max(o.size, 1), "rounds": int(rounds),
                         "max_err_ulp": rep["max_abs_err"] * 2.0**prog.output_spec.scale,
                         "max_err_pct_range": 100 * rep["max_abs_err"] / span})
    finally:
        for ch in pair.channels:
            ch.close()
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=1))
    print("| case | op | inputs | output | bytes / output element | rounds | max error (ULP) | (% of range) |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['op']} | {'; '.join(r['inputs'])} | {r['output']} | "
              f"{r['bytes_per_output']:,.1f} | {r['rounds']} | {r['max_err_ulp']:.2f} | {r['max_err_pct_range']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
