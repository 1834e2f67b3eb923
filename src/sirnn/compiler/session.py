"""Model inference sessions between a server (ALICE, holds the program with its weights) and a
client (BOB, holds the input), over any channel; :func:`serve` and :func:`infer` over TCP/TLS.

One session, message by message:

1. both send a hello (:func:`sirnn.transport.handshake`): protocol version and roles, with the
   public parameters ``{"service": "sirnn-inference", "program_format": FORMAT_VERSION}``. Two
   versions guard compatibility: :data:`sirnn.PROTOCOL_VERSION` covers the messages (bump it
   when this sequence or any protocol's messages change), ``program_format``
   (:data:`sirnn.compiler.program.FORMAT_VERSION`) the public program of step 2; a mismatch of
   either fails here, on both sides, with an error that says to run one sirnn version;
2. the server sends the **public program** (structure, shapes, formats; no weights);
3. the client validates it, checks its digest against ``expect_digest`` if given, and checks its
   input against the public input spec — shape, NaN/infinity, range of the input format. On any
   problem it sends ``{"status": "abort"}`` (no reason: the server learns only that the client
   stopped) and raises (nothing secret has been used: no OT has run, no share was sent).
   Otherwise it sends ``{"status": "ok", "batch": N}`` (the number of samples is public) and
   the server answers ``{"status": "ok", "ot": <engine>}`` (or refuses, e.g. a batch above its
   limit): the server picks the OT engine (:data:`sirnn.ot.engine.KINDS`), the client follows it
   unless it asked for one (a mismatch then fails in step 4, on both sides);
4. :meth:`Party.setup`: a second hello carrying ``{"program": <digest>, "batch": N, "inputs":
   [[N, ...shape] per input]}`` and the OT engine — both parties check that they run the same
   program on inputs of the same shapes on the same engine — then the OT set-up;
5. the client secret-shares its inputs (every program input, in the program's order), both run
   :func:`sirnn.compiler.runtime.execute`, and the outputs (every program output, in order) are
   revealed to the client only.

Before its hello (step 1) a server with all its session slots taken may send *notices*: ``queued``
(the client's position, repeated while it waits) or ``busy`` (the queue is full: the client raises
:class:`~sirnn.errors.ServerBusyError`); see :mod:`sirnn.compiler.server`, which runs each
connection's session in its own process and keeps serving after a session fails.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import ALICE, BOB
from ..errors import (HandshakeError, InputError, PeerGoneError, ProgramError, ProtocolError, ServerBusyError,
                      SirnnError)
from ..nn.meter import Meter
from ..ot.engine import DEFAULT_KIND, KINDS, ot_kind
from ..protocols.backend import SecureBackend
from ..protocols.party import Party
from ..protocols.share import reveal, share_input
from ..transport.handshake import handshake
from ..transport.peerdata import loads_json, peer_text
from .program import FORMAT_VERSION, Program
from .runtime import ProgressEvent, decode_outputs, encode_inputs, execute

__all__ = ["SERVICE", "format_bytes", "server_session", "client_session", "infer", "InferenceResult",
           "format_report"]

SERVICE = "sirnn-inference"
_MAX_CONTROL = 1 << 16        # control messages (status JSON)
_MAX_PROGRAM = 64 << 20       # the public program
DEFAULT_MAX_BATCH = 4096


def _hello() -> dict:
    return {"service": SERVICE, "program_format": FORMAT_VERSION}


def _session_handshake(chan, role: int, **hooks) -> None:
    """The session's first hello (:func:`sirnn.transport.handshake`, with its ``before_reply`` /
    ``on_notice`` hooks); a peer that reads another program format (or is not an inference peer)
    fails here, with an error saying so."""
    try:
        handshake(chan, role, _hello(), **hooks)
    except HandshakeError as e:
        if "program_format" in str(e) or "service" in str(e):
            raise HandshakeError(f"{e} — the peer is not a sirnn inference {'client' if role == ALICE else 'server'} "
                                 f"for program format {FORMAT_VERSION}: run the same sirnn version on both "
                                 "sides") from None
        raise


def _setup_params(program: Program, digest: str, N: int) -> dict:
    """What :meth:`Party.setup`'s hello carries and both sides check: the program digest, the
    batch and the shape of every input as it is shared."""
    return {"program": digest, "batch": int(N),
            "inputs": [[int(N)] + [int(d) for d in program.tensors[t].shape] for t in program.inputs]}


def _send_json(chan, obj) -> None:
    chan.send_bytes(json.dumps(obj).encode())


def _recv_json(chan, what: str, limit: int = _MAX_CONTROL) -> dict:
    """The peer's next control message: a JSON object with a "status", at most ``limit`` bytes
    (checked before it is received), nested at most :data:`~sirnn.transport.peerdata.MAX_JSON_DEPTH`."""
    data = chan.recv_bytes(what=what, max_nbytes=limit)
    obj = loads_json(data, f"peer's {what}")
    if not isinstance(obj, dict) or "status" not in obj:
        raise ProtocolError(f"expected the peer's {what} (a JSON status), got {peer_text(bytes(data[:60]))}")
    return obj


# ---------------------------------------------------------------------------------------------
# the server's side
# ---------------------------------------------------------------------------------------------
def server_session(chan, program: Program, *, max_batch: int = DEFAULT_MAX_BATCH,
                   _seed: bytes | None = None, admit: Callable[[dict], None] | None = None,
                   progress: Callable[[ProgressEvent], None] | None = None, ot: str | None = None) -> dict:
    """Run one session as the server (ALICE) on ``chan``; returns a summary dict with
    ``status`` ("ok", "aborted" by the client, "refused"), ``batch``, ``ot``, ``seconds`` and the
    channel counters. Raises on transport/protocol failures (the caller logs them).
    ``progress`` receives the program's :class:`ProgressEvent` s (as the client's). ``ot``: the
    session's OT engine, "ferret" or "iknp" (None: :data:`~sirnn.ot.engine.DEFAULT_KIND`),
    announced to the client.

    ``_seed`` fixes the server's randomness: for tests only (masks repeated across sessions
    would leak differences of inputs), hence not part of the public API.

    ``admit``: called with the client's hello once it has arrived and passed the checks, before
    the server answers it (see ``before_reply`` of :func:`sirnn.transport.handshake`): a server
    with a pool of session slots waits there for a free one, sending queue notices, and raises
    :class:`ServerBusyError` after sending a ``busy`` notice. ``seconds`` is counted from its
    return."""
    if not program.has_values:
        raise ProgramError("the server needs the program with its parameter values")
    ot = ot_kind(ot)
    t0 = time.perf_counter()
    summary = {"status": None, "batch": None, "ot": ot}

    def admitted(peer):
        nonlocal t0
        if admit is not None:
            admit(peer)
        t0 = time.perf_counter()
    _session_handshake(chan, ALICE, before_reply=admitted)
    digest = program.digest()
    chan.send_bytes(program.public_bytes())
    msg = _recv_json(chan, "answer to the program")
    if msg["status"] == "abort":  # (the client says no more: its reasons are its own)
        summary.update(status="aborted")
    elif msg["status"] != "ok":
        raise ProtocolError(f"unexpected client status {peer_text(msg['status'])}")
    else:
        N = msg.get("batch")
        if not isinstance(N, int) or isinstance(N, bool) or not 1 <= N <= max_batch:
            reason = f"batch size {peer_text(N)} is not in 1..{max_batch} (this server's limit)"
            _send_json(chan, {"status": "refused", "reason": reason})
            summary.update(status="refused", reason=reason)
        else:
            _send_json(chan, {"status": "ok", "ot": ot})
            summary["batch"] = N
            party = Party.setup(ALICE, chan, seed=_seed, params=_setup_params(program, digest, N), ot=ot)
            be = SecureBackend(party)
            xs = {}
            for t in program.inputs:
                spec = program.tensors[t]
                xs[t] = share_input(party, BOB, bits=spec.bits, scale=spec.scale, signed=True,
                                    shape=(N,) + tuple(spec.shape))
            y = execute(program, be, xs, progress=progress)
            for t in program.outputs:
                reveal(party, y[t] if isinstance(y, dict) else y, to=BOB)
            summary["status"] = "ok"
    summary["seconds"] = time.perf_counter() - t0
    summary.update(bytes_sent=chan.stats.bytes_sent, bytes_recv=chan.stats.bytes_recv,
                   rounds=chan.stats.rounds)
    return summary


# ---------------------------------------------------------------------------------------------
# the client's side
# ---------------------------------------------------------------------------------------------
@dataclass
class InferenceResult:
    """What the client gets back."""

    prediction: object        #: class index (or indices) for an argmax model, else the output values
    output: object            #: the decoded output (batch axis iff the input had one); a dict
                              #: name → array for a program with several outputs
    batched: bool
    digest: str               #: the program's digest (checked with the server)
    program: Program          #: the public program
    seconds: float
    bytes_sent: int
    bytes_recv: int
    rounds: int
    report: dict | None = None   #: per-layer rows (with ``report=True``)
    warnings: list = field(default_factory=list)
    queue_seconds: float = 0.0   #: time spent in the server's queue (not included in ``seconds``)
    ot: str = DEFAULT_KIND       #: the session's OT engine

    def label(self):
        """The prediction mapped through the program's ``meta["labels"]`` (if any)."""
        labels = self.program.meta.get("labels")  # (from the server: a list, or ignored)
        if not isinstance(labels, list) or self.program.output_spec.signed or isinstance(self.prediction, dict):
            return self.prediction
        p = np.asarray(self.prediction)
        f = np.vectorize(lambda i: labels[i] if 0 <= i < len(labels) else str(i), otypes=[object])
        return f(p) if p.ndim else labels[int(p)] if 0 <= int(p) < len(labels) else int(p)


def _abort(chan) -> None:
    """Tell the server the session ends here. No reason is sent: it could describe the input
    (the reason stays in the client's own error)."""
    try:
        _send_json(chan, {"status": "abort"})
    except SirnnError:
        pass


def client_session(chan, x, *, expect_digest: str | None = None, report: bool = False,
                   progress: Callable[[ProgressEvent], None] | None = None,
                   _seed: bytes | None = None, ot: str | None = None) -> InferenceResult:
    """Run one session as the client (BOB) on ``chan`` with the real-valued input ``x`` (one
    sample or a batch); see the module doc. Raises :class:`InputError` (bad input) or
    :class:`ProgramError` (unexpected or invalid program) *before* any secret is used; the server
    then learns only that the client aborted. ``ot``: the OT engine, "ferret" or "iknp" (None:
    the one the server announces; a different one fails the session on both sides with a
    :class:`HandshakeError`). ``_seed``: tests only (see :func:`server_session`)."""
    if ot is not None:
        ot_kind(ot)
    t0 = time.perf_counter()
    meter = Meter(chan=chan) if report else None
    queue = _QueueWait(progress)

    def step(name: str, done: float = 0.0):
        """A session step: a progress event and, with ``report``, a row of the report."""
        if progress is not None:
            progress(ProgressEvent(-1, 0, name, "phase", done=done,
                                   bytes=chan.stats.bytes_sent + chan.stats.bytes_recv))
        return meter.section(name) if meter is not None else nullcontext()

    with step("handshake + program"):
        _session_handshake(chan, BOB, on_notice=queue.notice)
        queue.end()
        t0 += queue.seconds  # the session starts when the server takes it from its queue
        data = chan.recv_bytes(what="public program", max_nbytes=_MAX_PROGRAM)
        try:
            program = Program.from_public_bytes(data)
        except ProgramError as e:
            _abort(chan)
            raise ProgramError(f"the server sent an invalid program: {e}") from None
        digest = program.digest()
        if expect_digest is not None and digest != expect_digest.lower():
            _abort(chan)
            raise ProgramError(f"the server serves the program {digest[:16]}…, but the client expects "
                               f"{expect_digest[:16]}…: a different model or parameters")
        try:
            qs, batched = encode_inputs(program, x)
        except InputError:
            _abort(chan)
            raise
        warnings = []
        for t in program.inputs:
            ima = program.inputs_max_abs[t]
            if ima:
                m = float(np.abs(np.asarray(x[t] if isinstance(x, dict) else x, np.float64)).max())
                if m > 2 * ima:
                    who = "input" if len(program.inputs) == 1 else f"input {t!r}"
                    warnings.append(f"{who} max |x| = {m:g} is beyond twice the calibrated range "
                                    f"{ima:g}: fixed-point intermediates may overflow")
        N = qs[program.input].shape[0]
        _send_json(chan, {"status": "ok", "batch": int(N)})
        reply = _recv_json(chan, "answer to the batch size")
        if reply["status"] != "ok":
            raise ProtocolError(f"the server refused the session: "
                                f"{peer_text(reply.get('reason', reply['status']), 200)}")
        announced = reply.get("ot", DEFAULT_KIND)  # (a server that announces none: the default)
        if announced not in KINDS:
            raise ProtocolError(f"the server announced an unknown OT engine {peer_text(announced, 40)}")
        ot = announced if ot is None else ot
    with step("OT set-up"):
        party = Party.setup(BOB, chan, seed=_seed, params=_setup_params(program, digest, N), ot=ot)
    be = SecureBackend(party)
    with step("share input"):
        xs = {t: share_input(party, BOB, qs[t], bits=program.tensors[t].bits, scale=program.tensors[t].scale,
                             signed=True) for t in program.inputs}
    y = execute(program, be, xs, meter=meter, progress=progress)
    with step("reveal output", 1.0):
        rings = {t: reveal(party, y[t] if isinstance(y, dict) else y, to=BOB) for t in program.outputs}
    out = decode_outputs(program, rings, batched)
    pred = int(out) if not (batched or program.output_spec.signed or isinstance(out, dict)) else out
    rows = None
    if meter is not None:
        layers = _rows(program, meter)
        layers[0]["seconds"] -= queue.seconds
        rows = {"layers": layers, "total": {
            "seconds": time.perf_counter() - t0, "bytes": chan.stats.bytes_sent + chan.stats.bytes_recv,
            "bytes_sent": chan.stats.bytes_sent, "bytes_recv": chan.stats.bytes_recv,
            "rounds": chan.stats.rounds, "queue_seconds": queue.seconds}}
    return InferenceResult(pred, out, batched, digest, program, time.perf_counter() - t0,
                           chan.stats.bytes_sent, chan.stats.bytes_recv, chan.stats.rounds, rows, warnings,
                           queue.seconds, ot)


class _QueueWait:
    """The client's side of the server's queue: its notices before the server's hello (shown as
    progress phases), the time spent waiting, and a busy server's refusal."""

    def __init__(self, progress):
        self.progress = progress
        self.since = None
        self.seconds = 0.0

    def notice(self, msg: dict) -> None:
        kind = msg.get("notice")
        if kind == "busy":
            raise ServerBusyError(f"the server is busy: {str(msg.get('reason', 'no free session slot'))[:300]}; "
                                  "nothing was computed, try again later")
        if kind != "queued":
            raise ProtocolError(f"unexpected notice {str(kind)[:40]!r} from the server")
        self.since = self.since or time.perf_counter()
        if self.progress is not None:
            pos, waiting = msg.get("position"), msg.get("waiting")
            self.progress(ProgressEvent(-1, 0, f"queued at the server: position {pos} of {waiting}", "phase"))

    def end(self) -> None:
        if self.since is not None:
            self.seconds = time.perf_counter() - self.since


def _rows(program: Program, meter: Meter) -> list[dict]:
    kinds = {op.name: op.op for op in program.ops}
    rows = []
    for name, r in meter.rows.items():
        rows.append({"layer": name, "op": kinds.get(name, "-"), "seconds": r["seconds"],
                     "bytes": r["bytes_sent"] + r.get("bytes_recv", 0), "bytes_sent": r["bytes_sent"],
                     "bytes_recv": r.get("bytes_recv", 0), "rounds": r["rounds"]})
    return rows


def format_bytes(n: float) -> str:
    """``n`` bytes as "1.50 MB" (decimal units, as in the benchmarks and the SiRNN paper's tables:
    KB = 10^3 B, MB = 10^6 B, GB = 10^9 B)."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{int(n)} B"


def format_report(rep: dict) -> str:
    """The per-layer table of a client report (time, bytes both directions, rounds)."""
    rows = rep["layers"]
    w = max([len(r["layer"]) for r in rows] + [12])
    out = [f"{'layer':{w}s}  {'op':9s} {'time':>9s} {'bytes':>11s} {'rounds':>7s}"]
    for r in rows:
        out.append(f"{r['layer']:{w}s}  {r['op']:9s} {r['seconds'] * 1e3:>7.1f}ms "
                   f"{format_bytes(r['bytes']):>11s} {r['rounds']:>7d}")
    t = rep["total"]
    out.append(f"{'total':{w}s}  {'':9s} {t['seconds'] * 1e3:>7.1f}ms {format_bytes(t['bytes']):>11s} "
               f"{t['rounds']:>7d}")
    out.append(f"(bytes: both directions, client sent {format_bytes(t['bytes_sent'])}, received "
               f"{format_bytes(t['bytes_recv'])}; rounds per layer counted from a fresh round, the total "
               "over the whole session)")
    if t.get("queue_seconds", 0) >= 0.01:
        out.append(f"(before the session: {t['queue_seconds']:.2f} s in the server's queue, not counted above)")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# TCP: infer (serve: :mod:`sirnn.compiler.server`)
# ---------------------------------------------------------------------------------------------
def infer(host: str, port: int, x, *, tls_ca=None, tls_cert=None, tls_key=None,
          server_hostname: str | None = None, expect_digest: str | None = None,
          report: bool = False, progress: Callable[[ProgressEvent], None] | None = None,
          timeout: float = 120.0, connect_timeout: float = 30.0,
          on_wait: Callable[[str], None] | None = None, net=None, ot: str | None = None) -> InferenceResult:
    """Connect to a sirnn server and run one inference on ``x`` (the client's private input:
    one sample or a batch). TLS: ``tls_ca`` verifies the server (its self-signed certificate or
    CA); ``tls_cert``/``tls_key`` give the client's certificate for mutual TLS. While nobody
    listens, the connection is retried for ``connect_timeout`` s, telling ``on_wait`` once.
    ``net`` (a :class:`~sirnn.transport.netem.NetworkProfile` or its text, e.g.
    ``"rtt=40ms,bw=100mbit"``) runs the session through a local relay process emulating that
    network. ``ot``: the OT engine (None: the server's choice; see :func:`client_session`)."""
    from ..ot.warmup import warm_up
    from ..transport.netem import NetworkProfile, RelayProcess
    from ..transport.tcp import connect, tls_client_context

    if ot is not None:
        ot_kind(ot)  # (before connecting)
    tls = None
    if tls_ca is not None or tls_cert is not None:
        tls = tls_client_context(cafile=tls_ca, certfile=tls_cert, keyfile=tls_key)
    net = NetworkProfile.of(net)
    warm_up()
    relay = None
    if net is not None:  # client → local relay process → server
        relay = RelayProcess(net, host, port, accept_timeout=connect_timeout, connect_timeout=connect_timeout)
        server_hostname = server_hostname or host
        host, port = "127.0.0.1", relay.wait_port()
    chan = connect(host, port, timeout=timeout, connect_timeout=connect_timeout, tls=tls,
                   server_hostname=server_hostname, on_wait=on_wait)
    try:
        return client_session(chan, x, expect_digest=expect_digest, report=report, progress=progress, ot=ot)
    except PeerGoneError as e:
        if chan.stats.bytes_recv == 0:  # closed before its hello: most likely a TLS mismatch
            hint = ("it may require a client certificate signed by its CA (tls_cert/tls_key, "
                    "--tls-cert/--tls-key)" if tls is not None else
                    "is it a TLS server? then pass its certificate or CA (tls_ca, --tls-ca)")
            raise PeerGoneError(f"{e}; the server closed the connection before the session "
                                f"started: {hint}") from e
        raise
    finally:
        chan.close()
        if relay is not None:
            relay.stop()
