"""Protocol parameters chosen per OT engine (leaf widths, the millionaire's root, table or
comparison carries, AND triples from random OTs): the choices, their exact cost formulas on each
engine, measured bytes == formula, and secure == cleartext for every forced variant."""

import numpy as np
import pytest
from blockhelp import all_splits, edge_values, random_ring, run2, shares, split

from sirnn.errors import ParameterError
from sirnn.protocols import boolean, compare, digits, tuning
from sirnn.protocols import extend as ext
from sirnn.protocols import mul as mulmod
from sirnn.protocols import truncate as trunc
from sirnn.protocols.ring import U64, mask
from sirnn.protocols.share import Share


@pytest.fixture(scope="module")
def parties(parties_both):
    return parties_both


# -- the choices -----------------------------------------------------------------------------------
def test_profiles(parties):
    p, kind = parties.contexts[0], parties.contexts[0].ot.kind
    assert tuning.profile(p, tuning.BYTES_FIRST_MIN) == kind
    assert tuning.profile(p, tuning.BYTES_FIRST_MIN - 1) == ("ferret-lat" if kind == "ferret" else "iknp")


def test_choices_per_engine():
    lw = compare.leaf_width
    # iknp: fewest levels, then narrowest (unchanged); ferret: fewest bits over m = 4..8
    assert [lw(b) for b in (4, 8, 12, 15, 16, 32)] == [4, 8, 6, 8, 8, 8]
    assert [lw(b, ot="ferret") for b in (4, 8, 12, 15, 16, 32)] == [4, 4, 4, 4, 4, 4]
    assert lw(19, 2) == 5 and lw(19, 2, "ferret") == 4
    assert compare.root_method(16, 16) == "kk8" and compare.root_method(16, 16, "ferret") == "kk4"
    assert compare.root_method(4, 16) == "and" and compare.root_method(4, 16, "ferret") == "and"
    assert compare.rot_triples("ferret") and not compare.rot_triples("iknp")
    assert ext.table_carry("iknp") and not ext.table_carry("ferret")
    # a 3-bit carry into 8 bits: iknp reads the 1-of-8 table (256 + 64 bits against 408), ferret
    # compares (3 + 16 bits for the one leaf, 1 + 8 for the B2A, against 3 + 64 for the table)
    assert ext.wrap_method(3, 8) == "lut" and ext.wrap_method(3, 8, ot="ferret") == "mill"
    assert ext.wrap_arith_cost_bits(3, 8, ot="ferret") == 28
    assert mulmod.wrap_method(8) == ("lut", 512) and mulmod.wrap_method(8, "ferret") == ("mill", 76)
    # ferret-lat (small batches): iknp's round-relevant choices at Ferret's costs
    assert [lw(b, ot="ferret-lat") for b in (4, 8, 12, 15, 16, 32)] == [4, 8, 6, 8, 8, 8]
    assert compare.root_method(16, 16, "ferret-lat") == "kk4"
    assert ext.table_carry("ferret-lat") and ext.wrap_method(3, 8, ot="ferret-lat") == "lut"
    assert ext.wrap_arith_cost_bits(3, 8, ot="ferret-lat") == 3 + 8 * 8
    assert mulmod.wrap_method(8, "ferret-lat") == ("lut", 8 + 256)
    assert compare.millionaire_cost_bits(16, ot="ferret-lat") == 2 * (8 + 512) + 4  # one AND, no triple bits


def test_cost_formulas_ferret_spelled_out():
    """Ferret: a 1-of-N OT costs log2 N + N·k bits, a COT 1 + k, a triple nothing (random OTs)."""
    def M(b, eq=False):
        return compare.millionaire_cost_bits(b, eq, ot="ferret")

    leaf4 = 4 + 16 * 2
    assert M(16) == 4 * leaf4 + 4 * 4  # 4 leaves, 3 + 1 ANDs of 4 opened bits each
    assert M(16, True) == 4 * leaf4 + 6 * 4
    assert M(32) == 8 * leaf4 + 8 * 4 + 3 * 4
    assert M(3) == 3 + 8 * 2 and M(1) == 1 + 2 * 2
    # millionaire with arithmetic output, kk4 root: tree to two nodes, 1-of-4 OT + COT (k bits)
    tree2_12 = 3 * leaf4 + 1 * 4
    assert compare.millionaire_arith_cost_bits(12, 20, "ferret") == tree2_12 + (2 + 4 * 20) + (1 + 20)
    assert trunc.tr_cost_bits(32, 12, "ferret") == tree2_12 + (2 + 4 * 20) + (1 + 20)
    assert ext.zext_cost_bits(32, 64, ot="ferret") == 8 * leaf4 + 10 * 4 + (2 + 4 * 32) + (1 + 32)
    # MSB known: MSB-to-Wrap (1-of-4 OT, 1-bit messages) then B2A, not the fused 1-of-4 OT with
    # 32-bit messages (2 rounds more, 91 bits fewer)
    assert ext.zext_cost_bits(32, 64, True, ot="ferret") == (2 + 4 * 1) + (1 + 32)
    assert trunc.tr_msb_cost_bits(31, 15, "ferret") == 2 * M(15, True) + 2 + 4 * 17
    assert trunc.tr_two_cost_bits(32, 15, 23, "ferret") == 2 * M(15, True) + 3 + 8 * (17 + 9)
    assert trunc.div_pow2_cost_bits(32, 12, ot="ferret") == M(12, True) + M(19, True) + (4 + 32) / 2 + 4 + 4 + 16 * 32
    # multiplication 16 × 16 → 32 bits: 16 COT positions per direction, wraps by millionaire
    cross = 2 * sum(1 + 32 - i for i in range(16))
    assert mulmod.mul_cost_bits(16, 16, 32, ot="ferret") == cross + 2 * 2 * (1 + 16) + 2 * M(16)
    # iknp is unchanged
    assert compare.millionaire_cost_bits(16) == 2 * (256 + 512) + 148
    assert trunc.tr_cost_bits(32, 12) == compare.millionaire_cost_bits(12) - 148 + 256 + 8 * 20


# -- measured == formula, exactly, on both engines ------------------------------------------------
N = 4096


def measure(parties, rng, fn, bits, with_msb=False):
    """Online bytes per element (both parties; Ferret refill rounds excluded) of fn(party, x, msb)."""
    x = random_ring(rng, N, bits)
    x0, x1 = split(x, bits, rng)
    m = compare.msb_ref(x, bits)
    m0 = rng.integers(0, 2, m.size).astype(U64)

    def side(d, md):
        def go(p):
            xs, ms = shares(p.role, d, bits, scale=bits), shares(p.role, md, 1) if with_msb else None
            st, off = p.chan.snapshot(), p.ot.offline["bytes_sent"]
            fn(p, xs, ms)
            return (p.chan.stats - st).bytes_sent - (p.ot.offline["bytes_sent"] - off)
        return go

    b0, b1 = parties.run_split(side(x0, m0), side(x1, m ^ m0))
    return (b0 + b1) / N


CASES = [
    ("millionaire 16", lambda p, x, m: compare.millionaire_bits(p, x.data, 16), 16, False,
     lambda ot: compare.millionaire_cost_bits(16, ot=ot)),
    ("millionaire 32 eq", lambda p, x, m: compare.millionaire_bits(p, x.data, 32, with_eq=True), 32, False,
     lambda ot: compare.millionaire_cost_bits(32, True, ot=ot)),
    ("millionaire 3", lambda p, x, m: compare.millionaire_bits(p, x.data, 3), 3, False,
     lambda ot: compare.millionaire_cost_bits(3, ot=ot)),
    ("zext 32->64", lambda p, x, m: ext.zext(p, x, 64, m), 32, False, lambda ot: ext.zext_cost_bits(32, 64, ot=ot)),
    ("zext 32->64 msb", lambda p, x, m: ext.zext(p, x, 64, m), 32, True,
     lambda ot: ext.zext_cost_bits(32, 64, True, ot)),
    ("tr 32 s=12", lambda p, x, m: trunc.tr(p, x, 12), 32, False, lambda ot: trunc.tr_cost_bits(32, 12, ot)),
    ("tr 16 s=4", lambda p, x, m: trunc.tr(p, x, 4), 16, False, lambda ot: trunc.tr_cost_bits(16, 4, ot)),
    ("lrs 32 s=12", lambda p, x, m: trunc.lrs(p, x, 12, m), 32, False, lambda ot: trunc.lrs_cost_bits(32, 12, ot=ot)),
    ("tr_msb 31 s=15", lambda p, x, m: trunc.tr_msb(p, x.reduce(31).with_meta(scale=15), 15), 31, False,
     lambda ot: trunc.tr_msb_cost_bits(31, 15, ot)),
    ("tr_two 32 15 23", lambda p, x, m: trunc.tr_two(p, x, 15, 23), 32, False,
     lambda ot: trunc.tr_two_cost_bits(32, 15, 23, ot)),
    ("div 32 s=12", lambda p, x, m: trunc.div_pow2(p, x, 12, m), 32, False,
     lambda ot: trunc.div_pow2_cost_bits(32, 12, ot=ot)),
    ("div 32 s=12 msb", lambda p, x, m: trunc.div_pow2(p, x, 12, m), 32, True,
     lambda ot: trunc.div_pow2_cost_bits(32, 12, True, ot)),
    ("mul 16x16->32", lambda p, x, m: mulmod.mul(p, x.reduce(16), x.reduce(16), 32), 32, False,
     lambda ot: mulmod.mul_cost_bits(16, 16, 32, ot=ot)),
    ("mul 8x8->16", lambda p, x, m: mulmod.mul(p, x.reduce(8), x.reduce(8), 16), 8, False,
     lambda ot: mulmod.mul_cost_bits(8, 8, 16, ot=ot)),
]


@pytest.mark.parametrize("name,fn,bits,with_msb,formula", CASES, ids=[c[0] for c in CASES])
def test_measured_bytes_equal_formula(parties, rng, name, fn, bits, with_msb, formula):
    ot = parties.contexts[0].ot.kind
    per_elem = measure(parties, rng, fn, bits, with_msb)
    want = formula(ot) / 8
    if ot == "ferret":  # no padding: exact
        assert per_elem == want, (name, per_elem, want)
    else:  # IKNP pads each extension to a multiple of 8 rows
        assert per_elem == pytest.approx(want, rel=0.01), (name, per_elem, want)


def test_two_digit_decomposition_bytes(parties, rng):
    """ℓ = 16, d = 8: iknp reads the carry off a 1-of-256 table (256 + 256·8 bits); ferret runs
    the 8-bit millionaire with arithmetic 8-bit output instead."""
    ot = parties.contexts[0].ot.kind
    per_elem = measure(parties, rng, lambda p, x, m: digits.digit_decompose(p, x, 8), 16)
    want = (ext.kkot_cost_bits(256, 8) if ot == "iknp" else compare.millionaire_arith_cost_bits(8, 8, ot)) / 8
    assert per_elem == pytest.approx(want, rel=0.01 if ot == "iknp" else 0)


# -- secure == cleartext for every forced variant -------------------------------------------------
@pytest.mark.parametrize("root", compare.ROOT_METHODS)
@pytest.mark.parametrize("bits,k", [(5, 1), (8, 8), (12, 20), (16, 17), (31, 32), (64, 64)])
def test_millionaire_arith_roots(parties, rng, root, bits, k):
    ot = parties.contexts[0].ot.kind
    if root not in dict(compare._root_candidates(bits, k, ot)):  # one leaf: only "and"
        assert root != "and" and -(-bits // compare.leaf_width(bits, 2, ot)) == 1
        return
    x0, x1, _ = all_splits(np.concatenate([edge_values(bits), random_ring(rng, 150, bits)]), bits, rng)
    for sender in (0, 1):
        got = run2(parties, lambda p, d, sender=sender: Share(compare.millionaire_arith(
            p, d if p.role == 0 else (np.uint64((1 << bits) - 1) - d) & mask(bits), bits, k, sender=sender,
            root=root), k), x0, x1)
        assert (got == compare.wrap_ref(x0, x1, bits)).all(), (root, sender)


def test_millionaire_arith_root_rejected(parties):
    with pytest.raises(ParameterError, match="root 'kk4' does not apply"):
        compare.millionaire_arith(parties.contexts[0], np.zeros(3, U64), 4, 8, root="kk4")


def test_triples_from_random_ots(parties):
    def go(p):
        t = boolean.triples_from_rot_start(p, 5000).finish()
        return t.a, t.b, t.c
    (a0, b0, c0), (a1, b1, c1) = parties.run(go)
    a, b = a0 ^ a1, b0 ^ b1
    assert ((a & b) == (c0 ^ c1)).all()
    assert 0.4 < a.mean() < 0.6 and 0.4 < b.mean() < 0.6  # random, not constant


@pytest.mark.parametrize("bits", [1, 7, 16, 37])
def test_b2a_bits_either_sender(parties, rng, bits):
    b = rng.integers(0, 2, 500).astype(U64)
    b0 = rng.integers(0, 2, 500).astype(U64)
    for sender in (0, 1):
        out = parties.run_split(lambda p, s=sender: boolean.b2a_bits(p, b0, bits, s),
                                lambda p, s=sender: boolean.b2a_bits(p, b ^ b0, bits, s))
        assert ((out[0] + out[1]) & mask(bits) == b).all()


# -- the fewest-bytes profile on small batches: secure == cleartext -------------------------------
@pytest.fixture
def bytes_first(monkeypatch):
    """Every batch size takes the "ferret" profile on Ferret (both parties run in this process)."""
    monkeypatch.setattr(tuning, "BYTES_FIRST_MIN", 1)


def _x(rng, bits, n=300):
    return np.concatenate([edge_values(bits), random_ring(rng, n, bits)])


@pytest.mark.parametrize("bits", [2, 7, 8, 16, 31, 37, 64])
def test_bytes_first_comparisons(parties, rng, bytes_first, bits):
    kind = parties.contexts[0].ot.kind
    assert tuning.profile(parties.contexts[0], 10) == kind  # (not "ferret-lat")
    x0, x1, x = all_splits(_x(rng, bits), bits, rng)
    for eq in (False, True):
        got = parties.run_split(lambda p, eq=eq: compare.millionaire_bits(p, x0, bits, eq),
                                lambda p, eq=eq: compare.millionaire_bits(p, x1, bits, eq))
        if eq:
            (g0, e0), (g1, e1) = got
            assert ((e0 ^ e1) == (x0 == x1)).all()
        else:
            g0, g1 = got
        assert ((g0 ^ g1) == (x0 > x1)).all()
    for k in (1, 8, 33):
        w = run2(parties, lambda p, d, k=k: Share(ext.wrap_arith(p, shares(p.role, d, bits), k), k), x0, x1)
        assert (w == compare.wrap_ref(x0, x1, bits)).all()
    m = compare.msb_ref(x, bits)
    for out in (bits + 1, 64):
        if out > 64 or out == bits:
            continue
        for msb in (False, True):
            ms = (m, m ^ m) if msb else (None, None)
            got = run2(parties, lambda p, d, out=out, msb=msb, ms=ms: ext.sext(
                p, shares(p.role, d, bits), out, shares(p.role, ms[p.role], 1) if msb else None), x0, x1)
            assert (got == ext.sext_ref(x, bits, out)).all()


@pytest.mark.parametrize("ell,s", [(16, 4), (16, 8), (32, 12), (31, 15), (37, 20)])
def test_bytes_first_truncations(parties, rng, bytes_first, ell, s):
    x0, x1, x = all_splits(_x(rng, ell), ell, rng)
    def sh(p, d):
        return shares(p.role, d, ell, scale=s + 3)

    assert (run2(parties, lambda p, d: trunc.tr(p, sh(p, d), s), x0, x1) == trunc.tr_ref(x, ell, s)).all()
    assert (run2(parties, lambda p, d: trunc.tr(p, sh(p, d), s, by_table=True), x0, x1)
            == trunc.tr_ref(x, ell, s)).all()
    assert (run2(parties, lambda p, d: trunc.ars(p, sh(p, d), s), x0, x1) == trunc.ars_ref(x, ell, s)).all()
    assert (run2(parties, lambda p, d: trunc.div_pow2(p, sh(p, d), s), x0, x1)
            == trunc.div_pow2_ref(x, ell, s)).all()
    (y0, b0), (y1, b1) = parties.run_split(lambda p: trunc.tr_msb(p, sh(p, x0), s),
                                           lambda p: trunc.tr_msb(p, sh(p, x1), s))
    assert (((y0.data + y1.data) & mask(ell - s)) == trunc.tr_ref(x, ell, s)).all()
    assert ((b0.data ^ b1.data) == compare.msb_ref(x, ell)).all()
    t = s + 3
    (y0, z0), (y1, z1) = parties.run_split(lambda p: trunc.tr_two(p, sh(p, x0), s, t),
                                           lambda p: trunc.tr_two(p, sh(p, x1), s, t))
    assert (((z0.data + z1.data) & mask(ell - t)) == trunc.tr_ref(x, ell, t)).all()


@pytest.mark.parametrize("m,n,l", [(8, 8, 16), (16, 16, 32), (12, 20, 24), (32, 32, 64)])
def test_bytes_first_mul_and_digits(parties, rng, bytes_first, m, n, l):
    x = random_ring(rng, 400, m)
    y = random_ring(rng, 400, n)
    x0, x1 = split(x, m, rng)
    y0, y1 = split(y, n, rng)
    got = parties.run_split(lambda p: mulmod.mul(p, shares(0, x0, m), shares(0, y0, n), l),
                            lambda p: mulmod.mul(p, shares(1, x1, m), shares(1, y1, n), l))
    assert (((got[0].data + got[1].data) & mask(l)) == mulmod.mul_ref(x, y, m, n, l, True, True)).all()
    for d in (4, 8):
        outs = parties.run_split(lambda p, d=d: digits.digit_decompose(p, shares(0, x0, m), d),
                                 lambda p, d=d: digits.digit_decompose(p, shares(1, x1, m), d))
        for a, b, want in zip(*outs, digits.digit_decompose_ref(x, m, d)):
            assert (((a.data + b.data) & mask(a.bits)) == want).all()


@pytest.mark.parametrize("fn", ["sigmoid", "tanh", "exp", "rsqrt"])
def test_bytes_first_math(parties, rng, bytes_first, fn):
    from mathhelp import run_both

    from sirnn.mathfn import nexp, rsqrt, sigmoid, tanh

    x = rng.integers(-(1 << 15), 1 << 15, 500)
    x = {"exp": -np.abs(x), "rsqrt": np.clip(np.abs(x), 1, (1 << 15) - 1)}.get(fn, x)
    recipe = {"sigmoid": sigmoid, "tanh": tanh, "exp": nexp, "rsqrt": rsqrt}[fn]
    sec, ref, _ = run_both(parties, lambda be, s: recipe(be, s, 16, 12), x, 16, 12, rng)
    assert (sec == ref).all()
