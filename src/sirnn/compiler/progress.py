"""Progress of a long inference, for people and programs: :class:`ProgressClock` turns the
:class:`~sirnn.compiler.runtime.ProgressEvent` s of a session into records (position, percent,
seconds, ETA, bytes so far), :func:`progress_text` into one line of text, and
:class:`ProgressLog` into log lines at a modest rate (the server's log, benchmarks).

The percentage is the program's estimated work done (:func:`sirnn.compiler.runtime.op_work`: a
static per-op cost from the public structure); the ETA extrapolates the time spent since the
program's first op over the work done since then (the OT set-up before it is not work of the
program). Both are estimates; bytes are measured (this party's channel, both directions).
"""

from __future__ import annotations

import time
from typing import Callable

from .runtime import ProgressEvent

__all__ = ["ProgressClock", "progress_text", "ProgressLog"]


class ProgressClock:
    """Times the events of one session: ``clock(ev)`` → a JSON-ready record of ``ev`` with
    ``seconds`` (since the clock was made), ``percent`` and ``eta_seconds`` (None until the
    program has made measurable progress)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self._exec: tuple[float, float] | None = None  # (time, done) at the program's first op

    def __call__(self, ev: ProgressEvent) -> dict:
        now = time.perf_counter()
        phase = ev.op == "phase"
        if not phase and self._exec is None:
            self._exec = (now, ev.done)
        eta = None
        if self._exec is not None and not phase and ev.done - self._exec[1] > 1e-3:
            t1, d1 = self._exec
            eta = (now - t1) * (1.0 - ev.done) / (ev.done - d1)
        rec = {"event": "progress", "name": ev.name, "op": ev.op, "seconds": round(now - self.t0, 3),
               "percent": round(100.0 * ev.done, 2), "eta_seconds": None if eta is None else round(eta, 2),
               "bytes": ev.bytes}
        if not phase:
            rec.update(op_index=ev.op_index, n_ops=ev.n_ops, step=ev.step, steps=ev.steps)
        return rec


def progress_text(rec: dict) -> str:
    """One line from a :class:`ProgressClock` record: position, percent, time, ETA, bytes."""
    from .session import format_bytes

    if rec["op"] == "phase":
        where = rec["name"]
    else:
        where = f"[{rec['op_index'] + 1}/{rec['n_ops']}] {rec['name']} ({rec['op']})"
        if rec["steps"]:
            where += f": timestep {rec['step']}/{rec['steps']}"
    eta = f", ETA {rec['eta_seconds']:.1f} s" if rec["eta_seconds"] is not None else ""
    return f"{where}  {rec['percent']:.0f}%  {rec['seconds']:.1f} s{eta}, {format_bytes(rec['bytes'])}"


class ProgressLog:
    """A session's progress in a log (the server's, a benchmark's): a line when the work done
    passes another ``step_percent`` (at most one per ``min_gap`` seconds), or after ``max_gap``
    seconds of silence — so short sessions log nothing extra and long ones a line every few
    seconds."""

    def __init__(self, log: Callable[[str], None], prefix: str, step_percent: float = 10.0,
                 min_gap: float = 5.0, max_gap: float = 60.0):
        self.log, self.prefix = log, prefix
        self.step, self.min_gap, self.max_gap = step_percent, min_gap, max_gap
        self.clock = ProgressClock()
        self.last_t = self.clock.t0
        self.last_bucket = 0

    def __call__(self, ev: ProgressEvent) -> None:
        rec = self.clock(ev)
        now = time.perf_counter()
        bucket = int(rec["percent"] // self.step)
        if (bucket > self.last_bucket and now - self.last_t >= self.min_gap) or now - self.last_t >= self.max_gap:
            self.last_t, self.last_bucket = now, bucket
            self.log(f"{self.prefix}{progress_text(rec)}")
