"""Neural layers and recurrent cells: secure == clear bit for bit (the client holds only the
weights' spec); the clear fixed-point result against exact integer / float64 references."""

import json

import numpy as np
import pytest

from nnhelp import assert_same, fastgrnn_weights, run_layer
from sirnn.errors import ParameterError
from sirnn.nn import layers, rnn
from sirnn.nn.fixed import Fmt, Param, decode_share, fit_scale, requant
from sirnn.protocols.backend import ClearBackend, clear
from sirnn.protocols.ring import to_signed

A16 = Fmt(16, 12)
ULP = 2.0**-12


def _val(ref):
    """(ring data, (bits, scale, signed)) → signed integers."""
    data, (bits, _, _) = ref
    return to_signed(data, bits)


def _round_shift(v: np.ndarray, d: int) -> np.ndarray:
    """Exact round-to-nearest (ties up) of integers v / 2^d (Python ints, no overflow)."""
    if d <= 0:
        return v * (1 << -d)
    return np.array([(int(t) + (1 << (d - 1))) >> d for t in np.ravel(v)], dtype=object).reshape(np.shape(v))


# ---------------------------------------------------------------------------------------------
# fixed-point conventions
# ---------------------------------------------------------------------------------------------
def test_fit_scale_and_param():
    assert fit_scale(1.0, 16) == 14          # 1.0·2^14 = 16384 ≤ 32767, 2^15 is not
    assert fit_scale(0.9, 16) == 15
    assert fit_scale(1.0, 16, headroom_bits=1) == 13
    p = Param.from_float(np.array([[0.5, -1.25]]), 16)
    assert p.scale == 14 and p.values.tolist() == [[8192, -20480]]
    s = p.spec()
    assert s.values is None and s.shape == (1, 2) and (s.bits, s.scale) == (16, 14)
    with pytest.raises(ParameterError):
        Param((2,), 8, 0, np.array([1, 300]))


@pytest.mark.parametrize("rounding", ["nearest", "floor"])
def test_requant_rules_clear(rng, rounding):
    be = ClearBackend()
    # a 28-bit product at scale 24 whose ring value wrapped around: the rounded result fits 16 bits
    vals = rng.integers(-(1 << 26), 1 << 26, 500)
    vals[:4] = [-(1 << 26), (1 << 26) - 1, 2048, -2048]
    x = clear(vals, 28, 24)
    y = requant(be, x, A16, rounding)
    assert (y.bits, y.scale) == (16, 12)
    want = (vals + (2048 if rounding == "nearest" else 0)) >> 12
    assert (to_signed(y.data, 16) == want).all()
    # the same value with a wrapped-around ring representation (x + 2^28·k) gives the same result
    xw = clear((vals + (1 << 27)) % (1 << 28) - (1 << 27) + 0, 28, 24)
    assert (requant(be, xw, A16, rounding).data == y.data).all()
    # scale drop into a wider ring (TR then sign extension), scale rise, same-scale widening
    v = rng.integers(-(1 << 13), 1 << 13, 200)
    z = requant(be, clear(v, 16, 14), Fmt(24, 12), rounding)
    assert (to_signed(z.data, 24) == ((v + (2 if rounding == "nearest" else 0)) >> 2)).all()
    assert (to_signed(requant(be, clear(v, 16, 10), Fmt(20, 12)).data, 20) == v * 4).all()
    assert (to_signed(requant(be, clear(v, 16, 12), Fmt(32, 12)).data, 32) == v).all()
    assert (to_signed(requant(be, clear(v, 16, 12), Fmt(14, 11)).data, 14) == (v + 1) >> 1).all()


def test_requant_secure_equals_clear(parties, rng):
    v = rng.integers(-(1 << 20), 1 << 20, 64)
    fmts = [Fmt(16, 12), Fmt(32, 12), Fmt(24, 16)]

    def recipe(be, xs, _):
        return tuple(requant(be, xs[0], f) for f in fmts)

    sec, ref, _ = run_layer(parties, recipe, [(v, 26, 14)], rng)
    assert_same(sec, ref)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------
def _weights(rng, shape, sd=0.5, bits=16):
    w = rng.normal(0, sd, shape)
    return w, Param.from_float(w, bits)


def test_linear(parties, rng):
    D, O, B = 7, 5, 3
    wf, W = _weights(rng, (O, D))
    bf, b = _weights(rng, (O,), 1.0)
    b = Param.from_float(bf, 32, W.scale + 12)  # the bias at the product scale: exact
    xf = rng.normal(0, 1, (B, D))
    xq = A16.encode(xf)
    sec, ref, _ = run_layer(parties, lambda be, xs, m: layers.linear(be, xs[0], m[0], m[1], A16),
                            [(xq, 16, 12)], rng, (W, b), (W.spec(), b.spec()))
    assert_same(sec, ref)
    assert ref[1] == (16, 12, True)
    exact = xq @ W.values.T + b.values  # integers at scale W.scale + 12
    assert (_val(ref) == _round_shift(exact, W.scale).astype(np.int64)).all()
    err = np.abs(_val(ref) * ULP - (xf @ wf.T + bf))
    assert err.max() < 4 * ULP  # input and weight quantisation, one rounding
    # a 1-D input and no bias
    sec, ref, _ = run_layer(parties, lambda be, xs, m: layers.linear(be, xs[0], m, None, Fmt(20, 14)),
                            [(xq[0], 16, 12)], rng, W, W.spec())
    assert_same(sec, ref)
    assert (_val(ref) == _round_shift(W.values @ xq[0], W.scale - 2).astype(np.int64)).all()


def _conv_ref(x, w, stride, pad):
    N, C, H, Wd = x.shape
    OC, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    out = np.zeros((N, OC, ho, wo), dtype=object)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw].astype(object)
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w.astype(object))
    return out


@pytest.mark.parametrize("stride,pad,batched", [(1, 0, False), (2, 1, True)])
def test_conv2d(parties, rng, stride, pad, batched):
    C, OC, H, Wd, k = 2, 3, 5, 6, 3
    wf, W = _weights(rng, (OC, C, k, k), 0.3)
    b = Param.from_float(rng.normal(0, 0.5, OC), 32, W.scale + 12)
    xq = A16.encode(rng.normal(0, 1, (2 if batched else 1, C, H, Wd)))
    xin = xq if batched else xq[0]
    sec, ref, _ = run_layer(parties, lambda be, xs, m: layers.conv2d(be, xs[0], m[0], m[1], A16, stride=stride,
                                                                     padding=pad),
                            [(xin, 16, 12)], rng, (W, b), (W.spec(), b.spec()))
    assert_same(sec, ref)
    exact = _conv_ref(xq, W.values, stride, pad) + b.values.reshape(1, OC, 1, 1)
    want = _round_shift(exact, W.scale).astype(np.int64)
    assert (_val(ref) == (want if batched else want[0])).all()


def test_relu_maxpool_argmax(parties, rng):
    xq = rng.integers(-3000, 3000, (2, 6, 7))
    scores = rng.integers(-3000, 3000, (4, 10))
    scores[0, 3] = scores[0, 7] = 5000  # a tie: the first index wins

    def recipe(be, xs, _):
        return (layers.relu(be, xs[0]), layers.maxpool2d(be, xs[0], 2), layers.maxpool2d(be, xs[0], 3, 2),
                layers.argmax(be, xs[1]))

    sec, ref, _ = run_layer(parties, recipe, [(xq, 16, 12), (scores, 16, 12)], rng)
    assert_same(sec, ref)
    r, m2, m3, am = ref
    assert (_val(r) == np.maximum(xq, 0)).all()
    assert (_val(m2) == xq[:, :6, :6].reshape(2, 3, 2, 3, 2).max(axis=(2, 4))).all()
    want3 = np.array([[[xq[c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)] for i in range(2)]
                      for c in range(2)])
    assert (_val(m3) == want3).all()
    assert am[1] == (4, 0, False) and (am[0] == np.argmax(scores, axis=1)).all()


def test_elementwise(parties, rng):
    n = 40
    x = rng.integers(-8000, 8000, n)
    y = rng.integers(-4000, 4000, n)
    g = rng.integers(0, 4097, n)  # a gate in [0, 1] at scale 12
    wq = rng.integers(-20000, 20000, n)
    wp = Param((n,), 16, 14, wq)
    sc = Param((), 16, 13, np.array(-9000))

    def recipe(be, xs, m):
        a, b, z = xs
        return (layers.add(be, a, b), layers.add(be, a, b.with_meta(scale=10).reduce(14), Fmt(16, 12)),
                layers.mul(be, a, b, A16), layers.mul(be, z, a, A16, x_nonneg=True),
                layers.mul_known(be, a, m[0], A16), layers.mul_known(be, a, m[1], Fmt(16, 11)))

    sec, ref, _ = run_layer(parties, recipe, [(x, 16, 12), (y, 16, 12), (g, 16, 12)], rng, (wp, sc),
                            (wp.spec(), sc.spec()))
    assert_same(sec, ref)
    s, s2, p, pz, k, k2 = ref
    y14 = to_signed(np.asarray(y, np.int64).view(np.uint64) & np.uint64((1 << 14) - 1), 14)
    assert (_val(s) == x + y).all()
    assert (_val(s2) == x + y14 * 4).all()
    assert (_val(p) == _round_shift(x * y, 12).astype(np.int64)).all()
    assert (_val(pz) == _round_shift(g * x, 12).astype(np.int64)).all()
    assert (_val(k) == _round_shift(wq * x, 14).astype(np.int64)).all()
    assert (_val(k2) == _round_shift(-9000 * x, 14).astype(np.int64)).all()


# ---------------------------------------------------------------------------------------------
# recurrent cells
# ---------------------------------------------------------------------------------------------


def lstm_weights(rng, D, H):
    return dict(W_ih=rng.normal(0, 0.3, (4 * H, D)), W_hh=rng.normal(0, 0.3, (4 * H, H)),
                b_ih=rng.normal(0, 0.3, 4 * H), b_hh=rng.normal(0, 0.3, 4 * H))


def gru_weights(rng, D, H):
    return dict(W_ih=rng.normal(0, 0.3, (3 * H, D)), W_hh=rng.normal(0, 0.3, (3 * H, H)),
                b_ih=rng.normal(0, 0.3, 3 * H), b_hh=rng.normal(0, 0.3, 3 * H))


def _over_time(be, xs, cell):
    st = rnn.rnn_over_time(be, cell, xs[0])
    return st if isinstance(st, tuple) else (st,)


TOL = 8 * ULP  # fixed point (16-bit, scale 12, 16-bit weights) vs float64 over 8 steps


def _clear_vs_float(cell, step, w, xf, state0):
    got = rnn.rnn_over_time(ClearBackend(), cell, clear(A16.encode(xf), 16, 12))
    want = rnn.run_float(step, w, xf, state0)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    return max(np.abs(decode_share(g) - v).max() for g, v in zip(got, want))


def test_fastgrnn_8_steps_secure_equals_clear_and_float(parties, rng):
    T, D, H = 8, 6, 16
    w = fastgrnn_weights(rng, D, H)
    cell = rnn.FastGRNNCell.from_float(w)
    spec = cell.spec()
    assert spec.W.values is None and spec.zn.values is None and spec.b_z.values is None
    assert json.dumps(spec.describe()) == json.dumps(cell.describe())  # public structure only
    xf = rng.normal(0, 1, (T, D))
    sec, ref, _ = run_layer(parties, _over_time, [(A16.encode(xf), 16, 12)], rng, cell, spec)
    assert_same(sec, ref)
    assert ref[0][1] == (16, 12, True)
    assert _clear_vs_float(cell, rnn.fastgrnn_float, w, xf, np.zeros(H)) < TOL


@pytest.mark.parametrize("fuse,lowrank,batch", [(False, None, None), (True, (3, 4), 2), (False, (3, 4), None)])
def test_fastgrnn_variants(parties, rng, fuse, lowrank, batch):
    T, D, H = 2, 5, 8
    w = fastgrnn_weights(rng, D, H, lowrank)
    cell = rnn.FastGRNNCell.from_float(w, rnn.CellFormats(fuse_tanh=fuse))
    shape = (T, D) if batch is None else (T, D, batch)
    xf = rng.normal(0, 1, shape)
    sec, ref, _ = run_layer(parties, _over_time, [(A16.encode(xf), 16, 12)], rng, cell, cell.spec())
    assert_same(sec, ref)
    xl = rng.normal(0, 1, (8,) + shape[1:])
    h0 = np.zeros((H,) + shape[2:])
    assert _clear_vs_float(cell, rnn.fastgrnn_float, w, xl, h0) < TOL


@pytest.mark.parametrize("fuse", [True, False])
def test_lstm(parties, rng, fuse):
    D, H = 4, 6
    w = lstm_weights(rng, D, H)
    cell = rnn.LSTMCell.from_float(w, rnn.CellFormats(fuse_tanh=fuse))
    xf = rng.normal(0, 1, (2, D))
    sec, ref, _ = run_layer(parties, _over_time, [(A16.encode(xf), 16, 12)], rng, cell, cell.spec())
    assert_same(sec, ref)
    xl = rng.normal(0, 1, (8, D))
    assert _clear_vs_float(cell, rnn.lstm_float, w, xl, (np.zeros(H), np.zeros(H))) < TOL


def test_gru(parties, rng):
    D, H = 4, 6
    w = gru_weights(rng, D, H)
    cell = rnn.GRUCell.from_float(w)
    xf = rng.normal(0, 1, (2, D, 2))
    sec, ref, _ = run_layer(parties, _over_time, [(A16.encode(xf), 16, 12)], rng, cell, cell.spec())
    assert_same(sec, ref)
    xl = rng.normal(0, 1, (8, D))
    assert _clear_vs_float(cell, rnn.gru_float, w, xl, np.zeros(H)) < TOL


def test_fastgrnn_step_cost_fused_saves_rounds(parties, rng):
    """Per-section cost of one step (bytes of both parties, rounds); fusing σ and tanh saves a
    whole sigmoid's rounds at about the same communication."""
    D, H = 6, 16
    w = fastgrnn_weights(rng, D, H)
    x = A16.encode(rng.normal(0, 1, D))
    h = A16.encode(rng.normal(0, 0.5, H))
    costs = {}
    for fuse in (True, False):
        cell = rnn.FastGRNNCell.from_float(w, rnn.CellFormats(fuse_tanh=fuse))
        sec, ref, cost = run_layer(parties, lambda be, xs, m, meter=None: m.step(be, xs[0], xs[1], meter=meter),
                                   [(x, 16, 12), (h, 16, 12)], rng, cell, cell.spec(), meter=True)
        assert_same(sec, ref)
        costs[fuse] = (sum(c["bytes"] for c in cost.values()), sum(c["rounds"] for c in cost.values()))
    assert costs[True][1] <= costs[False][1] - 24  # one sigmoid's rounds
    assert costs[True][0] < 1.25 * costs[False][0]
    # exact rounds per step (sections start fresh rounds; see benchmarks/round_profile.py for the
    # critical path of a whole step)
    assert costs[True][1] == 44
    assert costs[False][1] == 68


def test_backend_additions(parties, rng):
    """The Backend methods added for the layers: secure == clear, and the clear side's meaning."""
    x = rng.integers(-16000, 16000, (3, 4))  # pairwise differences fit: the true max
    y = rng.integers(-30000, 30000, (4, 2))

    def recipe(be, xs, _):
        a, b = xs
        return (be.matmul(a, b, 32), be.ars(a, 5), be.div_pow2(a, 5), be.argmax(a, return_max=True)[1])

    sec, ref, _ = run_layer(parties, recipe, [(x, 16, 12), (y, 16, 12)], rng)
    assert_same(sec, ref)
    mm, ars, dv, mx = ref
    assert mm[1] == (32, 24, True) and (_val(mm) == x @ y).all()
    assert ars[1] == (16, 7, True) and (_val(ars) == x >> 5).all()
    assert (_val(dv) == np.trunc(x / 32)).all()
    assert (_val(mx) == x.max(axis=1)).all()


@pytest.mark.parametrize("lowrank", [None, (3, 5)])
def test_fastgrnn_prepared_inputs_equal_step_by_step(parties, rng, lowrank):
    """rnn_over_time (inputs' products for all steps first, the state with its MSB) gives the
    same h as plain steps on raw inputs and a plain h, securely and in the clear."""
    D, H, T = 5, 8, 3
    cell = rnn.FastGRNNCell.from_float(fastgrnn_weights(rng, D, H, lowrank))
    xs = A16.encode(rng.normal(0, 1, (T, D, 2)))

    def plain(be, ins, m):
        h = m.init_state(be, 2)[0]
        for t in range(T):
            h = m.step(be, ins[0][t], h)
        return h

    def prepared(be, ins, m):
        return m.output(rnn.rnn_over_time(be, m, ins[0]))

    a, ra, _ = run_layer(parties, plain, [(xs, 16, 12)], rng, cell, cell.spec())
    b, rb, _ = run_layer(parties, prepared, [(xs, 16, 12)], rng, cell, cell.spec())
    assert_same(a, ra)
    assert_same(b, rb)
    assert_same(a, rb)
