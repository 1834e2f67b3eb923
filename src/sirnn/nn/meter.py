"""Per-layer cost report: time, bytes sent and rounds of each named section of a secure run."""

from __future__ import annotations

import time
from contextlib import contextmanager


class Meter:
    """Collects (name, seconds, bytes_sent, bytes_recv, rounds) per section for one party.

    ``Meter(backend)``; ``with meter.section("sigmoid"): ...``. Sections with the same name add
    up (e.g. over timesteps). With a backend that has no channel (the cleartext backend) only the
    time is recorded. ``bytes_sent + bytes_recv`` of one party is the protocol's total.
    Rounds are counted per section (a section starts a fresh round), so they add up to an upper
    bound of the whole run's rounds.
    """

    def __init__(self, backend=None, *, chan=None):
        """Meter the channel of ``backend``'s party, or ``chan`` directly (before a party exists,
        e.g. a session's handshake); no channel: time only."""
        party = getattr(backend, "party", None)
        self.chan = chan if chan is not None else party.chan if party is not None else None
        self.rows: dict[str, dict] = {}

    @contextmanager
    def section(self, name: str):
        before = self.chan.snapshot() if self.chan is not None else None
        t0 = time.perf_counter()
        try:
            yield
        finally:
            row = self.rows.setdefault(name, {"seconds": 0.0, "bytes_sent": 0, "bytes_recv": 0, "rounds": 0,
                                              "calls": 0})
            row["seconds"] += time.perf_counter() - t0
            row["calls"] += 1
            if before is not None:
                used = self.chan.stats - before
                row["bytes_sent"] += used.bytes_sent
                row["bytes_recv"] += used.bytes_recv
                row["rounds"] += used.rounds

    def report(self) -> dict[str, dict]:
        return {k: dict(v) for k, v in self.rows.items()}


def combine(alice: Meter, bob: Meter) -> dict[str, dict]:
    """Both parties' meters → per section: max seconds, total bytes (both directions), rounds."""
    out = {}
    for name, a in alice.rows.items():
        b = bob.rows.get(name, {"seconds": 0.0, "bytes_sent": 0, "rounds": 0})
        out[name] = {"seconds": max(a["seconds"], b["seconds"]), "bytes": a["bytes_sent"] + b["bytes_sent"],
                     "rounds": max(a["rounds"], b["rounds"]), "calls": a["calls"]}
    return out
