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
   problem it sends ``{"status": "abort", "reason": …}`` and raises (nothing secret has been
   used: no OT has run, no share was sent). Otherwise it sends ``{"status": "ok", "batch": N}``
   (the number of samples is public) and the server answers ``{"status": "ok"}`` (or refuses,
   e.g. a batch above its limit);
4. :meth:`Party.setup`: a second hello carrying ``{"program": <digest>, "batch": N}`` — both
   parties check that they run the same program — then the OT set-up;
5. the client secret-shares its input, both run :func:`sirnn.compiler.runtime.execute`, and the
   output is revealed to the client only.

The server handles one session per connection and keeps serving after a session fails (a client
that disconnects mid-inference, a handshake mismatch, a timeout): each session is logged.
"""

from __future__ import annotations

import json
import queue
import select
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import ALICE, BOB
from ..errors import HandshakeError, InputError, PeerGoneError, ProgramError, ProtocolError, SirnnError
from ..nn.meter import Meter
from ..protocols.backend import SecureBackend
from ..protocols.party import Party
from ..protocols.share import reveal, share_input
from ..transport.handshake import _frame_limit, handshake
from .program import FORMAT_VERSION, Program
from .progress import ProgressLog
from .runtime import ProgressEvent, decode_output, encode_input, execute

__all__ = ["SERVICE", "format_bytes", "server_session", "client_session", "serve", "infer", "InferenceResult",
           "format_report"]

SERVICE = "sirnn-inference"
_MAX_CONTROL = 1 << 16        # control messages (status JSON)
_MAX_PROGRAM = 64 << 20       # the public program
DEFAULT_MAX_BATCH = 4096


def _hello() -> dict:
    return {"service": SERVICE, "program_format": FORMAT_VERSION}


def _session_handshake(chan, role: int) -> None:
    """The session's first hello (:func:`sirnn.transport.handshake`); a peer that reads another
    program format (or is not an inference peer) fails here, with an error saying so."""
    try:
        handshake(chan, role, _hello())
    except HandshakeError as e:
        if "program_format" in str(e) or "service" in str(e):
            raise HandshakeError(f"{e} — the peer is not a sirnn inference {'client' if role == ALICE else 'server'} "
                                 f"for program format {FORMAT_VERSION}: run the same sirnn version on both "
                                 "sides") from None
        raise


def _send_json(chan, obj) -> None:
    chan.send_bytes(json.dumps(obj).encode())


def _recv_json(chan, what: str, limit: int = _MAX_CONTROL) -> dict:
    with _frame_limit(chan, limit):
        data = chan.recv_bytes()
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    if not isinstance(obj, dict) or "status" not in obj:
        raise ProtocolError(f"expected the peer's {what} (a JSON status), got {bytes(data[:60])!r}")
    return obj


# ---------------------------------------------------------------------------------------------
# the server's side
# ---------------------------------------------------------------------------------------------
def server_session(chan, program: Program, *, max_batch: int = DEFAULT_MAX_BATCH,
                   seed: bytes | None = None,
                   progress: Callable[[ProgressEvent], None] | None = None) -> dict:
    """Run one session as the server (ALICE) on ``chan``; returns a summary dict with
    ``status`` ("ok", "aborted" by the client, "refused"), ``batch``, ``seconds`` and the
    channel counters. Raises on transport/protocol failures (the caller logs them).
    ``progress`` receives the program's :class:`ProgressEvent` s (as the client's)."""
    if not program.has_values:
        raise ProgramError("the server needs the program with its parameter values")
    t0 = time.perf_counter()
    summary = {"status": None, "batch": None}
    _session_handshake(chan, ALICE)
    digest = program.digest()
    chan.send_bytes(program.public_bytes())
    msg = _recv_json(chan, "answer to the program")
    if msg["status"] == "abort":
        summary.update(status="aborted", reason=str(msg.get("reason", ""))[:500])
    elif msg["status"] != "ok":
        raise ProtocolError(f"unexpected client status {msg['status']!r}")
    else:
        N = msg.get("batch")
        if not isinstance(N, int) or isinstance(N, bool) or not 1 <= N <= max_batch:
            reason = f"batch size {N!r} is not in 1..{max_batch} (this server's limit)"
            _send_json(chan, {"status": "refused", "reason": reason})
            summary.update(status="refused", reason=reason)
        else:
            _send_json(chan, {"status": "ok"})
            summary["batch"] = N
            party = Party.setup(ALICE, chan, seed=seed, params={"program": digest, "batch": N})
            be = SecureBackend(party)
            spec = program.input_spec
            x = share_input(party, BOB, bits=spec.bits, scale=spec.scale, signed=True,
                            shape=(N,) + tuple(spec.shape))
            y = execute(program, be, x, progress=progress)
            reveal(party, y, to=BOB)
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
    output: np.ndarray        #: the decoded output (batch axis iff the input had one)
    batched: bool
    digest: str               #: the program's digest (checked with the server)
    program: Program          #: the public program
    seconds: float
    bytes_sent: int
    bytes_recv: int
    rounds: int
    report: dict | None = None   #: per-layer rows (with ``report=True``)
    warnings: list = field(default_factory=list)

    def label(self):
        """The prediction mapped through the program's ``meta["labels"]`` (if any)."""
        labels = self.program.meta.get("labels")
        if labels is None or self.program.output_spec.signed:
            return self.prediction
        p = np.asarray(self.prediction)
        f = np.vectorize(lambda i: labels[i] if 0 <= i < len(labels) else str(i), otypes=[object])
        return f(p) if p.ndim else labels[int(p)] if 0 <= int(p) < len(labels) else int(p)


def _abort(chan, reason: str) -> None:
    try:
        _send_json(chan, {"status": "abort", "reason": reason})
    except SirnnError:
        pass


def client_session(chan, x, *, expect_digest: str | None = None, report: bool = False,
                   progress: Callable[[ProgressEvent], None] | None = None,
                   seed: bytes | None = None) -> InferenceResult:
    """Run one session as the client (BOB) on ``chan`` with the real-valued input ``x`` (one
    sample or a batch); see the module doc. Raises :class:`InputError` (bad input) or
    :class:`ProgramError` (unexpected or invalid program) *before* any secret is used."""
    t0 = time.perf_counter()
    meter = Meter(chan=chan) if report else None

    def step(name: str, done: float = 0.0):
        """A session step: a progress event and, with ``report``, a row of the report."""
        if progress is not None:
            progress(ProgressEvent(-1, 0, name, "phase", done=done,
                                   bytes=chan.stats.bytes_sent + chan.stats.bytes_recv))
        return meter.section(name) if meter is not None else nullcontext()

    with step("handshake + program"):
        _session_handshake(chan, BOB)
        with _frame_limit(chan, _MAX_PROGRAM):
            data = chan.recv_bytes()
        try:
            program = Program.from_public_bytes(data)
        except ProgramError as e:
            _abort(chan, f"invalid program: {e}")
            raise ProgramError(f"the server sent an invalid program: {e}") from None
        digest = program.digest()
        if expect_digest is not None and digest != expect_digest.lower():
            _abort(chan, "program digest differs from the one the client expects")
            raise ProgramError(f"the server serves the program {digest[:16]}…, but the client expects "
                               f"{expect_digest[:16]}…: a different model or parameters")
        try:
            q, batched = encode_input(program, x)
        except InputError as e:
            _abort(chan, f"client input rejected: {e}")
            raise
        warnings = []
        if program.input_max_abs:
            m = float(np.abs(np.asarray(x, np.float64)).max())
            if m > 2 * program.input_max_abs:
                warnings.append(f"input max |x| = {m:g} is beyond twice the calibrated range "
                                f"{program.input_max_abs:g}: fixed-point intermediates may overflow")
        N = q.shape[0]
        _send_json(chan, {"status": "ok", "batch": int(N)})
        reply = _recv_json(chan, "answer to the batch size")
        if reply["status"] != "ok":
            raise ProtocolError(f"the server refused the session: {reply.get('reason', reply['status'])}")
    with step("OT set-up"):
        party = Party.setup(BOB, chan, seed=seed, params={"program": digest, "batch": int(N)})
    be = SecureBackend(party)
    spec = program.input_spec
    with step("share input"):
        xs = share_input(party, BOB, q, bits=spec.bits, scale=spec.scale, signed=True)
    y = execute(program, be, xs, meter=meter, progress=progress)
    with step("reveal output", 1.0):
        ring = reveal(party, y, to=BOB)
    out = decode_output(program, ring)
    out = out if batched else out[0]
    pred = int(out) if not (batched or program.output_spec.signed) else out
    rows = None
    if meter is not None:
        rows = {"layers": _rows(program, meter), "total": {
            "seconds": time.perf_counter() - t0, "bytes": chan.stats.bytes_sent + chan.stats.bytes_recv,
            "bytes_sent": chan.stats.bytes_sent, "bytes_recv": chan.stats.bytes_recv,
            "rounds": chan.stats.rounds}}
    return InferenceResult(pred, out, batched, digest, program, time.perf_counter() - t0,
                           chan.stats.bytes_sent, chan.stats.bytes_recv, chan.stats.rounds, rows, warnings)


def _rows(program: Program, meter: Meter) -> list[dict]:
    kinds = {op.name: op.op for op in program.ops}
    rows = []
    for name, r in meter.rows.items():
        rows.append({"layer": name, "op": kinds.get(name, "-"), "seconds": r["seconds"],
                     "bytes": r["bytes_sent"] + r.get("bytes_recv", 0), "bytes_sent": r["bytes_sent"],
                     "bytes_recv": r.get("bytes_recv", 0), "rounds": r["rounds"]})
    return rows


def format_bytes(n: float) -> str:
    """``n`` bytes as "1.50 MB" (binary units: KB = 2^10 B, MB = 2^20 B, GB = 2^30 B)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
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
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# TCP: serve and infer
# ---------------------------------------------------------------------------------------------
def _stderr_log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] sirnn serve: {msg}", file=sys.stderr, flush=True)


def _server_tls(tls_cert, tls_key, tls_ca):
    if tls_cert is None:
        if tls_key is not None or tls_ca is not None:
            raise ProgramError("TLS needs the server certificate (--tls-cert) and key")
        return None
    from ..transport.tcp import tls_server_context

    return tls_server_context(tls_cert, tls_key, cafile=tls_ca)


def serve(program, host: str = "127.0.0.1", port: int = 0, *, tls_cert=None, tls_key=None,
          tls_ca=None, max_sessions: int | None = None, timeout: float = 120.0,
          max_batch: int = DEFAULT_MAX_BATCH, log: Callable[[str], None] | None = None,
          on_listening: Callable[[str, int], None] | None = None,
          stop: threading.Event | None = None) -> list[dict]:
    """Serve ``program`` (a Program with values, or a path) on host:port until ``max_sessions``
    sessions have ended (None: forever, or until ``stop`` is set / KeyboardInterrupt).

    TLS: ``tls_cert``/``tls_key`` (the server's certificate); with ``tls_ca`` clients must present
    a certificate signed by it (mutual TLS). ``timeout``: seconds of silence after which a session
    is dropped. Connections are accepted (and their TLS handshakes done) by one thread and served
    one at a time by another, in arrival order. Returns the session summaries.
    """
    from ..ot.warmup import warm_up
    from ..transport.tcp import listen

    log = log or _stderr_log
    if not isinstance(program, Program):
        program = Program.load(program)
    if not program.has_values:
        raise ProgramError("serve needs the program with its parameter values (the compiled .sirnn file)")
    tls = _server_tls(tls_cert, tls_key, tls_ca)
    warm_up()
    stop = stop or threading.Event()
    pending: queue.Queue = queue.Queue(maxsize=16)
    summaries: list[dict] = []
    with listen(host, port, backlog=16, tls=tls, timeout=timeout) as listener:
        name = program.meta.get("name", "model")
        log(f"listening on {listener.host}:{listener.port}{' (TLS)' if tls else ''}; model {name!r}, "
            f"digest {program.digest()[:16]}…, input {program.input_spec}")
        if on_listening is not None:
            on_listening(listener.host, listener.port)

        def accept_loop():
            while not stop.is_set():
                try:  # wait for a connection in short slices so that `stop` is noticed
                    ready, _, _ = select.select([listener._sock], [], [], 0.25)
                    if not ready:
                        continue
                    chan = listener.accept(timeout=None)  # TLS handshake: up to `timeout`
                except SirnnError as e:
                    log(f"connection failed before the session: {type(e).__name__}: {e}")
                    continue
                except (OSError, ValueError) as e:
                    if stop.is_set():
                        return
                    log(f"accept failed: {e}")
                    time.sleep(0.1)
                    continue
                try:
                    pending.put(chan, timeout=timeout)
                except queue.Full:
                    log(f"too many waiting clients: dropping {chan.peer}")
                    chan.close(flush_timeout=0.1)

        acceptor = threading.Thread(target=accept_loop, daemon=True, name="sirnn-serve-accept")
        acceptor.start()
        n = 0
        try:
            while max_sessions is None or n < max_sessions:
                try:
                    chan = pending.get(timeout=0.25)
                except queue.Empty:
                    if stop.is_set():
                        break
                    continue
                n += 1
                summaries.append(_run_logged(n, chan, program, max_batch, log))
        except KeyboardInterrupt:
            log("interrupted")
        finally:
            stop.set()
            acceptor.join(2.0)
            while not pending.empty():
                pending.get_nowait().close(flush_timeout=0.1)
    log(f"stopped after {n} session(s)")
    return summaries


def _run_logged(n: int, chan, program: Program, max_batch: int, log) -> dict:
    peer = getattr(chan, "peer", "peer")
    t0 = time.perf_counter()
    log(f"session {n}: client {peer} connected")
    try:
        s = server_session(chan, program, max_batch=max_batch,
                           progress=ProgressLog(log, f"session {n}: "))
        if s["status"] == "ok":
            log(f"session {n}: ok — batch {s['batch']}, {s['seconds']:.2f} s, sent "
                f"{format_bytes(s['bytes_sent'])}, received {format_bytes(s['bytes_recv'])}, {s['rounds']} rounds")
        else:
            log(f"session {n}: {s['status']} before any secret was used — {s.get('reason', '')}")
    except (SirnnError, OSError) as e:
        s = {"status": "failed", "error": f"{type(e).__name__}: {e}", "seconds": time.perf_counter() - t0}
        log(f"session {n}: failed after {s['seconds']:.2f} s — {type(e).__name__}: {str(e).splitlines()[0]}")
    except Exception as e:  # noqa: BLE001 - a bug must not take the server down; log it loudly
        import traceback

        s = {"status": "error", "error": f"{type(e).__name__}: {e}", "seconds": time.perf_counter() - t0}
        log(f"session {n}: internal error — {type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        chan.close()
    s["session"] = n
    s["peer"] = peer
    return s


def infer(host: str, port: int, x, *, tls_ca=None, tls_cert=None, tls_key=None,
          server_hostname: str | None = None, expect_digest: str | None = None,
          report: bool = False, progress: Callable[[ProgressEvent], None] | None = None,
          timeout: float = 120.0, connect_timeout: float = 30.0) -> InferenceResult:
    """Connect to a sirnn server and run one inference on ``x`` (the client's private input:
    one sample or a batch). TLS: ``tls_ca`` verifies the server (its self-signed certificate or
    CA); ``tls_cert``/``tls_key`` give the client's certificate for mutual TLS."""
    from ..ot.warmup import warm_up
    from ..transport.tcp import connect, tls_client_context

    tls = None
    if tls_ca is not None or tls_cert is not None:
        tls = tls_client_context(cafile=tls_ca, certfile=tls_cert, keyfile=tls_key)
    warm_up()
    chan = connect(host, port, timeout=timeout, connect_timeout=connect_timeout, tls=tls,
                   server_hostname=server_hostname)
    try:
        return client_session(chan, x, expect_digest=expect_digest, report=report, progress=progress)
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
