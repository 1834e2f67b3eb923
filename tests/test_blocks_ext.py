"""Ring extensions and exact truncations: secure result == cleartext, bit for bit; costs == formulas."""

import numpy as np
import pytest

from blockhelp import BITWIDTHS, all_splits, edge_values, random_ring, run2, shares, split
from sirnn.errors import ParameterError
from sirnn.protocols import compare, extend as ext, truncate as trunc
from sirnn.protocols.ring import U64
from sirnn.protocols.share import Share


def inputs(rng, bits, n=200):
    return np.concatenate([edge_values(bits), random_ring(rng, n, bits)])


def msb_split(rng, x, bits):
    """Random boolean shares of MSB(x)."""
    m = compare.msb_ref(x, bits)
    m0 = rng.integers(0, 2, m.size).astype(U64)
    return m0, m ^ m0


EXT_CASES = sorted({(m, n) for m in BITWIDTHS if m < 64 for n in (m + 1, min(64, 2 * m), 64)})
SHIFT_CASES = sorted({(ell, s) for ell in BITWIDTHS if ell > 1
                      for s in (1, 2, 4, ell // 2, ell - 1) if 1 <= s < ell})


# -- extensions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("m,n", EXT_CASES)
def test_zext_sext(parties, rng, m, n):
    x0, x1, x = all_splits(inputs(rng, m), m, rng)
    m0, m1 = msb_split(rng, x, m)
    for fn, ref in ((ext.zext, ext.zext_ref), (ext.sext, ext.sext_ref)):
        got = run2(parties, lambda p, d: fn(p, shares(p.role, d, m, scale=3), n), x0, x1)
        assert (got == ref(x, m, n)).all(), fn.__name__
        got = run2(parties, lambda p, d: fn(p, shares(p.role, d[0], m), n, msb=shares(p.role, d[1], 1)),
                   (x0, m0), (x1, m1))
        assert (got == ref(x, m, n)).all(), fn.__name__ + " with msb"


def test_ext_refs_are_exact():
    x = np.array([0, 1, 127, 128, 200, 255], U64)
    assert (ext.zext_ref(x, 8, 16) == x).all()
    assert (ext.sext_ref(x, 8, 16) == np.array([0, 1, 127, 0xFF80, 0xFFC8, 0xFFFF], U64)).all()
    assert (ext.sext_ref(np.array([1], U64), 1, 64) == np.array([2**64 - 1], U64)).all()
    assert (ext.sext_ref(x, 8, 8) == x).all()


def test_ext_metadata_and_identity(parties, rng):
    x0, x1 = split(np.arange(20, dtype=U64), 8, rng)

    def job(p, d):
        st = p.chan.snapshot()
        same = ext.zext(p, Share(d, 8, 5, False, p.role), 8)
        assert (p.chan.stats - st).bytes_sent == 0
        y = ext.sext(p, Share(d, 8, 5, True, p.role), 20)
        assert (y.bits, y.scale, y.signed) == (20, 5, True)
        return same

    got = run2(parties, job, x0, x1)
    assert (got == np.arange(20)).all()


def test_wrap_arith_all_methods(parties, rng):
    """Every method of wrap_arith is exercised by the configurations above, and each is exact."""
    used = {ext.wrap_method(m, n - m, w) for m, n in EXT_CASES for w in (False, True)}
    used |= {ext.wrap_method(s, ell - s) for ell, s in SHIFT_CASES}
    assert used == {"cot", "lut", "mill", "msb4", "msb2a"}
    for m, k, with_msb in [(1, 63, False), (2, 6, False), (3, 5, False), (4, 60, False),
                           (7, 3, True), (16, 48, True), (37, 27, False)]:
        x0, x1, x = all_splits(inputs(rng, m, 100), m, rng)
        m0, m1 = msb_split(rng, x, m)
        got = run2(parties, lambda p, d: Share(ext.wrap_arith(
            p, shares(p.role, d[0], m), k, shares(p.role, d[1], 1) if with_msb else None), k),
            (x0, m0), (x1, m1))
        assert (got == ext.wrap_arith_ref(x0, x1, m, k)).all(), (m, k, ext.wrap_method(m, k, with_msb))


# -- truncations --------------------------------------------------------------------------------
@pytest.mark.parametrize("ell,s", SHIFT_CASES)
def test_tr_lrs_ars_div(parties, rng, ell, s):
    x0, x1, x = all_splits(inputs(rng, ell), ell, rng)
    m0, m1 = msb_split(rng, x, ell)
    y = run2(parties, lambda p, d: trunc.tr(p, shares(p.role, d, ell, scale=s), s), x0, x1)
    assert (y == trunc.tr_ref(x, ell, s)).all()
    for fn, ref in ((trunc.lrs, trunc.lrs_ref), (trunc.ars, trunc.ars_ref), (trunc.div_pow2, trunc.div_pow2_ref)):
        got = run2(parties, lambda p, d: fn(p, shares(p.role, d, ell, scale=s + 1), s), x0, x1)
        assert (got == ref(x, ell, s)).all(), fn.__name__
        got = run2(parties, lambda p, d: fn(p, shares(p.role, d[0], ell, scale=s),
                                            s, msb=shares(p.role, d[1], 1)), (x0, m0), (x1, m1))
        assert (got == ref(x, ell, s)).all(), fn.__name__ + " with msb"


def _signed(x, bits):
    v = [int(t) for t in x]
    return [t - (1 << bits) if t >> (bits - 1) else t for t in v]


@pytest.mark.parametrize("ell,s", [(8, 3), (37, 5), (63, 1), (63, 40), (64, 1), (64, 33), (64, 63)])
def test_truncation_refs_against_python_ints(rng, ell, s):
    x = inputs(rng, ell, 300)
    xs = _signed(x, ell)
    m = (1 << ell) - 1
    assert [int(t) for t in trunc.lrs_ref(x, ell, s)] == [int(t) >> s for t in x]
    assert [int(t) for t in trunc.ars_ref(x, ell, s)] == [(t >> s) & m for t in xs]
    trunc_div = [(abs(t) >> s) * (1 if t >= 0 else -1) for t in xs]
    assert [int(t) for t in trunc.div_pow2_ref(x, ell, s)] == [t & m for t in trunc_div]
    # TR of the unsigned value equals the signed floor in the reduced ring
    assert [int(t) for t in trunc.tr_ref(x, ell, s)] == [(t >> s) & ((1 << (ell - s)) - 1) for t in xs]


def test_truncation_metadata(parties, rng):
    x0, x1 = split(np.arange(64, dtype=U64), 16, rng)

    def job(p, d):
        x = Share(d, 16, 12, True, p.role)
        y = trunc.tr(p, x, 5)
        assert (y.bits, y.scale, y.signed) == (11, 7, True)
        for fn in (trunc.lrs, trunc.ars, trunc.div_pow2):
            z = fn(p, x, 12)
            assert (z.bits, z.scale, z.signed) == (16, 0, True)
        z = trunc.ars(p, x.with_meta(scale=2), 4, allow_scale_underflow=True)
        assert z.scale == 0
        st = p.chan.snapshot()
        for fn in (trunc.tr, trunc.lrs, trunc.ars, trunc.div_pow2):  # s = 0: identity, no traffic
            assert (fn(p, x, 0).data == x.data).all()
        assert (p.chan.stats - st).bytes_sent == 0
        return y

    got = run2(parties, job, x0, x1)
    assert (got == np.arange(64) >> 5).all()


def test_parameter_errors(parties):
    p = parties.contexts[0]
    x = Share(np.arange(4, dtype=U64), 16, 4, True, p.role)
    b = Share(np.zeros(4, U64), 1, 0, False, p.role)
    cases = [
        (lambda: ext.zext(p, x, 8), "bits_out"),
        (lambda: ext.sext(p, x, 65), "bits_out"),
        (lambda: ext.zext(p, x.data, 32), "Share"),
        (lambda: ext.zext(p, x, 32, msb=x), "msb"),
        (lambda: ext.sext(p, x, 32, msb=b[:2]), "msb shape"),
        (lambda: trunc.tr(p, x, 16), "shift s"),
        (lambda: trunc.tr(p, x, -1), "shift s"),
        (lambda: trunc.lrs(p, x, True), "shift s"),
        (lambda: trunc.ars(p, x, 2.0), "shift s"),
        (lambda: trunc.div_pow2(p, x, 5), "scale"),
        (lambda: trunc.tr(p, x, 5), "scale"),
        (lambda: trunc.div_pow2(p, x, 3, msb=b[:3]), "msb shape"),
    ]
    for fn, what in cases:
        with pytest.raises(ParameterError, match=what):
            fn()


# -- communication ------------------------------------------------------------------------------
N_COMM = 4096


def measure(parties, rng, fn, bits, with_msb=False):
    """Bytes per element sent by both parties, and rounds, of fn(party, x, msb)."""
    x = random_ring(rng, N_COMM, bits)
    x0, x1 = split(x, bits, rng)
    m0, m1 = msb_split(rng, x, bits)

    def side(d, md):
        def go(p):
            xs, ms = shares(p.role, d, bits, scale=bits), shares(p.role, md, 1) if with_msb else None
            st = p.chan.snapshot()
            fn(p, xs, ms)
            return p.chan.stats - st
        return go

    s0, s1 = parties.run_split(side(x0, m0), side(x1, m1))
    return (s0.bytes_sent + s1.bytes_sent) / N_COMM, max(s0.rounds, s1.rounds)


def test_cost_formulas_asked_for():
    """The derived formulas, spelled out from their parts (M = millionaires' cost)."""
    M = compare.millionaire_cost_bits
    # millionaire with its root AND (148) folded into one 1-of-8 OT with the B2A (256 + 8k)
    assert ext.zext_cost_bits(32, 64) == M(32) - 148 + (256 + 8 * 32)
    assert ext.sext_cost_bits(32, 64) == M(32) - 148 + (256 + 8 * 32)
    assert ext.zext_cost_bits(32, 64, with_msb=True) == 256 + 4 * 32  # fused 1-of-4 MSB-to-Wrap
    assert trunc.tr_cost_bits(32, 12) == M(12) - 148 + (256 + 8 * 20)  # carry of 12 low bits into 20 bits
    assert trunc.lrs_cost_bits(32, 12) == M(12) - 148 + 256 + 160 + M(20) - 148 + 256 + 8 * 12
    # TR with the input's MSB: both millionaires (with equality) at max(s, ℓ − 1 − s) bits, one 1-of-4 OT
    assert trunc.tr_msb_cost_bits(31, 15) == 2 * M(15, True) + 256 + 4 * 17
    assert trunc.div_pow2_cost_bits(32, 12) == M(12, True) + M(19, True) + 148 + 256 + 16 * 32


COMM_CASES = [
    ("zext 32->64", lambda p, x, m: ext.zext(p, x, 64, m), 32, False, ext.zext_cost_bits(32, 64)),
    ("zext 32->64 msb", lambda p, x, m: ext.zext(p, x, 64, m), 32, True, ext.zext_cost_bits(32, 64, True)),
    ("sext 32->64", lambda p, x, m: ext.sext(p, x, 64, m), 32, False, ext.sext_cost_bits(32, 64)),
    ("sext 32->64 msb", lambda p, x, m: ext.sext(p, x, 64, m), 32, True, ext.sext_cost_bits(32, 64, True)),
    ("sext 8->64 msb", lambda p, x, m: ext.sext(p, x, 64, m), 8, True, ext.sext_cost_bits(8, 64, True)),
    ("zext 2->8", lambda p, x, m: ext.zext(p, x, 8, m), 2, False, ext.zext_cost_bits(2, 8)),
    ("tr 32 s=12", lambda p, x, m: trunc.tr(p, x, 12), 32, False, trunc.tr_cost_bits(32, 12)),
    ("tr 64 s=1", lambda p, x, m: trunc.tr(p, x, 1), 64, False, trunc.tr_cost_bits(64, 1)),
    ("lrs 32 s=12", lambda p, x, m: trunc.lrs(p, x, 12, m), 32, False, trunc.lrs_cost_bits(32, 12)),
    ("ars 32 s=12 msb", lambda p, x, m: trunc.ars(p, x, 12, m), 32, True, trunc.ars_cost_bits(32, 12, True)),
    ("div 32 s=12", lambda p, x, m: trunc.div_pow2(p, x, 12, m), 32, False, trunc.div_pow2_cost_bits(32, 12)),
    ("div 32 s=12 msb", lambda p, x, m: trunc.div_pow2(p, x, 12, m), 32, True,
     trunc.div_pow2_cost_bits(32, 12, True)),
    ("div 16 s=8", lambda p, x, m: trunc.div_pow2(p, x, 8, m), 16, False, trunc.div_pow2_cost_bits(16, 8)),
]


@pytest.mark.parametrize("name,fn,bits,with_msb,formula_bits", COMM_CASES, ids=[c[0] for c in COMM_CASES])
def test_communication_matches_formula(iknp_parties, rng, name, fn, bits, with_msb, formula_bits):
    per_elem, rounds = measure(iknp_parties, rng, fn, bits, with_msb)
    assert per_elem == pytest.approx(formula_bits / 8, rel=0.05), name
    assert rounds >= 2


# -- TR together with the MSB; millionaire with an arithmetic output ----------------------------
TR_MSB_CASES = sorted({(ell, s) for ell in BITWIDTHS if ell > 2
                       for s in (1, 2, ell // 2, ell - 2, ell - 1) if 1 <= s < ell})


@pytest.mark.parametrize("ell,s", TR_MSB_CASES)
def test_tr_msb(parties, rng, ell, s):
    x0, x1, x = all_splits(inputs(rng, ell), ell, rng)

    def go(p, d):
        y, b = trunc.tr_msb(p, shares(p.role, d, ell, scale=s), s)
        assert (y.bits, y.scale, b.bits) == (ell - s, 0, 1)
        return y, b

    (y0, b0), (y1, b1) = parties.run_split(lambda p: go(p, x0), lambda p: go(p, x1))
    assert ((y0.data + y1.data) & ((1 << (ell - s)) - 1) == trunc.tr_ref(x, ell, s)).all()
    assert ((b0.data ^ b1.data) == compare.msb_ref(x, ell)).all()


def test_tr_msb_cost(iknp_parties, rng):
    """ℓ = 31, s = 15 (the FastGRNN pre-activation rounding): the bytes of the formula and the
    rounds of one TR plus one (5: millionaire on 15 bits with equality — two 8-bit leaves, one AND
    level — then the 1-of-4 OT)."""
    per_elem, rounds = measure(iknp_parties, rng, lambda p, x, m: trunc.tr_msb(p, x.with_meta(scale=15), 15), 31)
    assert per_elem == pytest.approx(trunc.tr_msb_cost_bits(31, 15) / 8, rel=0.05)
    assert rounds == 5
    _, tr_rounds = measure(iknp_parties, rng, lambda p, x, m: trunc.tr(p, x.with_meta(scale=15), 15), 31)
    assert tr_rounds == 4  # TR alone: the root AND folded into the B2A


TR_TWO_CASES = [(8, 1, 2), (8, 3, 7), (16, 4, 12), (32, 15, 23), (31, 1, 30), (64, 20, 44), (64, 1, 63), (37, 17, 19)]


@pytest.mark.parametrize("ell,s,t", TR_TWO_CASES)
def test_tr_two(parties, rng, ell, s, t):
    """tr_two(x, s, t) = (tr(x, s), tr(x, t)) bit for bit, random and (non-)wrapping shares."""
    x0, x1, x = all_splits(inputs(rng, ell), ell, rng)

    def go(p, d):
        y, z = trunc.tr_two(p, shares(p.role, d, ell, scale=t), s, t)
        assert (y.bits, y.scale, z.bits, z.scale) == (ell - s, t - s, ell - t, 0)
        return y, z

    (y0, z0), (y1, z1) = parties.run_split(lambda p: go(p, x0), lambda p: go(p, x1))
    assert ((y0.data + y1.data) & ((1 << (ell - s)) - 1) == trunc.tr_ref(x, ell, s)).all()
    assert ((z0.data + z1.data) & ((1 << (ell - t)) - 1) == trunc.tr_ref(x, ell, t)).all()


def test_tr_two_cost(iknp_parties, rng):
    """The sigmoid's use (ℓ = 32, s = 15, t = 23): the bytes of the formula, the rounds of one
    comparison with equality plus the 1-of-8 OT (a TR by 15 and one by 23 in sequence: 4 + 5)."""
    per_elem, rounds = measure(iknp_parties, rng, lambda p, x, m: trunc.tr_two(p, x, 15, 23), 32)
    M = compare.millionaire_cost_bits
    assert trunc.tr_two_cost_bits(32, 15, 23) == 2 * M(15, True) + 256 + 8 * (17 + 9)
    assert per_elem == pytest.approx(trunc.tr_two_cost_bits(32, 15, 23) / 8, rel=0.05)
    assert rounds == 5
    with pytest.raises(ParameterError, match="0 < s < t"):
        trunc.tr_two(iknp_parties.contexts[0], shares(0, np.zeros(3, np.uint64), 32, scale=30), 20, 20)


@pytest.mark.parametrize("bits,k", [(1, 5), (4, 16), (5, 1), (8, 64), (15, 16), (16, 17), (17, 9),
                                    (31, 32), (32, 1), (64, 64)])
def test_millionaire_arith(parties, rng, bits, k):
    x0, x1, x = all_splits(inputs(rng, bits, 150), bits, rng)
    got = run2(parties, lambda p, d: Share(compare.millionaire_arith(
        p, d if p.role == 0 else (np.uint64((1 << bits) - 1) - d) & np.uint64((1 << bits) - 1), bits, k), k),
        x0, x1)
    assert (got == compare.wrap_ref(x0, x1, bits)).all()


def test_tr_rounds_with_folded_root(iknp_parties, rng):
    """TR by s > 8 (millionaire wrap): leaf OTs, the tree down to two nodes, one 1-of-8 OT; the
    leaf width (compare.leaf_width) keeps the tree shallow: 12 and 15 bits are two leaves (no
    AND level), 17 bits four 5-bit leaves (one level)."""
    for ell, s, want in [(32, 12, 2 + 0 + 2), (31, 15, 2 + 0 + 2), (35, 17, 2 + 1 + 2)]:
        per_elem, rounds = measure(iknp_parties, rng, lambda p, x, m: trunc.tr(p, x, s), ell)
        assert rounds == want, (ell, s)
        assert per_elem == pytest.approx(trunc.tr_cost_bits(ell, s) / 8, rel=0.05)
