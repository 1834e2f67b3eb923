"""Millionaires, Wrap, MSB, AND, B2A, MUX, LUT, share/reveal: secure result == cleartext, exactly.

These building blocks use every OT variant, so they run on both OT engines in the default suite
(other protocol modules run on IKNP in the slow suite only)."""

import numpy as np
import pytest

from blockhelp import BITWIDTHS, all_splits, combine, edge_values, random_ring, run2, shares
from sirnn import ALICE, BOB
from sirnn.errors import ParameterError
from sirnn.protocols import boolean, compare, lut as lutmod
from sirnn.protocols.ring import U64, mask, to_signed
from sirnn.protocols.share import reveal, share_input


@pytest.fixture(scope="module")
def parties(parties_both):
    return parties_both


def inputs(rng, bits, n=300):
    return np.concatenate([edge_values(bits), random_ring(rng, n, bits)])


@pytest.mark.parametrize("bits", BITWIDTHS)
def test_millionaire(parties, rng, bits):
    x = inputs(rng, bits)
    y = np.concatenate([inputs(rng, bits)[: x.size // 2], x[x.size // 2:]])  # some equal pairs
    y = y[: x.size]
    got = run2(parties, lambda p, v: compare.millionaire(p, v, bits), x, y)
    assert (got == compare.millionaire_ref(x, y)).all()
    a, b = parties.run_split(lambda p: compare.millionaire_bits(p, x, bits, with_eq=True),
                             lambda p: compare.millionaire_bits(p, y, bits, with_eq=True))
    assert ((a[0] ^ b[0]) == compare.millionaire_ref(x, y)).all()
    assert ((a[1] ^ b[1]) == (x == y)).all()


@pytest.mark.parametrize("bits", BITWIDTHS)
def test_wrap_and_msb(parties, rng, bits):
    x0, x1, x = all_splits(inputs(rng, bits), bits, rng)
    got = run2(parties, lambda p, d: compare.wrap(p, shares(p.role, d, bits)), x0, x1)
    assert (got == compare.wrap_ref(x0, x1, bits)).all()
    got = run2(parties, lambda p, d: compare.msb(p, shares(p.role, d, bits)), x0, x1)
    assert (got == compare.msb_ref(x, bits)).all()
    got = run2(parties, lambda p, d: compare.drelu(p, shares(p.role, d, bits)), x0, x1)
    assert (got == compare.drelu_ref(x, bits)).all()


@pytest.mark.parametrize("bits", BITWIDTHS)
def test_msb_to_wrap(parties, rng, bits):
    x0, x1, x = all_splits(inputs(rng, bits), bits, rng)
    m = compare.msb_ref(x, bits)
    m0 = rng.integers(0, 2, m.size).astype(U64)
    got = run2(parties, lambda p, d: compare.msb_to_wrap(p, shares(p.role, d[0], bits), shares(p.role, d[1], 1)),
               (x0, m0), (x1, m ^ m0))
    assert (got == compare.wrap_ref(x0, x1, bits)).all()


def test_and(parties, rng):
    x0, x1, y0, y1 = rng.integers(0, 2, (4, 1000)).astype(U64)
    got = run2(parties, lambda p, d: boolean.and_(p, shares(p.role, d[0], 1), shares(p.role, d[1], 1)),
               (x0, y0), (x1, y1))
    assert (got == boolean.and_ref(x0 ^ x1, y0 ^ y1)).all()


@pytest.mark.parametrize("bits", BITWIDTHS)
def test_b2a_and_select(parties, rng, bits):
    n = 400
    b0, b1 = rng.integers(0, 2, (2, n)).astype(U64)
    got = run2(parties, lambda p, d: boolean.b2a(p, shares(p.role, d, 1), bits), b0, b1)
    assert (got == boolean.b2a_ref(b0 ^ b1, bits)).all()
    x0, x1, x = all_splits(inputs(rng, bits, n=n // 3 * 3 - edge_values(bits).size)[: n // 3], bits, rng)
    b0, b1 = rng.integers(0, 2, (2, x.size)).astype(U64)
    got = run2(parties, lambda p, d: boolean.select(p, shares(p.role, d[0], 1), shares(p.role, d[1], bits)),
               (b0, x0), (b1, x1))
    assert (got == boolean.select_ref(b0 ^ b1, x, bits)).all()


@pytest.mark.parametrize("d,bits", [(1, 5), (2, 64), (4, 13), (8, 16), (8, 1), (6, 24), (5, 32), (3, 20)])
def test_lut(parties, rng, d, bits):
    n = 500
    table = random_ring(rng, 1 << d, bits)
    i0, i1 = rng.integers(0, 1 << d, (2, n)).astype(U64)
    i = (i0 + i1) & mask(d)
    got = run2(parties, lambda p, di: lutmod.lut(p, table if p.role == ALICE else None, shares(p.role, di, d), bits),
               i0, i1)
    assert (got == lutmod.lut_ref(table, i, bits)).all()
    per_elem = random_ring(rng, n * (1 << d), bits).reshape(n, 1 << d)
    got = run2(parties, lambda p, di: lutmod.lut(p, per_elem if p.role == ALICE else None, shares(p.role, di, d), bits),
               i0, i1)
    assert (got == lutmod.lut_ref(per_elem, i, bits)).all()


def test_share_and_reveal(parties, rng):
    vals = np.array([-5, 0, 7, -(2**15), 2**15 - 1])

    def job(p):
        s = share_input(p, ALICE, vals if p.role == ALICE else None, bits=16, shape=vals.shape)
        return reveal(p, s), reveal(p, s, to=BOB)

    (a_both, a_bob), (b_both, b_bob) = parties.run(job)
    assert (to_signed(a_both, 16) == vals).all() and (b_both == a_both).all()
    assert a_bob is None and (b_bob == a_both).all()


def test_share_input_rejects_out_of_range(parties):
    with pytest.raises(ParameterError, match="out of range"):
        share_input(parties.contexts[0], ALICE, np.array([40000]), bits=16)


def _bytes_both(parties, fa, fb):
    before = [ch.stats.copy() for ch in parties.channels]
    parties.run_split(fa, fb)
    return sum((ch.stats - b).bytes_sent for ch, b in zip(parties.channels, before))


@pytest.mark.parametrize("bits", [1, 4, 8, 16, 31, 32, 37, 64])
@pytest.mark.parametrize("with_eq", [False, True])
def test_millionaire_cost_matches_formula(iknp_parties, rng, bits, with_eq):
    n = 4096
    x, y = random_ring(rng, n, bits), random_ring(rng, n, bits)
    sent = _bytes_both(iknp_parties, lambda p: compare.millionaire_bits(p, x, bits, with_eq),
                       lambda p: compare.millionaire_bits(p, y, bits, with_eq))
    formula = compare.millionaire_cost_bits(bits, with_eq) * n / 8
    assert abs(sent - formula) <= 0.01 * formula + 64, (sent, formula)


def test_lut_vector_table(parties, rng):
    n, d, k, bits = 300, 6, 3, 14
    table = random_ring(rng, (1 << d) * k, bits).reshape(1 << d, k)
    i0, i1 = rng.integers(0, 1 << d, (2, n)).astype(U64)
    got = run2(parties, lambda p, di: lutmod.lut(p, table if p.role == ALICE else k, shares(p.role, di, d), bits),
               i0, i1)
    assert got.shape == (n, k)
    assert (got == lutmod.lut_ref(table, (i0 + i1) & mask(d), bits)).all()


def test_lut_many_one_round_trip(iknp_parties, rng):
    """Several lookups (own tables, equal index widths) in one OT batch: each == lut_ref, and
    the bytes of the separate calls in 2 rounds."""
    d, bits, n = 8, 17, 300
    tables = [rng.integers(0, 1 << bits, 1 << d) for _ in range(3)]
    idx = [random_ring(rng, n, d) for _ in range(3)]
    splits = [(random_ring(rng, n, d),) for _ in range(3)]
    i0 = [s[0] for s in splits]
    i1 = [(i - a) & mask(d) for i, a in zip(idx, i0)]

    def side(mine):
        def go(p):
            st = p.chan.snapshot()
            out = lutmod.lut_many(p, tables if p.role == ALICE else [None] * 3,
                                  [shares(p.role, v, d) for v in mine], bits)
            return out, p.chan.stats - st
        return go

    (a, sa), (b, sb) = iknp_parties.run_split(side(i0), side(i1))
    for t, i, x, y in zip(tables, idx, a, b):
        assert ((x.data + y.data) & mask(bits) == lutmod.lut_ref(t, i, bits)).all()
    assert max(sa.rounds, sb.rounds) == 2
    assert sa.bytes_sent + sb.bytes_sent == pytest.approx(3 * n * (256 + 256 * bits) / 8, rel=0.02)


def test_lut_many_per_table_widths(iknp_parties, rng):
    """Tables with their own output widths (and a vector table) in one round trip: each ==
    lut_ref, the bytes of the separate calls, 2 rounds."""
    d, n, widths = 6, 200, [5, 21, 9]
    tables = [rng.integers(0, 1 << widths[0], 1 << d), rng.integers(0, 1 << widths[1], 1 << d),
              rng.integers(0, 1 << widths[2], (1 << d, 2))]
    idx = [random_ring(rng, n, d) for _ in range(3)]
    i0 = [random_ring(rng, n, d) for _ in range(3)]
    i1 = [(i - a) & mask(d) for i, a in zip(idx, i0)]

    def side(mine):
        def go(p):
            st = p.chan.snapshot()
            out = lutmod.lut_many(p, tables if p.role == ALICE else [None, None, 2],
                                  [shares(p.role, v, d) for v in mine], widths)
            return out, p.chan.stats - st
        return go

    (a, sa), (b, sb) = iknp_parties.run_split(side(i0), side(i1))
    for t, i, x, y, w in zip(tables, idx, a, b, widths):
        assert x.bits == w and ((x.data + y.data) & mask(w) == lutmod.lut_ref(t, i, w)).all()
    assert max(sa.rounds, sb.rounds) == 2
    want = n * sum(256 + (1 << d) * w * k for w, k in zip(widths, (1, 1, 2))) / 8
    assert sa.bytes_sent + sb.bytes_sent == pytest.approx(want, rel=0.02)


def test_lut_ref_vector_table_on_as_many_indices():
    """A (2^d, k) vector table looked up at exactly 2^d indices is still a vector table when the
    index width is known (as the protocol reads it), not 2^d per-element tables."""
    d, k = 3, 2
    table = np.arange(2 * (1 << d)).reshape(1 << d, k)
    idx = np.array([5, 0, 7, 1, 2, 3, 4, 6], dtype=np.uint64)
    assert (lutmod.lut_ref(table, idx, 8, d) == table[idx.astype(int)]).all()
