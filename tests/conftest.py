import numpy as np
import pytest

from sirnn.ot import PRG, OTEngine
from sirnn.transport import ThreadedPair


@pytest.fixture(scope="module")
def ot_pair():
    """Two OT engines (ALICE, BOB) set up once over an in-process channel pair."""
    pair = ThreadedPair(lambda role, chan: OTEngine(role, chan, PRG(bytes([role]) * 16)).setup())
    yield pair
    for ch in pair.channels:
        ch.close()


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


@pytest.fixture(scope="module")
def parties():
    """Two Party contexts (ALICE, BOB) over an in-process channel pair, OT set up once."""
    from sirnn.protocols.party import Party

    pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([7 + role]) * 16))
    yield pair
    for ch in pair.channels:
        ch.close()
