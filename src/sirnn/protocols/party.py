"""A party's context in a two-party session: role, channel, OT engine and local randomness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ALICE, BOB
from ..ot import PRG, OTEngine
from ..ot.engine import DEFAULT_KIND
from ..transport import Channel, ChannelStats, handshake


@dataclass
class Party:
    """Everything a protocol needs on one side. Build it with :meth:`setup`."""

    role: int
    chan: Channel
    ot: OTEngine
    prg: PRG
    peer: dict | None = None  #: the peer's handshake hello (version, role, parameter digest)

    @classmethod
    def setup(cls, role: int, chan: Channel, seed: bytes | None = None,
              params: dict | bytes | None = None, ot: str = DEFAULT_KIND,
              ferret: str | None = None) -> "Party":
        """Start a session with the peer: handshake, then the OT set-up.

        The handshake (one round, a few hundred bytes) checks protocol version, roles and the
        digest of the public ``params`` (model structure, bitwidths, scales, ...); a mismatch
        raises :class:`~sirnn.errors.HandshakeError` on both sides before any OT runs. Then the
        OT set-up runs: base OTs and the bootstrap of the extensions in both directions.
        ``ot`` picks the OT engine ("ferret" or "iknp", see :mod:`sirnn.ot.engine`) and
        ``ferret`` its parameter set; both parties must pick the same (checked in the same
        hello). ``seed`` fixes this party's local randomness (tests only; None draws a fresh one).
        """
        prg = PRG(seed)
        engine = OTEngine(role, chan, PRG(prg.bytes(16).tobytes()), kind=ot, ferret=ferret)
        mine = f"{engine.kind}:{engine.ferret_params.name if engine.ferret_params else ''}"
        peer = handshake(chan, role, params, ot=mine)
        return cls(role, chan, engine.setup(), prg, peer)

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
