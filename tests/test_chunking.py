"""Chunked execution (SecureBackend's ``chunk`` budget): an operation estimated above the budget
runs in chunks of its elements (columns of a matrix product); the opened result must equal the
unchunked secure run and the cleartext functionality bit for bit, chunking must really happen
(more rounds), and operations under the budget must keep their round counts."""

import numpy as np
import pytest

from sirnn import ALICE, BOB
from sirnn.compiler import evaluate_clear
from sirnn.compiler.runtime import encode_input, execute
from sirnn.protocols.backend import (
    CHUNK_BYTES,
    ClearBackend,
    SecureBackend,
    _bounds,
    _n_chunks,
    clear,
)
from sirnn.protocols.ring import from_int, mask
from sirnn.protocols.share import Share, reveal, share_input


def _shares(rng, v, bits, scale=0, signed=True):
    x = from_int(v, bits, signed)
    x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(bits)
    return (Share(x0, bits, scale, signed, ALICE), Share((x - x0) & mask(bits), bits, scale, signed, BOB))


def _open(a, b):
    if isinstance(a, (tuple, list)):
        assert type(a) is type(b)
        return type(a)(_open(u, v) for u, v in zip(a, b))
    assert (a.bits, a.scale, a.signed, a.shape) == (b.bits, b.scale, b.signed, b.shape)
    return {"v": (a.data + b.data) & mask(a.bits), "meta": (a.bits, a.scale, a.signed)}


def _ref(r):
    if isinstance(r, (tuple, list)):
        return type(r)(_ref(u) for u in r)
    return {"v": r.data & mask(r.bits), "meta": (r.bits, r.scale, r.signed)}


def _same(u, v):
    if isinstance(u, (tuple, list)):
        assert type(u) is type(v) and len(u) == len(v)
        for a, b in zip(u, v):
            _same(a, b)
        return
    assert u["meta"] == v["meta"]
    assert u["v"].shape == v["v"].shape and (u["v"] == v["v"]).all()


def run3(parties, recipe, shares, clear_args, chunk):
    """recipe(be, args) securely with ``chunk``, unchunked, and in the clear; returns the three
    opened results and the rounds of the chunked and unchunked secure runs."""
    out = {}
    for name, budget in (("chunked", chunk), ("whole", None)):
        def side(p, budget=budget):
            r0 = p.chan.stats.rounds
            y = recipe(SecureBackend(p, chunk=budget), shares[p.role])
            return y, p.chan.stats.rounds - r0
        (ya, ra), (yb, rb) = parties.run(side)
        out[name] = (_open(ya, yb), max(ra, rb))
    ref = _ref(recipe(ClearBackend(), clear_args))
    return out["chunked"][0], out["whole"][0], ref, out["chunked"][1], out["whole"][1]


def test_bounds_cover_and_budget():
    for n, k in ((10, 3), (7, 7), (100, 1), (5, 2)):
        b = _bounds(n, k)
        assert len(b) == k and b[0][0] == 0 and b[-1][1] == n
        assert all(hi > lo for lo, hi in b) and all(b[i][1] == b[i + 1][0] for i in range(k - 1))
        assert max(hi - lo for lo, hi in b) - min(hi - lo for lo, hi in b) <= 1
    assert _n_chunks(1000, 16, None) == 1
    assert _n_chunks(1000, 16, 16000) == 1      # at the budget: whole
    assert _n_chunks(1000, 16, 15999) == 2
    assert _n_chunks(1000, 16, 1600) == 10
    assert _n_chunks(3, 10**6, 1) == 3          # never more chunks than units


ELEMENTWISE = {
    "msb": lambda be, a: be.msb(a[0]),
    "relu": lambda be, a: be.relu(a[0]),
    "tr_msb": lambda be, a: be.tr_msb(a[0], 5),          # a tuple of outputs
    "tr_two": lambda be, a: be.tr_two(a[0], 3, 7),
    "digits": lambda be, a: be.digits(a[0], 4),          # a list of outputs
    "sext": lambda be, a: be.sext(a[0], 24),
    "ars": lambda be, a: be.ars(a[0], 4),
    "msnzb": lambda be, a: be.msnzb_onehot(a[0]),        # an output with a trailing axis
    "mul": lambda be, a: be.mul(a[0], a[1], 32),
    "mul_msb_public": lambda be, a: be.mul(a[0], a[1], 32, msb_x=be.public_bits(np.zeros(a[0].shape, int))),
    "select": lambda be, a: be.select(be.msb(a[0]), a[1]),
    "lut": lambda be, a: be.lut(np.arange(16) * 7 - 30, be.tr(a[0], 12), 16, signed=True),
    "lut_many_vec": lambda be, a: be.lut_many([np.arange(32).reshape(16, 2), np.arange(16)],
                                              [be.tr(a[0], 12), be.tr(a[1], 12)], [12, 16]),
    "onehot_dot": lambda be, a: be.onehot_dot(be.msnzb_onehot(a[0]), np.arange(16) - 8, 20, signed=True),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_chunked_equals_whole_and_clear(parties, rng, name):
    shape = (3, 37)  # 111 elements: chunks of unequal size, over a 2-D shape
    xs = rng.integers(-2**15, 2**15, size=shape)
    ys = rng.integers(-2**15, 2**15, size=shape)
    if name == "mul_msb_public":
        xs = np.abs(xs) // 2
    sx, sy = _shares(rng, xs, 16), _shares(rng, ys, 16)
    args = ([sx[0], sy[0]], [sx[1], sy[1]])
    recipe = ELEMENTWISE[name]
    # budgets: ~3 chunks of the 111 elements (the bytes-per-element estimates of the backend)
    budget = 5000 if name in ("lut", "lut_many_vec", "onehot_dot") else 100_000 if name.startswith("mul") \
        else 80_000
    ch, whole, ref, r_ch, r_whole = run3(parties, recipe, args, [clear(xs, 16), clear(ys, 16)], chunk=budget)
    _same(ch, whole)
    _same(whole, ref)
    assert r_ch > r_whole  # it did run in several chunks


@pytest.mark.parametrize("w_left", [True, False])
@pytest.mark.parametrize("msb", [None, "secret", "public"])
def test_matmul_known_chunked_over_columns(parties, rng, w_left, msb):
    a, b, c = 5, 7, 23
    W = rng.integers(-2**11, 2**11, size=(a, b) if w_left else (b, a))
    xv = rng.integers(0 if msb == "public" else -2**11, 2**11, size=(b, c) if w_left else (c, b))
    sx = _shares(rng, xv, 16)

    def recipe(be, args):
        x = args[0]
        m = None if msb is None else be.msb(x) if msb == "secret" else be.public_bits(np.zeros(x.shape, int))
        w = W if (isinstance(be, ClearBackend) or be.role == ALICE) else None
        return be.matmul_known(w, x, 32, w_bits=16, w_shape=W.shape, w_left=w_left, msb_x=m)

    ch, whole, ref, r_ch, r_whole = run3(parties, recipe, ([sx[0]], [sx[1]]), [clear(xv, 16)], chunk=36 * a * b * 16 * 6)
    _same(ch, whole)
    _same(whole, ref)
    assert r_ch > r_whole


@pytest.mark.parametrize("msb", [None, "secret"])
def test_mul_known_chunked(parties, rng, msb):
    w = rng.integers(-2**11, 2**11, size=(4, 50))
    xv = rng.integers(-2**11, 2**11, size=(4, 50))
    sx = _shares(rng, xv, 16)

    def recipe(be, args):
        mine = w if (isinstance(be, ClearBackend) or be.role == ALICE) else None
        return be.mul_known(mine, args[0], 32, w_bits=16, msb_x=be.msb(args[0]) if msb else None)

    ch, whole, ref, r_ch, r_whole = run3(parties, recipe, ([sx[0]], [sx[1]]), [clear(xv, 16)], chunk=100_000)
    _same(ch, whole)
    _same(whole, ref)
    assert r_ch > r_whole


def test_math_function_chunked(parties, rng):
    """A whole math recipe (sigmoid: LUTs, comparisons, products) under a tiny budget."""
    from sirnn.nn import layers
    from sirnn.nn.fixed import Fmt

    xs = rng.integers(-2**14, 2**14, size=(2, 40))
    sx = _shares(rng, xs, 16, scale=11)
    ch, whole, ref, r_ch, r_whole = run3(
        parties, lambda be, a: layers.sigmoid(be, a[0], Fmt(16, 14)), ([sx[0]], [sx[1]]),
        [clear(xs, 16, 11)], chunk=40_000)
    _same(ch, whole)
    _same(whole, ref)
    assert r_ch > r_whole


def test_default_budget_keeps_small_ops_whole(parties, rng):
    """Under the default budget nothing of this size is chunked: the same rounds as unchunked."""
    xs = rng.integers(-2**15, 2**15, size=(64, 128))
    sx = _shares(rng, xs, 16)
    _, _, _, r_default, r_whole = run3(parties, lambda be, a: be.relu(a[0]), ([sx[0]], [sx[1]]),
                                       [clear(xs, 16)], chunk=CHUNK_BYTES)
    assert r_default == r_whole


def test_bad_budget():
    from sirnn.errors import ParameterError

    class P:
        role = ALICE
    for bad in (0, -3, 1.5, "big"):
        with pytest.raises(ParameterError, match="chunk"):
            SecureBackend(P(), chunk=bad)


def test_model_chunked_equals_clear(parties):
    """The bundled conv + RNNPool model (conv2d, relu, rnnpool, linear) run under a small budget
    (its ops chunked): the output equal to the unchunked run and the cleartext interpreter's."""
    from sirnn.data import load_bundled

    prog, samples = load_bundled("rnnpool_lfw_faces")
    x = samples["x"][:2]
    q, _ = encode_input(prog, x)
    spec = prog.input_spec
    rounds, outs = {}, {}
    for name, budget in (("chunked", 1 << 20), ("whole", None)):
        def side(p, budget=budget):
            mine = prog if p.role == ALICE else prog.public()
            xs = share_input(p, BOB, q if p.role == BOB else None, bits=spec.bits, scale=spec.scale, shape=q.shape)
            r0 = p.chan.stats.rounds
            y = execute(mine, SecureBackend(p, chunk=budget), xs)
            return reveal(p, y), p.chan.stats.rounds - r0
        (ya, ra), (yb, rb) = parties.run(side)
        assert (ya == yb).all()
        outs[name], rounds[name] = ya, max(ra, rb)
    ref = evaluate_clear(prog, x, raw=True)
    assert (outs["chunked"] == outs["whole"]).all() and (outs["whole"] == ref).all()
    assert rounds["chunked"] > rounds["whole"]
