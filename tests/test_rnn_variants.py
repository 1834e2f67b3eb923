"""Recurrent cell variants the ONNX front-end needs: Elman RNN (tanh / relu), GRU without
linear_before_reset, constant initial states h0 / c0, the LSTM's final cell state — float
semantics against step-by-step references, fixed point close to float, secure == clear bit for
bit."""

import numpy as np
import pytest

from sirnn.compiler import FloatModel, FloatOp, compile_model, evaluate_clear
from sirnn.compiler.floatir import cell_float
from sirnn.nn import rnn
from test_compiler import secure_vs_clear


def _weights(rng, kind, D, H, h0=False, c0=False):
    g = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    w = dict(W_ih=rng.normal(0, 0.5, (g * H, D)), W_hh=rng.normal(0, 0.4, (g * H, H)),
             b_ih=rng.normal(0, 0.2, g * H), b_hh=rng.normal(0, 0.2, g * H))
    if h0:
        w["h0"] = rng.uniform(-0.8, 0.8, H)
    if c0:
        w["c0"] = rng.uniform(-1, 1, H)
    return w


VARIANTS = {
    "rnn-tanh": ("rnn", {}, {}), "rnn-relu-h0": ("rnn", {"activation": "relu"}, {"h0": True}),
    "gru-reset-first": ("gru", {"linear_before_reset": False}, {}),
    "gru-reset-first-h0": ("gru", {"linear_before_reset": False}, {"h0": True}),
    "gru-h0": ("gru", {}, {"h0": True}), "lstm-h0-c0": ("lstm", {}, {"h0": True, "c0": True}),
    "lstm-final-c": ("lstm", {"state": "c"}, {"c0": True}),
}


def _model(name, T=4, D=3, H=5, seed=0, sequence=False):
    kind, attrs, init = VARIANTS[name]
    rng = np.random.default_rng(seed)
    w = _weights(rng, kind, D, H, **init)
    ops = [FloatOp(kind, "x", "h", w, dict(attrs, **({"sequence": True} if sequence else {})), name="cell")]
    n = T * H if sequence else H
    if sequence:
        ops.append(FloatOp("flatten", "h", "hf", name="flat"))
    ops.append(FloatOp("linear", "hf" if sequence else "h", "y", dict(W=rng.normal(0, 0.5, (3, n)), b=np.zeros(3)),
                       name="fc"))
    return FloatModel(ops, "x", (T, D), "y")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_float_variants_match_step_references(name):
    kind, attrs, init = VARIANTS[name]
    rng = np.random.default_rng(1)
    w = _weights(rng, kind, 3, 5, **init)
    xs = rng.normal(0, 1, (2, 4, 3))
    got = cell_float(kind, w, xs, attrs=attrs)
    h = np.repeat(w.get("h0", np.zeros(5))[:, None], 2, 1)
    c = np.repeat(w.get("c0", np.zeros(5))[:, None], 2, 1)
    for t in range(4):
        x = xs[:, t].T
        if kind == "lstm":
            h, c = rnn.lstm_float(w, x, (h, c))
        elif kind == "gru":
            h = rnn.gru_float(w, x, h, attrs.get("linear_before_reset", True))
        else:
            h = rnn.rnn_float(w, x, h, attrs.get("activation", "tanh"))
    want = c if attrs.get("state") == "c" else h
    np.testing.assert_allclose(got, want.T, atol=1e-12)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fixed_point_variants_close_to_float(name):
    fm = _model(name, sequence=VARIANTS[name][1].get("state") != "c")
    x = np.random.default_rng(2).normal(0, 1, (48,) + fm.input_shape)
    prog = compile_model(fm, x)
    err = np.abs(evaluate_clear(prog, x) - fm.run(x)).max()
    assert err < 0.03 * np.ptp(fm.run(x)), err


@pytest.mark.parametrize("name", ["rnn-relu-h0", "gru-reset-first-h0", "lstm-final-c"])
def test_variants_secure_equals_clear(parties, name):
    fm = _model(name, T=2, D=2, H=3)
    prog = compile_model(fm, np.random.default_rng(3).normal(0, 1, (32,) + fm.input_shape))
    x = np.random.default_rng(4).normal(0, 1, (2,) + fm.input_shape)
    out, _, _ = secure_vs_clear(parties, prog, x)
    assert (out == evaluate_clear(prog, x, raw=True)).all()
