"""The float model description the compiler starts from, and its float64 reference executor.

A :class:`FloatModel` is a list of :class:`FloatOp` s over named tensors with float parameters —
the same op vocabulary as the fixed-point program (:mod:`sirnn.compiler.ops`), plus ``matmul``
(x·W with W (in, out), as ONNX MatMul). It is what a model importer produces (the ONNX importer
and the PyTorch export helper, :mod:`sirnn.compiler.torch_export`) and what :func:`sirnn.compiler.calibrate.compile_model`
consumes. Shapes are per sample; :meth:`FloatModel.run` takes a batch (N,) + input shape.

Parameter conventions (PyTorch's):

* ``linear``: W (out, in), b (out,) — y = x·Wᵀ + b over the last axis;
* ``matmul``: W (in, out), optional b (out,) — y = x·W + b;
* ``conv2d``: W (OC, C/groups, kh, kw), b (OC,); attrs stride, padding, dilation, groups; x (C, H, W);
* ``add`` / ``mul``: a second input tensor, or a parameter y broadcast to x;
* ``maxpool2d``: attrs kernel, stride (default kernel), padding, dilation (see below);
* ``fastgrnn``: W (H, D) or W1 (H, r), W2 (r, D); U (H, H) or U1, U2; b_z, b_h (H,); zeta, nu
  (scalars: the effective ζ, ν, i.e. EdgeML's sigmoid(zeta), sigmoid(nu));
* ``lstm``: W_ih (4H, D), W_hh (4H, H), b_ih, b_hh (4H,), gates i, f, g, o (torch.nn.LSTM);
* ``gru``: W_ih (3H, D), W_hh (3H, H), b_ih, b_hh (3H,), gates r, z, n (torch.nn.GRU); attr
  ``linear_before_reset`` (default true, PyTorch's; false: ONNX GRU's default, n = tanh(W_in x +
  b_in + W_hn (r ⊙ h) + b_hn));
* ``rnn``: W_ih (H, D), W_hh (H, H), b_ih, b_hh (H,), attr ``activation`` tanh (default) or relu
  (torch.nn.RNN, ONNX RNN);
* the cells take a sequence (T, D) and output the final h (H,), or all h (T, H) with attr
  ``sequence: true``; the initial state is zero, or the optional params ``h0`` (H,) (and ``c0``
  (H,) for ``lstm``), or runtime tensors: further inputs (H,) listed by attr ``init`` (["h"],
  ["h", "c"], ["c"]); attr ``state: "c"`` (lstm, not with ``sequence``) outputs the final cell
  state c instead of h; attr ``steps`` (lstm, gru, rnn: ONNX ``sequence_lens``): per batch element
  (or one for all) the step range [start, stop) that updates the state — elsewhere the state is
  held and the sequence output is 0 (:func:`step_mask`).
* ``rnnpool``: attrs patch, stride; params ``rnn1.<role>``, ``rnn2.<role>`` with the FastGRNN
  roles above (rnn1: C → h1, rnn2: h1 → h2); x (C, H, W) → (4·h2, Ho, Wo) (RNNPool, Saha et al.
  2020, as examples/models.py: rnn1 along every row and every column of each k×k patch (stride
  s, no padding), rnn2 forward and backward over the row summaries and over the column
  summaries; output concat(fwd rows, bwd rows, fwd cols, bwd cols));
* ``softmax``: attr axis (default −1); ``l2norm``: over the last axis (attr eps, x / √max(Σx², eps)).

The ops of the float-IR contract (docs/onnx_ops.md; per-sample axes, negative allowed):

* ``add`` / ``sub`` / ``mul`` / ``div``: two tensors or a tensor and a parameter ``y``, numpy
  broadcasting of the per-sample shapes either way; ``matmul`` of two tensors: numpy ``@`` on
  the per-sample shapes (batched over leading axes, broadcast);
* elementwise ``exp``, ``sqrt``, ``rsqrt``, ``reciprocal``, ``abs``, ``neg``, ``softplus``,
  ``hardswish``; ``clip`` (attrs min, max: float or None), ``leakyrelu`` (alpha), ``prelu``
  (param slope broadcast to x), ``hardsigmoid`` (alpha, beta: clip(αx + β, 0, 1));
* ``normalize`` (attrs axes, eps): (x − mean)/√(var + eps), population variance;
  ``reduce`` (attrs kind ∈ sum/mean/max/l2, axes (None: all), keepdims (default true));
* ``pad`` (attrs pads [(begin, end)] per axis, mode constant/reflect/edge, value);
  ``gather`` (param index, int, the output's per-sample shape: out = x.reshape(−1)[index]);
* ``conv2d`` also takes dilation (int or pair), groups, and padding (top, left, bottom, right),
  W (OC, C/groups, kh, kw); ``maxpool2d`` padding (padded entries never win) and dilation;
  ``avgpool2d`` (kernel, stride, padding, count_include_pad).

Files: :meth:`FloatModel.save` writes ``.npz`` (the structure as JSON in ``__model__`` plus one
float array per parameter ``param/<op>/<role>``) or ``.json`` (parameters inline as nested
lists). :func:`load_float_model` dispatches on the extension through :data:`LOADERS`: ``.onnx``
goes to the ONNX importer (:mod:`sirnn.compiler.onnx_import`, imported on first use);
:func:`register_loader` plugs in other formats.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ProgramError
from ..nn.layers import im2col
from ..nn.movement import gather_data, pad_index, pads4, window_index

__all__ = ["FloatOp", "FloatModel", "FLOAT_OPS", "LOADERS", "register_loader", "load_float_model",
           "cell_float"]


@dataclass
class FloatOp:
    op: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        self.inputs = [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)
        self.outputs = [self.outputs] if isinstance(self.outputs, str) else list(self.outputs)
        self.params = {k: np.asarray(v, np.float64) for k, v in self.params.items()}
        self.name = self.name or self.outputs[0]


# ---------------------------------------------------------------------------------------------
# float semantics (batch-leading numpy); ``stats`` collects max |value| of cell internals
# ---------------------------------------------------------------------------------------------
def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _second(op: FloatOp, ins):
    return ins[1] if len(ins) == 2 else op.params["y"][None]


def _align(a: np.ndarray, nd: int) -> np.ndarray:
    """Batch-leading a with 1-axes inserted after the batch axis up to ``nd`` axes (numpy
    broadcasting of the per-sample shapes)."""
    return a.reshape(a.shape[:1] + (1,) * (nd - a.ndim) + a.shape[1:])


def _binary(fn, op, ins):
    x, y = ins[0], _second(op, ins)
    nd = max(x.ndim, y.ndim)
    return fn(_align(x, nd), _align(y, nd))


def _div(op, ins, stats=None):
    """x / y; ``stats`` gets the range of |1/y| (the compiler's format for a shared reciprocal)."""
    if stats is not None:
        a = np.abs(_second(op, ins))
        a = a[a > 0]
        if a.size:
            stats["rden_max"] = max(stats.get("rden_max", 0.0), float(1.0 / a.min()))
            stats["rden_min"] = min(stats.get("rden_min", np.inf), float(1.0 / a.max()))
    return _binary(np.divide, op, ins)


def _matmul(op, ins):
    if len(ins) == 1:
        return ins[0] @ op.params["W"] + op.params.get("b", 0.0)
    x, y = ins
    xv, yv = x.ndim == 2, y.ndim == 2  # per-sample vectors
    x2 = x[:, None, :] if xv else x
    y2 = y[..., None] if yv else y
    nd = max(x2.ndim, y2.ndim)
    z = np.matmul(_align(x2, nd), _align(y2, nd))
    if yv:
        z = z[..., 0]
    if xv:
        z = z[..., 0, :] if not yv else z[..., 0]
    return z


def _axes(op, x, key="axes"):
    """The op's per-sample axes (all when absent) as batch-leading array axes."""
    ax = op.attrs.get(key)
    nd = x.ndim - 1
    if ax is None:
        return tuple(range(1, nd + 1))
    ax = [ax] if np.isscalar(ax) else list(ax)
    return tuple(sorted(int(a) % nd + 1 for a in ax))


def _reduce(op, x):
    kind, ax, keep = op.attrs.get("kind", "sum"), _axes(op, x), bool(op.attrs.get("keepdims", True))
    if kind == "sum":
        return x.sum(ax, keepdims=keep)
    if kind == "mean":
        return x.mean(ax, keepdims=keep)
    if kind == "max":
        return x.max(ax, keepdims=keep)
    if kind == "l2":
        return np.sqrt((x * x).sum(ax, keepdims=keep))
    raise ProgramError(f"{op.name}: reduce kind must be sum, mean, max or l2, got {kind!r}")


def _normalize(op, x, stats=None):
    ax = _axes(op, x)
    eps = float(op.attrs.get("eps", 1e-5))
    d = x - x.mean(ax, keepdims=True)
    var = (d * d).mean(ax, keepdims=True)
    r = 1.0 / np.sqrt(var + eps)
    if stats is not None and r.size:
        stats["rstd_max"] = max(stats.get("rstd_max", 0.0), float(r.max()))
        stats["rstd_min"] = min(stats.get("rstd_min", np.inf), float(r.min()))
    return d * r


def _softmax_axis(op, x):
    ax = int(op.attrs.get("axis", -1)) % (x.ndim - 1) + 1
    e = np.exp(x - x.max(ax, keepdims=True))
    return e / e.sum(ax, keepdims=True)


def _conv(op, x):
    W = op.params["W"]
    OC, Cg, kh, kw = W.shape
    G = int(op.attrs.get("groups", 1))
    st, dil = _pair(op.attrs.get("stride", 1)), _pair(op.attrs.get("dilation", 1))
    cols, ho, wo = im2col(x, kh, kw, st, pads4(op.attrs.get("padding", 0)), dil)
    y = np.einsum("gok,gkm->gom", W.reshape(G, OC // G, -1), cols.reshape(G, Cg * kh * kw, -1)).reshape(OC, -1)
    if "b" in op.params:
        y = y + op.params["b"].reshape(-1, 1)
    return y.reshape(OC, x.shape[0], ho, wo).transpose(1, 0, 2, 3)


def _pool_windows(op, x, fill):
    k = _pair(op.attrs["kernel"])
    st = k if op.attrs.get("stride") is None else _pair(op.attrs["stride"])
    idx = window_index(x.shape[1:], k, st, op.attrs.get("padding", 0), _pair(op.attrs.get("dilation", 1)))
    return gather_data(x, idx, fill), idx


def _maxpool(op, x):
    return _pool_windows(op, x, -np.inf)[0].max(-1)


def _avgpool(op, x):
    w, idx = _pool_windows(op, x, 0.0)
    cnt = idx.shape[-1] if op.attrs.get("count_include_pad", False) else (idx >= 0).sum(-1)
    return w.sum(-1) / cnt


def _pad(op, x):
    idx = pad_index(x.shape[1:], op.attrs["pads"], op.attrs.get("mode", "constant"))
    return gather_data(x, idx, float(op.attrs.get("value", 0.0)))


def _gather(op, x):
    return gather_data(x, op.params["index"].astype(np.int64))


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _clip(op, x):
    lo, hi = op.attrs.get("min"), op.attrs.get("max")
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def _hardsigmoid(x, alpha, beta):
    return np.clip(alpha * x + beta, 0.0, 1.0)


def _upd(stats, key, v):
    if stats is not None:
        stats[key] = max(stats.get(key, 0.0), float(np.abs(v).max()) if np.size(v) else 0.0)


def _maybe_lowrank(w: dict, key: str, v: np.ndarray, stats: dict | None) -> np.ndarray:
    """w[key] @ v, or w[key1] @ (w[key2] @ v) for a low-rank factorisation (recording its range)."""
    if key + "1" not in w:
        return w[key] @ v
    a = w[key + "2"] @ v
    _upd(stats, "lowrank", a)
    return w[key + "1"] @ a


def cell_float(op: str, w: dict, xs: np.ndarray, stats: dict | None = None, sequence: bool = False,
               attrs: dict | None = None, h0: np.ndarray | None = None, c0: np.ndarray | None = None):
    """Run a float cell over xs (N, T, D) from its initial state (zero, or params h0 / c0, or the
    runtime initial states ``h0`` / ``c0`` (N, H)); returns h (N, H) or (N, T, H) (attrs:
    ``activation`` of rnn, ``linear_before_reset`` of gru, ``state`` "c" of lstm: the final c
    instead of h; ``steps``: per batch element (or one for all) the range [start, stop) of steps
    that update the state — outside it the state is held and a sequence output is 0, ONNX's
    ``sequence_lens``: :func:`step_mask`).
    ``stats`` (a dict) collects the max |value| of the cell's internal tensors: "h", "pre"
    (inputs of σ/tanh), "c" (LSTM cell state), "lowrank" (FastGRNN W2·x, U2·h)."""
    N, T, _ = xs.shape
    if op == "fastgrnn":
        H = (w["W1"] if "W1" in w else w["W"]).shape[0]
    else:
        H = w["W_hh"].shape[1]
    attrs = attrs or {}
    h = np.zeros((H, N)) + np.asarray(w.get("h0", 0.0), np.float64).reshape(-1, 1)
    c = np.zeros((H, N)) + np.asarray(w.get("c0", 0.0), np.float64).reshape(-1, 1)
    if h0 is not None:
        h = h + np.asarray(h0, np.float64).T
        _upd(stats, "h", h)
    if c0 is not None:
        c = c + np.asarray(c0, np.float64).T
        _upd(stats, "c", c)
    active = step_mask(attrs.get("steps"), T, N)
    seq = []
    for t in range(T):
        hp, cp = h, c
        x = xs[:, t, :].T  # (D, N)
        if op == "fastgrnn":
            pre = _maybe_lowrank(w, "W", x, stats) + _maybe_lowrank(w, "U", h, stats)
            pz, ph = pre + w["b_z"][:, None], pre + w["b_h"][:, None]
            _upd(stats, "pre", pz), _upd(stats, "pre", ph)
            z, ht = _sig(pz), np.tanh(ph)
            h = (w["zeta"] * (1 - z) + w["nu"]) * ht + z * h
        elif op == "lstm":
            g = w["W_ih"] @ x + w["W_hh"] @ h + (w["b_ih"] + w["b_hh"])[:, None]
            _upd(stats, "pre", g)
            i, f, gg, o = _sig(g[:H]), _sig(g[H:2 * H]), np.tanh(g[2 * H:3 * H]), _sig(g[3 * H:])
            c = f * c + i * gg
            _upd(stats, "c", c)
            h = o * np.tanh(c)
        elif op == "gru":
            gi = w["W_ih"] @ x + w["b_ih"][:, None]
            gh = w["W_hh"] @ h + w["b_hh"][:, None]
            rz = gi[:2 * H] + gh[:2 * H]
            _upd(stats, "pre", rz), _upd(stats, "pre", gh[2 * H:])
            r, z = _sig(rz[:H]), _sig(rz[H:])
            if attrs.get("linear_before_reset", True):
                pn = gi[2 * H:] + r * gh[2 * H:]
            else:
                pn = gi[2 * H:] + w["W_hh"][2 * H:] @ (r * h) + w["b_hh"][2 * H:, None]
            _upd(stats, "pre", pn)
            n = np.tanh(pn)
            h = (1 - z) * n + z * h
        elif op == "rnn":
            a = w["W_ih"] @ x + w["W_hh"] @ h + (w["b_ih"] + w["b_hh"])[:, None]
            if attrs.get("activation", "tanh") == "tanh":
                _upd(stats, "pre", a)
                h = np.tanh(a)
            else:
                h = np.maximum(a, 0.0)
        else:
            raise ProgramError(f"{op} is not a recurrent cell")
        if active is not None:
            h, c = np.where(active[t], h, hp), np.where(active[t], c, cp)
        _upd(stats, "h", h)
        if sequence:
            seq.append(h.T if active is None else np.where(active[t], h, 0.0).T)
    if sequence:
        return np.stack(seq, axis=1)
    return c.T if attrs.get("state") == "c" else h.T


def step_mask(steps, T: int, N: int) -> np.ndarray | None:
    """The public per-step, per-sample update mask (T, N) of a cell's ``steps`` attribute (a list
    of [start, stop) ranges: one per batch element, or one for all), or None (every step). A list
    of several ranges fixes the batch to its length."""
    if steps is None:
        return None
    r = np.asarray(steps, np.int64).reshape(-1, 2)
    if len(r) != 1 and len(r) != N:
        raise ProgramError(f"the recurrent layer's sequence lengths are given for a batch of {len(r)}, "
                           f"the input has {N} samples")
    t = np.arange(T)[:, None]
    return np.broadcast_to((t >= r[:, 0]) & (t < r[:, 1]), (T, N))


def _cell(op, ins, stats=None):
    init = list(op.attrs.get("init", []))
    st = dict(zip(init, ins[1:]))
    return cell_float(op.op, op.params, ins[0], stats, bool(op.attrs.get("sequence", False)), op.attrs,
                      st.get("h"), st.get("c"))


def _reshape(op, x):
    return x.reshape((x.shape[0],) + tuple(op.attrs["shape"]))


def _slice(op, x):
    axis = op.attrs.get("axis", 0) % (x.ndim - 1)
    sl = slice(op.attrs.get("start"), op.attrs.get("stop"), op.attrs.get("step"))
    return x[(slice(None),) * (axis + 1) + (sl,)]


def rnnpool_sequences(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, int, int]:
    """(N, C, H, W) → the rnn1 input sequences (N, P, 2k, k, C) (rows i = 0..k−1 over columns,
    then columns j over rows; P = Ho·Wo patches in row-major order), Ho, Wo. Works on any array
    with that layout (float values or share data)."""
    N, C, H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    r0 = (np.arange(Ho) * s)[:, None, None, None] + np.arange(k)[None, None, :, None]   # (Ho,1,k,1)
    c0 = (np.arange(Wo) * s)[None, :, None, None] + np.arange(k)[None, None, None, :]   # (1,Wo,1,k)
    patches = x[:, :, r0, c0]                                   # (N, C, Ho, Wo, k, k)
    patches = patches.reshape(N, C, Ho * Wo, k, k).transpose(0, 2, 3, 4, 1)  # (N, P, i, j, C)
    rows = patches                                              # row i, time j
    cols = patches.transpose(0, 1, 3, 2, 4)                     # column j, time i
    return np.concatenate([rows, cols], axis=2), Ho, Wo


def rnnpool_summaries(r: np.ndarray, k: int) -> np.ndarray:
    """rnn1 results (N, P, 2k, h1) → the rnn2 input sequences (N, P, 4, k, h1): forward rows,
    backward rows, forward columns, backward columns."""
    rows, cols = r[:, :, :k], r[:, :, k:]
    return np.stack([rows, rows[:, :, ::-1], cols, cols[:, :, ::-1]], axis=2)


def _sub(params: dict, prefix: str) -> dict:
    return {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(prefix + ".")}


def _rnnpool(op, x, stats=None):
    k, s = int(op.attrs["patch"]), int(op.attrs.get("stride", op.attrs["patch"]))
    N = x.shape[0]
    seqs, Ho, Wo = rnnpool_sequences(x, k, s)
    P = Ho * Wo
    st1 = st2 = None
    if stats is not None:
        st1, st2 = stats.setdefault("rnn1", {}), stats.setdefault("rnn2", {})
    r = cell_float("fastgrnn", _sub(op.params, "rnn1"), seqs.reshape(N * P * 2 * k, k, -1), st1)
    r = r.reshape(N, P, 2 * k, -1)
    q = rnnpool_summaries(r, k)
    h = cell_float("fastgrnn", _sub(op.params, "rnn2"), q.reshape(N * P * 4, k, -1), st2)
    h2 = h.shape[-1]
    return h.reshape(N, Ho, Wo, 4 * h2).transpose(0, 3, 1, 2)


def _l2norm(op, x):
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), op.attrs.get("eps", 1e-12)))


#: op → f(op, inputs, stats) → output (batch-leading arrays)
FLOAT_OPS: dict[str, Callable] = {
    "linear": lambda op, ins, st: ins[0] @ op.params["W"].T + op.params.get("b", 0.0),
    "matmul": lambda op, ins, st: _matmul(op, ins),
    "conv2d": lambda op, ins, st: _conv(op, ins[0]),
    "add": lambda op, ins, st: _binary(np.add, op, ins),
    "sub": lambda op, ins, st: _binary(np.subtract, op, ins),
    "mul": lambda op, ins, st: _binary(np.multiply, op, ins),
    "div": lambda op, ins, st: _div(op, ins, st),
    "relu": lambda op, ins, st: np.maximum(ins[0], 0.0),
    "maxpool2d": lambda op, ins, st: _maxpool(op, ins[0]),
    "avgpool2d": lambda op, ins, st: _avgpool(op, ins[0]),
    "argmax": lambda op, ins, st: np.argmax(ins[0], axis=-1),
    "sigmoid": lambda op, ins, st: _sig(ins[0]),
    "tanh": lambda op, ins, st: np.tanh(ins[0]),
    "exp": lambda op, ins, st: np.exp(ins[0]),
    "sqrt": lambda op, ins, st: np.sqrt(ins[0]),
    "rsqrt": lambda op, ins, st: 1.0 / np.sqrt(ins[0]),
    "reciprocal": lambda op, ins, st: 1.0 / ins[0],
    "abs": lambda op, ins, st: np.abs(ins[0]),
    "neg": lambda op, ins, st: -ins[0],
    "softplus": lambda op, ins, st: _softplus(ins[0]),
    "clip": lambda op, ins, st: _clip(op, ins[0]),
    "leakyrelu": lambda op, ins, st: np.where(ins[0] >= 0, ins[0], float(op.attrs.get("alpha", 0.01)) * ins[0]),
    "prelu": lambda op, ins, st: np.where(ins[0] >= 0, ins[0], op.params["slope"] * ins[0]),
    "hardsigmoid": lambda op, ins, st: _hardsigmoid(ins[0], float(op.attrs.get("alpha", 0.2)),
                                                    float(op.attrs.get("beta", 0.5))),
    "hardswish": lambda op, ins, st: ins[0] * _hardsigmoid(ins[0], 1.0 / 6.0, 0.5),
    "requant": lambda op, ins, st: ins[0],
    "reshape": lambda op, ins, st: _reshape(op, ins[0]),
    "flatten": lambda op, ins, st: ins[0].reshape(ins[0].shape[0], -1),
    "transpose": lambda op, ins, st: ins[0].transpose((0,) + tuple(p + 1 for p in op.attrs["perm"])),
    "slice": lambda op, ins, st: _slice(op, ins[0]),
    "concat": lambda op, ins, st: np.concatenate(ins, axis=op.attrs.get("axis", 0) % (ins[0].ndim - 1) + 1),
    "pad": lambda op, ins, st: _pad(op, ins[0]),
    "gather": lambda op, ins, st: _gather(op, ins[0]),
    "fastgrnn": lambda op, ins, st: _cell(op, ins, st),
    "lstm": lambda op, ins, st: _cell(op, ins, st),
    "gru": lambda op, ins, st: _cell(op, ins, st),
    "rnn": lambda op, ins, st: _cell(op, ins, st),
    "softmax": lambda op, ins, st: _softmax_axis(op, ins[0]),
    "l2norm": lambda op, ins, st: _l2norm(op, ins[0]),
    "normalize": lambda op, ins, st: _normalize(op, ins[0], st),
    "reduce": lambda op, ins, st: _reduce(op, ins[0]),
    "rnnpool": lambda op, ins, st: _rnnpool(op, ins[0], st),
}

#: ops whose float function fills ``cell_stats`` (per op name): the cells, rnnpool
#: ({"rnn1": {...}, "rnn2": {...}}), normalize (range of 1/√(var + eps)) and div (of |1/y|)
STAT_OPS = ("fastgrnn", "lstm", "gru", "rnn", "rnnpool", "normalize", "div")


# ---------------------------------------------------------------------------------------------
def by_name(x, names: list[str], error: type[Exception], *, what: str = "") -> dict:
    """A model's inputs as a mapping over exactly ``names``: ``x`` is an array (a one-input model)
    or a mapping name → array. ``error`` (one line, prefixed by ``what``) names the inputs that
    are missing or unexpected, or says that a model of several inputs needs them by name."""
    pre = f"{what}: " if what else ""
    if not isinstance(x, dict):
        if len(names) != 1:
            raise error(f"{pre}the model takes {len(names)} inputs {list(names)}: give each by name "
                        "(an .npz with one array per input)")
        return {names[0]: x}
    missing = [t for t in names if t not in x]
    if missing:
        raise error(f"{pre}missing input(s) {missing} (the model takes {list(names)})")
    extra = sorted(str(t) for t in set(x) - set(names))
    if extra:
        raise error(f"{pre}unexpected input(s) {extra} (the model takes {list(names)})")
    return x


class NamedIO:
    """The first input, its shape and the first output of a model with ``inputs``,
    ``input_shapes`` and ``outputs`` (the one-input, one-output view)."""

    @property
    def input(self) -> str:
        return self.inputs[0]

    @property
    def input_shape(self) -> tuple:
        return self.input_shapes[self.inputs[0]]

    @property
    def output(self) -> str:
        return self.outputs[0]


class FloatModel(NamedIO):
    """A float model: ``ops`` over named tensors from its inputs (per-sample shapes) to its
    outputs. ``meta`` is free-form public information (name, class labels, ...).

    One input and one output: ``FloatModel(ops, "x", (T, D), "y")``; several:
    ``FloatModel(ops, ["x", "h0"], [(T, D), (H,)], ["y", "hn"])`` (``inputs``, ``input_shapes``
    (name → shape) and ``outputs`` list them; ``input`` / ``input_shape`` / ``output`` are the
    first). ``batch_axes`` (name → axis, for inputs and outputs; default 0) says where the batch
    axis sits in the arrays a user passes and gets (an ONNX LSTM's initial state (1, N, H): 1);
    :meth:`run` itself is batch-leading throughout."""

    def __init__(self, ops: list[FloatOp], input, input_shape, output, meta: dict | None = None,
                 batch_axes: dict | None = None):
        self.ops = list(ops)
        if isinstance(input, str):
            input, input_shape = [input], [input_shape]
        self.inputs = [str(t) for t in input]
        shapes = list(input_shape)
        if len(shapes) != len(self.inputs):
            raise ProgramError(f"float model: {len(self.inputs)} inputs but {len(shapes)} input shapes")
        self.input_shapes = {t: tuple(int(s) for s in sh) for t, sh in zip(self.inputs, shapes)}
        self.outputs = [output] if isinstance(output, str) else [str(t) for t in output]
        self.meta = dict(meta or {})
        self.batch_axes = {str(k): int(v) for k, v in (batch_axes or {}).items() if int(v) != 0}
        self.validate()

    @property
    def single(self) -> bool:
        """One input and one output (the version-1 file layout)."""
        return len(self.inputs) == 1 and len(self.outputs) == 1

    def validate(self) -> "FloatModel":
        if not self.inputs or not self.outputs:
            raise ProgramError("a float model needs at least one input and one output")
        if len(set(self.inputs)) != len(self.inputs) or len(set(self.outputs)) != len(self.outputs):
            raise ProgramError("float model: an input or output is listed twice")
        defined = set(self.inputs)
        names = set()
        for i, op in enumerate(self.ops):
            where = f"float op #{i} {op.name!r} ({op.op})"
            if op.op not in FLOAT_OPS:
                raise ProgramError(f"{where}: unknown op (known: {', '.join(sorted(FLOAT_OPS))})")
            if op.name in names:
                raise ProgramError(f"{where}: name used twice")
            names.add(op.name)
            for t in op.inputs:
                if t not in defined:
                    raise ProgramError(f"{where}: input {t!r} is not defined before use")
            for t in op.outputs:
                if t in defined:
                    raise ProgramError(f"{where}: output {t!r} is defined twice")
                defined.add(t)
        for t in self.outputs:
            if t not in defined:
                raise ProgramError(f"the output {t!r} is not computed by any op")
        return self

    def feeds(self, x) -> tuple[dict, bool]:
        """The inputs as batch-leading float arrays by name, and whether they were one sample
        (no batch axis). ``x``: an array (a model with one input) or a mapping name → array
        (every input, nothing else)."""
        x = by_name(x, self.inputs, ProgramError, what="float model")
        env, single, n = {}, None, None
        for t in self.inputs:
            a = np.asarray(x[t], np.float64)
            one = a.shape == self.input_shapes[t]
            if one:
                a = a[None]
            if a.shape[1:] != self.input_shapes[t]:
                raise ProgramError(f"float model input {t!r} of shape {a.shape}, expected (N,) + "
                                   f"{self.input_shapes[t]}")
            if (single is not None and one != single) or (n is not None and len(a) != n):
                raise ProgramError(f"float model input {t!r}: all inputs need the same batch size")
            single, n, env[t] = one, len(a), a
        return env, bool(single)

    def run(self, x, *, record: dict | None = None, cell_stats: dict | None = None):
        """Float64 forward pass on x ((N,) + input shape, or one sample; a mapping name → array
        for several inputs); returns the output, or a dict name → output for several outputs.
        ``record`` (a dict) gets every tensor, ``cell_stats`` (a dict) per recurrent op name the
        max |value| of its internal tensors."""
        env, single = self.feeds(x)
        for op in self.ops:
            st = None
            if cell_stats is not None and op.op in STAT_OPS:
                st = cell_stats.setdefault(op.name, {})
            env[op.outputs[0]] = FLOAT_OPS[op.op](op, [env[t] for t in op.inputs], st)
        if record is not None:
            record.update(env)
        outs = {t: env[t][0] if single else env[t] for t in self.outputs}
        return outs[self.output] if len(self.outputs) == 1 else outs

    # -- files --------------------------------------------------------------------------------
    def describe(self) -> dict:
        """Version 1 (one input, one output) or version 2 (lists of inputs and outputs)."""
        ops = [{"op": o.op, "name": o.name, "inputs": o.inputs, "outputs": o.outputs,
                "attrs": o.attrs, "params": sorted(o.params)} for o in self.ops]
        if self.single and not self.batch_axes:
            return {"format": "sirnn-float-model", "version": 1, "input": self.input,
                    "input_shape": list(self.input_shape), "output": self.output, "meta": self.meta, "ops": ops}
        return {"format": "sirnn-float-model", "version": 2,
                "inputs": [{"name": t, "shape": list(self.input_shapes[t]), "batch_axis": self.batch_axes.get(t, 0)}
                           for t in self.inputs],
                "outputs": [{"name": t, "batch_axis": self.batch_axes.get(t, 0)} for t in self.outputs],
                "meta": self.meta, "ops": ops}

    def save(self, path: str | os.PathLike) -> None:
        """``.npz`` (arrays) or ``.json`` (parameters as nested lists)."""
        path = os.fspath(path)
        d = self.describe()
        if path.endswith(".json"):
            for od, op in zip(d["ops"], self.ops):
                od["params"] = {k: v.tolist() for k, v in op.params.items()}
            with open(path, "w") as f:
                json.dump(d, f)
            return
        arrays = {f"param/{op.name}/{k}": v for op in self.ops for k, v in op.params.items()}
        np.savez_compressed(path, __model__=np.array(json.dumps(d)), **arrays)

    @classmethod
    def from_dict(cls, d: dict, arrays: dict | None = None) -> "FloatModel":
        if not isinstance(d, dict) or d.get("format") != "sirnn-float-model":
            raise ProgramError("not a sirnn float model description")
        if d.get("version", 1) not in (1, 2):
            raise ProgramError(f"float model format version {d.get('version')!r}: this sirnn reads 1 and 2")
        ops = []
        for od in d["ops"]:
            if isinstance(od.get("params"), dict):
                params = {k: np.asarray(v, np.float64) for k, v in od["params"].items()}
            else:
                try:
                    params = {k: arrays[f"param/{od['name']}/{k}"] for k in od.get("params", [])}
                except (KeyError, TypeError) as e:
                    raise ProgramError(f"float model: missing parameter array {e}") from None
            ops.append(FloatOp(od["op"], od["inputs"], od["outputs"], params, od.get("attrs", {}), od["name"]))
        if d.get("version", 1) == 1:
            return cls(ops, d["input"], d["input_shape"], d["output"], d.get("meta"))
        axes = {i["name"]: i.get("batch_axis", 0) for i in d["inputs"] + d["outputs"]}
        return cls(ops, [i["name"] for i in d["inputs"]], [i["shape"] for i in d["inputs"]],
                   [o["name"] for o in d["outputs"]], d.get("meta"), axes)


def _load_npz(path: str) -> FloatModel:
    with np.load(path, allow_pickle=False) as z:
        if "__model__" not in z.files:
            raise ProgramError(f"{path}: not a sirnn float model (.npz without __model__)")
        d = json.loads(str(z["__model__"]))
        arrays = {k: z[k] for k in z.files if k != "__model__"}
    return FloatModel.from_dict(d, arrays)


def _load_json(path: str) -> FloatModel:
    with open(path) as f:
        return FloatModel.from_dict(json.load(f))


def _load_onnx(path: str, **options) -> FloatModel:
    from .onnx_import import load_onnx  # imports the onnx package, with a clear error if missing

    return load_onnx(path, **options)


#: file extension → loader(path) → FloatModel
LOADERS: dict[str, Callable[[str], FloatModel]] = {".npz": _load_npz, ".json": _load_json, ".onnx": _load_onnx}


def register_loader(ext: str, fn: Callable[[str], FloatModel]) -> None:
    """Plug in a float-model loader for files ending in ``ext`` (e.g. ".onnx")."""
    LOADERS[ext if ext.startswith(".") else "." + ext] = fn


def load_float_model(path, **options) -> FloatModel:
    """The float model in ``path`` (by extension, :data:`LOADERS`); ``options`` go to the loader
    (e.g. ``batch_axis`` for ONNX)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    fn = LOADERS.get(ext)
    if fn is None:
        raise ProgramError(f"don't know how to read a model from {path!r} (known extensions: "
                           f"{', '.join(sorted(LOADERS))})")
    if not os.path.exists(path):
        raise ProgramError(f"no such model file: {path}")
    if options and ext != ".onnx":
        raise ProgramError(f"options {sorted(options)} only apply to ONNX models, not {path!r}")
    try:
        return fn(path, **options)
    except ProgramError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, EOFError,
            zipfile.BadZipFile) as e:  # a damaged or foreign file: one line, no unpickling advice
        detail = ("not an .npz archive; sirnn never reads pickled data" if "pickle" in str(e)
                  else f"{type(e).__name__}: {e}")
        raise ProgramError(f"{path}: not a readable sirnn float model ({detail})") from None
