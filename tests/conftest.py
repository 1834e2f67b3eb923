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
