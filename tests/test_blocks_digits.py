"""Digit decomposition, MSB of shifted values, MSNZB one-hot / index, one-hot dot products:
secure result == cleartext functionality, bit for bit."""

import numpy as np
import pytest

from blockhelp import BITWIDTHS, all_splits, edge_values, random_ring, run2, shares, split
from sirnn.errors import ParameterError
from sirnn.protocols import digits as D
from sirnn.protocols.ring import U64, mask
from sirnn.protocols.share import Share


def inputs(rng, bits, n=200):
    return np.concatenate([edge_values(bits), random_ring(rng, n, bits)])


def powers(bits):
    """2^k, 2^k − 1 and 2^k + 1 for every k < ℓ (mod 2^ℓ)."""
    p = U64(1) << np.arange(bits, dtype=U64)
    return np.concatenate([p, p - U64(1), p + U64(1)]) & mask(bits)


def stats_delta(parties, fn):
    before = [c.stats.copy() for c in parties.channels]
    out = fn()
    d = [c.stats - b for c, b in zip(parties.channels, before)]
    return out, d[0].bytes_sent + d[1].bytes_sent, max(x.rounds for x in d)


# -- digit decomposition -------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16, 31, 32, 37, 64])
@pytest.mark.parametrize("d", [1, 4, 8])
def test_digit_decompose(parties, rng, bits, d):
    x0, x1, x = all_splits(inputs(rng, bits, 120 if d == 1 else 200), bits, rng)
    a, b = parties.run_split(lambda p: D.digit_decompose(p, shares(p.role, x0, bits), d),
                             lambda p: D.digit_decompose(p, shares(p.role, x1, bits), d))
    ref = D.digit_decompose_ref(x, bits, d)
    widths = D.digit_widths(bits, d)
    assert len(a) == len(ref) == -(-bits // d) and sum(widths) == bits
    for sa, sb, r, w in zip(a, b, ref, widths):
        assert sa.bits == sb.bits == w and not sa.signed and sa.shape == x.shape
        assert (((sa.data + sb.data) & mask(w)) == r).all()
    # the digits recompose to x
    acc = sum(int(r[0]) << (d * i) for i, r in enumerate(ref))
    assert acc == int(x[0])


@pytest.mark.parametrize("bits,d", [(1, 4), (2, 4), (7, 4), (7, 8), (2, 1), (63, 4)])
def test_digit_decompose_small_and_odd(parties, rng, bits, d):
    x0, x1, x = all_splits(inputs(rng, bits, 60), bits, rng)
    a, b = parties.run_split(lambda p: D.digit_decompose(p, shares(p.role, x0.reshape(-1, 3), bits), d),
                             lambda p: D.digit_decompose(p, shares(p.role, x1.reshape(-1, 3), bits), d))
    for sa, sb, r in zip(a, b, D.digit_decompose_ref(x, bits, d)):
        assert sa.shape == (x.size // 3, 3)
        assert (((sa.data + sb.data) & mask(sa.bits)).ravel() == r).all()


# -- MSB of x − C ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", BITWIDTHS)
def test_msb_shifted(parties, rng, bits):
    consts = [0, 1, -3, 5, 1 << (bits - 1), (6 << max(bits - 4, 0)), 1 << max(bits - 2, 0), 12345678901]
    x0, x1, x = all_splits(inputs(rng, bits), bits, rng)
    got = run2(parties, lambda p, v: D.msb_shifted(p, shares(p.role, v, bits), consts), x0, x1)
    assert got.shape == x.shape + (len(consts),)
    assert (got == D.msb_shifted_ref(x, bits, consts)).all()
    # independent check of the reference
    for j, c in enumerate(consts):
        want = [((int(v) - c) % (1 << bits)) >> (bits - 1) for v in x[:50]]
        assert list(D.msb_shifted_ref(x[:50], bits, [c])[:, 0]) == want


# -- MSNZB ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", BITWIDTHS)
def test_msnzb_onehot(parties, rng, bits):
    vals = np.concatenate([np.zeros(3, U64), powers(bits), inputs(rng, bits, 150)]) & mask(bits)
    x0, x1, x = all_splits(vals, bits, rng)
    got = run2(parties, lambda p, v: D.msnzb_onehot(p, shares(p.role, v, bits, signed=False)), x0, x1)
    ref = D.msnzb_onehot_ref(x, bits)
    assert got.shape == x.shape + (bits,)
    assert (got == ref).all()
    # reference: one-hot at floor(log2 x), all zero for x = 0
    for v, row in zip(x[:80], ref[:80]):
        assert list(row) == [int(int(v) and k == int(v).bit_length() - 1) for k in range(bits)]


@pytest.mark.parametrize("bits,d", [(16, 1), (16, 3), (37, 5), (32, 8), (64, 7), (8, 8), (5, 8)])
def test_msnzb_other_digit_widths(parties, rng, bits, d):
    vals = np.concatenate([np.zeros(2, U64), powers(bits), inputs(rng, bits, 60)]) & mask(bits)
    x0, x1 = split(vals, bits, rng)
    got = run2(parties, lambda p, v: D.msnzb_onehot(p, shares(p.role, v, bits, signed=False), d), x0, x1)
    assert (got == D.msnzb_onehot_ref(vals, bits)).all()


@pytest.mark.parametrize("bits", [1, 8, 32, 64])
def test_msnzb_index_and_onehot_dot(parties, rng, bits):
    vals = np.concatenate([np.zeros(2, U64), powers(bits), inputs(rng, bits, 60)]) & mask(bits)
    x0, x1 = split(vals, bits, rng)
    got = run2(parties, lambda p, v: D.msnzb_index(p, shares(p.role, v, bits, signed=False), 16), x0, x1)
    want = np.array([max(int(v).bit_length() - 1, 0) for v in vals], U64)
    assert (got == want).all() and (got == D.msnzb_index_ref(vals, bits, 16)).all()
    # vector weights (normalising power 2^{ℓ−1−k} and −k) on a random boolean matrix
    oh = rng.integers(0, 2, (40, bits)).astype(U64)
    o0 = rng.integers(0, 2, oh.shape).astype(U64)
    k = np.arange(bits)
    W = np.stack([2 ** (bits - 1 - k) if bits < 64 else k, -k], axis=1).astype(np.int64)
    got = run2(parties, lambda p, o: D.onehot_dot(p, Share(o, 1, 0, False, p.role), W, 37), o0, oh ^ o0)
    assert got.shape == (40, 2) and (got == D.onehot_dot_ref(oh, W, 37)).all()
    neg_k = (-(oh * k).sum(1)).astype(np.int64).view(U64) & mask(37)
    assert (D.onehot_dot_ref(oh, W, 37)[:, 1] == neg_k).all()


def test_parameter_errors(parties):
    p = parties.contexts[0]
    x = Share(np.zeros(4, U64), 16, role=p.role)
    for bad in (0, 9, 2.0, None):
        with pytest.raises(ParameterError, match="d"):
            D.digit_decompose(p, x, bad)
        with pytest.raises(ParameterError, match="d"):
            D.msnzb_onehot(p, x, bad)
    with pytest.raises(ParameterError, match="x must be a Share"):
        D.digit_decompose(p, np.zeros(4, U64), 4)
    with pytest.raises(ParameterError, match="consts"):
        D.msb_shifted(p, x, [1.5])
    with pytest.raises(ParameterError, match="weights"):
        D.onehot_dot(p, Share(np.zeros((4, 16), U64), 1, role=p.role), np.arange(15), 8)
    with pytest.raises(ParameterError, match="boolean"):
        D.onehot_dot(p, x, np.arange(16), 8)


# -- costs -----------------------------------------------------------------------------------------
def test_costs(parties, rng):
    """Communication (both parties) per element at n = 4096; bounds guard against regressions."""
    n = 4096
    report = {}
    for name, bits, fn, bound in [
        ("digit_decompose l=32 d=8", 32, lambda p, s: D.digit_decompose(p, s, 8), 400),
        ("digit_decompose l=32 d=4", 32, lambda p, s: D.digit_decompose(p, s, 4), 600),
        ("msnzb_onehot l=16", 16, lambda p, s: D.msnzb_onehot(p, s), 500),
        ("msnzb_onehot l=32", 32, lambda p, s: D.msnzb_onehot(p, s), 1300),
    ]:
        x0, x1 = split(random_ring(rng, n, bits), bits, rng)
        _, nbytes, rounds = stats_delta(parties, lambda: parties.run_split(
            lambda p: fn(p, shares(p.role, x0, bits, signed=False)),
            lambda p: fn(p, shares(p.role, x1, bits, signed=False))))
        report[name] = (nbytes / n, rounds)
        assert nbytes / n <= bound, (name, nbytes / n)
    print("\n" + "\n".join(f"{k}: {v[0]:.1f} B/elem, {v[1]} rounds" for k, v in report.items()))
