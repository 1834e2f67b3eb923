"""Exact communication and rounds of the math functions (16/12 → 16/12) and of one FastGRNN
step: the figures of ``benchmarks/round_profile.py`` (bytes and rounds do not depend on the
inputs; rounds are the channel's message depth from a fresh round)."""

import numpy as np
import pytest
from conftest import make_parties
from nnhelp import fastgrnn_weights

from sirnn.mathfn import nexp, rsqrt, sigmoid, tanh
from sirnn.nn import rnn
from sirnn.protocols.backend import SecureBackend
from sirnn.protocols.ring import from_int, mask
from sirnn.protocols.share import Share

N = 64


def _cost(parties, rng, fn, x_int, bits=16, scale=12):
    x = from_int(x_int, bits, True)
    x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(bits)
    ins = (x0, (x - x0) & mask(bits))

    def side(p):
        st, off = p.chan.snapshot(), p.ot.offline["bytes_sent"]
        fn(SecureBackend(p), Share(ins[p.role], bits, scale, True, p.role))
        return (p.chan.stats - st).bytes_sent - (p.ot.offline["bytes_sent"] - off), (p.chan.stats - st).rounds

    a, b = parties.run(side)
    return a[0] + b[0], max(a[1], b[1])  # online bytes (Ferret refill rounds excluded)


# function: (recipe, inputs, bytes per element, rounds) on IKNP/KK13; protocol version 2 had
# sigmoid/tanh 3,844.5 B and 37 rounds, exp 1,859.25 B and 15, rsqrt 3,134.75 B and 44
MATH = {
    "sigmoid": (lambda be, x: sigmoid(be, x, 16, 12), "any", 3991.5, 24),
    "tanh": (lambda be, x: tanh(be, x, 16, 12), "any", 3987.0, 24),
    "exp": (lambda be, x: nexp(be, x, 16, 12), "neg", 1986.25, 9),
    "rsqrt": (lambda be, x: rsqrt(be, x, 16, 12), "pos", 3575.25, 29),
}
#: on Ferret, protocol version 4 (version 3 had the IKNP rounds and sigmoid/tanh 2,159.5 /
#: 2,155 B, exp 1,291.125 B, rsqrt 2,090 B): batches below tuning.BYTES_FIRST_MIN (here N = 64)
#: keep the IKNP rounds with Ferret's round-neutral parameters (profile "ferret-lat"); larger
#: ones take the fewest-bytes parameters (profile "ferret", N_BIG elements)
MATH_FERRET = {"sigmoid": (2135.5, 24), "tanh": (2131.0, 24), "exp": (1285.125, 9), "rsqrt": (2071.25, 29)}
MATH_FERRET_BIG = {"sigmoid": (1679.375, 31), "tanh": (1674.875, 31), "exp": (1023.0, 11), "rsqrt": (1592.5, 36)}
N_BIG = 4096


def _math_cost(parties, rng, name, n=N):
    fn, dom, _, _ = MATH[name]
    x = rng.integers(-(1 << 15), 1 << 15, n)
    x = {"any": x, "neg": -np.abs(x), "pos": np.clip(np.abs(x), 1, (1 << 15) - 1)}[dom]
    return _cost(parties, rng, fn, x)


@pytest.mark.parametrize("name", list(MATH))
def test_math_rounds_and_bytes(iknp_parties, rng, name):
    """The pinned figures count IKNP/KK13 OTs (the protocols' cost formulas)."""
    nbytes, got_rounds = _math_cost(iknp_parties, rng, name)
    assert (nbytes / N, got_rounds) == MATH[name][2:]


@pytest.mark.parametrize("name", list(MATH))
def test_math_rounds_on_every_engine(parties, rng, name):
    """Each engine's figures; Ferret trades a few rounds for far fewer bytes (its parameters)."""
    nbytes, got_rounds = _math_cost(parties, rng, name)
    want = MATH[name][2:] if parties.contexts[0].ot.kind == "iknp" else MATH_FERRET[name]
    assert (nbytes / N, got_rounds) == want


@pytest.fixture(scope="module")
def ferret_parties():
    pair = make_parties("ferret")
    yield pair
    for ch in pair.channels:
        ch.close()


@pytest.mark.parametrize("name", list(MATH))
def test_math_ferret_bytes_first(ferret_parties, rng, name):
    """Large batches on Ferret: the fewest-bytes parameters (4-bit leaves, comparisons instead of
    carry tables), a few rounds more."""
    nbytes, got_rounds = _math_cost(ferret_parties, rng, name, N_BIG)
    assert (nbytes / N_BIG, got_rounds) == MATH_FERRET_BIG[name]


@pytest.mark.parametrize("T,rounds", [(2, 81), (4, 157)])
def test_fastgrnn_step_rounds(parties, rng, T, rounds):
    """A Google-30-shaped cell (D = 32, H = 100, batch 1) over T steps: the inputs' products for
    all steps first (5 rounds), then 38 rounds per step (protocol version 2: 62 per step)."""
    cell = rnn.FastGRNNCell.from_float(fastgrnn_weights(rng, 32, 100))
    xs = rnn.CellFormats().x.encode(np.clip(rng.normal(0, 1, (T, 32, 1)), -4, 4))
    x = from_int(xs, 16, True)
    x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(16)
    ins = (x0, (x - x0) & mask(16))

    def side(p):
        st = p.chan.snapshot()
        c = cell if p.role == 0 else cell.spec()
        rnn.rnn_over_time(SecureBackend(p), c, Share(ins[p.role], 16, 12, True, p.role))
        return p.chan.stats - st

    a, b = parties.run(side)
    assert max(a.rounds, b.rounds) == rounds
