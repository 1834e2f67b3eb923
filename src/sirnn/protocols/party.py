"""A party's context in a two-party session: role, channel, OT engine and local randomness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ALICE, BOB
from ..ot import PRG, OTEngine
from ..transport import Channel, ChannelStats


@dataclass
class Party:
    """Everything a protocol needs on one side. Build it with :meth:`setup`."""

    role: int
    chan: Channel
    ot: OTEngine
    prg: PRG

    @classmethod
    def setup(cls, role: int, chan: Channel, seed: bytes | None = None) -> "Party":
        """Run the session's OT set-up (base OTs, extension bootstrap) with the peer."""
        prg = PRG(seed)
        ot = OTEngine(role, chan, PRG(prg.bytes(16).tobytes())).setup()
        return cls(role, chan, ot, prg)

    @property
    def is_alice(self) -> bool:
        return self.role == ALICE

    @property
    def is_bob(self) -> bool:
        return self.role == BOB

    @property
    def stats(self) -> ChannelStats:
        return self.chan.stats

    def random(self, shape, bits: int) -> np.ndarray:
        """Uniform local randomness in Z_{2^bits}."""
        return self.prg.ring(shape, bits)
