import numpy as np
import pytest

from sirnn.ot import PRG, OTEngine
from sirnn.transport import ThreadedPair

#: Ferret parameters for in-process tests: emp-ot's smallest 128-bit set (0.8 M COTs per round),
#: so a session's set-up stays short; the default set is exercised by the TCP and CLI tests.
TEST_FERRET = "b10"

#: both OT engines; protocol tests run on the default one and, in the slow suite, on IKNP too
#: (test_blocks_basic.py runs its protocols on both in the default suite)
ENGINES = ["ferret", "iknp"]


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


def make_parties(kind: str):
    """Two Party contexts (ALICE, BOB) over an in-process channel pair, OT engine ``kind``."""
    from sirnn.protocols.party import Party

    return ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([7 + role]) * 16, ot=kind,
                                                       ferret=TEST_FERRET))


@pytest.fixture(scope="module", params=["ferret", pytest.param("iknp", marks=pytest.mark.slow)])
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
