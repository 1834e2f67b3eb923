"""ReLU, ReLU6, max-pooling and argmax: secure result == cleartext functionality, bit for bit."""

import numpy as np
import pytest

from blockhelp import BITWIDTHS, all_splits, edge_values, random_ring, run2, shares, split
from sirnn.errors import ParameterError
from sirnn.protocols import activation as A
from sirnn.protocols.ring import U64, mask
from sirnn.protocols.share import Share


def signed_int(x, bits):
    return [int(v) - (1 << bits) if int(v) >> (bits - 1) else int(v) for v in np.asarray(x, U64)]


def ring(vals, bits):
    return np.array([v % (1 << bits) for v in vals], U64)


def stats_delta(parties, fn):
    before = [c.stats.copy() for c in parties.channels]
    out = fn()
    d = [c.stats - b for c, b in zip(parties.channels, before)]
    return out, d[0].bytes_sent + d[1].bytes_sent, max(x.rounds for x in d)


# -- ReLU / ReLU6 --------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", BITWIDTHS)
def test_relu(parties, rng, bits):
    x0, x1, x = all_splits(np.concatenate([edge_values(bits), random_ring(rng, 300, bits)]), bits, rng)
    got = run2(parties, lambda p, v: A.relu(p, shares(p.role, v, bits, scale=min(bits - 1, 3))), x0, x1)
    assert (got == A.relu_ref(x, bits)).all()
    assert list(A.relu_ref(x, bits)) == [int(v) if s >= 0 else 0 for v, s in zip(x, signed_int(x, bits))]


def relu6_values(rng, bits, scale):
    C = 6 << scale
    h = 1 << (bits - 1)
    around = [C - 2, C - 1, C, C + 1, C + 2, -C, -C - 1, 0, 1, -1, 2, -2, h - 1, -h, -h + 1, h - 2,
              -h + C, -h + C - 1, -h + C + 1, (1 << scale) - 1, 1 << scale]
    vals = [v for v in around if -h <= v < h]
    return np.concatenate([ring(vals, bits), edge_values(bits), random_ring(rng, 200, bits)])


@pytest.mark.parametrize("bits", [k for k in BITWIDTHS if k >= 4])
def test_relu6(parties, rng, bits):
    for scale in sorted({0, (bits - 4) // 2, bits - 4}):
        x0, x1, x = all_splits(relu6_values(rng, bits, scale), bits, rng)
        got = run2(parties, lambda p, v: A.relu6(p, shares(p.role, v, bits, scale=scale)), x0, x1)
        ref = A.relu6_ref(x, bits, scale)
        assert (got == ref).all(), scale
        want = [min(max(s, 0), 6 << scale) for s in signed_int(x, bits)]
        assert [int(v) for v in ref] == want


def test_relu_errors(parties):
    p = parties.contexts[0]
    with pytest.raises(ParameterError, match="relu6 x.*scale"):
        A.relu6(p, Share(np.zeros(3, U64), 16, 13, True, p.role))
    with pytest.raises(ParameterError, match="signed"):
        A.relu(p, Share(np.zeros(3, U64), 16, 0, False, p.role))
    with pytest.raises(ParameterError, match="Share"):
        A.relu6(p, np.zeros(3, U64))


# -- maxpool / argmax ----------------------------------------------------------------------------
def pool_values(rng, bits, shape):
    """Values in the non-overflowing range [−2^{ℓ−2}, 2^{ℓ−2}), many ties and negatives."""
    q = 1 << max(bits - 2, 0)
    pool = np.array(sorted(v for v in {-q, q - 1, 0, -1, 1, -2, 2} if -q <= v < q))
    small = rng.choice(pool, size=shape)
    wide = rng.integers(-q, q, size=shape, endpoint=False) if q > 1 else rng.integers(-1, 1, size=shape)
    v = np.where(rng.random(shape) < 0.5, small, wide).astype(object)
    return np.array([int(t) % (1 << bits) for t in v.ravel()], U64).reshape(shape)


@pytest.mark.parametrize("bits", BITWIDTHS)
def test_maxpool_and_argmax_last_axis(parties, rng, bits):
    for L in (1, 2, 3, 5, 8):
        x = pool_values(rng, bits, (30, L))
        for how in ("random", "wrap"):
            x0, x1 = split(x, bits, rng, how)
            got = run2(parties, lambda p, v: A.maxpool(p, shares(p.role, v, bits)), x0, x1)
            assert got.shape == (30,) and (got == A.maxpool_ref(x, bits)).all()
            sx = np.array([signed_int(r, bits) for r in x], dtype=object)
            plain = bits > 1  # no two distinct 1-bit values have a non-overflowing difference
            assert not plain or signed_int(got, bits) == list(sx.max(axis=1))
            res = parties.run_split(lambda p: A.argmax(p, shares(p.role, x0, bits), return_max=True),
                                    lambda p: A.argmax(p, shares(p.role, x1, bits), return_max=True))
            (ia, ma), (ib, mb) = res
            idx = (ia.data + ib.data) & mask(ia.bits)
            assert ia.bits == max(1, (L - 1).bit_length())
            ref_i, ref_v = A.argmax_ref(x, bits)
            assert (idx == ref_i).all() and (((ma.data + mb.data) & mask(bits)) == ref_v).all()
            assert not plain or list(idx) == [int(np.argmax([int(t) for t in r])) for r in sx]  # first wins


def test_argmax_ties_first_index(parties, rng):
    bits = 16
    rows = [[3, 3, 3, 3, 3], [-5, 7, 7, -5, 7], [-1, -1, -2, -1, -3], [0, 0, 0, 0, 1], [9, -9, 9, 9, 9]]
    x = np.array([ring(r, bits) for r in rows])
    x0, x1 = split(x, bits, rng)
    got = run2(parties, lambda p, v: A.argmax(p, shares(p.role, v, bits), index_bits=32), x0, x1)
    assert list(got) == [0, 1, 0, 4, 0]


def test_ring_rule_outside_range(parties, rng):
    """Differences that overflow follow the documented ring rule, exactly as the reference."""
    bits = 8
    x = random_ring(rng, 64 * 6, bits).reshape(64, 6)
    x0, x1 = split(x, bits, rng)
    got = run2(parties, lambda p, v: A.maxpool(p, shares(p.role, v, bits)), x0, x1)
    assert (got == A.maxpool_ref(x, bits)).all()
    got = run2(parties, lambda p, v: A.argmax(p, shares(p.role, v, bits)), x0, x1)
    assert (got == A.argmax_ref(x, bits)[0]).all()


@pytest.mark.parametrize("bits", [8, 32, 64])
def test_maxpool_2d(parties, rng, bits):
    x = pool_values(rng, bits, (2, 3, 7, 9))
    for window, stride in [((2, 2), None), (3, (2, 3)), ((1, 4), 1), ((7, 9), None)]:
        x0, x1, _ = all_splits(x, bits, rng)
        got = run2(parties, lambda p, v: A.maxpool(p, shares(p.role, v, bits), window, stride), x0, x1)
        ref = A.maxpool_ref(np.concatenate([x, x, x]), bits, window, stride)
        assert got.shape == ref.shape and (got == ref).all()
        # against a plain loop over windows on signed integers
        kh, kw = (window, window) if isinstance(window, int) else window
        sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
        sx = np.array(signed_int(x.ravel(), bits), dtype=object).reshape(x.shape)
        ho, wo = (7 - kh) // sh + 1, (9 - kw) // sw + 1
        want = np.empty(x.shape[:2] + (ho, wo), dtype=object)
        for i in range(ho):
            for j in range(wo):
                want[..., i, j] = sx[..., i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(-1, -2))
        assert signed_int(got[:2].ravel(), bits) == list(want.ravel())
    # axis argument
    x0, x1 = split(x, bits, rng)
    got = run2(parties, lambda p, v: A.maxpool(p, shares(p.role, v, bits), axis=1), x0, x1)
    assert (got == A.maxpool_ref(x, bits, axis=1)).all() and got.shape == (2, 7, 9)


def test_pool_errors(parties):
    p = parties.contexts[0]
    x = Share(np.zeros((4, 4), U64), 16, role=p.role)
    with pytest.raises(ParameterError, match="window"):
        A.maxpool(p, x, (5, 2))
    with pytest.raises(ParameterError, match="window"):
        A.maxpool(p, x, (0, 2))
    with pytest.raises(ParameterError, match="axis"):
        A.maxpool(p, x, axis=2)
    with pytest.raises(ParameterError, match="index_bits"):
        A.argmax(p, Share(np.zeros((2, 9), U64), 16, role=p.role), index_bits=3)
    with pytest.raises(ParameterError, match="last axis"):
        A.argmax(p, Share(np.zeros((2, 0), U64), 16, role=p.role))


# -- costs -----------------------------------------------------------------------------------------
def test_costs(parties, rng):
    """Bytes per element (both parties) at n = 4096. ReLU6 at 32 bits, scale 28: SCI sends 1,081."""
    n = 4096
    report = {}
    cases = [
        ("relu l=32", 32, 12, lambda p, s: A.relu(p, s), 540),
        ("relu6 l=32 s=28", 32, 28, lambda p, s: A.relu6(p, s), 640),
        ("relu6 l=16 s=12", 16, 12, lambda p, s: A.relu6(p, s), 360),
        ("maxpool 2x2 l=32 (per input)", 32, 12, lambda p, s: A.maxpool(p, s.reshape(64, 64), (2, 2)), 410),
        ("argmax L=4 l=32 (per input)", 32, 12, lambda p, s: A.argmax(p, s.reshape(1024, 4)), 420),
    ]
    for name, bits, scale, fn, bound in cases:
        x0, x1 = split(random_ring(rng, n, bits), bits, rng)
        _, nbytes, rounds = stats_delta(parties, lambda: parties.run_split(
            lambda p: fn(p, shares(p.role, x0, bits, scale)),
            lambda p: fn(p, shares(p.role, x1, bits, scale))))
        report[name] = (nbytes / n, rounds)
        assert nbytes / n <= bound, (name, nbytes / n)
    print("\n" + "\n".join(f"{k}: {v[0]:.1f} B/elem, {v[1]} rounds" for k, v in report.items()))
