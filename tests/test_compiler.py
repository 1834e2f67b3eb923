"""Model compiler: program files, validation, calibration, the cleartext interpreter against the
two-party executor (bit for bit, every intermediate tensor) and against the float model."""

import json
import zipfile

import numpy as np
import pytest

from modelhelp import cnn_model, fastgrnn_model, gru_model, inputs, lstm_model, plumbing_model
from sirnn import ALICE, BOB
from sirnn.compiler import (CompileConfig, FloatModel, Program, compare, compile_model, evaluate_clear,
                            execute, load_float_model)
from sirnn.compiler.calibrate import choose_fmt, collect_ranges
from sirnn.compiler.floatir import cell_float
from sirnn.compiler.runtime import encode_input, encode_inputs
from sirnn.errors import InputError, ProgramError
from sirnn.nn import rnn
from sirnn.nn.meter import Meter
from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
from sirnn.protocols.share import reveal, share_input


@pytest.fixture(scope="module")
def tiny():
    fm = fastgrnn_model()
    return fm, compile_model(fm, inputs(fm, 64))


# ---------------------------------------------------------------------------------------------
# program files
# ---------------------------------------------------------------------------------------------
def test_save_load_round_trip(tiny, tmp_path):
    fm, prog = tiny
    path = tmp_path / "m.sirnn"
    prog.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["params.npz", "program.json"]
        d = json.loads(z.read("program.json"))
        assert d["format"] == "sirnn-program" and d["version"] == 1 and d["has_values"]
    back = Program.load(path)
    assert back.describe() == prog.describe() and back.digest() == prog.digest()
    assert back.params.keys() == prog.params.keys()
    for k, p in prog.params.items():
        q = back.params[k]
        assert (q.shape, q.bits, q.scale) == (p.shape, p.bits, p.scale)
        assert (q.values == p.values).all()
    x = inputs(fm, 5, seed=9)
    assert (evaluate_clear(back, x, raw=True) == evaluate_clear(prog, x, raw=True)).all()
    # the public copy: same digest, no values; as bytes (what the client receives) and as a file
    pub = prog.public()
    assert pub.digest() == prog.digest() and not pub.has_values
    assert all(p.values is None for p in pub.params.values())
    wire = prog.public_bytes()
    assert b'"values"' not in wire and Program.from_public_bytes(wire).digest() == prog.digest()
    pub.save(tmp_path / "pub.sirnn")
    with zipfile.ZipFile(tmp_path / "pub.sirnn") as z:
        assert z.namelist() == ["program.json"]
    assert Program.load(tmp_path / "pub.sirnn").digest() == prog.digest()
    with pytest.raises(Exception, match="parameter values"):
        evaluate_clear(pub, x)


def _mutated(prog, fn, values=True):
    d = prog.describe()
    fn(d)
    vals = {k: p.values for k, p in prog.params.items()} if values else None
    return lambda: Program.from_dict(d, vals)


def _set(path, value):
    def fn(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return fn


@pytest.mark.parametrize("mutation,message", [
    (_set(["version"], 99), "format version 99.*upgrade sirnn"),
    (_set(["format"], "zip"), "not a sirnn program"),
    (_set(["ops", 0, "op"], "frobnicate"), "unknown op 'frobnicate'"),
    (_set(["ops", 0, "op"], "softmax"), r"unexpected parameter role\(s\)"),
    (_set(["ops", 1, "inputs"], ["nope"]), "input 'nope' is not defined"),
    (_set(["tensors", "logits", "shape"], [4]), r"output 'logits' has shape \(4,\), expected \(3,\)"),
    (_set(["params", "fc.W", "shape"], [3, 9]), "fc.W.*shape|values have shape"),
    (_set(["tensors", "h", "scale"], 13), r"output format \(16, 13\) differs from the cell's h format"),
    (_set(["tensors", "y", "signed"], True), "unsigned index tensor"),
    (_set(["ops", 1, "params"], {"b": "fc.b"}), r"missing parameter\(s\) \['W'\]"),
    (_set(["ops", 1, "attrs"], {"stride": 2}), r"unknown attribute\(s\) \['stride'\]"),
    (_set(["output"], "h2"), "output tensor 'h2' is not declared"),
    (_set(["tensors", "x", "bits"], 99), "bits must be an integer in 1..64"),
])
def test_validation_errors(tiny, mutation, message):
    _, prog = tiny
    with pytest.raises(ProgramError, match=message):
        _mutated(prog, mutation)()


def test_validation_of_values_and_files(tiny, tmp_path):
    _, prog = tiny
    vals = {k: p.values for k, p in prog.params.items()}
    vals["fc.W"] = vals["fc.W"] + (1 << 20)  # does not fit 16 bits
    with pytest.raises(ProgramError, match="fc.W"):
        Program.from_dict(prog.describe(), vals)
    vals = {k: p.values for k, p in prog.params.items()}
    del vals["fc.b"]
    with pytest.raises(ProgramError, match="'fc.b' has no values"):
        Program.from_dict(prog.describe(), vals)
    (tmp_path / "junk.sirnn").write_bytes(b"not a zip")
    with pytest.raises(ProgramError, match="not a sirnn program file"):
        Program.load(tmp_path / "junk.sirnn")
    with pytest.raises(ProgramError, match="no such program file"):
        Program.load(tmp_path / "missing.sirnn")


def test_input_checks(tiny):
    _, prog = tiny
    with pytest.raises(InputError, match=r"shape \(4, 5\), but the model takes \(4, 4\)"):
        encode_input(prog, np.zeros((4, 5)))
    bad = np.zeros((2, 4, 4))
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinity \(1 value\(s\), first at index \(1, 2, 3\)\)"):
        encode_input(prog, bad)
    with pytest.raises(InputError, match=r"outside the range of the model's input format \(16 bits, scale 12"):
        encode_input(prog, np.full((4, 4), 9.0))
    q, batched = encode_input(prog, np.full((4, 4), 0.5))
    assert not batched and q.shape == (1, 4, 4) and (q == 2048).all()


# ---------------------------------------------------------------------------------------------
# float models
# ---------------------------------------------------------------------------------------------
def test_float_model_files_and_loaders(tmp_path):
    fm = fastgrnn_model(lowrank=(2, 3))
    x = inputs(fm, 3)
    for ext in ("npz", "json"):
        fm.save(tmp_path / f"m.{ext}")
        back = load_float_model(tmp_path / f"m.{ext}")
        assert back.describe() == fm.describe()
        assert np.allclose(back.run(x), fm.run(x))
    # (the ONNX importer, when present, rejects the empty file itself)
    with pytest.raises(ProgramError, match="ONNX import is not available|not a valid ONNX model"):
        (tmp_path / "m.onnx").write_bytes(b"")
        load_float_model(tmp_path / "m.onnx")
    with pytest.raises(ProgramError, match="known extensions"):
        load_float_model(tmp_path / "m.pt")
    with pytest.raises(ProgramError, match="unknown op"):
        FloatModel([], "x", (1,), "x").__class__.from_dict(
            {"format": "sirnn-float-model", "input": "x", "input_shape": [1], "output": "y",
             "ops": [{"op": "gelu", "name": "g", "inputs": ["x"], "outputs": ["y"], "params": {}}]})


@pytest.mark.parametrize("kind", ["fastgrnn", "fastgrnn-lowrank", "lstm", "gru"])
def test_float_cells_match_nn_references(kind):
    rng = np.random.default_rng(0)
    fm = {"fastgrnn": fastgrnn_model, "fastgrnn-lowrank": lambda: fastgrnn_model(lowrank=(2, 3)),
          "lstm": lstm_model, "gru": gru_model}[kind]()
    op = fm.ops[0]
    xs = rng.normal(0, 1, (3,) + fm.input_shape)  # (N, T, D)
    got = cell_float(op.op, op.params, xs)
    step = {"fastgrnn": rnn.fastgrnn_float, "lstm": rnn.lstm_float, "gru": rnn.gru_float}[op.op]
    H = got.shape[1]
    state = (np.zeros((H, 3)), np.zeros((H, 3))) if op.op == "lstm" else np.zeros((H, 3))
    want = rnn.run_float(step, op.params, xs.transpose(1, 2, 0), state)
    want = want[0] if op.op == "lstm" else want
    assert np.allclose(got, want.T)


# ---------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------
def test_choose_fmt():
    assert choose_fmt(3.2, 16, 1) == (16, 12)    # 3.2 needs 2 integer bits, + sign + headroom
    assert choose_fmt(0.95, 16, 1) == (16, 14)
    assert choose_fmt(100.0, 16, 1) == (16, 7)
    assert choose_fmt(100.0, 16, 0) == (16, 8)
    assert choose_fmt(0.2, 16, 1, max_scale=12) == (16, 12)
    assert choose_fmt(3.2, 24, 1) == (24, 20)
    with pytest.raises(ProgramError, match=r"tensor 'h': .* 1e\+06 needs 22 bits .*raise --bits"):
        choose_fmt(1e6, 16, 1, what="tensor 'h'")  # 2^20 ≤ 1e6 < 2^21: 21 integer bits + headroom
    with pytest.raises(ProgramError, match="not finite"):
        choose_fmt(float("inf"), 16, 1)


@pytest.mark.parametrize("name", ["fastgrnn", "cnn", "plumbing"])
def test_calibration_scales_and_accuracy(name):
    fm = {"fastgrnn": fastgrnn_model, "cnn": cnn_model, "plumbing": plumbing_model}[name]()
    x = inputs(fm, 128)
    prog = compile_model(fm, x)
    ranges, cells = collect_ranges(fm, x)
    hdr = CompileConfig().headroom_bits
    for t, spec in prog.tensors.items():
        if not spec.signed or t not in ranges:
            continue
        top = 2.0 ** (spec.bits - 1 - spec.scale)  # the format's range
        assert ranges[t] < top / 2**hdr, (t, spec, ranges[t])  # keeps the range + headroom
        producer = next((op for op in prog.ops if t in op.outputs), None)
        if producer is None or producer.op in ("linear", "conv2d", "add", "mul"):
            # the largest such scale: one more fraction bit would eat into the headroom
            assert round(ranges[t] * 2.0 ** (spec.scale + 1)) > 2 ** (spec.bits - 2 - hdr) - 1, (t, spec)
    for op in prog.ops:  # weights: 16 bits, scale fitted to max |W| (capped by the accumulator)
        if op.op in ("linear", "conv2d"):
            W = prog.op_params(op)["W"]
            assert W.bits == 16 and np.abs(W.values).max() >= 2**13
    rep = compare(fm, prog, inputs(fm, 200, seed=7))
    if "agreement" in rep:
        assert rep["agreement"] >= 0.97, rep
    else:
        assert rep["max_abs_err"] < 0.02 * rep["max_abs"] + 0.01, rep
    for t, e in rep["tensors"].items():
        assert e["ulp"] < 40, (t, e)  # every intermediate within a few output ULPs


def test_cell_formats_follow_the_math_functions():
    """The cells' σ/tanh inputs get at most scale 12 (SCI's 16-bit configuration), their outputs
    (16, 12); a wider range lowers the pre-activation scale; accumulators are wider rings."""
    fm = fastgrnn_model()
    prog = compile_model(fm, inputs(fm, 64))
    f = prog.ops[0].attrs["formats"]
    assert f["gate"] == [16, 12] and f["pre"][0] == 16 and f["pre"][1] <= 12
    assert f["h"] == list(prog.tensors["h"].fmt) and f["x"] == list(prog.tensors["x"].fmt)
    assert prog.params["rnn.b_z"].bits > 16  # bias at the accumulator's scale, in its ring
    big = compile_model(fm, inputs(fm, 64, sd=12.0))  # larger inputs → larger pre-activations
    assert big.ops[0].attrs["formats"]["pre"][1] < f["pre"][1]
    assert big.tensors["x"].scale < prog.tensors["x"].scale
    # overrides: activation bits and the σ/tanh configuration
    wide = compile_model(fm, inputs(fm, 64), act_bits=20, fuse_tanh=False)
    assert wide.tensors["logits"].bits == 20 and not wide.ops[0].attrs["formats"]["fuse_tanh"]


def test_compile_errors(tmp_path):
    fm = fastgrnn_model()
    with pytest.raises(ProgramError, match=r"calibration data of shape \(3, 4\)"):
        compile_model(fm, np.zeros((3, 4)))
    bad = inputs(fm, 4)
    bad[0, 0, 0] = np.inf
    with pytest.raises(ProgramError, match="NaN or infinity"):
        compile_model(fm, bad)
    from sirnn.compiler import FloatOp

    sm = FloatModel([FloatOp("softmax", "x", "y")], "x", (3,), "y")
    assert np.allclose(sm.run(np.zeros((2, 3))), 1 / 3)  # runs in float
    assert compile_model(sm, np.ones((4, 3))).ops[0].op == "softmax"  # and now in fixed point too


# ---------------------------------------------------------------------------------------------
# the cleartext interpreter == the two-party executor, bit for bit
# ---------------------------------------------------------------------------------------------
def secure_vs_clear(parties, prog, x, meter=False):
    """Run prog securely (ALICE: full program, BOB: public copy), reveal every tensor, and compare
    with the cleartext interpreter's tensors bit for bit. Returns (output ring (a dict name → ring
    for several outputs), per-op cost). ``x``: an array, or a dict name → array (several inputs)."""
    qs, _ = encode_inputs(prog, x)
    meters = [None, None]
    events = []

    def side(p):
        be = SecureBackend(p)
        mine = prog if p.role == ALICE else prog.public()
        m = Meter(be) if meter else None
        meters[p.role] = m
        xs = {t: share_input(p, BOB, qs[t] if p.role == BOB else None, bits=prog.tensors[t].bits,
                             scale=prog.tensors[t].scale, shape=qs[t].shape) for t in prog.inputs}
        trace = {}
        execute(mine, be, xs, meter=m, trace=trace,
                progress=events.append if p.role == BOB else None)
        return {k: reveal(p, v) for k, v in sorted(trace.items())}

    a, b = parties.run(side)
    ref = {}
    execute(prog, ClearBackend(), {t: clear(q, prog.tensors[t].bits, prog.tensors[t].scale) for t, q in qs.items()},
            trace=ref)
    assert a.keys() == b.keys() == ref.keys()
    for k, v in ref.items():
        assert (a[k] == v.data).all() and (b[k] == v.data).all(), k
    cost = None
    if meter:
        cost = {k: (r["bytes_sent"] + r["bytes_recv"], r["rounds"]) for k, r in meters[BOB].rows.items()}
    if len(prog.outputs) > 1:
        return {t: ref[t].data for t in prog.outputs}, cost, events
    return ref[prog.output].data, cost, events


def test_fastgrnn_secure_equals_clear(parties):
    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 64))
    x = inputs(fm, 2, seed=11)  # a batch of two sequences
    out, cost, events = secure_vs_clear(parties, prog, x, meter=True)
    assert (out == evaluate_clear(prog, x)).all()
    assert [(e.name, e.step, e.steps) for e in events if e.name == "rnn"] == \
        [("rnn", 0, 0)] + [("rnn", t, 4) for t in range(1, 5)]
    last = events[-1]
    assert (last.op_index, last.n_ops, last.name, last.op, last.step, last.steps) == (2, 3, "pred", "argmax", 0, 0)
    # progress: the estimated work done grows from 0 to nearly 1 (the cell is almost all of it),
    # the bytes on BOB's channel grow and are counted
    done, nbytes = [e.done for e in events], [e.bytes for e in events]
    assert done[0] == 0.0 and done == sorted(done) and 0.95 < done[-1] < 1.0
    assert nbytes == sorted(nbytes) and nbytes[-1] > nbytes[0] > 0
    assert cost["rnn"][1] <= 4 * 66 and cost["fc"][1] < 20  # rounds: ~62 per step, one TR


def test_fastgrnn_variants_secure_equals_clear(parties):
    fm = fastgrnn_model(T=3, D=3, H=6, lowrank=(2, 3), sequence=True)
    prog = compile_model(fm, inputs(fm, 64), fuse_tanh=False)
    assert {"rnn.W1", "rnn.W2", "rnn.U1", "rnn.U2"} <= prog.params.keys()
    secure_vs_clear(parties, prog, inputs(fm, 1, seed=12))


def test_cnn_secure_equals_clear(parties):
    fm = cnn_model()
    prog = compile_model(fm, inputs(fm, 64))
    x = inputs(fm, 2, seed=13)
    out, _, _ = secure_vs_clear(parties, prog, x)
    assert (out == fm.run(x)).all()  # random CNN: the fixed-point class equals the float one here


def test_plumbing_secure_equals_clear(parties):
    fm = plumbing_model()
    prog = compile_model(fm, inputs(fm, 64))
    assert {op.op for op in prog.ops} >= {"linear", "tanh", "sigmoid", "mul", "add", "transpose", "reshape",
                                          "slice", "concat", "relu", "requant"}
    secure_vs_clear(parties, prog, inputs(fm, 1, seed=14))


@pytest.mark.parametrize("make", [lstm_model, gru_model], ids=["lstm", "gru"])
def test_lstm_gru_secure_equals_clear(parties, make):
    fm = make()
    prog = compile_model(fm, inputs(fm, 64))
    if fm.ops[0].op == "gru":  # x and h share one format: a requant is inserted if needed
        rnn_op = next(op for op in prog.ops if op.op == "gru")
        assert prog.tensors[rnn_op.inputs[0]].fmt == prog.tensors["hs"].fmt
    secure_vs_clear(parties, prog, inputs(fm, 1, seed=15))
    rep = compare(fm, prog, inputs(fm, 50, seed=16))
    assert rep["max_abs_err"] < 0.01 * rep["max_abs"] + 0.01


# ---------------------------------------------------------------------------------------------
# command line: compile, inspect, eval
# ---------------------------------------------------------------------------------------------
def test_cli_compile_inspect_eval(tmp_path):
    import subprocess
    import sys

    def sirnn(*args):
        return subprocess.run([sys.executable, "-m", "sirnn", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    fm = cnn_model()
    fm.save(tmp_path / "cnn.npz")
    np.save(tmp_path / "calib.npy", inputs(fm, 64))
    x = inputs(fm, 3, seed=5)
    np.save(tmp_path / "x.npy", x)
    r = sirnn("compile", "cnn.npz", "--calib", "calib.npy", "-o", "cnn.sirnn", "--check", "32")
    assert r.returncode == 0, r.stderr
    prog = Program.load(tmp_path / "cnn.sirnn")
    assert prog.describe() == compile_model(fm, inputs(fm, 64)).describe()
    assert f"digest {prog.digest()}" in r.stdout and "wrote cnn.sirnn" in r.stdout
    assert "fixed point vs float on 32 calibration samples: 100.00% equal predictions" in r.stdout
    r = sirnn("inspect", "cnn.sirnn")
    assert r.returncode == 0 and prog.digest() in r.stdout and "conv2d" in r.stdout
    r = sirnn("eval", "cnn.sirnn", "--input", "x.npy", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["output"] == evaluate_clear(prog, x).tolist()
    np.save(tmp_path / "bad.npy", np.zeros((5, 2)))
    r = sirnn("compile", "cnn.npz", "--calib", "bad.npy", "-o", "x.sirnn")
    assert r.returncode == 2 and "error: calibration data of shape (5, 2)" in r.stderr
    r = sirnn("compile", "cnn.onnx", "--calib", "calib.npy", "-o", "x.sirnn")
    assert r.returncode == 2 and "no such model file" in r.stderr


def test_programs_load_and_run_without_torch_or_onnx():
    """A compiled program needs numpy and sirnn only: torch and onnx made unimportable."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = sys.modules['onnx'] = None\n"
            "from sirnn.data import load_bundled\n"
            "from sirnn.compiler import evaluate_clear\n"
            "p, s = load_bundled('fastgrnn_japanese_vowels')\n"
            "assert (evaluate_clear(p, s['x']).argmax(1) == s['float_logits'].argmax(1)).all()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_op_runs_and_every_float_op_lowers():
    from sirnn.compiler.calibrate import LOWER
    from sirnn.compiler.floatir import FLOAT_OPS
    from sirnn.compiler.ops import OPS
    from sirnn.compiler.runtime import RUNNERS

    assert set(OPS) == set(RUNNERS) and set(FLOAT_OPS) == set(LOWER)
    assert all(d.doc for d in OPS.values())
