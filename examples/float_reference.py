"""Pure-numpy float forward pass over the saved artefacts (no PyTorch needed).

This is the executable definition of the ``weights.npz`` naming scheme written by
``train.py``: it reads ``examples/models/<name>/weights.npz`` (whose ``__meta__`` entry holds
the same JSON as ``model.json``) and recomputes the float logits. ``train.py`` checks that it
agrees with PyTorch on the saved samples.

Usage::

    python examples/float_reference.py examples/models/fastgrnn_basic_motions
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["load_weights", "forward", "fastgrnn_step", "fastgrnn_run", "rnnpool"]


def load_weights(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Return (weights, meta) from a weights.npz (or its model directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "weights.npz"
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        weights = {k: z[k] for k in z.files if k != "__meta__"}
    return weights, meta


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _mat(w: dict, prefix: str, name: str) -> np.ndarray:
    if f"{prefix}.{name}" in w:
        return w[f"{prefix}.{name}"]
    return w[f"{prefix}.{name}1"] @ w[f"{prefix}.{name}2"]  # low rank: W = W1 @ W2


def fastgrnn_step(w: dict, prefix: str, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One FastGRNN step on a batch: x (B, D), h (B, H) -> (B, H)."""
    W, U = _mat(w, prefix, "W"), _mat(w, prefix, "U")
    a = x @ W.T + h @ U.T
    z = _sigmoid(a + w[f"{prefix}.b_z"])
    c = np.tanh(a + w[f"{prefix}.b_h"])
    return (w[f"{prefix}.zeta"] * (1.0 - z) + w[f"{prefix}.nu"]) * c + z * h


def fastgrnn_run(w: dict, prefix: str, xs, reverse: bool = False) -> np.ndarray:
    """Run over a sequence xs (T, B, D) from h = 0 and return the final state (B, H)."""
    xs = list(xs)[::-1] if reverse else list(xs)
    H = w[f"{prefix}.b_z"].shape[0]
    h = np.zeros((xs[0].shape[0], H), dtype=np.float64)
    for x in xs:
        h = fastgrnn_step(w, prefix, x, h)
    return h


def rnnpool(w: dict, prefix: str, x: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """RNNPool over (N, C, H, W) -> (N, 4*h2, Ho, Wo); see models.RNNPool for the definition."""
    N, C, H, W = x.shape
    Ho, Wo = (H - patch) // stride + 1, (W - patch) // stride + 1
    h2 = w[f"{prefix}.rnn2.b_z"].shape[0]
    out = np.zeros((N, 4 * h2, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            P = x[:, :, i * stride:i * stride + patch, j * stride:j * stride + patch]  # (N,C,k,k)
            rows = [fastgrnn_run(w, f"{prefix}.rnn1", [P[:, :, r, t] for t in range(patch)])
                    for r in range(patch)]
            cols = [fastgrnn_run(w, f"{prefix}.rnn1", [P[:, :, t, q] for t in range(patch)])
                    for q in range(patch)]
            out[:, :, i, j] = np.concatenate([
                fastgrnn_run(w, f"{prefix}.rnn2", rows),
                fastgrnn_run(w, f"{prefix}.rnn2", rows, reverse=True),
                fastgrnn_run(w, f"{prefix}.rnn2", cols),
                fastgrnn_run(w, f"{prefix}.rnn2", cols, reverse=True),
            ], axis=1)
    return out


def _conv2d(x, weight, bias, stride, padding):
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((N, O, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            win = xp[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", win, weight) + bias
    return out


def forward(weights: dict, meta: dict, x: np.ndarray) -> np.ndarray:
    """Float logits for a batch x of shape (N, *input_shape), computed in float64."""
    meta = meta.get("architecture", meta)  # accept model.json or its "architecture" part
    x = np.asarray(x, dtype=np.float64)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    kind = meta["type"]
    if kind == "fastgrnn_classifier":
        h = fastgrnn_run(w, "cell", [x[:, t, :] for t in range(meta["T"])])
        return h @ w["fc.weight"].T + w["fc.bias"]
    if kind == "rnnpool_facenet":
        layers = {layer["name"]: layer for layer in meta["layers"]}
        cv = layers["conv"]
        y = np.maximum(_conv2d(x, w["conv.weight"], w["conv.bias"], cv["stride"], cv["padding"]), 0)
        rp = layers["rnnpool"]
        y = rnnpool(w, "rnnpool", y, rp["patch"], rp["stride"])
        return y.reshape(y.shape[0], -1) @ w["fc.weight"].T + w["fc.bias"]
    raise ValueError(f"unknown model type {kind!r}")


def main(argv: list[str]) -> int:
    for d in argv or sorted(str(p) for p in (Path(__file__).parent / "models").iterdir() if p.is_dir()):
        d = Path(d)
        weights, meta = load_weights(d)
        x, y = np.load(d / "samples_x.npy"), np.load(d / "samples_y.npy")
        ref = np.load(d / "samples_logits.npy")
        logits = forward(weights, meta, x)
        err = float(np.abs(logits - ref).max())
        acc = float((logits.argmax(1) == y).mean())
        print(f"{d.name}: samples {len(y)}, accuracy {acc:.3f}, max |numpy - torch| logits {err:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
