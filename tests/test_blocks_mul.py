"""Mixed-bitwidth multiplication: Hadamard, matrix and known-operand products == cleartext, exactly."""

import numpy as np
import pytest

from blockhelp import edge_values, random_ring, shares
from sirnn import ALICE, BOB
from sirnn.errors import ParameterError
from sirnn.protocols import compare
from sirnn.protocols import mul as M
from sirnn.protocols.ring import U64, mask, to_signed

SPLITS = ("random", "nowrap", "wrap")


def split_as(x, bits, rng, hows):
    """Shares of x, part k of len(hows) equal parts split the way hows[k] says (random/nowrap/wrap)."""
    x = np.asarray(x, U64) & mask(bits)
    x0 = random_ring(rng, x.size, bits).reshape(x.shape)
    parts = np.array_split(np.arange(x.size), len(hows))
    flat0 = x0.reshape(-1)
    for idx, how in zip(parts, hows):
        if how == "nowrap":
            flat0[idx] = 0
        elif how == "wrap":
            flat0[idx] = mask(bits)
    return x0, (x - x0) & mask(bits)


def operands(rng, m, n, n_random=150):
    """Every pair of edge values of m and n bits, plus random pairs; each shared in 3 ways."""
    em, en = edge_values(m), edge_values(n)
    x = np.concatenate([np.repeat(em, en.size), random_ring(rng, n_random, m)])
    y = np.concatenate([np.tile(en, em.size), random_ring(rng, n_random, n)])
    x, y = np.tile(x, 3), np.tile(y, 3)
    x0, x1 = split_as(x, m, rng, SPLITS)
    y0, y1 = split_as(y, n, rng, ("wrap", "random", "nowrap"))  # other combinations of wrapping
    return (x0, x1, x), (y0, y1, y)


def msb_shares(rng, v, bits):
    msb = compare.msb_ref(v, bits)
    r = rng.integers(0, 2, msb.shape).astype(U64)
    return r, msb ^ r


def run(parties, fa, fb):
    a, b = parties.run_split(fa, fb)
    assert a.bits == b.bits and a.shape == b.shape and a.scale == b.scale and a.signed == b.signed
    return (a.data + b.data) & mask(a.bits), a


def sh(p, d, bits, signed=False, scale=0):
    return shares(p.role, d, bits, scale=scale, signed=signed)


# ----------------------------------------------------------------------------------------------
def test_mul_ref_is_exact(rng):
    """The uint64 reference agrees with Python integers."""
    for m, n, l, sx, sy in [(64, 64, 64, True, True), (37, 8, 45, True, False), (63, 2, 60, False, True)]:
        x, y = random_ring(rng, 50, m), random_ring(rng, 50, n)
        vx = [int(v) - ((1 << m) if sx and v >> (m - 1) else 0) for v in x.tolist()]
        vy = [int(v) - ((1 << n) if sy and v >> (n - 1) else 0) for v in y.tolist()]
        want = np.array([(a * b) % (1 << l) for a, b in zip(vx, vy)], dtype=U64)
        assert (M.mul_ref(x, y, m, n, l, sx, sy) == want).all()


CONFIGS = [  # (m, n, ℓ)
    (1, 1, 1), (1, 1, 2), (2, 2, 4), (8, 8, 16), (8, 8, 8), (8, 8, 5), (16, 16, 32), (16, 16, 20),
    (7, 31, 38), (7, 31, 20), (31, 7, 38), (32, 32, 64), (32, 32, 40), (37, 8, 45), (37, 8, 40),
    (8, 37, 45), (64, 64, 64), (63, 2, 64), (2, 63, 50), (1, 64, 64), (64, 1, 65 - 1), (16, 1, 17),
]


SIGNS = [(False, False), (True, True), (True, False), (False, True)]
# fast set: every configuration once, signedness rotating; all four for the central ones
MUL_FAST = ([(m, n, l) + SIGNS[i % 4] for i, (m, n, l) in enumerate(CONFIGS)]
            + [(16, 16, 32) + sg for sg in SIGNS[1:]] + [(7, 31, 38) + sg for sg in SIGNS[1:]]
            + [(64, 64, 64, False, False), (37, 8, 45, True, True)])


def mul_case(parties, rng, m, n, l, sx, sy):
    (x0, x1, x), (y0, y1, y) = operands(rng, m, n)
    z, out = run(parties,
                 lambda p: M.mul(p, sh(p, x0, m, sx, 3), sh(p, y0, n, sy, 4), l),
                 lambda p: M.mul(p, sh(p, x1, m, sx, 3), sh(p, y1, n, sy, 4), l))
    assert (z == M.mul_ref(x, y, m, n, l, sx, sy)).all()
    assert out.bits == l and out.scale == 7 and out.signed == (sx or sy)


@pytest.mark.parametrize("m,n,l,sx,sy", MUL_FAST)
def test_mul(parties, rng, m, n, l, sx, sy):
    mul_case(parties, rng, m, n, l, sx, sy)


@pytest.mark.slow
@pytest.mark.parametrize("m,n,l", CONFIGS)
@pytest.mark.parametrize("sx,sy", SIGNS)
def test_mul_full(parties, rng, m, n, l, sx, sy):
    mul_case(parties, rng, m, n, l, sx, sy)


MSB_CONFIGS = [(16, 16, 32), (7, 31, 38), (37, 8, 45), (1, 1, 2), (2, 2, 4), (64, 64, 64), (8, 8, 16), (31, 7, 38)]
MSB_FAST = [(16, 16, 32, True, True, k) for k in ("x", "y", "both")] + [
    (7, 31, 38, False, True, "both"), (37, 8, 45, True, True, "x"), (1, 1, 2, True, True, "both"),
    (2, 2, 4, False, False, "both"), (8, 8, 16, True, False, "y"), (31, 7, 38, True, True, "both")]


def mul_msb_case(parties, rng, m, n, l, sx, sy, known):
    (x0, x1, x), (y0, y1, y) = operands(rng, m, n, n_random=60)
    mx0, mx1 = msb_shares(rng, x, m)
    my0, my1 = msb_shares(rng, y, n)
    kx, ky = known in ("x", "both"), known in ("y", "both")

    def job(xd, yd, mxd, myd):
        return lambda p: M.mul(p, sh(p, xd, m, sx), sh(p, yd, n, sy), l,
                               msb_x=sh(p, mxd, 1) if kx else None, msb_y=sh(p, myd, 1) if ky else None)

    z, _ = run(parties, job(x0, y0, mx0, my0), job(x1, y1, mx1, my1))
    assert (z == M.mul_ref(x, y, m, n, l, sx, sy)).all()


@pytest.mark.parametrize("m,n,l,sx,sy,known", MSB_FAST)
def test_mul_known_msb(parties, rng, m, n, l, sx, sy, known):
    mul_msb_case(parties, rng, m, n, l, sx, sy, known)


@pytest.mark.slow
@pytest.mark.parametrize("m,n,l", MSB_CONFIGS)
@pytest.mark.parametrize("sx,sy", SIGNS)
@pytest.mark.parametrize("known", ["x", "y", "both"])
def test_mul_known_msb_full(parties, rng, m, n, l, sx, sy, known):
    mul_msb_case(parties, rng, m, n, l, sx, sy, known)


def test_mul_signed_override_and_shapes(parties, rng):
    m, n, l = 12, 9, 21
    x0, x1 = random_ring(rng, 24, m).reshape(2, 3, 4), random_ring(rng, 24, m).reshape(2, 3, 4)
    y0, y1 = random_ring(rng, 24, n).reshape(2, 3, 4), random_ring(rng, 24, n).reshape(2, 3, 4)
    x, y = (x0 + x1) & mask(m), (y0 + y1) & mask(n)
    z, out = run(parties, lambda p: M.mul(p, sh(p, x0, m), sh(p, y0, n), l, signed=True),
                 lambda p: M.mul(p, sh(p, x1, m), sh(p, y1, n), l, signed=True))
    assert out.shape == (2, 3, 4) and out.signed
    assert (z == M.mul_ref(x, y, m, n, l, True, True)).all()
    # empty input: no communication needed
    z, out = run(parties, lambda p: M.mul(p, sh(p, x0[:0], m), sh(p, y0[:0], n), l),
                 lambda p: M.mul(p, sh(p, x1[:0], m), sh(p, y1[:0], n), l))
    assert out.shape == (0, 3, 4)


def test_mul_real_numbers(parties, rng):
    """Fixed point: 16-bit scale-12 values times each other → 32 bits, scale 24."""
    from sirnn.protocols.ring import decode, encode
    a, b = rng.uniform(-7, 7, 200), rng.uniform(-7, 7, 200)
    xa, yb = encode(a, 16, 12), encode(b, 16, 12)
    x0, x1 = split_as(xa, 16, rng, ("random",))
    y0, y1 = split_as(yb, 16, rng, ("random",))
    z, out = run(parties, lambda p: M.mul(p, sh(p, x0, 16, True, 12), sh(p, y0, 16, True, 12), 32),
                 lambda p: M.mul(p, sh(p, x1, 16, True, 12), sh(p, y1, 16, True, 12), 32))
    got = decode(z, 32, out.scale)
    want = decode(xa, 16, 12) * decode(yb, 16, 12)
    assert np.array_equal(got, want)


def test_mul_parameter_errors(parties):
    p = parties.contexts[0]
    x, y = shares(ALICE, np.zeros(4, U64), 8), shares(ALICE, np.zeros(4, U64), 8)
    with pytest.raises(ParameterError, match="bits_out"):
        M.mul(p, x, y, 17)
    with pytest.raises(ParameterError, match="bits_out"):
        M.mul(p, x, y, 0)
    with pytest.raises(ParameterError, match="shapes"):
        M.mul(p, x, shares(ALICE, np.zeros(5, U64), 8), 16)
    with pytest.raises(ParameterError, match="msb_x"):
        M.mul(p, x, y, 16, msb_x=shares(ALICE, np.zeros(4, U64), 2))
    with pytest.raises(ParameterError, match="msb_y"):
        M.mul(p, x, y, 16, msb_y=shares(ALICE, np.zeros(3, U64), 1))
    with pytest.raises(ParameterError, match="x must be a Share"):
        M.mul(p, np.zeros(4, U64), y, 16)
    with pytest.raises(ParameterError, match="signed"):
        M.mul(p, x, y, 16, signed="yes")
    with pytest.raises(ParameterError, match="inner dimensions"):
        M.matmul(p, x.reshape(2, 2), y.reshape(4, 1), 16)
    with pytest.raises(ParameterError, match="2-D"):
        M.matmul(p, x, y.reshape(4, 1), 16)
    with pytest.raises(ParameterError, match="owner"):
        M.mul_known(p, 2, np.zeros(4), x, 8)
    with pytest.raises(ParameterError, match="w_bits"):
        M.mul_known(p, ALICE, np.zeros(4, np.int64), x, 8, w_bits=65)
    with pytest.raises(ParameterError, match="out of range"):
        M.mul_known(p, ALICE, np.array([0, 0, 0, 200]), x, 16, w_bits=8)
    with pytest.raises(ParameterError, match="shape"):
        M.mul_known(p, ALICE, np.zeros(3, np.int64), x, 16, w_bits=8)
    with pytest.raises(ParameterError, match="bits_out"):
        M.mul_known(p, ALICE, np.zeros(4, np.int64), x, 13, w_bits=4)
    with pytest.raises(ParameterError, match="only the owner"):
        M.mul_known(p, BOB, np.zeros(4, np.int64), x, 8)
    with pytest.raises(ParameterError, match="w_shape"):
        M.matmul_known(parties.contexts[1], ALICE, None, x.reshape(4, 1), 8)
    with pytest.raises(ParameterError, match="inner dimensions"):
        M.matmul_known(p, ALICE, np.zeros((2, 3), np.int64), x.reshape(4, 1), 8)


# ----------------------------------------------------------------------------------------------
def matrices(rng, shape, bits):
    """A random matrix with edge values sprinkled in."""
    v = random_ring(rng, int(np.prod(shape)), bits)
    e = edge_values(bits)
    k = min(v.size, e.size)
    v[rng.choice(v.size, k, replace=False)] = e[:k]
    return v.reshape(shape)


MM_SHAPES = [(1, 1, 1), (3, 5, 2), (16, 8, 4), (2, 3, 9), (9, 3, 2), (4, 1, 6)]
MM_BITS = [(16, 16, 32), (8, 8, 8), (7, 31, 38), (37, 8, 45), (64, 64, 64), (1, 1, 2), (32, 32, 64), (8, 16, 20)]


MM_FAST = ([(a, b, c, 16, 16, 32) for a, b, c in MM_SHAPES]
           + [(2, 3, 9, 7, 31, 38), (9, 3, 2, 7, 31, 38), (3, 5, 2, 37, 8, 45), (3, 5, 2, 64, 64, 64),
              (4, 1, 6, 1, 1, 2), (16, 8, 4, 8, 8, 8), (1, 1, 1, 32, 32, 64), (2, 3, 9, 8, 16, 20)])


def matmul_case(parties, rng, a, b, c, m, n, l):
    X, Y = matrices(rng, (a, b), m), matrices(rng, (b, c), n)
    for hx, hy, sx, sy in [("random", "wrap", False, False), ("wrap", "nowrap", True, True),
                           ("nowrap", "random", True, False), ("random", "random", False, True)]:
        x0, x1 = split_as(X, m, rng, (hx,))
        y0, y1 = split_as(Y, n, rng, (hy,))
        z, out = run(parties, lambda p: M.matmul(p, sh(p, x0, m, sx, 1), sh(p, y0, n, sy, 2), l),
                     lambda p: M.matmul(p, sh(p, x1, m, sx, 1), sh(p, y1, n, sy, 2), l))
        assert out.shape == (a, c) and out.scale == 3 and out.signed == (sx or sy)
        assert (z == M.matmul_ref(X, Y, m, n, l, sx, sy)).all(), (hx, hy, sx, sy)


@pytest.mark.parametrize("a,b,c,m,n,l", MM_FAST)
def test_matmul(parties, rng, a, b, c, m, n, l):
    matmul_case(parties, rng, a, b, c, m, n, l)


@pytest.mark.slow
@pytest.mark.parametrize("a,b,c", MM_SHAPES)
@pytest.mark.parametrize("m,n,l", MM_BITS)
def test_matmul_full(parties, rng, a, b, c, m, n, l):
    matmul_case(parties, rng, a, b, c, m, n, l)


def test_matmul_ref_is_exact(rng):
    X, Y = random_ring(rng, 12, 64).reshape(3, 4), random_ring(rng, 8, 37).reshape(4, 2)
    vx = [[int(t) - (1 << 64 if t >> 63 else 0) for t in r] for r in X.tolist()]
    vy = [[int(t) for t in r] for r in Y.tolist()]
    want = [[sum(vx[i][k] * vy[k][j] for k in range(4)) % (1 << 50) for j in range(2)] for i in range(3)]
    assert (M.matmul_ref(X, Y, 64, 37, 50, True, False) == np.array(want, dtype=U64)).all()


@pytest.mark.parametrize("a,b,c,m,n,l", [(3, 5, 2, 16, 16, 32), (16, 8, 4, 37, 8, 45), (2, 3, 9, 8, 8, 16)])
def test_matmul_known_msb(parties, rng, a, b, c, m, n, l):
    X, Y = matrices(rng, (a, b), m), matrices(rng, (b, c), n)
    x0, x1 = split_as(X, m, rng, ("random",))
    y0, y1 = split_as(Y, n, rng, ("wrap",))
    mx0, mx1 = msb_shares(rng, X, m)
    my0, my1 = msb_shares(rng, Y, n)

    def job(xd, yd, mxd, myd):
        return lambda p: M.matmul(p, sh(p, xd, m, True), sh(p, yd, n, True), l,
                                  msb_x=sh(p, mxd, 1), msb_y=sh(p, myd, 1))

    z, _ = run(parties, job(x0, y0, mx0, my0), job(x1, y1, mx1, my1))
    assert (z == M.matmul_ref(X, Y, m, n, l, True, True)).all()


# ----------------------------------------------------------------------------------------------
KNOWN = [  # (m = x bits, w_bits (None: ℓ), ℓ)
    (16, 16, 32), (16, None, 32), (16, 4, 20), (8, 8, 8), (7, 31, 38), (37, 8, 45), (64, 64, 64),
    (1, 1, 2), (32, 32, 64), (8, 37, 40), (16, 3, 16),
]


def known_values(rng, bits, count, signed):
    v = np.concatenate([edge_values(bits), random_ring(rng, count, bits)])[:count]
    rng.shuffle(v)
    return to_signed(v, bits) if signed else v  # signed ints, or unsigned ring elements


KNOWN_FAST = ([(16, 16, 32, o) + sg for o in (ALICE, BOB) for sg in SIGNS]
              + [(m, wb, l, (ALICE, BOB)[i % 2]) + SIGNS[(i + 1) % 4] for i, (m, wb, l) in enumerate(KNOWN[1:])])


def mul_known_case(parties, rng, m, wb, l, owner, ws, sx):
    (x0, x1, x), _ = operands(rng, m, 2, n_random=60)
    w = known_values(rng, wb or l, x.size, ws)
    kw = dict(w_bits=wb, w_signed=ws, w_scale=5)

    def job(xd, mine):
        return lambda p: M.mul_known(p, owner, w if mine else None, sh(p, xd, m, sx, 2), l, **kw)

    z, out = run(parties, job(x0, owner == ALICE), job(x1, owner == BOB))
    assert out.scale == 7 and out.signed == (ws or sx)
    assert (z == M.mul_known_ref(w, x, m, l, w_bits=wb, w_signed=ws, x_signed=sx)).all()
    # with the MSB of x known
    m0, m1 = msb_shares(rng, x, m)
    z, _ = run(parties,
               lambda p: M.mul_known(p, owner, w if owner == ALICE else None, sh(p, x0, m, sx), l,
                                     msb_x=sh(p, m0, 1), **kw),
               lambda p: M.mul_known(p, owner, w if owner == BOB else None, sh(p, x1, m, sx), l,
                                     msb_x=sh(p, m1, 1), **kw))
    assert (z == M.mul_known_ref(w, x, m, l, w_bits=wb, w_signed=ws, x_signed=sx)).all()




@pytest.mark.parametrize("m,wb,l,owner,ws,sx", KNOWN_FAST)
def test_mul_known(parties, rng, m, wb, l, owner, ws, sx):
    mul_known_case(parties, rng, m, wb, l, owner, ws, sx)


@pytest.mark.slow
@pytest.mark.parametrize("m,wb,l", KNOWN)
@pytest.mark.parametrize("owner", [ALICE, BOB])
@pytest.mark.parametrize("ws,sx", SIGNS)
def test_mul_known_full(parties, rng, m, wb, l, owner, ws, sx):
    mul_known_case(parties, rng, m, wb, l, owner, ws, sx)


MMK_SHAPES = [(1, 1, 1), (3, 5, 2), (16, 8, 4), (2, 3, 9), (9, 3, 2)]
MMK_BITS = [(16, 16, 32), (16, 4, 20), (37, 8, 45), (64, 64, 64), (8, None, 8)]
MMK_FAST = ([(a, b, c, 16, 16, 32, ALICE) for a, b, c in MMK_SHAPES]
            + [(3, 5, 2, 16, 16, 32, BOB), (2, 3, 9, 16, 4, 20, BOB), (9, 3, 2, 16, 4, 20, ALICE),
               (16, 8, 4, 37, 8, 45, BOB), (3, 5, 2, 64, 64, 64, ALICE), (1, 1, 1, 8, None, 8, BOB)])


def matmul_known_case(parties, rng, a, b, c, m, wb, l, owner):
    for w_left, ws, sx, how in [(True, True, True, "random"), (False, False, True, "wrap"),
                                (True, False, False, "nowrap"), (False, True, False, "random")]:
        wshape, xshape = ((a, b), (b, c)) if w_left else ((b, c), (a, b))
        W = known_values(rng, wb or l, a * b if w_left else b * c, ws).reshape(wshape)
        X = matrices(rng, xshape, m)
        x0, x1 = split_as(X, m, rng, (how,))
        kw = dict(w_bits=wb, w_signed=ws, w_left=w_left, w_shape=wshape)

        def job(xd, mine):
            return lambda p: M.matmul_known(p, owner, W if mine else None, sh(p, xd, m, sx), l, **kw)

        z, out = run(parties, job(x0, owner == ALICE), job(x1, owner == BOB))
        assert out.shape == (a, c)
        want = M.matmul_known_ref(W, X, m, l, w_bits=wb, w_signed=ws, x_signed=sx, w_left=w_left)
        assert (z == want).all(), (w_left, ws, sx, how)




@pytest.mark.parametrize("a,b,c,m,wb,l,owner", MMK_FAST)
def test_matmul_known(parties, rng, a, b, c, m, wb, l, owner):
    matmul_known_case(parties, rng, a, b, c, m, wb, l, owner)


@pytest.mark.slow
@pytest.mark.parametrize("a,b,c", MMK_SHAPES)
@pytest.mark.parametrize("m,wb,l", MMK_BITS)
@pytest.mark.parametrize("owner", [ALICE, BOB])
def test_matmul_known_full(parties, rng, a, b, c, m, wb, l, owner):
    matmul_known_case(parties, rng, a, b, c, m, wb, l, owner)


# ----------------------------------------------------------------------------------------------
# communication: measured == derived formula (within 5%), rounds on fresh channels
# ----------------------------------------------------------------------------------------------
def cross_cost(count, k, vec, l):
    return sum(count * (128 + vec * (l - i)) for i in range(k))


M16 = 2 * (256 + 512) + 1 * (144 + 4)  # millionaire on 16 bits: two 8-bit leaves, 1 AND = 1684


@pytest.fixture(scope="module")
def fresh():
    """A factory of new party pairs (IKNP engine): round counts start from depth 0."""
    from sirnn.protocols.party import Party
    from sirnn.transport import ThreadedPair
    made = []

    def make():
        pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([40 + role]) * 16,
                                                           ot="iknp"))  # the formulas count IKNP OTs
        made.append(pair)
        return pair

    yield make
    for pair in made:
        for ch in pair.channels:
            ch.close()


def measure(pair, fa, fb):
    """(bytes sent by both parties, rounds) of one run on a pair (rounds exact on a fresh pair)."""
    before = [c.stats.copy() for c in pair.channels]
    base = max(b.rounds for b in before)
    pair.run_split(fa, fb)
    after = [c.stats for c in pair.channels]
    sent = sum(a.bytes_sent - b.bytes_sent for a, b in zip(after, before))
    return sent, max(a.rounds for a in after) - base


def fresh_measure(fresh, fa, fb):
    return measure(fresh(), fa, fb)


N_COST = 4096


def check(got_bytes, want_bits):
    want = want_bits / 8
    assert abs(got_bytes - want) / want < 0.05, (got_bytes, want)


def test_mul_cost(fresh, rng):
    m = n = 16
    l = 32
    x0, x1, y0, y1 = (random_ring(rng, N_COST, 16) for _ in range(4))
    got, rounds = fresh_measure(fresh, lambda p: M.mul(p, sh(p, x0, m), sh(p, y0, n), l),
                                lambda p: M.mul(p, sh(p, x1, m), sh(p, y1, n), l))
    # cross terms: 2·Σ_{i<16}(128 + 32 − i) = 4880; MUXes 2·2·(128 + 16) = 576; wraps 2·1684
    assert compare.millionaire_cost_bits(16) == M16
    want = N_COST * (4880 + 576 + 2 * M16)
    assert 2 * cross_cost(1, 16, 1, 32) == 4880
    check(got, want)
    check(got, M.mul_cost_bits(m, n, l, count=N_COST))
    assert abs(got / N_COST - 1103) < 1  # 8824 bits per element
    assert rounds == 5  # wrap: leaves (2) + one AND level, then the COT round
    # signed operands cost the same
    got_s, rounds_s = fresh_measure(fresh, lambda p: M.mul(p, sh(p, x0, m, True), sh(p, y0, n, True), l),
                                    lambda p: M.mul(p, sh(p, x1, m, True), sh(p, y1, n, True), l))
    check(got_s, want)
    assert rounds_s == 5
    # MSBs known (secret shares): MSB-to-Wrap folded into the COT round, one 1-of-4 OT per
    # operand and holder carrying the wrap term (256 + 4·16 each), no wrap protocol before it
    b0, b1 = rng.integers(0, 2, (2, N_COST)).astype(U64)
    got_k, rounds_k = fresh_measure(
        fresh,
        lambda p: M.mul(p, sh(p, x0, m, True), sh(p, y0, n, True), l, msb_x=sh(p, b0, 1), msb_y=sh(p, b1, 1)),
        lambda p: M.mul(p, sh(p, x1, m, True), sh(p, y1, n, True), l, msb_x=sh(p, b1, 1), msb_y=sh(p, b0, 1)))
    check(got_k, N_COST * (4880 + 4 * (256 + 4 * 16)))
    check(got_k, M.mul_cost_bits(m, n, l, True, True, count=N_COST))
    assert rounds_k == 2


def test_mul_cost_small_and_mixed(fresh, rng):
    """8 × 8 → 16 (wraps by 1-of-256 OT lookups) and (7, 31) → 38 (the 7-bit operand drives;
    the two wraps use different methods and run one after the other)."""
    x0, x1, y0, y1 = (random_ring(rng, N_COST, 8) for _ in range(4))
    got, rounds = fresh_measure(fresh, lambda p: M.mul(p, sh(p, x0, 8), sh(p, y0, 8), 16),
                                lambda p: M.mul(p, sh(p, x1, 8), sh(p, y1, 8), 16))
    check(got, N_COST * (2 * cross_cost(1, 8, 1, 16) + 2 * 2 * (128 + 8) + 2 * (256 + 256)))
    assert rounds == 4
    m, n, l = 7, 31, 38
    x0, x1 = random_ring(rng, N_COST, m), random_ring(rng, N_COST, m)
    y0, y1 = random_ring(rng, N_COST, n), random_ring(rng, N_COST, n)
    got, rounds = fresh_measure(fresh, lambda p: M.mul(p, sh(p, x0, m), sh(p, y0, n), l),
                                lambda p: M.mul(p, sh(p, x1, m), sh(p, y1, n), l))
    want = N_COST * (2 * cross_cost(1, 7, 1, l) + 2 * (128 + l - m) + 2 * (128 + l - n)
                     + (256 + 128) + compare.millionaire_cost_bits(31))
    check(got, want)
    check(got, M.mul_cost_bits(m, n, l, count=N_COST))
    assert rounds == 2 + 4 + 2  # LUT wrap, millionaire on 31 bits (four 8-bit leaves), COT phase


def test_matmul_cost(fresh, rng):
    a, b, c, m, n, l = 64, 32, 16, 16, 16, 32
    X0, X1 = random_ring(rng, a * b, m).reshape(a, b), random_ring(rng, a * b, m).reshape(a, b)
    Y0, Y1 = random_ring(rng, b * c, n).reshape(b, c), random_ring(rng, b * c, n).reshape(b, c)
    got, rounds = fresh_measure(fresh, lambda p: M.matmul(p, sh(p, X0, m), sh(p, Y0, n), l),
                                lambda p: M.matmul(p, sh(p, X1, m), sh(p, Y1, n), l))
    # y's bits drive (b·c COTs per bit, each carrying a column of a values) — cheaper than x's here
    assert cross_cost(b * c, 16, a, l) < cross_cost(a * b, 16, c, l)
    want = (2 * cross_cost(b * c, 16, a, l)
            + 2 * a * b * (128 + c * (l - m)) + 2 * b * c * (128 + a * (l - n))
            + (a * b + b * c) * M16)
    check(got, want)
    check(got, M.matmul_cost_bits(a, b, c, m, n, l))
    assert abs(got / (a * c) - 4254.25) < 1
    assert rounds == 5
    # the other orientation: x's bits drive, carrying rows of y
    a, b, c = 4, 32, 64
    X0, X1 = random_ring(rng, a * b, m).reshape(a, b), random_ring(rng, a * b, m).reshape(a, b)
    Y0, Y1 = random_ring(rng, b * c, n).reshape(b, c), random_ring(rng, b * c, n).reshape(b, c)
    got, _ = fresh_measure(fresh, lambda p: M.matmul(p, sh(p, X0, m), sh(p, Y0, n), l),
                           lambda p: M.matmul(p, sh(p, X1, m), sh(p, Y1, n), l))
    assert cross_cost(a * b, 16, c, l) < cross_cost(b * c, 16, a, l)
    check(got, 2 * cross_cost(a * b, 16, c, l) + 2 * a * b * (128 + c * (l - m))
          + 2 * b * c * (128 + a * (l - n)) + (a * b + b * c) * M16)


def test_known_cost(fresh, rng):
    m, l = 16, 32
    x0, x1 = random_ring(rng, N_COST, m), random_ring(rng, N_COST, m)
    w = to_signed(random_ring(rng, N_COST, 16), 16)
    got, rounds = fresh_measure(fresh, lambda p: M.mul_known(p, ALICE, w, sh(p, x0, m, True), l, w_bits=16),
                                lambda p: M.mul_known(p, ALICE, None, sh(p, x1, m, True), l, w_bits=16))
    check(got, N_COST * (cross_cost(1, 16, 1, l) + (128 + l - m) + M16))
    check(got, M.mul_known_cost_bits(m, l, 16, count=N_COST))
    assert abs(got / N_COST - 533.5) < 1
    assert rounds == 4  # wrap (3: its last AND round carries BOB's COT matrix too), then ALICE's corrections
    # w with fewer bits than x drives the OTs: 4 bits → 4 COTs
    got, rounds = fresh_measure(fresh, lambda p: M.mul_known(p, BOB, None, sh(p, x0, m), 20, w_bits=4),
                                lambda p: M.mul_known(p, BOB, w % 8, sh(p, x1, m), 20, w_bits=4))
    check(got, N_COST * (cross_cost(1, 4, 1, 20) + (128 + 20 - m) + M16))
    check(got, M.mul_known_cost_bits(m, 20, 4, count=N_COST))
    # matmul_known: W (100, 32) 16-bit weights times x (32, 4) 16-bit activations → 32 bits
    a, b, c = 100, 32, 4
    W = to_signed(random_ring(rng, a * b, 16), 16).reshape(a, b)
    X0, X1 = random_ring(rng, b * c, m).reshape(b, c), random_ring(rng, b * c, m).reshape(b, c)
    got, rounds = fresh_measure(
        fresh, lambda p: M.matmul_known(p, ALICE, W, sh(p, X0, m, True), l, w_bits=16),
        lambda p: M.matmul_known(p, ALICE, None, sh(p, X1, m, True), l, w_bits=16, w_shape=(a, b)))
    check(got, cross_cost(b * c, 16, a, l) + b * c * (128 + a * (l - m)) + b * c * M16)
    check(got, M.matmul_known_cost_bits(a, b, c, m, l, 16))
    assert rounds == 4


# -- operands with a public MSB: the wrap folds into the COT round -------------------------------
def _pub(p, bits01):
    from sirnn.protocols.share import PublicBits
    return PublicBits(bits01, p.role)


@pytest.mark.parametrize("m,n,l,sx,sy,top", [(16, 16, 32, False, False, 0), (17, 17, 34, False, False, 0),
                                              (16, 12, 28, True, True, 0), (16, 16, 30, True, False, 0),
                                              (8, 16, 20, False, True, 1), (13, 9, 22, True, False, 1)])
def test_mul_public_msb(parties, rng, m, n, l, sx, sy, top):
    """Public MSBs (0: non-negative below 2^{m−1}; 1: at or above it) on both operands, signed and
    unsigned, full width ℓ = m + n included: exact, and for mul/matmul/mul_known/matmul_known."""
    N = 600
    x = random_ring(rng, N, m - 1) | (U64(top) << U64(m - 1))
    y = random_ring(rng, N, n - 1) | (U64(top) << U64(n - 1))
    x0, x1 = split_as(x, m, rng, SPLITS)
    y0, y1 = split_as(y, n, rng, ("wrap", "random", "nowrap"))
    pb = np.full(N, top)
    got, _ = run(parties, lambda p: M.mul(p, sh(p, x0, m, sx), sh(p, y0, n, sy), l, msb_x=_pub(p, pb), msb_y=_pub(p, pb)),
                 lambda p: M.mul(p, sh(p, x1, m, sx), sh(p, y1, n, sy), l, msb_x=_pub(p, pb), msb_y=_pub(p, pb)))
    assert (got == M.mul_ref(x, y, m, n, l, sx, sy)).all()
    # one public, one secret-shared MSB
    r0, r1 = msb_shares(rng, y, n)
    got, _ = run(parties, lambda p: M.mul(p, sh(p, x0, m, sx), sh(p, y0, n, sy), l, msb_x=_pub(p, pb), msb_y=sh(p, r0, 1)),
                 lambda p: M.mul(p, sh(p, x1, m, sx), sh(p, y1, n, sy), l, msb_x=_pub(p, pb), msb_y=sh(p, r1, 1)))
    assert (got == M.mul_ref(x, y, m, n, l, sx, sy)).all()
    # matrices (a, b)·(b, c)
    a, b, c = 6, 10, 10
    X, Y = x[:a * b].reshape(a, b), y[:b * c].reshape(b, c)
    X0, Y0 = x0[:a * b].reshape(a, b), y0[:b * c].reshape(b, c)
    X1, Y1 = (X - X0) & mask(m), (Y - Y0) & mask(n)
    got, _ = run(parties,
                 lambda p: M.matmul(p, sh(p, X0, m, sx), sh(p, Y0, n, sy), l, msb_x=_pub(p, np.full((a, b), top)),
                                    msb_y=_pub(p, np.full((b, c), top))),
                 lambda p: M.matmul(p, sh(p, X1, m, sx), sh(p, Y1, n, sy), l, msb_x=_pub(p, np.full((a, b), top)),
                                    msb_y=_pub(p, np.full((b, c), top))))
    assert (got == M.matmul_ref(X, Y, m, n, l, sx, sy)).all()
    # known operands (ALICE's w, n-bit signed) times x with a public MSB
    w = to_signed(y, n)
    got, _ = run(parties, lambda p: M.mul_known(p, ALICE, w, sh(p, x0, m, sx), l, w_bits=n, msb_x=_pub(p, pb)),
                 lambda p: M.mul_known(p, ALICE, None, sh(p, x1, m, sx), l, w_bits=n, msb_x=_pub(p, pb)))
    assert (got == M.mul_known_ref(w, x, m, l, w_bits=n, x_signed=sx)).all()
    Wk = to_signed(Y, n).T[:a]  # (a, b)
    Xm0, Xm1 = X0.T, X1.T  # (b, a) as (b, c')
    for left in (True, False):
        if left:
            fa = lambda p: M.matmul_known(p, ALICE, Wk, sh(p, Xm0, m, sx), l, w_bits=n, msb_x=_pub(p, np.full((b, a), top)))
            fb = lambda p: M.matmul_known(p, ALICE, None, sh(p, Xm1, m, sx), l, w_bits=n, w_shape=Wk.shape,
                                          msb_x=_pub(p, np.full((b, a), top)))
            want = M.matmul_known_ref(Wk, X.T, m, l, w_bits=n, x_signed=sx)
        else:
            fa = lambda p: M.matmul_known(p, ALICE, Wk.T, sh(p, X0, m, sx), l, w_bits=n, w_left=False,
                                          msb_x=_pub(p, np.full((a, b), top)))
            fb = lambda p: M.matmul_known(p, ALICE, None, sh(p, X1, m, sx), l, w_bits=n, w_shape=(b, a),
                                          w_left=False, msb_x=_pub(p, np.full((a, b), top)))
            want = M.matmul_known_ref(Wk.T, X, m, l, w_bits=n, x_signed=sx, w_left=False)
        got, _ = run(parties, fa, fb)
        assert (got == want).all(), left


def test_mul_public_msb_cost(fresh, rng):
    """Both MSBs public: no wrap protocol at all, the product in the 2 rounds of its COTs."""
    m = n = 16
    l = 32
    x0, x1, y0, y1 = (random_ring(rng, N_COST, 16) for _ in range(4))
    z = np.zeros(N_COST, np.int64)
    got, rounds = fresh_measure(
        fresh, lambda p: M.mul(p, sh(p, x0, m), sh(p, y0, n), l, msb_x=_pub(p, z), msb_y=_pub(p, z)),
        lambda p: M.mul(p, sh(p, x1, m), sh(p, y1, n), l, msb_x=_pub(p, z), msb_y=_pub(p, z)))
    check(got, N_COST * (4880 + 576))
    check(got, M.mul_cost_bits(m, n, l, "public", "public", count=N_COST))
    assert rounds == 2
    # one public, one by millionaire (16 bits: 3 rounds) before the COT round
    got, rounds = fresh_measure(
        fresh, lambda p: M.mul(p, sh(p, x0, m), sh(p, y0, n), l, msb_x=_pub(p, z)),
        lambda p: M.mul(p, sh(p, x1, m), sh(p, y1, n), l, msb_x=_pub(p, z)))
    check(got, M.mul_cost_bits(m, n, l, "public", False, count=N_COST))
    assert rounds == 5
