import numpy as np
import pytest

from sirnn.ot import PRG, OTEngine
from sirnn.ot.engine import DEFAULT_KIND
from sirnn.transport import ThreadedPair

#: Ferret parameters for in-process tests: emp-ot's smallest 128-bit set (0.8 M COTs per round),
#: so a session's set-up stays short; the default set is exercised by the TCP and CLI tests.
TEST_FERRET = "b10"

#: both OT engines; protocol tests run on the default one and, in the slow suite, on the other
#: too (test_blocks_basic.py and test_mathfn.py run on both in the default suite)
ENGINES = ["ferret", "iknp"]
OTHER = next(e for e in ENGINES if e != DEFAULT_KIND)


@pytest.fixture(scope="module", params=ENGINES)
def ot_pair(request):
    """Two OT engines (ALICE, BOB) set up once over an in-process channel pair, per engine."""
    pair = ThreadedPair(lambda role, chan: OTEngine(role, chan, PRG(bytes([role]) * 16), kind=request.param,
                                                    ferret=TEST_FERRET).setup())
    yield pair
    for ch in pair.channels:
        ch.close()


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


@pytest.fixture(scope="module", params=ENGINES)
def parties_both(request):
    """Party contexts on each OT engine (modules that run everything on both use it as ``parties``)."""
    pair = make_parties(request.param)
    yield pair
    for ch in pair.channels:
        ch.close()


def make_parties(kind: str):
    """Two Party contexts (ALICE, BOB) over an in-process channel pair, OT engine ``kind``."""
    from sirnn.protocols.party import Party

    return ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([7 + role]) * 16, ot=kind,
                                                       ferret=TEST_FERRET))


@pytest.fixture(scope="module", params=[DEFAULT_KIND, pytest.param(OTHER, marks=pytest.mark.slow)])
def parties(request):
    """Two Party contexts (ALICE, BOB) over an in-process channel pair, OT set up once."""
    pair = make_parties(request.param)
    yield pair
    for ch in pair.channels:
        ch.close()


@pytest.fixture(scope="module")
def iknp_parties():
    """Party contexts on the IKNP engine: the protocols' cost formulas (bits per element) count
    IKNP/KK13 OTs, so tests comparing measured bytes with them run here."""
    pair = make_parties("iknp")
    yield pair
    for ch in pair.channels:
        ch.close()
