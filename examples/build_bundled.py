"""Regenerate the models bundled in the package (``src/sirnn/data/models/``).

For each trained example model (``examples/models/<name>/``): build its float model with
``to_float_model.examples_to_float_model``, compile it with ``sirnn.compiler.compile_model`` on
the model's calibration inputs (``calib_x.npy``, training data), save the program as
``<name>.sirnn`` and the first ``--samples`` saved test samples (covering as many classes as they can) as ``<name>.samples.npz``
(``x`` float64, ``y`` int64 labels, ``float_logits`` float64: the PyTorch model's logits).
Checks that the fixed-point program predicts the samples and prints the file sizes.

Usage::

    python examples/build_bundled.py [--samples 4] [--out src/sirnn/data/models] [NAME ...]

Needs only numpy and sirnn (no torch, no data sets: the samples come from the model directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from to_float_model import examples_to_float_model  # noqa: E402

from sirnn.compiler import compile_model, evaluate_clear  # noqa: E402

TRAINED = ["fastgrnn_basic_motions", "fastgrnn_japanese_vowels",
           "fastgrnn_lowrank_japanese_vowels", "rnnpool_lfw_faces"]
DEFAULT_OUT = HERE.parent / "src" / "sirnn" / "data" / "models"


def _pick(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of n saved samples: the first sample of each distinct label (in order), then the
    next ones in order (so the bundled samples cover several classes)."""
    first = [int(np.flatnonzero(y == c)[0]) for c in dict.fromkeys(y.tolist())]
    rest = [i for i in range(len(y)) if i not in first]
    return np.array(sorted((first + rest)[:n]), dtype=np.int64)


def build(name: str, out: Path, n_samples: int) -> dict:
    d = HERE / "models" / name
    fm = examples_to_float_model(d)
    prog = compile_model(fm, np.load(d / "calib_x.npy").astype(np.float64))
    y_all = np.load(d / "samples_y.npy").astype(np.int64)
    idx = _pick(y_all, n_samples)
    x = np.load(d / "samples_x.npy").astype(np.float64)[idx]
    y = y_all[idx]
    fl = np.load(d / "samples_logits.npy").astype(np.float64)[idx]
    fx = evaluate_clear(prog, x)
    out.mkdir(parents=True, exist_ok=True)
    prog.save(out / f"{name}.sirnn")
    np.savez_compressed(out / f"{name}.samples.npz", x=x, y=y, float_logits=fl)
    return {"name": name, "samples": len(y), "labels": y.tolist(),
            "float_pred": fl.argmax(1).tolist(), "fixed_pred": fx.argmax(1).tolist(),
            "sirnn_bytes": (out / f"{name}.sirnn").stat().st_size,
            "samples_bytes": (out / f"{name}.samples.npz").stat().st_size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=TRAINED)
    ap.add_argument("--samples", type=int, default=4, help="test samples per model (default 4)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    for name in args.names:
        r = build(name, args.out, args.samples)
        print(f"{r['name']}: {r['sirnn_bytes']:,} B program, {r['samples_bytes']:,} B samples; labels "
              f"{r['labels']}, float {r['float_pred']}, fixed point {r['fixed_pred']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
