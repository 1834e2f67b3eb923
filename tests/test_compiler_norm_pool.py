"""softmax, l2norm and rnnpool: float reference, lowering, secure == clear, float closeness."""

import sys
from pathlib import Path

import numpy as np
import pytest

from modelhelp import inputs
from sirnn.compiler import FloatModel, FloatOp, Program, compare, compile_model, evaluate_clear
from sirnn.compiler.floatir import FLOAT_OPS
from sirnn.errors import ProgramError
from sirnn.nn.norm import l2_normalise, softmax
from sirnn.protocols.backend import ClearBackend, clear
from sirnn.protocols.ring import to_signed
from test_compiler import secure_vs_clear

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def norm_model(kind, K=6, seed=7):
    rng = np.random.default_rng(seed)
    ops = [FloatOp("linear", "x", "z", dict(W=rng.normal(0, 0.8, (K, 4)), b=rng.normal(0, 0.3, K)), name="fc"),
           FloatOp(kind, "z", "y", name=kind)]
    return FloatModel(ops, "x", (4,), "y")


def fgrnn_w(rng, D, H):
    return {"W": rng.normal(0, 0.4, (H, D)), "U": rng.normal(0, 0.3, (H, H)), "b_z": rng.normal(0, 0.5, H),
            "b_h": rng.normal(0, 0.5, H), "zeta": 0.9, "nu": 0.05}


def rnnpool_model(C=2, S=5, k=3, s=2, h1=3, h2=2, seed=8):
    rng = np.random.default_rng(seed)
    p = {f"rnn1.{r}": v for r, v in fgrnn_w(rng, C, h1).items()}
    p.update({f"rnn2.{r}": v for r, v in fgrnn_w(rng, h1, h2).items()})
    ops = [FloatOp("rnnpool", "x", "p", p, {"patch": k, "stride": s}, name="pool"),
           FloatOp("flatten", "p", "f", name="flat")]
    return FloatModel(ops, "x", (C, S, S), "f")


@pytest.mark.parametrize("K", [1, 5, 40])
def test_norm_layers_against_float(K):
    be = ClearBackend()
    rng = np.random.default_rng(K)
    q = np.round(rng.normal(0, 2, (30, K)) * 2**11).astype(np.int64)
    x = q / 2**11
    e = np.exp(x - x.max(-1, keepdims=True))
    got = to_signed(softmax(be, clear(q, 16, 11), (16, 14)).data, 16) / 2**14
    assert np.abs(got - e / e.sum(-1, keepdims=True)).max() < 1.0 * 2**-14
    got = to_signed(l2_normalise(be, clear(q, 16, 11), (16, 14)).data, 16) / 2**14
    assert np.abs(got - x / np.linalg.norm(x, axis=-1, keepdims=True)).max() < 1.0 * 2**-14
    z = to_signed(l2_normalise(be, clear(np.zeros((2, K), np.int64), 16, 11), (16, 14)).data, 16)
    assert (z == 0).all()


@pytest.mark.parametrize("kind", ["softmax", "l2norm"])
def test_norm_ops_compile_and_match_float(kind):
    fm = norm_model(kind)
    prog = compile_model(fm, inputs(fm, 64))
    assert prog.ops[-1].op == kind and prog.tensors["y"].fmt == (16, 14)
    rep = compare(fm, prog, inputs(fm, 100, seed=3))
    assert rep["max_abs_err"] < 4e-3  # dominated by the linear layer's rounding of z
    Program.from_dict(prog.describe(), {k: p.values for k, p in prog.params.items()})


@pytest.mark.parametrize("kind", ["softmax", "l2norm"])
def test_norm_ops_secure_equals_clear(parties, kind):
    fm = norm_model(kind, K=5)
    prog = compile_model(fm, inputs(fm, 64))
    x = inputs(fm, 2, seed=4)
    out, _, _ = secure_vs_clear(parties, prog, x)
    assert (out == evaluate_clear(prog, x, raw=True)).all()


def test_rnnpool_float_matches_examples_reference():
    sys.path.insert(0, str(EXAMPLES))
    from float_reference import fastgrnn_run, rnnpool  # noqa: F401

    fm = rnnpool_model()
    op = fm.ops[0]
    w = {f"m.{k}": np.asarray(v, np.float64) for k, v in op.params.items()}
    x = inputs(fm, 3, seed=5)
    want = rnnpool(w, "m", x, 3, 2)
    assert np.abs(FLOAT_OPS["rnnpool"](op, [x], None) - want).max() < 1e-12


def test_rnnpool_secure_equals_clear(parties):
    fm = rnnpool_model()
    prog = compile_model(fm, inputs(fm, 64))
    pool = prog.ops[0]
    assert pool.op == "rnnpool" and prog.tensors["p"].shape == (8, 2, 2)
    x = inputs(fm, 2, seed=6)
    out, _, events = secure_vs_clear(parties, prog, x)
    assert [e.step for e in events if e.name == "pool" and e.step] == list(range(1, 7))
    rep = compare(fm, prog, inputs(fm, 50, seed=7))
    assert rep["max_abs_err"] < 0.02
    bad = prog.describe()
    bad["ops"][0]["attrs"]["patch"] = 4
    with pytest.raises(ProgramError, match="output has shape"):
        Program.from_dict(bad, {k: p.values for k, p in prog.params.items()})


def test_faces_model_fixed_point_matches_float():
    sys.path.insert(0, str(EXAMPLES))
    from to_float_model import examples_to_float_model

    d = EXAMPLES / "models" / "rnnpool_lfw_faces"
    fm = examples_to_float_model(d)
    x, y = np.load(d / "samples_x.npy").astype(np.float64), np.load(d / "samples_y.npy")
    assert np.abs(fm.run(x) - np.load(d / "samples_logits.npy")).max() < 1e-4
    prog = compile_model(fm, np.load(d / "calib_x.npy").astype(np.float64))
    rep = compare(fm, prog, x)
    assert rep["argmax_agreement"] == 1.0 and rep["max_abs_err"] < 0.02
