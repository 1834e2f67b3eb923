"""Exact communication and rounds of the math functions (16/12 → 16/12) and of one FastGRNN
step: the figures of ``benchmarks/round_profile.py`` (bytes and rounds do not depend on the
inputs; rounds are the channel's message depth from a fresh round)."""

import numpy as np
import pytest

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
        st = p.chan.snapshot()
        fn(SecureBackend(p), Share(ins[p.role], bits, scale, True, p.role))
        return p.chan.stats - st

    a, b = parties.run(side)
    return (a.bytes_sent + b.bytes_sent), max(a.rounds, b.rounds)


# function: (recipe, inputs, bytes per element, rounds); protocol version 2 had
# sigmoid/tanh 3,844.5 B and 37 rounds, exp 1,859.25 B and 15, rsqrt 3,134.75 B and 44
MATH = {
    "sigmoid": (lambda be, x: sigmoid(be, x, 16, 12), "any", 3991.5, 24),
    "tanh": (lambda be, x: tanh(be, x, 16, 12), "any", 3987.0, 24),
    "exp": (lambda be, x: nexp(be, x, 16, 12), "neg", 1986.25, 9),
    "rsqrt": (lambda be, x: rsqrt(be, x, 16, 12), "pos", 3575.25, 29),
}


def _math_cost(parties, rng, name):
    fn, dom, _, _ = MATH[name]
    x = rng.integers(-(1 << 15), 1 << 15, N)
    x = {"any": x, "neg": -np.abs(x), "pos": np.maximum(np.abs(x), 1)}[dom]
    return _cost(parties, rng, fn, x)


@pytest.mark.parametrize("name", list(MATH))
def test_math_rounds_and_bytes(iknp_parties, rng, name):
    """The pinned figures count IKNP/KK13 OTs (the protocols' cost formulas)."""
    nbytes, got_rounds = _math_cost(iknp_parties, rng, name)
    assert (nbytes / N, got_rounds) == MATH[name][2:]


@pytest.mark.parametrize("name", list(MATH))
def test_math_rounds_on_every_engine(parties, rng, name):
    """Silent OT changes the bytes, not the message flow: the same rounds, fewer bytes."""
    nbytes, got_rounds = _math_cost(parties, rng, name)
    assert got_rounds == MATH[name][3]
    assert nbytes / N <= MATH[name][2]


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
