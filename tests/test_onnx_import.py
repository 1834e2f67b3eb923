"""ONNX front-end (sirnn.compiler.onnx_import): the example models' unrolled FastGRNN graphs fused
into one fastgrnn op (float logits as exported, fixed point agreeing), hand-built ONNX graphs of
every supported op checked against onnx.reference, the ONNX LSTM/GRU gate conventions, and the
errors for what the IR cannot express. The PyTorch export helper is checked when torch is there."""

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sirnn.compiler import compile_model, evaluate_clear, load_float_model
from sirnn.compiler import onnx_import
from sirnn.compiler.floatir import LOADERS
from sirnn.errors import ProgramError


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


HAVE_ONNX = _importable("onnx")
HAVE_TORCH = HAVE_ONNX and importlib.util.find_spec("torch") is not None  # imported by the test only
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx package is not installed (pip install onnx)")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="needs torch (and onnx): the export helper")

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"
FASTGRNN_MODELS = ["fastgrnn_basic_motions", "fastgrnn_japanese_vowels", "fastgrnn_lowrank_japanese_vowels",
                   "fastgrnn_google30_untrained"]


# ---------------------------------------------------------------------------------------------
# without onnx
# ---------------------------------------------------------------------------------------------
def test_registered_as_onnx_loader():
    assert ".onnx" in LOADERS
    assert {"Gemm", "MatMul", "Conv", "LSTM", "GRU", "Gather", "ArgMax"} <= set(onnx_import.SUPPORTED_OPS)


def test_clear_error_without_onnx(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx → ImportError
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ProgramError, match="the 'onnx' package is not installed"):
        load_float_model(tmp_path / "m.onnx")


# ---------------------------------------------------------------------------------------------
# hand-built ONNX graphs
# ---------------------------------------------------------------------------------------------
def _model(nodes, inits, x_shape, out="y", opset=17, batch=1):
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, np.int64 if np.asarray(v).dtype.kind in "iu" else np.float32), k)
             for k, v in inits.items()]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *x_shape])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _reference(m, x, ort=False):
    """The ONNX model on each sample: onnx.reference, or onnxruntime (``ort``; e.g. for the RNN
    activations onnx.reference lacks)."""
    if ort:
        import onnxruntime

        sess = onnxruntime.InferenceSession(m.SerializeToString())
        return np.stack([sess.run(None, {"x": xi[None].astype(np.float32)})[0][0] for xi in x])
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(m)
    return np.stack([ev.run(None, {"x": xi[None].astype(np.float32)})[0][0] for xi in x])


def _check(m, x_shape, n=3, seed=0, atol=1e-5, ort=False, **kw):
    fm = onnx_import.load_onnx(m, **kw)
    x = np.random.default_rng(seed).normal(size=(n, *x_shape))
    got, want = fm.run(x), _reference(m, x, ort)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-4)
    return fm


def _n(op, ins, outs, **attrs):
    from onnx import helper

    outs = [outs] if isinstance(outs, str) else outs
    return helper.make_node(op, ins, outs, name=f"n_{outs[0]}", **attrs)


@needs_onnx
def test_cnn_ops_match_reference():
    rng = np.random.default_rng(1)
    nodes = [_n("Conv", ["x", "cw", "cb"], "c", pads=[1, 1, 1, 1], strides=[2, 2], kernel_shape=[3, 3]),
             _n("BatchNormalization", ["c", "s", "bb", "mu", "var"], "bn"),
             _n("Relu", ["bn"], "r"),
             _n("MaxPool", ["r"], "p", kernel_shape=[2, 2], strides=[2, 2]),
             _n("Flatten", ["p"], "f"),
             _n("Gemm", ["f", "fw", "fb"], "y", transB=1, alpha=0.5, beta=2.0)]
    inits = dict(cw=rng.normal(0, .5, (4, 2, 3, 3)), cb=rng.normal(0, .1, 4), s=rng.uniform(.5, 2, 4),
                 bb=rng.normal(0, .1, 4), mu=rng.normal(0, .1, 4), var=rng.uniform(.5, 2, 4),
                 fw=rng.normal(0, .3, (3, 16)), fb=rng.normal(0, .1, 3))
    m = _model(nodes, inits, (2, 9, 8))
    fm = _check(m, (2, 9, 8))
    assert [o.op for o in fm.ops] == ["conv2d", "mul", "add", "relu", "maxpool2d", "flatten", "linear"]
    # the same with an ArgMax head, compiled to fixed point
    nodes2 = nodes[:-1] + [_n("Gemm", ["f", "fw", "fb"], "lg", transB=1),
                           _n("ArgMax", ["lg"], "y", axis=1, keepdims=1)]
    fm = onnx_import.load_onnx(_model(nodes2, inits, (2, 9, 8)))
    x = np.random.default_rng(2).normal(size=(32, 2, 9, 8))
    prog = compile_model(fm, x)
    assert (evaluate_clear(prog, x) == fm.run(x)).mean() >= 0.9


@needs_onnx
def test_1d_conv_pool_and_plumbing_match_reference():
    rng = np.random.default_rng(2)
    nodes = [_n("Conv", ["x", "cw"], "c", pads=[1, 1]),                       # (1, 4, 10)
             _n("MaxPool", ["c"], "p", kernel_shape=[2], strides=[2]),        # (1, 4, 5)
             _n("Transpose", ["p"], "t", perm=[0, 2, 1]),                     # (1, 5, 4)
             _n("MatMul", ["t", "mw"], "mm"), _n("Add", ["mm", "mb"], "a"),   # (1, 5, 6), fused bias
             _n("Sub", ["one", "a"], "s"),                                    # 1 - a
             _n("Div", ["s", "two"], "d"), _n("Neg", ["d"], "ng"),
             _n("Sigmoid", ["ng"], "sg"), _n("Tanh", ["a"], "th"), _n("Mul", ["sg", "th"], "m2"),
             _n("Sub", ["m2", "a"], "m3"),
             _n("Slice", ["m3", "st", "en", "ax", "sp"], "sl"),              # [:, 4:0:-2, 1:]
             _n("Split", ["a", "spl"], ["a1", "a2"], axis=2),                 # (1,5,2), (1,5,4)
             _n("Gather", ["a2", "gi"], "ga", axis=1),                        # (1, 2, 4)
             _n("Reshape", ["sl", "shp"], "rs"),                              # (1, 2, 5) -> (1, 2, 5)
             _n("Unsqueeze", ["ga", "uax"], "un"), _n("Squeeze", ["un", "uax"], "sq"),
             _n("Concat", ["rs", "sq"], "cc", axis=2),                         # (1, 2, 9)
             _n("Gather", ["cc", "g1"], "y", axis=1)]                          # (1, 9)
    inits = dict(cw=rng.normal(0, .5, (4, 3, 3)), mw=rng.normal(0, .5, (4, 6)), mb=rng.normal(0, .1, 6),
                 one=np.ones(1), two=np.array(2.0), st=np.array([4, 1]), en=np.array([0, 100]),
                 ax=np.array([1, 2]), sp=np.array([-2, 1]), spl=np.array([2, 4]), gi=np.array([3, 0]),
                 shp=np.array([0, 2, -1]), uax=np.array([2]), g1=np.array(-1))
    fm = _check(_model(nodes, inits, (3, 10)), (3, 10))
    ops = [o.op for o in fm.ops]
    assert ops.count("matmul") == 1 and "add" in ops and ops.count("conv2d") == 1
    assert [o for o in fm.ops if o.op == "matmul"][0].params.keys() == {"W", "b"}
    json.dumps(fm.describe())  # attributes are plain JSON


@needs_onnx
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("direction,layout", [("forward", 0), ("reverse", 0), ("bidirectional", 0),
                                              ("bidirectional", 1)])
def test_onnx_rnn_ops_match_reference(kind, direction, layout):
    rng = np.random.default_rng(3)
    T, D, H = 5, 3, 4
    nd = 2 if direction == "bidirectional" else 1
    ng = 4 if kind == "LSTM" else 3
    inits = dict(W=rng.normal(0, .5, (nd, ng * H, D)), R=rng.normal(0, .5, (nd, ng * H, H)),
                 B=rng.normal(0, .3, (nd, 2 * ng * H)), fw=rng.normal(0, .5, (2, nd * H * (T + 1))))
    extra = {"linear_before_reset": 1} if kind == "GRU" else {}
    if layout == 0:
        nodes = [_n("Transpose", ["x"], "xt", perm=[1, 0, 2]),
                 _n(kind, ["xt", "W", "R", "B"], ["Y", "Yh"], hidden_size=H, direction=direction, **extra),
                 _n("Transpose", ["Y"], "Yt", perm=[2, 0, 1, 3]), _n("Transpose", ["Yh"], "Yht", perm=[1, 0, 2])]
    else:
        nodes = [_n(kind, ["x", "W", "R", "B"], ["Yt", "Yht"], hidden_size=H, direction=direction, layout=1, **extra)]
    nodes += [_n("Flatten", ["Yt"], "yf"), _n("Flatten", ["Yht"], "hf"), _n("Concat", ["yf", "hf"], "f", axis=1),
              _n("Gemm", ["f", "fw"], "y", transB=1)]
    fm = _check(_model(nodes, inits, (T, D)), (T, D))
    assert sum(o.op == kind.lower() for o in fm.ops) == nd
    x = np.random.default_rng(4).normal(size=(24, T, D))
    prog = compile_model(fm, x)
    assert np.abs(evaluate_clear(prog, x) - fm.run(x)).max() < 0.05


@needs_onnx
@pytest.mark.parametrize("kind,variant", [("RNN", "tanh"), ("RNN", "relu-bidirectional"), ("GRU", "reset-first"),
                                          ("GRU", "h0-reverse"), ("LSTM", "h0-c0-Yc"), ("LSTM", "Yc-only-bidirectional")])
def test_onnx_rnn_variants_match_reference(kind, variant):
    """ONNX RNN (Tanh / Relu), GRU with linear_before_reset = 0 (ONNX's default), constant
    initial states, the LSTM's Y_c — against onnx.reference, then compiled to fixed point."""
    rng = np.random.default_rng(13)
    T, D, H = 4, 3, 4
    bi = "bidirectional" in variant
    nd = 2 if bi else 1
    ng = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    inits = dict(W=rng.normal(0, .5, (nd, ng * H, D)), R=rng.normal(0, .5, (nd, ng * H, H)),
                 B=rng.normal(0, .3, (nd, 2 * ng * H)))
    attrs = dict(hidden_size=H, direction="bidirectional" if bi else ("reverse" if "reverse" in variant else "forward"))
    if kind == "RNN" and "relu" in variant:
        attrs["activations"] = ["Relu", "Tanh"] if bi else ["Relu"]
    if kind == "GRU" and variant != "reset-first":
        attrs["linear_before_reset"] = 1
    ins = ["xt", "W", "R", "B", ""]
    if "h0" in variant:
        inits["h0"] = rng.uniform(-.8, .8, (nd, 1, H))
        ins.append("h0")
    if "c0" in variant:
        inits["c0"] = rng.uniform(-1, 1, (nd, 1, H))
        ins.append("c0")
    outs = ["Y", "Yh", "Yc"] if "Yc" in variant and "only" not in variant else (["", "", "Yc"] if "Yc" in variant else ["Y", "Yh"])
    nodes = [_n("Transpose", ["x"], "xt", perm=[1, 0, 2]), _n(kind, ins, outs, **attrs)]
    feats = []
    if "Y" in outs:
        nodes.append(_n("Transpose", ["Y"], "Yt", perm=[2, 0, 1, 3]))
        feats.append("Yt")
    for o in ("Yh", "Yc"):
        if o in outs:
            nodes.append(_n("Transpose", [o], f"{o}t", perm=[1, 0, 2]))
            feats.append(f"{o}t")
    for f in feats:
        nodes.append(_n("Flatten", [f], f"{f}f"))
    n_feat = (T * nd * H if "Y" in outs else 0) + nd * H * sum(o in outs for o in ("Yh", "Yc"))
    inits["fw"] = rng.normal(0, .5, (2, n_feat))
    nodes += [_n("Concat", [f"{f}f" for f in feats], "f", axis=1), _n("Gemm", ["f", "fw"], "y", transB=1)]
    fm = _check(_model(nodes, inits, (T, D)), (T, D), ort="relu" in variant)
    if kind == "LSTM" and "Yc" in variant:
        assert sum(o.attrs.get("state") == "c" for o in fm.ops) == nd
    x = np.random.default_rng(4).normal(size=(24, T, D))
    prog = compile_model(fm, x)
    assert np.abs(evaluate_clear(prog, x) - fm.run(x)).max() < 0.03 * np.ptp(fm.run(x))


@needs_onnx
def test_onnx_rnn_initial_state_zero_from_shape_ops():
    """What torch exports for nn.GRU: initial_h = Expand(0, Concat(.., Gather(Shape(x')), ..)),
    a dynamic batch axis, Squeeze of the direction axis."""
    rng = np.random.default_rng(5)
    T, D, H = 4, 3, 5
    nodes = [_n("Transpose", ["x"], "xt", perm=[1, 0, 2]), _n("Shape", ["xt"], "shp"),
             _n("Gather", ["shp", "one"], "bsz"), _n("Unsqueeze", ["bsz", "zero1"], "bsz1"),
             _n("Concat", ["one1", "bsz1", "h1"], "hs", axis=0), _n("Expand", ["zf", "hs"], "h0"),
             _n("GRU", ["xt", "W", "R", "B", "", "h0"], ["Y", "Yh"], hidden_size=H, linear_before_reset=1),
             _n("Squeeze", ["Y", "one1"], "ys"), _n("Transpose", ["ys"], "yb", perm=[1, 0, 2]),
             _n("Gather", ["yb", "last"], "hl", axis=1), _n("Gemm", ["hl", "fw", "fb"], "y", transB=1)]
    inits = dict(W=rng.normal(0, .5, (1, 3 * H, D)), R=rng.normal(0, .5, (1, 3 * H, H)),
                 B=rng.normal(0, .3, (1, 6 * H)), one=np.array(1), zero1=np.array([0]), one1=np.array([1]),
                 h1=np.array([H]), zf=np.array(0.0), last=np.array(-1), fw=rng.normal(0, .5, (3, H)), fb=rng.normal(0, .1, 3))
    m = _model(nodes, inits, (T, D))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    fm = _check(m, (T, D))
    assert [o.op for o in fm.ops] == ["gru", "slice", "flatten", "linear"]


# ---- unrolled FastGRNN (what torch.onnx.export makes of examples/models.py) --------------------
def _fastgrnn_graph(T=4, D=3, H=5, rank=None, order=None, stacked=False, seed=6, tamper=None, xform=False,
                    all_states=False, rows=None):
    """An unrolled FastGRNN exactly as torch exports FastGRNNCell.step; ``order``: the x indices per
    step; ``stacked``: a second FastGRNN over the first one's states; ``tamper``: break the pattern;
    ``xform``: x_t = σ(x[:, t]) (no common input tensor); ``all_states``: classify all h_t;
    ``rows``: x (T, rows, D), the cell run over ``rows`` sequences at once (batch merged away)."""
    rng = np.random.default_rng(seed)
    inits = {"one": np.array(1.0), "h0": np.zeros((rows or 1, H)), "fw": rng.normal(0, .5, (2, H * (rows or 1))),
             "fb": rng.normal(0, .1, 2), "rows": np.array([rows or 1, D]), "flat": np.array([1, H * (rows or 1)])}
    for i in range(T):
        inits[f"i{i}"] = np.array(i if order is None else order[i])
    nodes = []

    def cell(prefix, xs, Din):
        if rank:
            inits[f"{prefix}.W2.T"] = rng.normal(0, .5, (Din, rank))
            inits[f"{prefix}.W1.T"] = rng.normal(0, .5, (rank, H))
        else:
            inits[f"{prefix}.W.T"] = rng.normal(0, .5, (Din, H))
        inits[f"{prefix}.U.T"] = rng.normal(0, .4, (H, H))
        inits[f"{prefix}.b_z"], inits[f"{prefix}.b_h"] = rng.normal(0, .3, H), rng.normal(0, .3, H)
        inits[f"{prefix}.zeta_raw"], inits[f"{prefix}.nu_raw"] = np.array([1.0]), np.array([-4.0])
        nodes.extend([_n("Sigmoid", [f"{prefix}.zeta_raw"], f"{prefix}/zeta"),
                      _n("Sigmoid", [f"{prefix}.nu_raw"], f"{prefix}/nu")])
        h = "h0"
        outs = []
        for t, x in enumerate(xs):
            p = f"{prefix}/{t}/"
            if rank:
                nodes.extend([_n("MatMul", [x, f"{prefix}.W2.T"], p + "wx0"),
                              _n("MatMul", [p + "wx0", f"{prefix}.W1.T"], p + "wx")])
            else:
                nodes.append(_n("MatMul", [x, f"{prefix}.W.T"], p + "wx"))
            u = f"{prefix}.U.T"
            if tamper == "U" and t == 2:
                inits[p + "U2"] = inits[u] + 0.01
                u = p + "U2"
            nodes.extend([_n("MatMul", [h, u], p + "uh"), _n("Add", [p + "wx", p + "uh"], p + "a"),
                      _n("Add", [p + "a", f"{prefix}.b_z"], p + "pz"), _n("Sigmoid", [p + "pz"], p + "z"),
                      _n("Add", [p + "a", f"{prefix}.b_h"], p + "ph"), _n("Tanh", [p + "ph"], p + "ht"),
                      _n("Sub", ["one", p + "z"], p + "s"),
                      _n("Mul", [f"{prefix}/zeta" if tamper != "zeta" else p + "z", p + "s"], p + "m"),
                      _n("Add", [p + "m", f"{prefix}/nu"], p + "g"), _n("Mul", [p + "g", p + "ht"], p + "m1"),
                      _n("Mul", [p + "z", h], p + "m2"), _n("Add", [p + "m1", p + "m2"], p + "h")])
            h = p + "h"
            outs.append(h)
        return outs

    xs = []
    for t in range(T):
        nodes.append(_n("Gather", ["x", f"i{t}"], f"x{t}" if not rows else f"g{t}", axis=1))
        if rows:
            nodes.append(_n("Reshape", [f"g{t}", "rows"], f"x{t}"))
        if xform:
            nodes.append(_n("Sigmoid", [f"x{t}"], f"sx{t}"))
        xs.append(f"sx{t}" if xform else f"x{t}")
    hs = cell("cell", xs, D)
    if stacked:
        hs = cell("cell2", hs, H)
    if all_states:
        inits["ax1"], inits["fw"] = np.array([1]), rng.normal(0, .5, (2, T * H))
        nodes += [_n("Unsqueeze", [h, "ax1"], f"{h}/u") for h in hs]
        nodes += [_n("Concat", [f"{h}/u" for h in hs], "hs", axis=1), _n("Flatten", ["hs"], "hf"),
                  _n("Gemm", ["hf", "fw", "fb"], "y", transB=1)]
    elif rows:
        nodes += [_n("Reshape", [hs[-1], "flat"], "hf"), _n("Gemm", ["hf", "fw", "fb"], "y", transB=1)]
    else:
        nodes.append(_n("Gemm", [hs[-1], "fw", "fb"], "y", transB=1))
    return _model(nodes, inits, (T, rows, D) if rows else (T, D))


@needs_onnx
@pytest.mark.parametrize("variant", ["full", "lowrank", "reversed", "stacked", "gathered", "xform", "all_states"])
def test_unrolled_fastgrnn_is_fused(variant):
    T = 4
    kw = {"full": {}, "lowrank": {"rank": 2}, "reversed": {"order": [3, 2, 1, 0]}, "stacked": {"stacked": True},
          "gathered": {"order": [0, 2, 1, 3]}, "xform": {"xform": True}, "all_states": {"all_states": True}}[variant]
    m = _fastgrnn_graph(T=T, **kw)
    fm = _check(m, (T, 3))
    ops = [o.op for o in fm.ops]
    assert ops.count("fastgrnn") == (2 if variant == "stacked" else 1)
    assert ops.count("linear") == 1 and ops.count("sigmoid") == (4 if variant == "xform" else 0) and "tanh" not in ops
    cell = next(o for o in fm.ops if o.op == "fastgrnn")
    assert cell.name == "cell"
    assert set(cell.params) == ({"W1", "W2", "U", "b_z", "b_h", "zeta", "nu"} if variant == "lowrank"
                                else {"W", "U", "b_z", "b_h", "zeta", "nu"})
    assert np.isclose(cell.params["zeta"], 1 / (1 + np.exp(-1.0)), atol=1e-6)
    if variant == "reversed":
        assert fm.ops[0].op == "slice" and fm.ops[0].attrs["step"] == -1
    if variant == "all_states":
        assert ops == ["fastgrnn", "flatten", "linear"] and cell.attrs == {"sequence": True}
    if variant == "full":
        assert ops == ["fastgrnn", "linear"]
        unfused = _check(m, (T, 3), fuse_cells=False)
        assert len(unfused.ops) > 30
    x = np.random.default_rng(7).normal(size=(32, T, 3))
    prog = compile_model(fm, x)
    assert np.abs(evaluate_clear(prog, x) - fm.run(x)).max() < 0.02


@needs_onnx
@pytest.mark.parametrize("tamper,match", [("U", "uses different U than the other steps"),
                                          ("zeta", "expected ζ·\\(1 − z\\) with a constant scalar ζ")])
def test_unrolled_fastgrnn_mismatch_names_the_node(tamper, match):
    m = _fastgrnn_graph(T=4, tamper=tamper)
    with pytest.raises(ProgramError, match=match) as e:
        onnx_import.load_onnx(m)
    assert "ONNX node 'n_cell/" in str(e.value)
    _check(m, (4, 3), fuse_cells=False)  # op by op it is still a valid float model


@needs_onnx
def test_errors_name_the_node(tmp_path):
    rng = np.random.default_rng(8)
    w = dict(w=rng.normal(size=(3, 3)))
    cases = [
        ([_n("Mod", ["x", "x"], "y")], {}, "'n_y' \\(Mod\\): this ONNX op is not supported"),
        ([_n("MatMul", ["x", "x"], "y")], {}, "the batch axis is one of the multiplied axes"),
        ([_n("Reshape", ["x", "s"], "y")], {"s": np.array([3])}, "merging the batch axis"),
        ([_n("Div", ["x", "z"], "y")], dict(z=np.array([1.0, 0.0, 2.0])), "division by a constant containing 0"),
        ([_n("RNN", ["x", "gw", "gr"], ["y"], hidden_size=2, activations=["Sigmoid"])],
         dict(gw=np.zeros((1, 2, 3)), gr=np.zeros((1, 2, 2))), "activations \\['Sigmoid'\\] are not supported"),
    ]
    for nodes, inits, match in cases:
        with pytest.raises(ProgramError, match=match):
            onnx_import.load_onnx(_model(nodes, inits, (3,)))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ProgramError, match="not a valid ONNX model"):
        load_float_model(tmp_path / "bad.onnx")


@needs_onnx
def test_folding_ignores_overflow_in_discarded_branches_but_not_in_results():
    """onnx.reference's Sigmoid evaluates exp(x) and exp(−x) and keeps one: folding σ(±100)
    (FastGRNN's ζ, ν logits in float32) is exact and quiet; a folded constant that truly
    overflows (e^100 in float32) is an error naming the node."""
    import warnings

    nodes = [_n("Sigmoid", ["z"], "s"), _n("Sigmoid", ["v"], "t"), _n("Sub", ["s", "t"], "g"),
             _n("Mul", ["x", "g"], "y")]
    m = _model(nodes, {"z": np.array([100.0]), "v": np.array([-100.0])}, (3,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fm = onnx_import.load_onnx(m)
    x = np.random.default_rng(0).normal(size=(3, 3))
    assert np.array_equal(fm.run(x), x)  # σ(100) − σ(−100) = 1 in float32
    nodes = [_n("Exp", ["z"], "e"), _n("Mul", ["x", "e"], "y")]
    with pytest.raises(ProgramError, match=r"'n_e' \(Exp\): folding .* yields inf or NaN"):
        onnx_import.load_onnx(_model(nodes, {"z": np.array([100.0])}, (3,)))


@needs_onnx
def test_unsupported_ops_are_named_before_any_work():
    """Control flow is refused with its reason, every unsupported dynamic node is named in one
    error; unsupported ops on constants only (shape arithmetic) are folded, not refused."""
    from onnx import TensorProto, helper

    body = helper.make_graph([_n("Identity", ["x"], "bo")], "body", [], [helper.make_tensor_value_info("bo", TensorProto.FLOAT, None)])
    loop = _n("Loop", ["trip", ""], "y", body=body)
    with pytest.raises(ProgramError, match=r"'n_y' \(Loop\): control flow .* cannot be compiled"):
        onnx_import.load_onnx(_model([loop], {"trip": np.array(2)}, (3,)))
    nodes = [_n("Mod", ["x", "x"], "a"), _n("Relu", ["a"], "b"), _n("Einsum", ["b", "b"], "y", equation="i,i->i"),
             _n("Range", ["r0", "r1", "r2"], "rg")]  # Range of constants: folded
    with pytest.raises(ProgramError, match=r"'n_a' \(Mod\).*'n_y' \(Einsum\)") as e:
        onnx_import.load_onnx(_model(nodes, {"r0": np.array(0), "r1": np.array(3), "r2": np.array(1)}, (3,)))
    assert "Range" not in str(e.value).split("supported ONNX ops")[0]


@needs_onnx
def test_batch_axis_static_symbolic_and_override():
    """A symbolic first axis is the batch; a fully static input is one sample of that shape (the
    first axis of a (16, 4) input feeding Gemm is not a batch); batch_axis overrides."""
    rng = np.random.default_rng(9)
    inits = dict(w=rng.normal(size=(3, 4)), s=np.array([-1]))
    nodes = [_n("Gemm", ["x", "w"], "g", transB=1), _n("Relu", ["g"], "r"), _n("Reshape", ["r", "s"], "y")]
    m = _model(nodes, inits, (4,), batch=16)
    fm = onnx_import.load_onnx(m)
    assert fm.input_shape == (16, 4) and fm.meta["batch_axis"] is None
    x = rng.normal(size=(2, 16, 4))
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(m)
    want = np.stack([ev.run(None, {"x": xi.astype(np.float32)})[0] for xi in x])
    np.testing.assert_allclose(fm.run(x), want, atol=1e-5)
    assert fm.run(x[0]).shape == (48,)
    with pytest.raises(ProgramError, match="merging the batch axis"):  # as a batch of 16 the Reshape merges it
        onnx_import.load_onnx(m, batch_axis=0)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    with pytest.raises(ProgramError, match="merging the batch axis"):
        onnx_import.load_onnx(m)
    m1 = _model(nodes[:2], inits, (4,), batch=16, out="r")
    m1.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    assert onnx_import.load_onnx(m1).input_shape == (4,)
    with pytest.raises(ProgramError, match="dynamic axis 0 \\(N\\).*every axis must be static"):
        onnx_import.load_onnx(m1, batch_axis=None)

@needs_onnx
@pytest.mark.parametrize("name", FASTGRNN_MODELS)
def test_example_fastgrnn_onnx(name):
    d = MODELS / name
    fm = load_float_model(d / "model.onnx")
    assert [o.op for o in fm.ops] == ["fastgrnn", "linear"]
    x, logits = np.load(d / "samples_x.npy"), np.load(d / "samples_logits.npy")
    np.testing.assert_allclose(fm.run(x), logits, atol=2e-5)
    # the fused weights are the saved ones (weights.npz holds W, U or their factors, ζ, ν squashed)
    with np.load(d / "weights.npz", allow_pickle=False) as z:
        cell = fm.ops[0]
        for k, v in cell.params.items():
            np.testing.assert_allclose(v, z[f"cell.{k}"].reshape(v.shape), atol=1e-6, err_msg=k)
        np.testing.assert_allclose(fm.ops[1].params["W"], z["fc.weight"], atol=1e-7)
    prog = compile_model(fm, np.load(d / "calib_x.npy"))
    assert (evaluate_clear(prog, x).argmax(1) == logits.argmax(1)).all()
    assert [op.name for op in prog.ops] == ["cell", "fc"]  # named after the weights' module paths
    _same_as_bundled(name, prog, x)


def _same_as_bundled(name, prog, x):
    """The bundled program (sirnn.data, compiled from the same weights via weights.npz, see
    examples/build_bundled.py) computes the same ring elements: only the names, the metadata and
    the spelling of attributes (stride 2 vs [2, 2]) differ, hence the digest."""
    from sirnn.data import bundled_models, load_bundled

    if name in bundled_models():
        bundled = load_bundled(name)[0]
        assert (evaluate_clear(prog, x, raw=True) == evaluate_clear(bundled, x, raw=True)).all()
        assert [op.op for op in prog.ops] == [op.op for op in bundled.ops]


@needs_onnx
def test_example_rnnpool_onnx():
    """598 nodes of batched FastGRNN passes, patch slicing and summaries → one rnnpool op (stride
    6 told from 4 and 5, which give the same 2×2 patch grid, by the numerical check)."""
    d = MODELS / "rnnpool_lfw_faces"
    fm = load_float_model(d / "model.onnx")
    assert [o.op for o in fm.ops] == ["conv2d", "relu", "rnnpool", "flatten", "linear"]
    pool = fm.ops[2]
    assert pool.name == "rnnpool" and pool.attrs == {"patch": 7, "stride": 6}
    x, logits = np.load(d / "samples_x.npy"), np.load(d / "samples_logits.npy")
    np.testing.assert_allclose(fm.run(x), logits, atol=2e-5)
    with np.load(d / "weights.npz", allow_pickle=False) as z:
        for k, v in pool.params.items():
            np.testing.assert_allclose(v, z[f"rnnpool.{k}"].reshape(v.shape), atol=1e-6, err_msg=k)
    prog = compile_model(fm, np.load(d / "calib_x.npy"))
    assert (evaluate_clear(prog, x).argmax(1) == logits.argmax(1)).all()
    assert [op.name for op in prog.ops][::2] == ["conv", "rnnpool", "fc"]
    _same_as_bundled("rnnpool_lfw_faces", prog, x)


@needs_onnx
def test_batched_fastgrnn_outside_rnnpool_is_rejected():
    m = _fastgrnn_graph(T=3, rows=2)
    with pytest.raises(ProgramError, match="runs over 2 sequences at once.*not RNNPool") as e:
        onnx_import.load_onnx(m)
    assert "ONNX node 'n_cell/0/ht' (Tanh)" in str(e.value)
    with pytest.raises(ProgramError, match="'n_x0' \\(Reshape\\).*merging the batch axis"):
        onnx_import.load_onnx(m, fuse_cells=False)  # op by op: the (1, 2, 3) → (2, 3) reshape


# ---------------------------------------------------------------------------------------------
# PyTorch export helper
# ---------------------------------------------------------------------------------------------
@needs_torch
def test_torch_export_helper(tmp_path):
    import torch

    from sirnn.compiler.torch_export import export_onnx

    sys.path.insert(0, str(MODELS.parent))
    try:
        from models import FastGRNNClassifier, RNNPoolFaceNet
    finally:
        sys.path.remove(str(MODELS.parent))

    class GRUHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = torch.nn.GRU(3, 5, batch_first=True), torch.nn.Linear(5, 4)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    cases = [(FastGRNNClassifier(3, 8, 4, 6, w_rank=2), torch.randn(5, 6, 3), ["fastgrnn", "linear"]),
             (GRUHead(), torch.randn(5, 6, 3), ["gru", "slice", "flatten", "linear"]),
             (RNNPoolFaceNet(in_hw=13, conv_channels=2, h1=4, h2=5, patch=4, stride=3), torch.rand(3, 1, 13, 13),
              ["conv2d", "relu", "rnnpool", "flatten", "linear"])]
    for model, x, ops in cases:
        path = export_onnx(model, x, tmp_path / "m.onnx")
        fm = load_float_model(path)
        assert [o.op for o in fm.ops] == ops
        with torch.no_grad():
            np.testing.assert_allclose(fm.run(x.numpy()), model(x).numpy(), atol=1e-5)
    assert fm.ops[2].attrs == {"patch": 4, "stride": 3} and fm.ops[2].name == "rnnpool"


def test_registry_documents_every_handler():
    """Every ONNX op with a handler has its mapping documented next to it (the handler's
    docstring) and appears in the ONNX-op column of docs/onnx_ops.md."""
    from sirnn.compiler.onnx_import.registry import op_table

    doc = (Path(__file__).resolve().parent.parent / "docs" / "onnx_ops.md").read_text()
    rows = op_table()
    assert len(rows) == len(onnx_import.SUPPORTED_OPS) >= 50
    for op, mapping in rows:
        assert mapping, f"{op}: handler without a docstring"
        assert f"`{op}`" in doc, f"{op} missing from docs/onnx_ops.md"


@needs_onnx
def test_runtime_initial_states_are_cell_inputs():
    """An initial state fed as a second graph input, or computed from the input, is a runtime
    tensor: an input of the cell op (attr ``init``), not a parameter (formerly refused; the whole
    path is tested in test_onnx_multi_io.py)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(14)
    T, D, H = 3, 4, 3
    inits = dict(W=rng.normal(size=(1, 4 * H, D)), R=rng.normal(size=(1, 4 * H, H)), ax=np.array([0]))
    nodes = [_n("Transpose", ["x"], "xt", perm=[1, 0, 2]),
             _n("LSTM", ["xt", "W", "R", "", "", "h0"], ["y"], hidden_size=H)]
    m = _model(nodes, inits, (T, D))
    m.graph.input.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, H]))
    fm = onnx_import.load_onnx(m)
    assert fm.inputs == ["x", "h0"] and fm.input_shapes["h0"] == (1, H)
    (cell,) = [op for op in fm.ops if op.op == "lstm"]
    assert cell.attrs["init"] == ["h"] and "h0" not in cell.params
    nodes = [_n("Transpose", ["x"], "xt", perm=[1, 0, 2]), _n("Slice", ["xt", "z", "o", "z"], "x0"),
             _n("Tanh", ["x0"], "t0"), _n("Slice", ["t0", "z", "h", "two"], "h0"),
             _n("LSTM", ["xt", "W", "R", "", "", "h0"], ["y"], hidden_size=H)]
    inits.update(z=np.array([0]), o=np.array([1]), h=np.array([H]), two=np.array([2]))
    inits["W"] = rng.normal(size=(1, 4 * H, D))
    fm = onnx_import.load_onnx(_model(nodes, inits, (T, D)))
    assert fm.inputs == ["x"] and [op.attrs.get("init") for op in fm.ops if op.op == "lstm"] == [["h"]]


@needs_onnx
def test_index_maps_gather_expand_tile():
    """Gather at scattered or 2-D constant indices, Expand (adding an axis) and Tile become one
    ``gather`` each (index map from running the node on the input's element indices)."""
    nodes = [_n("Gather", ["x", "gi"], "g", axis=2),                     # (1, 3, 2, 2) from (1, 3, 4)
             _n("Expand", ["g", "shp"], "e"),                            # (2, 1, 3, 2, 2): an axis before the batch
             _n("Transpose", ["e"], "et", perm=[1, 0, 2, 3, 4]),          # batch first again
             _n("Tile", ["et", "rep"], "tl"),                             # (1, 2, 3, 2, 4)
             _n("Gather", ["x", "g2"], "g2o", axis=1),                    # (1, 2, 4): rows 2, 0
             _n("Flatten", ["tl"], "f1"), _n("Flatten", ["g2o"], "f2"), _n("Concat", ["f1", "f2"], "y", axis=1)]
    inits = dict(gi=np.array([[3, 0], [1, 1]]), shp=np.array([2, 1, 1, 1, 1]), rep=np.array([1, 1, 1, 1, 2]),
                 g2=np.array([2, 0]))
    fm = _check(_model(nodes, inits, (3, 4)), (3, 4))
    assert [o.op for o in fm.ops].count("gather") == 4
    x = np.random.default_rng(15).normal(size=(16, 3, 4))
    prog = compile_model(fm, x)
    assert (evaluate_clear(prog, x) == prog_float_exact(fm, prog, x)).all()


def prog_float_exact(fm, prog, x):
    """Data movement only: the fixed-point output is the float output rounded to its format."""
    o = prog.output_spec
    return np.round(fm.run(x) * 2.0 ** o.scale) / 2.0 ** o.scale
