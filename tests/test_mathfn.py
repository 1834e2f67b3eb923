"""Math functions: secure == cleartext functionality bit for bit; precision of the functionality."""

import numpy as np
import pytest

from mathhelp import run_both, ulp_stats
from sirnn.errors import ParameterError
from sirnn.mathfn import exp as expmod
from sirnn.protocols.backend import ClearBackend, clear


@pytest.fixture(scope="module")
def parties(parties_both):
    """Both OT engines in the default suite: the math functions mix every OT variant in both
    directions (Ferret refills included)."""
    return parties_both


def _inputs(rng, bits, lo, hi, n=600):
    edge = np.array([lo, hi, 0, -1, 1, lo + 1, hi - 1], dtype=np.int64)
    edge = edge[(edge >= lo) & (edge <= hi)]
    return np.concatenate([edge, rng.integers(lo, hi + 1, n)])


@pytest.mark.parametrize("bits,scale,bo,so", [(16, 12, 16, 12), (32, 16, 32, 16), (12, 8, 16, 12), (16, 12, 24, 20)])
def test_nexp_secure_equals_clear(parties, rng, bits, scale, bo, so):
    x = _inputs(rng, bits, -(1 << (bits - 1)), 0)
    sec, ref, meta = run_both(parties, expmod.nexp, x, bits, scale, rng, bits_out=bo, scale_out=so)
    assert (sec == ref).all()
    mx, _ = ulp_stats(ref, bo, so, np.exp(x / 2.0**scale))
    assert mx <= 2.0


def test_nexp_precision_all_16bit_inputs():
    xs = np.arange(-(1 << 15), 1, dtype=np.int64)
    y = expmod.nexp(ClearBackend(), clear(xs, 16, 12), 16, 12)
    mx, mean = ulp_stats(y.data, 16, 12, np.exp(xs / 2.0**12))
    assert mx <= 2.0 and mean < 1.0


def test_nexp_rejects_bad_formats():
    with pytest.raises(ParameterError, match="room"):
        expmod.nexp(ClearBackend(), clear([0], 16, 12), 13, 12)


from sirnn.mathfn import logistic as sigmod  # noqa: E402

def _sigmoid_ref(v):
    with np.errstate(over="ignore"):  # e^{-v} overflows to inf for very negative v: σ = 0, fine
        return 1 / (1 + np.exp(-v))


SIG_CONFIGS = [(16, 12, 16, 12), (32, 16, 32, 16), (12, 8, 16, 12), (16, 12, 24, 20)]


@pytest.mark.parametrize("fn,ref,bound", [(sigmod.sigmoid, _sigmoid_ref, 3.0),
                                          (sigmod.tanh, np.tanh, 4.0)])
@pytest.mark.parametrize("bits,scale,bo,so", SIG_CONFIGS)
def test_sigmoid_tanh_secure_equals_clear(parties, rng, fn, ref, bound, bits, scale, bo, so):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = _inputs(rng, bits, lo, hi, n=400)
    sec, got, meta = run_both(parties, fn, x, bits, scale, rng, bits_out=bo, scale_out=so)
    assert (sec == got).all()
    mx, _ = ulp_stats(got, bo, so, ref(x / 2.0**scale))
    assert mx <= bound


@pytest.mark.parametrize("fn,ref,bound", [(sigmod.sigmoid, _sigmoid_ref, 3.0),
                                          (sigmod.tanh, np.tanh, 4.0)])
def test_sigmoid_tanh_precision_all_16bit_inputs(fn, ref, bound):
    xs = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    y = fn(ClearBackend(), clear(xs, 16, 12), 16, 12)
    mx, mean = ulp_stats(y.data, 16, 12, ref(xs / 2.0**12))
    assert mx <= bound and mean < 1.0


@pytest.mark.parametrize("bits,scale,bo,so", [(16, 12, 16, 12), (16, 12, 24, 20), (12, 8, 16, 12), (32, 16, 24, 16)])
def test_exp_saturating(parties, rng, bits, scale, bo, so):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = _inputs(rng, bits, lo, hi, n=300)
    sec, got, _ = run_both(parties, expmod.exp_saturating, x, bits, scale, rng, bits_out=bo, scale_out=so)
    assert (sec == got).all()
    vmax = ((1 << (bo - 1)) - 1) / 2.0**so
    c = np.floor(np.log(vmax) * 2.0**scale) / 2.0**scale  # documented saturation point
    mx, _ = ulp_stats(got, bo, so, np.exp(np.minimum(x / 2.0**scale, c)))
    assert mx <= 1.0


def test_exp_saturating_rejects_too_wide():
    with pytest.raises(ParameterError, match="64 bits"):
        expmod.exp_saturating(ClearBackend(), clear([0], 32, 16), 32, 16)


def test_nexp_positive_inputs_follow_the_documented_rule(parties, rng):
    """x > 0 is outside rExp's domain: the result is e^{−(2^ℓ − x)/2^s} (≈ 0), never garbage."""
    x = rng.integers(1, 1 << 15, 200)
    sec, got, _ = run_both(parties, expmod.nexp, x, 16, 12, rng, bits_out=16, scale_out=12)
    assert (sec == got).all()
    want = np.exp(-((1 << 16) - x) / 2.0**12)
    mx, _ = ulp_stats(got, 16, 12, want)
    assert mx <= 2.0


def _drain(p, left):
    """Use up the current Ferret rounds of both directions but ``left`` COTs each."""
    for end, send in ((p.ot._fs, True), (p.ot._fr, False)) if p.is_alice else ((p.ot._fr, False), (p.ot._fs, True)):
        m = end.end - end.pos - left
        p.ot.rcot_send(m) if send else p.ot.rcot_recv(m)
    return [e.rounds for e in (p.ot._fs, p.ot._fr)]


@pytest.mark.parametrize("left", [10, 3000, 30000])
def test_exp_across_ferret_refills(rng, left):
    """Refills of both directions in the middle of a function (and of mul's two-way COT round,
    where each party receives before it sends) keep the channel in step: the secure result is
    still the cleartext one (before rot_recv_start, this desynchronised the channel)."""
    from conftest import make_parties

    pair = make_parties("ferret")
    try:
        before = pair.run(_drain, left)
        x = _inputs(rng, 16, -(1 << 15), (1 << 15) - 1, n=300)
        sec, got, _ = run_both(pair, expmod.exp_saturating, x, 16, 12, rng, bits_out=16, scale_out=12)
        assert (sec == got).all()
        after = pair.run(lambda p: [e.rounds for e in (p.ot._fs, p.ot._fr)])
        assert all(a[0] > b[0] and a[1] > b[1] for a, b in zip(after, before))  # refilled both ways
    finally:
        for ch in pair.channels:
            ch.close()
