"""The float-IR ops of issue 10, one tiny model per op: (a) the cleartext fixed-point interpreter
equals the two-party executor bit for bit (every tensor), (b) fixed point stays within 2 % of the
output's range of float64, (c) the float semantics equal a direct numpy formula and, where an
ONNX node has the same meaning, onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from sirnn.compiler import FloatModel, FloatOp, Program, compare, compile_model
from sirnn.compiler.floatir import FLOAT_OPS
from sirnn.errors import ProgramError
from test_compiler import secure_vs_clear


def _normal(sd=1.0):
    return lambda rng, shape: rng.normal(0, sd, shape)


def _uniform(lo, hi, signed=False):
    def f(rng, shape):
        v = rng.uniform(lo, hi, shape)
        return v * rng.choice([-1.0, 1.0], shape) if signed else v
    return f


def _split2(a_shape, b_shape):
    """ops cutting the model input (2, n) into a (a_shape) and b (b_shape)."""
    na, nb = int(np.prod(a_shape)), int(np.prod(b_shape))
    return [FloatOp("slice", "x", "x0", attrs={"axis": 0, "start": 0, "stop": 1}, name="s0"),
            FloatOp("slice", "x0", "x0a", attrs={"axis": 1, "start": 0, "stop": na}, name="s0a"),
            FloatOp("reshape", "x0a", "a", attrs={"shape": list(a_shape)}, name="ra"),
            FloatOp("slice", "x", "x1", attrs={"axis": 0, "start": 1, "stop": 2}, name="s1"),
            FloatOp("slice", "x1", "x1b", attrs={"axis": 1, "start": 0, "stop": nb}, name="s1b"),
            FloatOp("reshape", "x1b", "b", attrs={"shape": list(b_shape)}, name="rb")]


def unary(op, shape=(3, 4), attrs=None, params=None, sample=_normal(), pre=None):
    ops = [] if pre is None else [pre]
    ops.append(FloatOp(op, "x" if pre is None else pre.outputs[0], "y", params or {}, attrs or {}, name=op))
    return FloatModel(ops, "x", shape, "y"), sample


def binary(op, a_shape, b_shape, sample=_normal(), b_param=None, flip=False):
    n = max(int(np.prod(a_shape)), int(np.prod(b_shape)))
    ops = _split2(a_shape, b_shape)
    b = "b"
    if b_param is not None:  # shift the denominator away from 0 (rows of either sign)
        ops.append(FloatOp("add", "b", "bb", {"y": b_param}, name="shift"))
        b = "bb"
    ops.append(FloatOp(op, [b, "a"] if flip else ["a", b], "y", name=op))
    return FloatModel(ops, "x", (2, n), "y"), sample


def l2norm_model(shape=(3, 4)):
    """x / ‖x‖₂ over the last axis as exporters emit it (PyTorch's L2Norm: x·x, ReduceSum, Sqrt,
    Div by a tensor): on small vectors the norm is below ½."""
    ops = [FloatOp("mul", ["x", "x"], "sq", name="sq"),
           FloatOp("reduce", "sq", "ss", attrs={"kind": "sum", "axes": [-1], "keepdims": True}, name="ss"),
           FloatOp("sqrt", "ss", "n", name="norm"),
           FloatOp("div", ["x", "n"], "y", name="div")]
    return FloatModel(ops, "x", shape, "y"), _uniform(0.01, 0.1, signed=True)


rng0 = np.random.default_rng(0)
CASES = {
    # group 1
    "add_bcast": binary("add", (4,), (3, 1)),
    "sub_bcast": binary("sub", (3, 1), (4,)),
    "mul_bcast": binary("mul", (2, 3, 1), (3, 4)),
    "div_bcast": binary("div", (3, 4), (3, 1), _normal(0.3), b_param=np.array([[2.0], [-2.0], [1.5]])),
    "div_elementwise": binary("div", (3, 2), (3, 2), _normal(0.3), b_param=np.array([[2.0], [-2.0], [1.5]])),
    "matmul_2d": binary("matmul", (3, 4), (4, 2)),
    "matmul_batched": binary("matmul", (2, 2, 3), (3, 2)),
    "matmul_vec": binary("matmul", (3,), (2, 3, 2)),
    "normalize_last": unary("normalize", (3, 8), {"axes": [-1], "eps": 1e-5}, sample=_normal(2.0)),
    "normalize_hw": unary("normalize", (2, 3, 3), {"axes": [1, 2], "eps": 1e-3}),
    "reduce_sum": unary("reduce", (3, 5), {"kind": "sum", "axes": [1], "keepdims": False}),
    "reduce_mean": unary("reduce", (3, 5), {"kind": "mean", "axes": [0], "keepdims": True}),
    "reduce_max": unary("reduce", (2, 3, 4), {"kind": "max", "axes": [-1, 0], "keepdims": False}),
    "reduce_l2": unary("reduce", (3, 4), {"kind": "l2", "axes": None, "keepdims": True}),
    "softmax_axis0": unary("softmax", (4, 3), {"axis": 0}, sample=_normal(2.0)),
    # group 2
    "exp": unary("exp", (6,), sample=_normal(1.0)),
    "sqrt": unary("sqrt", (6,), sample=_uniform(0.0, 4.0)),
    "sqrt_small": unary("sqrt", (6,), sample=_uniform(0.0, 0.2)),
    "exp_negative": unary("exp", (6,), sample=_uniform(-6.0, -1.0)),
    "l2norm_small": l2norm_model(),
    "rsqrt": unary("rsqrt", (6,), sample=_uniform(0.2, 4.0)),
    "reciprocal": unary("reciprocal", (6,), sample=_uniform(0.4, 3.0, signed=True)),
    "abs": unary("abs", (6,)),
    "neg": unary("neg", (6,)),
    "clip": unary("clip", (6,), {"min": -0.5, "max": 1.0}),
    "clip_min": unary("clip", (6,), {"min": 0.0, "max": None}),
    "leakyrelu": unary("leakyrelu", (6,), {"alpha": 0.1}),
    "prelu": unary("prelu", (3, 4), params={"slope": np.array([[0.25], [-0.5], [0.1]])}),
    "hardsigmoid": unary("hardsigmoid", (6,), {"alpha": 0.2, "beta": 0.5}, sample=_normal(3.0)),
    "hardsigmoid_neg": unary("hardsigmoid", (6,), {"alpha": -0.25, "beta": 0.4}, sample=_normal(3.0)),
    "leakyrelu_steep": unary("leakyrelu", (6,), {"alpha": 3.0}),
    "clip_point": unary("clip", (6,), {"min": 0.25, "max": 0.25}),
    "softmax_single": unary("softmax", (1, 3), {"axis": 0}),
    "normalize_single": unary("normalize", (3, 1), {"axes": [1], "eps": 1e-2}),
    "hardswish": unary("hardswish", (6,), sample=_normal(3.0)),
    # group 3
    "pad_constant": unary("pad", (2, 3), {"pads": [[0, 1], [2, 1]], "mode": "constant", "value": 0.5}),
    "pad_reflect": unary("pad", (2, 3), {"pads": [[1, 1], [2, 0]], "mode": "reflect"}),
    "pad_edge": unary("pad", (2, 3), {"pads": [[0, 2], [1, 1]], "mode": "edge"}),
    "gather": unary("gather", (2, 3), params={"index": rng0.integers(0, 6, (4, 2))}),
    "conv_groups_dil": unary("conv2d", (4, 6, 6), {"groups": 2, "dilation": 2, "padding": [1, 0, 2, 1],
                                                    "stride": [1, 2]},
                             {"W": rng0.normal(0, 0.4, (4, 2, 2, 2)), "b": rng0.normal(0, 0.1, 4)}),
    "conv_depthwise": unary("conv2d", (3, 5, 5), {"groups": 3, "padding": 1},
                            {"W": rng0.normal(0, 0.4, (6, 1, 3, 3))}),
    "conv_depthwise8": unary("conv2d", (8, 4, 4), {"groups": 8, "padding": [0, 1, 2, 1]},
                             {"W": rng0.normal(0, 0.4, (8, 1, 3, 3)), "b": rng0.normal(0, 0.1, 8)}),
    "maxpool_pad_dil": unary("maxpool2d", (2, 5, 5), {"kernel": 2, "stride": 2, "padding": 1, "dilation": [2, 1]}),
    "avgpool_pad": unary("avgpool2d", (2, 5, 5), {"kernel": 3, "stride": 2, "padding": 1}),
    "avgpool_incl": unary("avgpool2d", (2, 4, 4), {"kernel": [2, 3], "stride": 1, "padding": [1, 1],
                                                   "count_include_pad": True}),
    # group 4
    "softplus": unary("softplus", (6,), sample=_normal(3.0)),
}
FAST_SECURE = sorted(CASES)


def _case(name, n, seed):
    fm, sample = CASES[name]
    return fm, sample(np.random.default_rng(seed), (n,) + fm.input_shape)


@pytest.fixture(scope="module")
def compiled():
    cache = {}

    def get(name):
        if name not in cache:
            fm, calib = _case(name, 64, 1)
            cache[name] = (fm, compile_model(fm, calib))
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_point_close_to_float(compiled, name):
    fm, prog = compiled(name)
    _, x = _case(name, 50, 2)
    rep = compare(fm, prog, x)
    want = fm.run(x)
    span = float(want.max() - want.min()) or 1.0
    assert rep["max_abs_err"] <= 0.02 * span, (rep["max_abs_err"], span)
    Program.from_dict(prog.describe(), {k: p.values for k, p in prog.params.items()})  # validates
    assert prog.ops[-1].op in (fm.ops[-1].op, "gather", "add")


@pytest.mark.parametrize("name", FAST_SECURE)
def test_secure_equals_clear(parties, compiled, name):
    fm, prog = compiled(name)
    _, x = _case(name, 2, 3)
    secure_vs_clear(parties, prog, x)  # asserts every tensor bit for bit


# ---------------------------------------------------------------------------------------------
# composite models (the ops together, as an importer emits them)
# ---------------------------------------------------------------------------------------------
def attention_model(T=4, D=6, K=3, seed=11):
    """LayerNorm (normalize + affine) → q, k, v → softmax(q·kᵀ/√D)·v → residual → mean over T."""
    rng = np.random.default_rng(seed)
    lin = lambda n: {"W": rng.normal(0, 0.5, (D, D)), "b": rng.normal(0, 0.1, D)}  # noqa: E731
    ops = [FloatOp("normalize", "x", "n", attrs={"axes": [-1], "eps": 1e-5}, name="ln"),
           FloatOp("mul", "n", "ng", {"y": rng.uniform(0.5, 1.5, D)}, name="ln_g"),
           FloatOp("add", "ng", "nb", {"y": rng.normal(0, 0.1, D)}, name="ln_b"),
           FloatOp("linear", "nb", "q", lin("q"), name="q"),
           FloatOp("linear", "nb", "k", lin("k"), name="k"),
           FloatOp("linear", "nb", "v", lin("v"), name="v"),
           FloatOp("transpose", "k", "kt", attrs={"perm": [1, 0]}, name="kt"),
           FloatOp("matmul", ["q", "kt"], "s", name="qk"),
           FloatOp("mul", "s", "ss", {"y": np.array(1 / np.sqrt(D))}, name="scale"),
           FloatOp("softmax", "ss", "a", attrs={"axis": -1}, name="attn"),
           FloatOp("matmul", ["a", "v"], "o", name="av"),
           FloatOp("add", ["o", "x"], "r", name="res"),
           FloatOp("reduce", "r", "m", attrs={"kind": "mean", "axes": [0], "keepdims": False}, name="pool"),
           FloatOp("linear", "m", "y", {"W": rng.normal(0, 0.5, (K, D))}, name="fc")]
    return FloatModel(ops, "x", (T, D), "y")


def groupnorm_cnn_model(C=4, S=6, seed=12):
    """depthwise conv → GroupNorm (reshape, normalize, reshape, per-channel affine) → hardswish →
    padded maxpool → global average (reduce mean) → linear."""
    rng = np.random.default_rng(seed)
    ops = [FloatOp("conv2d", "x", "c", {"W": rng.normal(0, 0.4, (C, 1, 3, 3)), "b": rng.normal(0, 0.1, C)},
                   {"groups": C, "padding": 1}, name="dw"),
           FloatOp("reshape", "c", "g", attrs={"shape": [2, -1]}, name="grp"),
           FloatOp("normalize", "g", "gn", attrs={"axes": [1], "eps": 1e-5}, name="gn"),
           FloatOp("reshape", "gn", "gr", attrs={"shape": [C, S, S]}, name="ungrp"),
           FloatOp("mul", "gr", "gg", {"y": rng.uniform(0.5, 1.5, (C, 1, 1))}, name="gn_g"),
           FloatOp("add", "gg", "gb", {"y": rng.normal(0, 0.2, (C, 1, 1))}, name="gn_b"),
           FloatOp("hardswish", "gb", "h", name="act"),
           FloatOp("maxpool2d", "h", "p", attrs={"kernel": 3, "stride": 2, "padding": 1}, name="pool"),
           FloatOp("reduce", "p", "m", attrs={"kind": "mean", "axes": [1, 2], "keepdims": False}, name="gap"),
           FloatOp("linear", "m", "y", {"W": rng.normal(0, 0.8, (3, C))}, name="fc")]
    return FloatModel(ops, "x", (C, S, S), "y")


@pytest.mark.parametrize("build", [attention_model, groupnorm_cnn_model])
def test_composite_models(parties, build):
    fm = build()
    rng = np.random.default_rng(13)
    prog = compile_model(fm, rng.normal(0, 1, (64,) + fm.input_shape))
    x = rng.normal(0, 1, (100,) + fm.input_shape)
    rep = compare(fm, prog, x)
    want = fm.run(x)
    assert rep["max_abs_err"] <= 0.02 * float(want.max() - want.min())
    assert rep["argmax_agreement"] >= 0.95
    secure_vs_clear(parties, prog, x[:2])


# ---------------------------------------------------------------------------------------------
# float semantics against numpy formulas
# ---------------------------------------------------------------------------------------------
def _run(name, seed=4, n=3):
    fm, x = _case(name, n, seed)
    rec = {}
    fm.run(x, record=rec)
    return rec


def _np_conv(x, W, b, stride, pads, dil, groups):
    """Direct loops (the definition) for a few small shapes."""
    N, C, H, Wd = x.shape
    OC, Cg, kh, kw = W.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    Ho = (H + pt + pb - dil[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (Wd + pl + pr - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((N, OC, Ho, Wo))
    for o in range(OC):
        g = o // (OC // groups)
        for i in range(Ho):
            for j in range(Wo):
                win = xp[:, g * Cg:(g + 1) * Cg, i * stride[0]:i * stride[0] + dil[0] * (kh - 1) + 1:dil[0],
                         j * stride[1]:j * stride[1] + dil[1] * (kw - 1) + 1:dil[1]]
                y[:, o, i, j] = (win * W[o]).sum((1, 2, 3)) + (0 if b is None else b[o])
    return y


def test_float_semantics_binary_and_reductions():
    r = _run("add_bcast")
    assert np.array_equal(r["y"], r["a"][:, None, :] + r["b"])
    r = _run("sub_bcast")
    assert np.array_equal(r["y"], r["a"] - r["b"][:, None, :])
    r = _run("div_bcast")
    assert np.allclose(r["y"], r["a"] / r["bb"])
    r = _run("matmul_batched")
    assert np.allclose(r["y"], np.einsum("nhij,njk->nhik", r["a"], r["b"]))
    r = _run("matmul_vec")
    assert np.allclose(r["y"], np.einsum("nj,nhjk->nhk", r["a"], r["b"]))
    x = _run("normalize_hw")["x"]
    m, v = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True)
    assert np.allclose(_run("normalize_hw")["y"], (x - m) / np.sqrt(v + 1e-3))
    r = _run("reduce_max")
    assert np.array_equal(r["y"], r["x"].max((1, 3)))
    r = _run("reduce_l2")
    assert np.allclose(r["y"], np.linalg.norm(r["x"].reshape(3, -1), axis=1).reshape(3, 1, 1))
    r = _run("softmax_axis0")
    e = np.exp(r["x"])
    assert np.allclose(r["y"], e / e.sum(1, keepdims=True))


@pytest.mark.parametrize("name,op", [("sqrt_small", "sqrt"), ("exp_negative", "exp"), ("l2norm_small", "sqrt")])
def test_math_outputs_below_one_half_keep_the_integer_bit(compiled, name, op):
    """A math function whose calibrated outputs stay below ½ (√ of small sums of squares, e^x of
    negative x) gets at most scale bits − 2, the sign and integer bit its protocol needs (it used
    to get bits − 1, which the program checks refuse)."""
    fm, prog = compiled(name)
    (t,) = [p.outputs[0] for p in prog.ops if p.op == op]
    rec = {}
    fm.run(_case(name, 64, 1)[1], record=rec)  # the calibration inputs
    assert np.abs(rec[t]).max() < 0.5
    assert prog.tensors[t].scale == prog.tensors[t].bits - 2


def test_div_plans(compiled):
    """A denominator broadcast ≥ 4 times gets a shared reciprocal (attr recip); otherwise SiRNN
    division per element."""
    assert "recip" in compiled("div_bcast")[1].ops[-1].attrs
    assert "recip" not in compiled("div_elementwise")[1].ops[-1].attrs


def test_grouped_conv_cases_cover_both_plans(compiled):
    from sirnn.nn.fixed import acc_bits
    from sirnn.nn.layers import conv_groups_plan

    plans = set()
    for name in ("conv_depthwise", "conv_depthwise8"):
        _, prog = compiled(name)
        op = prog.ops[-1]
        W, x, o = prog.params[op.params["W"]], prog.tensors[op.inputs[0]], prog.tensors[op.outputs[0]]
        G = op.attrs["groups"]
        plans.add(conv_groups_plan(W.shape[0], G, int(np.prod(W.shape[1:])), o.shape[1] * o.shape[2], x.bits,
                                   acc_bits(o.fmt, W.scale + x.scale), W.bits))
    assert plans == {"block_diag", "elementwise"}


def test_float_semantics_windows_and_movement():
    r = _run("conv_groups_dil")
    op = CASES["conv_groups_dil"][0].ops[0]
    want = _np_conv(r["x"], op.params["W"], op.params["b"], (1, 2), (1, 0, 2, 1), (2, 2), 2)
    assert np.allclose(r["y"], want)
    r = _run("conv_depthwise")
    op = CASES["conv_depthwise"][0].ops[0]
    assert np.allclose(r["y"], _np_conv(r["x"], op.params["W"], None, (1, 1), (1, 1, 1, 1), (1, 1), 3))
    r = _run("maxpool_pad_dil")  # padding never wins
    xp = np.pad(r["x"], ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.stack([np.stack([np.max(xp[:, :, 2 * i:2 * i + 3:2, 2 * j:2 * j + 2], axis=(2, 3))
                               for j in range(3)], -1) for i in range(3)], -2)
    assert np.array_equal(r["y"], want)
    r = _run("pad_constant")
    assert np.array_equal(r["y"], np.pad(r["x"], ((0, 0), (0, 1), (2, 1)), constant_values=0.5))
    r = _run("pad_reflect")
    assert np.array_equal(r["y"], np.pad(r["x"], ((0, 0), (1, 1), (2, 0)), mode="reflect"))
    r = _run("gather")
    idx = CASES["gather"][0].ops[0].params["index"].astype(int)
    assert np.array_equal(r["y"], r["x"].reshape(3, -1)[:, idx])


# ---------------------------------------------------------------------------------------------
# float semantics against onnxruntime (one-node models)
# ---------------------------------------------------------------------------------------------
def _ort(op_type, inputs: dict, attrs=None, inits=None, opset=18):
    import onnxruntime as ort  # the test extra
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()]
    names = list(inputs) + list(inits or {})
    node = helper.make_node(op_type, names, ["out"], **(attrs or {}))
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(_onnx_const(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: v.astype(np.float32) for k, v in inputs.items()})[0]


def _onnx_const(v):
    v = np.asarray(v)
    return v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.int64)


def _float(op, x, params=None, attrs=None, extra=()):
    return FLOAT_OPS[op](FloatOp(op, ["x"] + [f"e{i}" for i in range(len(extra))], "y", params or {}, attrs or {}),
                         [x, *extra], None)


@pytest.mark.parametrize("op,onnx_op,attrs,onnx_attrs,sample", [
    ("exp", "Exp", {}, {}, _normal()),
    ("sqrt", "Sqrt", {}, {}, _uniform(0, 4)),
    ("reciprocal", "Reciprocal", {}, {}, _uniform(0.5, 2, True)),
    ("abs", "Abs", {}, {}, _normal()),
    ("neg", "Neg", {}, {}, _normal()),
    ("softplus", "Softplus", {}, {}, _normal(4)),
    ("leakyrelu", "LeakyRelu", {"alpha": 0.1}, {"alpha": 0.1}, _normal()),
    ("hardsigmoid", "HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {"alpha": 0.3, "beta": 0.4}, _normal(3)),
    ("hardswish", "HardSwish", {}, {}, _normal(4)),
    ("softmax", "Softmax", {"axis": 0}, {"axis": 1}, _normal()),
    ("reduce", "ReduceL2", {"kind": "l2", "axes": [1], "keepdims": False}, {"keepdims": 0}, _normal()),
    ("maxpool2d", "MaxPool", {"kernel": [2, 3], "stride": 1, "padding": [1, 0, 0, 2], "dilation": [1, 2]},
     {"kernel_shape": [2, 3], "pads": [1, 0, 0, 2], "dilations": [1, 2]}, _normal()),
    ("avgpool2d", "AveragePool", {"kernel": 3, "stride": 2, "padding": 1},
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, _normal()),
])
def test_float_semantics_vs_onnxruntime(op, onnx_op, attrs, onnx_attrs, sample):
    shape = (2, 3, 5, 6) if op.endswith("pool2d") else (2, 4, 5)
    x = sample(np.random.default_rng(5), shape)
    ax = {"axes": np.array([2])} if onnx_op == "ReduceL2" else {}
    got = _float(op, x, attrs=attrs)
    want = _ort(onnx_op, {"x": x}, onnx_attrs, ax)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_float_semantics_vs_onnxruntime_params():
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (2, 4, 7, 6))
    W, b = rng.normal(0, 0.5, (6, 2, 3, 2)), rng.normal(0, 0.1, 6)
    got = _float("conv2d", x, {"W": W, "b": b}, {"groups": 2, "dilation": [2, 1], "padding": [1, 0, 2, 1],
                                                 "stride": [2, 1]})
    want = _ort("Conv", {"x": x}, {"group": 2, "dilations": [2, 1], "pads": [1, 0, 2, 1], "strides": [2, 1]},
                {"W": W, "b": b})
    assert np.allclose(got, want, atol=1e-4)
    slope = rng.normal(0, 0.5, (4, 1, 1))
    assert np.allclose(_float("prelu", x, {"slope": slope}), _ort("PRelu", {"x": x}, {}, {"s": slope}), atol=1e-6)
    y = rng.normal(0, 1, (2, 7, 1)) + 3
    # per-sample broadcasting: (7, 1) against (4, 7, 6) is ONNX's (N, 1, 7, 1) against (N, 4, 7, 6)
    assert np.allclose(_float("div", x, extra=[y]), _ort("Div", {"x": x, "e0": y[:, None]}), rtol=1e-5)
    m = rng.normal(0, 1, (2, 6, 3))
    assert np.allclose(_float("matmul", x, extra=[m]), _ort("MatMul", {"x": x, "e0": m[:, None]}), atol=1e-4)
    got = _float("pad", x, attrs={"pads": [[0, 0], [1, 2], [0, 1]], "mode": "edge"})
    want = _ort("Pad", {"x": x}, {"mode": "edge"}, {"p": np.array([0, 0, 1, 0, 0, 0, 2, 1])})
    assert np.allclose(got, want)
    got = _float("normalize", x, attrs={"axes": [-1], "eps": 1e-5})
    want = _ort("LayerNormalization", {"x": x}, {"axis": -1, "epsilon": 1e-5},
                {"scale": np.ones(6), "bias": np.zeros(6)})
    assert np.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("t,ulps", [(6, 1.0), pytest.param(4, 2.0, marks=pytest.mark.slow)])
def test_softplus_error_bound(t, ulps):
    """softplus is an approximation (lines on 2^t buckets of e^{−|x|}): over all inputs of
    (16, 12) with one headroom bit, its error against float64 stays below ``ulps`` output ULPs
    (measured 0.72 at t = 6, 1.52 at t = 4)."""
    from sirnn.nn.pointwise import softplus
    from sirnn.protocols.backend import ClearBackend, clear
    from sirnn.protocols.ring import to_signed

    q = np.arange(-(1 << 14), 1 << 14, dtype=np.int64)
    y = to_signed(softplus(ClearBackend(), clear(q, 16, 12), (16, 12), table_bits=t).data, 16) / 2**12
    err = np.abs(y - np.logaddexp(0, q / 2**12))
    assert err.max() <= ulps * 2.0**-12


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_range_that_does_not_fit_names_tensor_and_bits():
    fm, _ = CASES["exp"]
    x = np.random.default_rng(0).normal(0, 1, (8, 6))
    x[0, 0] = 12.0  # e^12 ≈ 162755 < 2^18: 18 integer bits, the sign and the headroom bit
    with pytest.raises(ProgramError, match=r"tensor 'y': calibrated \|x\| up to 162755 needs 20 bits.*--bits"):
        compile_model(fm, x)
    fm, _ = CASES["rsqrt"]
    with np.errstate(divide="ignore"), pytest.raises(ProgramError, match="tensor 'y': the calibrated range is not finite"):
        compile_model(fm, np.zeros((4, 6)))


@pytest.mark.parametrize("case,key,value,message", [
    ("normalize_last", "rstd", None, "attribute rstd"),
    ("normalize_last", "axes", [1, -1], "repeats an axis"),
    ("reduce_sum", "kind", "median", "attribute kind"),
    ("reduce_sum", "axes", [2], "attribute axes"),
    ("gather", "index", [[0, 99]], "index entries"),
    ("pad_constant", "fill", 1 << 20, "attribute fill"),
    ("conv_depthwise", "groups", 2, r"C = 1 × 2 groups"),
    ("conv_depthwise", "groups", 4, "dividing the 6 output channels"),
    ("maxpool_pad_dil", "padding", 2, "smaller than the window"),
    ("clip", "min", 2.0, "above max"),
    ("softmax_axis0", "axis", 5, "attribute axis"),
    ("leakyrelu", "alpha", "x", "attribute alpha"),
])
def test_program_checks_reject_bad_attributes(compiled, case, key, value, message):
    _, prog = compiled(case)
    d = prog.describe()
    d["ops"][-1]["attrs"][key] = value
    with pytest.raises(ProgramError, match=message):
        Program.from_dict(d, {k: p.values for k, p in prog.params.items()})


def test_parameter_that_does_not_fit_names_it():
    fm = FloatModel([FloatOp("mul", "x", "y", {"y": np.array([1.0, 4e4, 0.0])}, name="gain")], "x", (3,), "y")
    with pytest.raises(ProgramError, match=r"parameter gain\.y: .*40000 needs 17 bits.*--w-bits"):
        compile_model(fm, np.full((4, 3), 1e-5))


def test_normalize_of_a_constant_slice_without_eps_is_refused():
    fm = FloatModel([FloatOp("normalize", "x", "y", attrs={"axes": [-1], "eps": 0.0}, name="ln")], "x", (2, 3), "y")
    x = np.random.default_rng(0).normal(0, 1, (4, 2, 3))
    x[0, 1] = 0.5
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(ProgramError, match="positive eps"):
        compile_model(fm, x)


def test_formats_beyond_the_protocols_fail_at_compile_time():
    """At 32-bit activations sqrt's internal rings would exceed 64 bits: compile_model's dry run
    names the op (instead of an error at inference)."""
    fm, sample = CASES["sqrt"]
    with pytest.raises(ProgramError, match=r"op 'sqrt' \(sqrt\) cannot run at its compiled formats: .*--bits"):
        compile_model(fm, sample(np.random.default_rng(0), (8,) + fm.input_shape), act_bits=32)
    fm, _ = CASES["reduce_l2"]
    with pytest.raises(ProgramError, match="l2 output of 32 bits is wider than 28"):
        compile_model(fm, np.ones((4,) + fm.input_shape), act_bits=32)


def test_numpy_attributes_are_accepted():
    """Importers may hand numpy integers: the compiled program holds plain JSON values."""
    fm = FloatModel([FloatOp("reduce", "x", "y", attrs={"kind": "sum", "axes": np.array([1]),
                                                        "keepdims": np.bool_(True)}, name="r"),
                     FloatOp("softmax", "y", "z", attrs={"axis": np.int64(0)}, name="s")], "x", (3, 4), "z")
    prog = compile_model(fm, np.random.default_rng(0).normal(0, 1, (8, 3, 4)))
    assert prog.ops[0].attrs == {"kind": "sum", "axes": [1], "keepdims": True}
    assert prog.ops[1].attrs == {"axis": 0}


def test_div_by_parameter_is_refused():
    fm = FloatModel([FloatOp("div", "x", "y", {"y": np.full(3, 2.0)}, name="d")], "x", (3,), "y")
    with pytest.raises(ProgramError, match="div by a parameter"):
        compile_model(fm, np.ones((4, 3)))


@pytest.mark.parametrize("lead,a,b,c,plan", [((), 3, 4, 2, "x_diag"), ((2,), 1, 3, 2, "y_diag"),
                                             ((2, 4), 1, 3, 1, "hadamard")])
def test_matmul_plans_exact(parties, lead, a, b, c, plan):
    """Every plan of nn.layers.matmul gives the exactly rounded product (secure == clear == numpy)."""
    from sirnn.nn.layers import matmul, matmul_plan
    from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
    from sirnn.protocols.ring import to_signed
    from sirnn.protocols.share import reveal, share_input

    B = int(np.prod(lead, dtype=np.int64))
    assert matmul_plan(B, a, b, c, 16, 16, 16 + 24 - 10) == plan
    rng = np.random.default_rng(8)
    X = rng.integers(-2**13, 2**13, lead + (a, b))
    Y = rng.integers(-2**13, 2**13, (b, c))  # broadcast over the batch
    want = (np.matmul(X, Y) + (1 << 13)) >> 14  # scale 24 → 10, round half up
    got = to_signed(matmul(ClearBackend(), clear(X, 16, 12), clear(Y, 16, 12), (16, 10)).data, 16)
    assert np.array_equal(got, want)

    def side(p):
        xs = share_input(p, 0, X if p.role == 0 else None, bits=16, scale=12, shape=X.shape)
        ys = share_input(p, 1, Y if p.role == 1 else None, bits=16, scale=12, shape=Y.shape)
        return reveal(p, matmul(SecureBackend(p), xs, ys, (16, 10)))

    ra, rb = parties.run(side)
    assert np.array_equal(to_signed(ra, 16), want) and np.array_equal(ra, rb)


rng1 = np.random.default_rng(1)
LARGE = {
    "normalize_wide": unary("normalize", (4, 96), {"axes": [-1], "eps": 1e-5}, sample=_normal(3.0)),
    "softmax_axis0_wide": unary("softmax", (40, 3), {"axis": 0}, sample=_normal(2.0)),
    "reduce_l2_wide": unary("reduce", (8, 64), {"kind": "l2", "axes": [1], "keepdims": False}),
    "matmul_wide": binary("matmul", (4, 8, 16), (16, 8)),
    "conv_groups_wide": unary("conv2d", (8, 10, 10), {"groups": 4, "padding": [1, 2, 0, 1], "dilation": [1, 2]},
                              {"W": rng1.normal(0, 0.3, (16, 2, 3, 3)), "b": rng1.normal(0, 0.1, 16)}),
    "avgpool_wide": unary("avgpool2d", (4, 12, 12), {"kernel": 3, "stride": 2, "padding": [1, 1, 0, 0]}),
    "div_wide": binary("div", (6, 16), (6, 1), _normal(0.2), b_param=np.array([[-2.5], [-1.5], [-1.2], [1.2], [1.5], [2.5]])),
    "div_wide_elementwise": binary("div", (6, 16), (6, 16), _normal(0.2), b_param=np.array([[-2.5], [-1.5], [-1.2], [1.2], [1.5], [2.5]])),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LARGE))
def test_larger_shapes(parties, name):
    fm, sample = LARGE[name]
    rng = np.random.default_rng(9)
    prog = compile_model(fm, sample(rng, (64,) + fm.input_shape))
    x = sample(rng, (20,) + fm.input_shape)
    rep = compare(fm, prog, x)
    want = fm.run(x)
    assert rep["max_abs_err"] <= 0.02 * float(want.max() - want.min())
    secure_vs_clear(parties, prog, x[:2])
