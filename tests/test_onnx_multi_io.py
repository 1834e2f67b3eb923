"""Several model inputs and outputs (issue 10): recurrent initial states fed as graph inputs, every
recurrent output (Y, Y_h, Y_c) as a graph output, and constant ``sequence_lens`` shorter than the
sequence — through the importer, calibration, the program format (version 2), the cleartext
interpreter, the secure session and the CLI. ONNX models built with onnx.helper, checked against
onnxruntime; the PyTorch exports of the same features are in the zoo (tests/test_onnx_zoo.py)."""

import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from test_compiler import secure_vs_clear

from sirnn.compiler import Program, compile_model, evaluate_clear
from sirnn.compiler.onnx_import import load_onnx
from sirnn.errors import InputError, ProgramError

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _rnn_model(kind="LSTM", T=5, D=3, H=4, batch="N", direction="forward", layout=0, states=("h", "c"),
               outputs=("Y", "Y_h", "Y_c"), lens=None, seed=0, lbr=None):
    """x (batch, T, D) → Transpose → an ONNX recurrent node; initial states named in ``states``
    are graph inputs (num_directions, batch, H) (layout 1: (batch, nd, H)); the node's
    ``outputs`` are graph outputs; ``lens``: constant sequence_lens."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nd = 2 if direction == "bidirectional" else 1
    g = _GATES[kind]
    if kind == "LSTM":
        states = tuple(states)
    else:
        states, outputs = tuple(s for s in states if s == "h"), tuple(o for o in outputs if o != "Y_c")
    inits = [numpy_helper.from_array((rng.normal(size=(nd, g * H, D)) * 0.6).astype(np.float32), "W"),
             numpy_helper.from_array((rng.normal(size=(nd, g * H, H)) * 0.5).astype(np.float32), "R"),
             numpy_helper.from_array((rng.normal(size=(nd, 2 * g * H)) * 0.3).astype(np.float32), "B")]
    nodes = ([] if layout == 1 else [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])])
    if lens is not None and batch == "N" and len(lens) == 1:  # one length for a dynamic batch: Expand
        inits += [numpy_helper.from_array(np.asarray(lens, np.int32), "len1"),
                  numpy_helper.from_array(np.array([0]), "z"), numpy_helper.from_array(np.array([1]), "o")]
        nodes += [helper.make_node("Shape", ["x"], ["xs"]), helper.make_node("Slice", ["xs", "z", "o"], ["nb"]),
                  helper.make_node("Expand", ["len1", "nb"], ["lens"])]
    elif lens is not None:
        inits.append(numpy_helper.from_array(np.asarray(lens, np.int32), "lens"))
    xin = "x" if layout == 1 else "xt"
    ins = [xin, "W", "R", "B", "lens" if lens is not None else "", "h0" if "h" in states else ""]
    if kind == "LSTM":
        ins.append("c0" if "c" in states else "")
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    if lbr is not None:
        attrs["linear_before_reset"] = lbr
    outs = {"Y": "y", "Y_h": "hn", "Y_c": "cn"}
    node_outs = [outs[o] if o in outputs else "" for o in ("Y", "Y_h", "Y_c")[:3 if kind == "LSTM" else 2]]
    nodes.append(helper.make_node(kind, ins, node_outs, name="rec", **attrs))
    sshape = [nd, batch, H] if layout == 0 else [batch, nd, H]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, T, D])]
    inputs += [helper.make_tensor_value_info(f"{s}0", TensorProto.FLOAT, sshape) for s in states]
    gouts = [helper.make_tensor_value_info(outs[o], TensorProto.FLOAT, None) for o in outputs]
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, gouts, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _feeds(m, n, seed, scale=0.7):
    """Random inputs for every graph input at batch n (the batch on the input's dynamic axis, or
    the static one)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in m.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else n for d in i.type.tensor_type.shape.dim]
        out[i.name] = (rng.normal(size=dims) * (1.0 if i.name == "x" else scale)).astype(np.float32)
    return out


def _ort(m, feeds):
    """onnxruntime's outputs by name (layout 1, which onnxruntime's CPU kernels lack: onnx.reference)."""
    if any(a.name == "layout" and a.i == 1 for n in m.graph.node for a in n.attribute):
        from onnx.reference import ReferenceEvaluator

        ev = ReferenceEvaluator(m)
        return dict(zip(ev.output_names, ev.run(None, feeds)))
    sess = ort.InferenceSession(m.SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def _check_all(m, n_cal=48, n_test=6, secure=None, **load_kw):
    """Float IR == onnxruntime; compiled fixed point within 2 % of each output's range of
    onnxruntime; optionally secure == cleartext bit for bit (``secure``: the parties)."""
    fm = load_onnx(m, **load_kw)
    cal, test = _feeds(m, n_cal, 1), _feeds(m, n_test, 2)
    want = _ort(m, test)
    lead = {t: np.moveaxis(v, fm.batch_axes.get(t, 0), 0) for t, v in test.items()}
    got = fm.run(lead)
    got = got if isinstance(got, dict) else {next(iter(want)): got}
    assert sorted(got) == sorted(want)
    for t, w in want.items():
        np.testing.assert_allclose(np.moveaxis(got[t], 0, fm.batch_axes.get(t, 0)), w, atol=1e-5, rtol=1e-4)
    prog = compile_model(fm, cal)
    prog = Program.load(_roundtrip(prog))
    fixed = evaluate_clear(prog, test)
    fixed = fixed if isinstance(fixed, dict) else {next(iter(want)): fixed}
    for t, w in want.items():
        assert fixed[t].shape == w.shape, (t, fixed[t].shape, w.shape)
        assert np.abs(fixed[t] - w).max() <= 0.02 * float(np.ptp(w)), (t, np.abs(fixed[t] - w).max(), np.ptp(w))
    if secure is not None:
        one = {t: v[:, :1] if fm.batch_axes.get(t, 0) == 1 else v[:1] for t, v in test.items()} \
            if prog.fixed_batch is None else test
        out, _, _ = secure_vs_clear(secure, prog, one if len(prog.inputs) > 1 else one["x"])
        raw = evaluate_clear(prog, one if len(prog.inputs) > 1 else one["x"], raw=True)
        for t in prog.outputs:
            o = out[t] if isinstance(out, dict) else out
            r = raw[t] if isinstance(raw, dict) else raw
            assert (o == r).all(), t
    return fm, prog


_tmp = {}


def _roundtrip(prog):
    import os
    import tempfile

    d = _tmp.setdefault("d", tempfile.mkdtemp())
    path = os.path.join(d, "p.sirnn")
    prog.save(path)
    return path


# ---- initial states as graph inputs, every output -----------------------------------------------
def test_lstm_initial_states_inputs_every_output(parties):
    """LSTM with (h0, c0) graph inputs (num_directions, batch, H) returning (Y, Y_h, Y_c): the
    initial states and the states out have their batch on axis 1, as in ONNX; secure == clear."""
    m = _rnn_model("LSTM", direction="bidirectional")
    fm, prog = _check_all(m, secure=parties)
    assert fm.inputs == ["x", "h0", "c0"] and fm.outputs == ["y", "hn", "cn"]
    assert fm.batch_axes == {"h0": 1, "c0": 1, "y": 2, "hn": 1, "cn": 1}
    assert prog.describe()["version"] == 2
    assert [i["batch_axis"] for i in prog.describe()["inputs"]] == [0, 1, 1]
    cells = [op for op in prog.ops if op.op == "lstm"]
    assert cells and all(op.attrs["init"] == ["h", "c"] and len(op.inputs) == 3 for op in cells)


@pytest.mark.parametrize("kind,layout,direction,lbr", [("GRU", 1, "reverse", 0), ("GRU", 0, "forward", 1),
                                                      ("RNN", 0, "bidirectional", None),
                                                      ("LSTM", 1, "forward", None)])
def test_initial_state_inputs_variants(kind, layout, direction, lbr):
    """GRU (both linear_before_reset), RNN and LSTM with runtime initial states, layouts 0 and 1,
    forward / reverse / bidirectional; LSTM with only h0 given (c0 zero)."""
    m = _rnn_model(kind, layout=layout, direction=direction, states=("h",), lbr=lbr)
    fm, _ = _check_all(m)
    assert fm.batch_axes.get("h0", 0) == (1 if layout == 0 else 0)


def test_initial_state_computed_from_the_input():
    """An initial state computed from the input (tanh of the first frame's first H features) is a
    runtime tensor too: a cell input, not a parameter."""
    from onnx import helper, numpy_helper

    m = _rnn_model("LSTM", D=5, H=4, states=(), outputs=("Y_h",))
    g = m.graph
    g.initializer.extend([numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
                          (("s0", [0, 0]), ("s1", [1, 4]), ("ax", [0, 2]))])
    g.node.insert(1, helper.make_node("Slice", ["xt", "s0", "s1", "ax"], ["x0"]))
    g.node.insert(2, helper.make_node("Tanh", ["x0"], ["h0"]))
    rec = next(n for n in g.node if n.name == "rec")
    rec.input[5] = "h0"
    fm, prog = _check_all(m)
    assert [op.attrs.get("init") for op in fm.ops if op.op == "lstm"] == [["h"]]
    assert fm.batch_axes == {fm.output: 1} and prog.describe()["version"] == 2  # Y_h: (1, N, H)


def test_static_extra_input_and_errors():
    """A batch-1 export with static initial states (1, 1, H): the batch is its axis 0 (size 1,
    moved where the LSTM needs it); an input whose batch axis is unclear is refused naming it."""
    m = _rnn_model("LSTM", batch=1, states=("h",), outputs=("Y_h",))
    fm = load_onnx(m)
    assert fm.inputs == ["x", "h0"] and fm.input_shapes["h0"] == (1, 4)
    from onnx import TensorProto, helper

    m2 = _rnn_model("LSTM", states=("h",), outputs=("Y_h",))
    m2.graph.input[1].CopyFrom(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "N", "M"]))
    with pytest.raises(ProgramError, match=r"input .h0. of shape \[1, .\?., .\?.\]: its batch axis is not clear \(2 dynamic axes"):
        load_onnx(m2)


def test_inputs_checked_by_name_and_shape():
    """The client's inputs: a missing one, an extra one, a wrong shape, different batch sizes:
    one line naming it."""
    m = _rnn_model("GRU", states=("h",), outputs=("Y", "Y_h"))
    fm = load_onnx(m)
    prog = compile_model(fm, _feeds(m, 32, 1))
    t = _feeds(m, 3, 2)
    with pytest.raises(InputError, match=r"missing input\(s\) \['h0'\]"):
        evaluate_clear(prog, {"x": t["x"]})
    with pytest.raises(InputError, match=r"unexpected input\(s\) \['zz'\]"):
        evaluate_clear(prog, dict(t, zz=t["x"]))
    with pytest.raises(InputError, match=r"input 'h0': the input has shape \(3, 1, 4\), but the model takes \(1, 4\) "
                                         r"\(one sample\) or \(1, N, 4\)"):
        evaluate_clear(prog, dict(t, h0=t["h0"].transpose(1, 0, 2)))
    with pytest.raises(InputError, match=r"input 'h0': every input must be one sample, or a batch of the same N"):
        evaluate_clear(prog, dict(t, h0=t["h0"][:, :2]))
    with pytest.raises(InputError, match=r"takes 2 inputs \['x', 'h0'\]"):
        evaluate_clear(prog, t["x"])
    one = evaluate_clear(prog, {"x": t["x"][0], "h0": t["h0"][:, 0]})  # one sample: no batch axis
    both = evaluate_clear(prog, t)
    assert one["y"].shape == (5, 1, 4) and (one["hn"] == both["hn"][:, 0]).all()
    with pytest.raises(ProgramError, match=r"calibration data: missing input\(s\) \['h0'\]"):
        compile_model(fm, {"x": t["x"]})


# ---- sequence_lens -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind,direction", [("LSTM", "bidirectional"), ("GRU", "reverse"), ("RNN", "forward"),
                                            ("GRU", "bidirectional")])
def test_sequence_lens_equal_dynamic_batch(kind, direction):
    """Constant sequence_lens < T, the same for every sample (dynamic batch): Y is 0 past the
    length, Y_h / Y_c the state at step len − 1 (reverse: over the first len steps)."""
    m = _rnn_model(kind, T=6, direction=direction, states=(), lens=[4])
    _, prog = _check_all(m)
    cells = [op for op in prog.ops if op.op == kind.lower()]
    assert cells and all(op.attrs["steps"] in ([[0, 4]], [[2, 6]]) for op in cells)
    assert prog.fixed_batch is None


def test_sequence_lens_per_sample_static_batch(parties):
    """A static batch of 3 with lengths 2, 5, 3 (``batch_axis=0``: the first axis is the batch):
    a public per-sample mask; the program runs exactly 3 samples; secure == clear."""
    m = _rnn_model("LSTM", T=5, batch=3, direction="bidirectional", lens=[2, 5, 3])
    with pytest.raises(ProgramError, match="needs the batch on axis"):
        load_onnx(m)  # auto: a fully static input is one sample — the LSTM batch of 3 is not
    _, prog = _check_all(m, n_cal=3, n_test=3, secure=parties, batch_axis=0)
    assert prog.fixed_batch == 3
    t = _feeds(m, 3, 2)
    with pytest.raises(InputError, match="exactly 3 samples"):
        evaluate_clear(prog, {k: v[:2] if k == "x" else v[:, :2] for k, v in t.items()})


def test_sequence_lens_refusals():
    """Differing lengths with a dynamic batch, lengths out of range, a runtime sequence_lens:
    refused naming the node."""
    from onnx import TensorProto, helper, numpy_helper

    m = _rnn_model("GRU", states=(), lens=[2, 3])
    with pytest.raises(ProgramError, match=r"'rec' \(GRU\): sequence_lens \[2, 3\] differ between samples, but the "
                                           "batch is dynamic"):
        load_onnx(m)
    m = _rnn_model("GRU", states=(), lens=[7])
    with pytest.raises(ProgramError, match=r"sequence_lens \[7\] must be integers in 0..5"):
        load_onnx(m)
    m = _rnn_model("GRU", states=(), lens=[2])
    m.graph.initializer.pop()
    m.graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), "one"))
    m.graph.node.insert(0, helper.make_node("Identity", ["one"], ["l64"]))
    m.graph.input.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [1]))
    with pytest.raises(ProgramError, match="must be a float tensor"):
        load_onnx(m)


# ---- program format ------------------------------------------------------------------------------
def test_program_format_versions(tmp_path):
    """A program with one batch-leading input and output is written as version 1 (its digest is
    as before version 2 existed); several inputs / outputs: version 2; both load, the public copy
    has the same digest; a malformed version-2 description is one ProgramError."""
    from modelhelp import gru_model, inputs

    fm = gru_model(T=3)
    p1 = compile_model(fm, inputs(fm, 16))
    assert p1.describe()["version"] == 1 and "inputs" not in p1.describe()
    m = _rnn_model("GRU", states=("h",), outputs=("Y", "Y_h"))
    p2 = compile_model(load_onnx(m), _feeds(m, 16, 1))
    d = p2.describe()
    assert d["version"] == 2 and [o["name"] for o in d["outputs"]] == ["y", "hn"]
    p2.save(tmp_path / "p.sirnn")
    q = Program.load(tmp_path / "p.sirnn")
    assert q.digest() == p2.digest() == Program.from_public_bytes(p2.public_bytes()).digest()
    assert q.inputs == ["x", "h0"] and q.batch_axis("h0") == 1 and q.inputs_max_abs == p2.inputs_max_abs
    fm = load_onnx(m)  # the float IR's files keep the inputs, outputs and batch axes too (version 2)
    fm.save(tmp_path / "f.npz")
    from sirnn.compiler import load_float_model

    fm2 = load_float_model(tmp_path / "f.npz")
    assert (fm2.inputs, fm2.outputs, fm2.batch_axes) == (fm.inputs, fm.outputs, fm.batch_axes)
    t = {k: np.moveaxis(v, fm.batch_axes.get(k, 0), 0) for k, v in _feeds(m, 2, 5).items()}
    assert all((fm2.run(t)[k] == fm.run(t)[k]).all() for k in fm.outputs)
    bad = dict(d, inputs=[{"name": "x"}, {"name": "h0", "batch_axis": -1}])
    with pytest.raises(ProgramError, match="batch_axis of 'h0' must be an integer"):
        Program.from_dict(bad, None)
    with pytest.raises(ProgramError, match="lacks 'outputs'"):
        Program.from_dict({k: v for k, v in d.items() if k != "outputs"}, None)


# ---- the session and the CLI ----------------------------------------------------------------------
def test_session_several_inputs_and_outputs():
    """client_session / server_session: the client shares every input, learns every output (in its
    ONNX layout), equal to the cleartext interpreter; a missing input aborts before any secret."""
    from sirnn.compiler.session import client_session, server_session
    from sirnn.transport import run_inproc

    m = _rnn_model("LSTM", states=("h", "c"))
    prog = compile_model(load_onnx(m), _feeds(m, 32, 1))
    t = _feeds(m, 2, 3)

    def fn(role, chan, x):
        if role == 0:
            return server_session(chan, prog)
        try:
            return client_session(chan, x)
        except InputError as e:
            return e

    srv, res = run_inproc(lambda r, c: fn(r, c, t), timeout=120)
    assert srv["status"] == "ok" and srv["batch"] == 2
    clear = evaluate_clear(prog, t)
    assert sorted(res.output) == ["cn", "hn", "y"] and res.batched
    for k, v in clear.items():
        assert (res.output[k] == v).all(), k
    srv, err = run_inproc(lambda r, c: fn(r, c, {"x": t["x"], "h0": t["h0"]}), timeout=60)
    assert isinstance(err, InputError) and "missing input(s) ['c0']" in str(err) and srv["status"] == "aborted"


def test_cli_npz_inputs_outputs(tmp_path, capsys):
    """``sirnn compile --calib X.npz``, ``eval --input X.npz --save Y.npz`` (outputs by name),
    ``inspect`` listing every input and output with its batch axis; errors in one line."""
    from sirnn.cli.main import main

    m = _rnn_model("GRU", states=("h",), outputs=("Y", "Y_h"))
    onnx.save(m, tmp_path / "g.onnx")
    np.savez(tmp_path / "cal.npz", **_feeds(m, 32, 1))
    t = _feeds(m, 3, 2)
    np.savez(tmp_path / "in.npz", **t)
    assert main(["compile", str(tmp_path / "g.onnx"), "--calib", str(tmp_path / "cal.npz"), "-o",
                 str(tmp_path / "g.sirnn"), "--check", "8"]) == 0
    out = capsys.readouterr().out
    assert "calibration samples y: max |err|" in out and "calibration samples hn: max |err|" in out
    assert main(["inspect", str(tmp_path / "g.sirnn")]) == 0
    out = capsys.readouterr().out
    assert "input  h0: one sample (1, 4) or a batch (1, N, 4) (batch axis 1)" in out
    assert "output y: (5, 1, 4) per sample, a batch (5, 1, N, 4) (batch axis 2)" in out
    assert main(["eval", str(tmp_path / "g.sirnn"), "--input", str(tmp_path / "in.npz"), "--save",
                 str(tmp_path / "out.npz")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^output y: \[", out, re.MULTILINE) and re.search(r"^output hn: \[", out, re.MULTILINE)
    prog = Program.load(tmp_path / "g.sirnn")
    with np.load(tmp_path / "out.npz") as z:
        want = evaluate_clear(prog, t)
        assert sorted(z.files) == ["hn", "y"] and all((z[k] == want[k]).all() for k in z.files)
    np.savez(tmp_path / "bad.npz", x=t["x"], h1=t["h0"])
    for args, msg in ((["--input", str(tmp_path / "bad.npz")], "missing input(s) ['h0']"),
                      (["--input", str(tmp_path / "in.npz"), "--save", str(tmp_path / "o.npy")],
                       "the model has 2 outputs ['y', 'hn']: save them to an .npz")):
        assert main(["eval", str(tmp_path / "g.sirnn")] + args) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    np.save(tmp_path / "x.npy", t["x"])
    assert main(["eval", str(tmp_path / "g.sirnn"), "--input", str(tmp_path / "x.npy")]) == 2
    assert "takes 2 inputs ['x', 'h0']" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "g.onnx"), "--calib", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "h.sirnn")]) == 2
    assert "calibration data: the model takes 2 inputs ['x', 'h0']: give each by name" in capsys.readouterr().err


# ---- the cells: a shared initial state, the public mask ------------------------------------------
def test_cells_shared_initial_state_and_local_mask(parties):
    """nn.rnn: an LSTM cell started from the client's shares of (h0, c0) equals the cleartext run
    from the same values; ``masked_state`` (a public per-column select) sends nothing."""
    from sirnn import BOB
    from sirnn.nn import rnn
    from sirnn.nn.fixed import quantize
    from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
    from sirnn.protocols.share import reveal, share_input

    rng = np.random.default_rng(3)
    H, D, T, B = 3, 2, 3, 4
    f = rnn.CellFormats()
    w = {"W_ih": rng.normal(size=(4 * H, D)) * 0.5, "W_hh": rng.normal(size=(4 * H, H)) * 0.5,
         "b_ih": rng.normal(size=4 * H) * 0.1, "b_hh": np.zeros(4 * H)}
    cell = rnn.LSTMCell.from_float(w, f)
    xs = quantize(rng.normal(size=(T, D, B)), 16, 12)
    h0, c0 = quantize(rng.normal(size=(H, B)) * 0.5, 16, 12), quantize(rng.normal(size=(H, B)) * 0.5, 16, 12)
    active = np.array([True, False, True, False])

    def run(be, x, h, c):
        state = cell.init_state(be, B, h0=h, c0=c)
        for t in range(T):
            state = rnn.masked_state(cell.step(be, x[t], state), state, active if t == T - 1 else np.ones(B, bool))
        return state

    def side(p):
        be = SecureBackend(p)
        mine = cell if p.role == 0 else cell.spec()
        sh = [share_input(p, BOB, v if p.role == BOB else None, bits=16, scale=12, shape=v.shape) for v in (xs, h0, c0)]
        state = cell.init_state(be, B, h0=sh[1], c0=sh[2])
        for t in range(T - 1):
            state = mine.step(be, sh[0][t], state)
        new = mine.step(be, sh[0][T - 1], state)
        before = p.chan.stats.bytes_sent + p.chan.stats.bytes_recv
        state = rnn.masked_state(new, state, active)
        assert p.chan.stats.bytes_sent + p.chan.stats.bytes_recv == before  # local
        return [reveal(p, s) for s in state]

    a, _ = parties.run(side)
    ref = run(ClearBackend(), clear(xs, 16, 12), clear(h0, 16, 12), clear(c0, 16, 12))
    assert all((got == want.data).all() for got, want in zip(a, ref))
    with pytest.raises(Exception, match="initial state of shape"):
        cell.init_state(ClearBackend(), B + 1, h0=clear(h0, 16, 12))


@pytest.mark.tcp
@pytest.mark.timeout(120)
def test_serve_infer_npz_over_tcp(tmp_path):
    """``sirnn serve`` (its own process) and ``sirnn infer --input X.npz --save Y.npz --json``: the
    client shares both inputs, gets both outputs, equal to ``evaluate_clear``; the server's log
    lists the inputs."""
    import json

    from servehelp import Server, sirnn_cli

    m = _rnn_model("GRU", states=("h",), outputs=("Y", "Y_h"))
    prog = compile_model(load_onnx(m), _feeds(m, 32, 1))
    prog.save(tmp_path / "g.sirnn")
    t = _feeds(m, 2, 4)
    np.savez(tmp_path / "in.npz", **t)
    srv = Server(tmp_path / "g.sirnn", "--max-sessions", "1")
    try:
        assert "inputs x (5, 3)" in srv.wait_for("listening on")
        r = sirnn_cli("infer", "--port", str(srv.port), "--input", str(tmp_path / "in.npz"), "--save",
                      str(tmp_path / "out.npz"), "--json", "--no-progress")
        assert r.returncode == 0, r.stderr
        out, want = json.loads(r.stdout), evaluate_clear(prog, t)
        assert sorted(out["output"]) == ["hn", "y"] and out["digest"] == prog.digest()
        with np.load(tmp_path / "out.npz") as z:
            assert all((z[k] == want[k]).all() and np.allclose(out["output"][k], want[k]) for k in want)
        assert srv.finish() == 0 and "session 1: ok — batch 2" in srv.log()
    finally:
        srv.finish(5)
