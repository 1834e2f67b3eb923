"""rsqrt, sqrt, reciprocal, div: secure == cleartext functionality bit for bit; precision of the
functionality (all 2^16 inputs at 16/12); saturation and domain rules; parameter errors."""

import numpy as np
import pytest

from mathhelp import run_both
from sirnn.errors import ParameterError
from sirnn.mathfn import div, reciprocal, rsqrt, sqrt
from sirnn.mathfn.rsqrt import line_tables, make_plan
from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
from sirnn.protocols.ring import from_int, mask, to_signed
from sirnn.protocols.share import Share

CONFIGS = [(16, 12, 16, 12), (32, 16, 32, 16), (12, 8, 16, 12), (16, 12, 24, 20)]
FUNCS = {  # name: (recipe, float function, value for x ≤ 0: "max" or 0)
    "rsqrt": (rsqrt, lambda v: 1 / np.sqrt(v), "max"),
    "sqrt": (sqrt, np.sqrt, 0),
    "reciprocal": (reciprocal, lambda v: 1 / v, "max"),
}


def _saturated(real, bo, so):
    """The real function saturated to the signed output range, in output ULPs."""
    big = (1 << (bo - 1)) - 1
    return np.clip(real * 2.0**so, -big - 1, big)


def _edges(bits):
    hi = (1 << (bits - 1)) - 1
    e = [1, 2, 3, 4, 63, 64, 65, 127, 128, 255, 256, 1 << (bits - 2), (1 << (bits - 2)) + 1, hi - 1, hi,
         0, -1, -2, -(1 << (bits - 1))]
    return np.array([v for v in e if -(1 << (bits - 1)) <= v <= hi], dtype=np.int64)


def _inputs(rng, bits, n=300):
    """Edges, uniform over the whole range, and log-uniform positives (small x matter most)."""
    logu = np.floor(np.exp2(rng.uniform(0, bits - 1, n))).astype(np.int64)
    return np.concatenate([_edges(bits), rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), n // 3),
                           np.minimum(logu, (1 << (bits - 1)) - 1)])


def _check_rules(name, x, y, bo, so, scale_in):
    """x ≤ 0 → the documented value; every positive input within 1 ULP of the saturated function."""
    fn, ref, bad = FUNCS[name]
    big = (1 << (bo - 1)) - 1
    got = to_signed(y, bo)
    assert (got[x <= 0] == (big if bad == "max" else 0)).all()
    pos = x > 0
    want = _saturated(ref(x[pos] / 2.0**scale_in), bo, so)
    err = np.abs(got[pos] - want)
    assert err.max() <= 1.0, (name, err.max(), x[pos][np.argmax(err)])
    return err


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("bits,scale,bo,so", CONFIGS)
def test_secure_equals_clear(parties, rng, name, bits, scale, bo, so):
    x = _inputs(rng, bits)
    sec, ref, meta = run_both(parties, FUNCS[name][0], x, bits, scale, rng, bits_out=bo, scale_out=so)
    assert (meta.bits, meta.scale, meta.signed) == (bo, so, True)
    assert (sec == ref).all()
    _check_rules(name, x, ref, bo, so, scale)


@pytest.mark.parametrize("name,bound", [("rsqrt", 0.6), ("sqrt", 0.7), ("reciprocal", 0.65)])
def test_precision_all_16bit_inputs(name, bound):
    """All 2^16 inputs at 16/12 → 16/12 (x ≤ 0 included: the documented value)."""
    xs = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    y = FUNCS[name][0](ClearBackend(), clear(xs, 16, 12), 16, 12)
    err = _check_rules(name, xs, y.data, 16, 12, 12)
    assert err.max() <= bound and err.mean() < 0.26


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("bits,scale,bo,so", CONFIGS[1:])
def test_precision_other_configs(name, bits, scale, bo, so):
    rng = np.random.default_rng([bits, bo, 7])
    xs = np.concatenate([_edges(bits), np.arange(1, 5000),
                         np.floor(np.exp2(rng.uniform(0, bits - 1, 20000))).astype(np.int64)])
    xs = np.minimum(xs, (1 << (bits - 1)) - 1)
    y = FUNCS[name][0](ClearBackend(), clear(xs, bits, scale), bo, so)
    err = _check_rules(name, xs, y.data, bo, so, scale)
    assert err.max() <= 0.8 and err.mean() < 0.3


def test_saturation_is_exact_at_16_12():
    """1/√x and 1/x give the largest value exactly where the rounded result does not fit."""
    xs = np.arange(1, 1 << 15, dtype=np.int64)
    for fn, ref in ((rsqrt, lambda v: 1 / np.sqrt(v)), (reciprocal, lambda v: 1 / v)):
        got = to_signed(fn(ClearBackend(), clear(xs, 16, 12), 16, 12).data, 16)
        over = np.round(ref(xs / 4096.0) * 4096) > 32767
        assert (got[over] == 32767).all() and (got[~over] < 32767).all()
    assert to_signed(rsqrt(ClearBackend(), clear([64, 65], 16, 12), 16, 12).data, 16).tolist() == \
        [32767, round(64 / np.sqrt(65) * 4096)]  # x = 1/64: 1/√x = 8 does not fit


def test_one_sided_tables_lie_below():
    """Newton steps need y ≤ g(a) from the table (then e ≥ 0 has a known sign)."""
    for name, g, parity in (("rsqrt", lambda a: a**-0.5, True), ("reciprocal", lambda a: 1 / a, False)):
        F, m, S = 14, 6, 26
        t = 4 * -(-(F - m + 1) // 4)
        A, B, dec, _ = line_tables(name, F, m, S, t, True)
        f = np.arange(1 << (F - m))
        for i in range(len(A)):
            c, j = i >> m, i & ((1 << m) - 1)
            y = A[i] - ((B[i] * f) >> t)
            u = 1 + j / 2**m + f / 2**F
            assert (y <= g(u * 2.0**c) * 2**S).all()


# -- division ---------------------------------------------------------------------------------
DIV_CONFIGS = [((16, 12), (16, 12), (16, 12)), ((32, 16), (32, 16), (32, 16)),
               ((12, 8), (12, 8), (16, 12)), ((16, 12), (16, 12), (24, 20)), ((16, 8), (12, 10), (16, 12))]


def _div_inputs(rng, nb, db, n=300):
    num = np.concatenate([rng.integers(-(1 << (nb - 1)), 1 << (nb - 1), n),
                          [0, 1, -1, (1 << (nb - 1)) - 1, -(1 << (nb - 1)), 0, 5, -5]])
    den = np.concatenate([np.minimum(np.floor(np.exp2(rng.uniform(0, db - 1, n))), (1 << (db - 1)) - 1),
                          [1, 1, 1, 1, 1, 0, -1, -(1 << (db - 1))]]).astype(np.int64)
    return num, den


def _div_check(num, den, y, ns, ds, bo, so):
    got = to_signed(y, bo)
    big = (1 << (bo - 1)) - 1
    pos = den > 0
    want = _saturated(num[pos] / 2.0**ns / (den[pos] / 2.0**ds), bo, so)
    err = np.abs(got[pos] - want)
    assert err.max() <= 1.0, (err.max(), num[pos][np.argmax(err)], den[pos][np.argmax(err)])
    # den ≤ 0 reads as 2^{−s_den}: num·2^{s_den}, rounded (ties away from zero), saturated
    v = num[~pos] * 2.0 ** (so + ds - ns)
    assert (got[~pos] == np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -big - 1, big)).all()
    return err


@pytest.mark.parametrize("n_fmt,d_fmt,o_fmt", DIV_CONFIGS)
def test_div_secure_equals_clear(parties, rng, n_fmt, d_fmt, o_fmt):
    (nb, ns), (db, ds), (bo, so) = n_fmt, d_fmt, o_fmt
    num, den = _div_inputs(rng, nb, db)
    shares = []
    for v, b in ((num, nb), (den, db)):
        r = from_int(v, b)
        r0 = rng.integers(0, 2**63, r.shape, dtype=np.uint64) & mask(b)
        shares.append((r0, (r - r0) & mask(b)))
    outs = parties.run(lambda p: div(SecureBackend(p), Share(shares[0][p.role], nb, ns, True, p.role),
                                     Share(shares[1][p.role], db, ds, True, p.role), bo, so))
    sec = (outs[0].data + outs[1].data) & mask(bo)
    ref = div(ClearBackend(), clear(num, nb, ns), clear(den, db, ds), bo, so)
    assert (ref.bits, ref.scale, ref.signed) == (bo, so, True)
    assert (sec == ref.data).all()
    _div_check(num, den, ref.data, ns, ds, bo, so)


@pytest.mark.parametrize("n_fmt,d_fmt,o_fmt", DIV_CONFIGS)
def test_div_precision(n_fmt, d_fmt, o_fmt):
    """Every 16-bit-or-less numerator against a spread of denominators, every denominator against a
    spread of numerators (16/12 configs), random pairs otherwise."""
    (nb, ns), (db, ds), (bo, so) = n_fmt, d_fmt, o_fmt
    rng = np.random.default_rng([nb, db, bo])
    nums = np.arange(-(1 << (nb - 1)), 1 << (nb - 1)) if nb <= 16 else \
        rng.integers(-(1 << (nb - 1)), 1 << (nb - 1), 1 << 13)
    dens = np.arange(-2, 1 << (db - 1)) if db <= 16 else np.floor(np.exp2(rng.uniform(0, db - 1, 1 << 14)))
    some_d = np.floor(np.exp2(np.linspace(0, db - 1.01, 7))).astype(np.int64)
    some_n = np.concatenate([rng.integers(-(1 << (nb - 1)), 1 << (nb - 1), 5), [1, -1]])
    num = np.concatenate([np.repeat(nums, some_d.size), np.tile(some_n, dens.size)])
    den = np.concatenate([np.tile(some_d, nums.size), np.repeat(dens.astype(np.int64), some_n.size)])
    y = div(ClearBackend(), clear(num, nb, ns), clear(den, db, ds), bo, so)
    err = _div_check(num, den, y.data, ns, ds, bo, so)
    assert err.max() <= 0.75 and err.mean() < 0.26


# -- parameter errors ---------------------------------------------------------------------------
def test_rejects_bad_parameters():
    be = ClearBackend()
    x = clear([1, 2], 16, 12)
    with pytest.raises(ParameterError, match="signed"):
        rsqrt(be, x.with_meta(signed=False), 16, 12)
    with pytest.raises(ParameterError, match="at least 4 bits"):
        sqrt(be, clear([1], 3, 1), 16, 12)
    with pytest.raises(ParameterError, match="room"):
        reciprocal(be, x, 12, 12)
    with pytest.raises(ParameterError, match="must be a Share"):
        rsqrt(be, np.array([1, 2]), 16, 12)
    with pytest.raises(ParameterError, match="103-bit ring"):
        rsqrt(be, clear([1], 32, 16), 48, 40)  # needs > 64-bit intermediate rings
    with pytest.raises(ParameterError, match="two Newton steps"):
        rsqrt(be, clear([1], 32, 16), 64, 60)
    with pytest.raises(ParameterError, match="exceeds 65"):
        div(be, clear([1], 40, 8), clear([1], 40, 8), 16, 12)
    with pytest.raises(ParameterError, match="shape"):
        div(be, clear([1, 2], 16, 12), clear([1], 16, 12), 16, 12)
    with pytest.raises(ParameterError, match="numerator must be a signed"):
        div(be, clear([1], 16, 12).with_meta(signed=False), clear([1], 16, 12), 16, 12)
    with pytest.raises(ParameterError, match="denominator"):
        div(be, clear([1], 16, 12), clear([1], 3, 1), 16, 12)


def test_plan_choices_16_12():
    """The public choices behind the 16/12 figures: no Newton step, tables of 2^8 (rsqrt with the
    exponent parity), exact clamp only where some output straddles the largest value."""
    p = make_plan("rsqrt", 16, 12, 16, 12)
    assert (p.m, p.newton, p.edge, p.saturating) == (7, 0, True, [0, 1, 2, 3, 4, 5])
    p = make_plan("sqrt", 16, 12, 16, 12)
    assert (p.newton, p.edge, p.saturating) == (0, False, [])
    p = make_plan("reciprocal", 16, 12, 16, 12)
    assert (p.m, p.newton, p.edge) == (8, 0, True)
    assert make_plan("rsqrt", 32, 16, 32, 16).newton == 1
