"""Build a sirnn :class:`~sirnn.compiler.FloatModel` directly from an example model directory
(``examples/models/<name>/weights.npz``, naming scheme: ``float_reference.py``), without ONNX,
and evaluate float vs fixed point on the model's full test split.

Usage::

    python examples/to_float_model.py examples/models/rnnpool_lfw_faces [more model dirs]

Supports the two architectures of ``examples/models.py``: ``fastgrnn_classifier`` (FastGRNN,
optionally low rank → linear) and ``rnnpool_facenet`` (conv → ReLU → RNNPool → flatten →
linear). The float model outputs the logits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from float_reference import load_weights  # noqa: E402

from sirnn.compiler import FloatModel, FloatOp  # noqa: E402

__all__ = ["examples_to_float_model", "evaluate_model"]


def _fastgrnn_params(w: dict, prefix: str) -> dict:
    out = {}
    for name in ("W", "W1", "W2", "U", "U1", "U2", "b_z", "b_h"):
        if f"{prefix}.{name}" in w:
            out[name] = w[f"{prefix}.{name}"]
    out["zeta"] = float(np.ravel(w[f"{prefix}.zeta"])[0])
    out["nu"] = float(np.ravel(w[f"{prefix}.nu"])[0])
    return out


def examples_to_float_model(model_dir) -> FloatModel:
    """The FloatModel of an example model directory (weights.npz + its __meta__)."""
    weights, meta = load_weights(model_dir)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    arch = meta.get("architecture", meta)
    kind = arch["type"]
    info = {"name": meta.get("name", Path(model_dir).name), "source": "examples/to_float_model.py"}
    if "data" in meta and "classes" in meta["data"]:
        info["classes"] = meta["data"]["classes"]
    if kind == "fastgrnn_classifier":
        ops = [FloatOp("fastgrnn", "x", "h", _fastgrnn_params(w, "cell"), name="cell"),
               FloatOp("linear", "h", "logits", {"W": w["fc.weight"], "b": w["fc.bias"]}, name="fc")]
        return FloatModel(ops, "x", (arch["T"], arch["input_dim"]), "logits", info)
    if kind == "rnnpool_facenet":
        layers = {layer["name"]: layer for layer in arch["layers"]}
        cv, rp = layers["conv"], layers["rnnpool"]
        rparams = {f"rnn1.{k}": v for k, v in _fastgrnn_params(w, "rnnpool.rnn1").items()}
        rparams.update({f"rnn2.{k}": v for k, v in _fastgrnn_params(w, "rnnpool.rnn2").items()})
        ops = [FloatOp("conv2d", "x", "conv", {"W": w["conv.weight"], "b": w["conv.bias"]},
                       {"stride": list(cv["stride"]), "padding": list(cv["padding"])}, name="conv"),
               FloatOp("relu", "conv", "relu", name="relu"),
               FloatOp("rnnpool", "relu", "pool", rparams, {"patch": rp["patch"], "stride": rp["stride"]},
                       name="rnnpool"),
               FloatOp("flatten", "pool", "flat", name="flatten"),
               FloatOp("linear", "flat", "logits", {"W": w["fc.weight"], "b": w["fc.bias"]}, name="fc")]
        return FloatModel(ops, "x", tuple(arch["input_shape"]), "logits", info)
    raise ValueError(f"unknown example architecture {kind!r}")


def evaluate_model(model_dir, batch: int = 64) -> dict:
    """Compile with the bundled calibration inputs; float and fixed-point (cleartext interpreter,
    bit-identical to the two-party run) accuracy on the full test split."""
    import datasets
    from float_reference import forward

    from sirnn.compiler import compile_model, evaluate_clear

    model_dir = Path(model_dir)
    weights, meta = load_weights(model_dir)
    fm = examples_to_float_model(model_dir)
    prog = compile_model(fm, np.load(model_dir / "calib_x.npy").astype(np.float64))
    ds = datasets.load(meta["data"]["name"])
    X, y = ds.X_test.astype(np.float64), ds.y_test
    ref = forward(weights, meta, X)
    fl = fm.run(X)
    fx = np.concatenate([evaluate_clear(prog, X[i:i + batch]) for i in range(0, len(X), batch)])
    return {"model": model_dir.name, "n_test": int(len(y)),
            "float_accuracy": float((fl.argmax(1) == y).mean()),
            "reference_accuracy": float((ref.argmax(1) == y).mean()),
            "fixed_accuracy": float((fx.argmax(1) == y).mean()),
            "agreement": float((fx.argmax(1) == fl.argmax(1)).mean()),
            "max_logit_err": float(np.abs(fx - fl).max()),
            "float_vs_reference": float(np.abs(fl - ref).max()),
            "recorded_float_accuracy": meta.get("float_accuracy", {}).get("test")}


def main(argv: list[str]) -> int:
    dirs = argv or [str(p) for p in sorted((Path(__file__).parent / "models").iterdir())
                    if p.is_dir() and "untrained" not in p.name]
    for d in dirs:
        r = evaluate_model(d)
        print(f"{r['model']}: n_test {r['n_test']}, float {r['float_accuracy']:.4f} (recorded "
              f"{r['recorded_float_accuracy']}), fixed point {r['fixed_accuracy']:.4f}, argmax "
              f"agreement {r['agreement']:.4f}, max |logit err| {r['max_logit_err']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
