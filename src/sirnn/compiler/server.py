"""``sirnn serve``: concurrent sessions, a bounded queue, deadlines and a graceful stop.

The **parent** process loads the program, loads every numba kernel once (:func:`warm_up`), then
only accepts connections and keeps the books, in one ``select`` loop without threads (so it may
fork at any time). It runs no protocol and never reads a client's bytes. Each accepted connection
is handed to a **process forked for it**: the kernels come warm with the fork, the sessions of
different clients run in parallel on separate cores, and a session's memory (shares, OT keys)
dies with its process. A connection goes through three states:

1. *handshake* — the TLS handshake and the client's hello, within ``handshake_timeout`` seconds.
   An idle or slow socket costs one small process here, never a session slot; at most
   ``handshakes`` (64) connections may be in this state (beyond: refused at once).
2. *queued* — the hello is valid; the process asks the parent for one of the ``workers`` session
   slots. While all are taken it waits in a first-come first-served queue of at most ``queue``
   clients and sends the client a ``queued`` notice with its position (again every few seconds,
   so the client's silence timeout never fires while it waits). With the queue full, the client
   gets a ``busy`` notice at once (:class:`~sirnn.errors.ServerBusyError` on its side).
3. *running* — the session (:func:`~sirnn.compiler.session.server_session`), within
   ``session_timeout`` seconds and receiving at least ``min_rate`` bytes/s from the client over
   every window of ``rate_window`` = 10 s (a client that trickles bytes cannot hold a slot).

Each deadline is enforced in the session's process by a watchdog thread, which logs why it fired
(through the parent) and ends the process; the parent kills a process that outlives its
deadline by more than ``_GRACE`` seconds (a stuck kernel). SIGTERM (or Ctrl-C): the listening
socket is closed (new clients are refused), queued clients get a ``busy`` notice, running
sessions finish, then the server exits 0; a second signal kills the sessions.

Parent and session process talk over a socket pair, one JSON object per line: the child sends
``{"ev": "hello"}`` (wants a slot) and ``{"ev": "done", "summary": {...}}``; the parent answers
``{"go": true}``, ``{"queued": position, "waiting": n}`` or ``{"refuse": reason}``.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from ..errors import ParameterError, PeerGoneError, ProgramError, ServerBusyError, SirnnError
from ..ot.engine import ot_kind
from ..transport.channel import HEADER
from ..transport.handshake import notice_bytes
from ..transport.launch import proc_status_kb
from .program import Program
from .progress import ProgressLog
from .session import DEFAULT_MAX_BATCH, format_bytes, server_session

__all__ = ["serve", "ServeLimits"]

_KEEPALIVE = 5.0  # seconds between two queue notices to a waiting client
_GRACE = 10.0  # the parent kills a session process this long after its own deadline
_KEEP_SUMMARIES = 1000  # serve() returns the summaries of the last this many connections


@dataclass(frozen=True)
class ServeLimits:
    """How many clients a server takes at once and how long it gives each (see the module doc)."""

    workers: int = os.cpu_count() or 1  #: sessions running at once
    queue: int = 16  #: clients waiting for a slot (beyond: "busy")
    handshake_timeout: float = 10.0  #: TLS handshake + client hello, in seconds
    session_timeout: float = 900.0  #: one session, from leaving the queue to its end, in seconds
    min_rate: float = 1024.0  #: bytes/s the client must send, over every ``rate_window`` (0: no check)
    timeout: float = 120.0  #: seconds of client silence before a session is dropped
    rate_window: float = 10.0  #: seconds over which ``min_rate`` is measured
    handshakes: int = 64  #: connections in their handshake at once (beyond: refused at once)

    def __post_init__(self):
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ParameterError(f"workers must be an integer >= 1, got {self.workers!r}")
        for name, least in (("queue", 0), ("handshakes", 1)):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= least):
                raise ParameterError(f"{name} must be an integer >= {least}, got {getattr(self, name)!r}")
        for name in ("handshake_timeout", "session_timeout", "timeout", "rate_window"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if not self.min_rate >= 0:
            raise ParameterError(f"min_rate must be >= 0 bytes/s, got {self.min_rate!r}")


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
          stop: threading.Event | None = None, workers: int | None = None, queue: int = 16,
          handshake_timeout: float = 10.0, session_timeout: float = 900.0,
          min_rate: float = 1024.0, rate_window: float = 10.0, handshakes: int = 64,
          ot: str | None = None) -> list[dict]:
    """Serve ``program`` (a Program with values, or a path) on host:port until ``max_sessions``
    sessions (connections that got past their hello) have ended (None: forever, or until
    ``stop`` is set, SIGTERM or Ctrl-C).

    TLS: ``tls_cert``/``tls_key`` (the server's certificate); with ``tls_ca`` clients must present
    a certificate signed by it (mutual TLS). ``workers`` sessions (default: the number of cores)
    run at once in forked processes, ``queue`` clients wait for a slot; ``handshake_timeout``,
    ``session_timeout``, ``min_rate`` (bytes/s from the client, over every ``rate_window``
    seconds) and ``timeout`` (seconds of silence) bound what one client can hold, ``handshakes``
    how many connections may be in their handshake at once; see the module doc. ``ot``: the
    sessions' OT engine, "ferret" or "iknp" (None: :data:`~sirnn.ot.engine.DEFAULT_KIND`),
    announced to each client (see :func:`~sirnn.compiler.session.server_session`). Returns the session summaries
    (one dict per connection; the last 1,000). Needs ``os.fork`` (Linux, macOS); run it in the main thread of a
    process without other threads (forking a multi-threaded process is unsafe).
    """
    from ..ot.warmup import warm_up
    from ..transport.tcp import listen

    if not hasattr(os, "fork"):
        raise ParameterError("sirnn serve needs os.fork (Linux or macOS)")
    ot = ot_kind(ot)
    limits = ServeLimits(workers=ServeLimits.workers if workers is None else workers, queue=queue,
                         handshake_timeout=handshake_timeout, session_timeout=session_timeout,
                         min_rate=min_rate, timeout=timeout, rate_window=rate_window,
                         handshakes=handshakes)
    log = log or _stderr_log
    if not isinstance(program, Program):
        program = Program.load(program)
    if not program.has_values:
        raise ProgramError("serve needs the program with its parameter values (the compiled .sirnn file)")
    tls = _server_tls(tls_cert, tls_key, tls_ca)
    warm_up()
    gc.freeze()  # the forked session processes then leave the parent's objects' pages shared
    with listen(host, port, backlog=128, tls=tls, timeout=timeout) as listener:
        name = program.meta.get("name", "model")
        log(f"listening on {listener.host}:{listener.port}{' (TLS)' if tls else ''}; model {name!r}, "
            f"digest {program.digest()[:16]}…, "
            + (f"input {program.input_spec}" if len(program.inputs) == 1 else
               "inputs " + ", ".join(f"{t} {program.tensors[t]}" for t in program.inputs))
            + f", OT engine {ot}")
        log(f"{limits.workers} worker(s), queue {limits.queue}; deadlines: handshake {limits.handshake_timeout:g} s, "
            f"session {limits.session_timeout:g} s, min rate {limits.min_rate:g} B/s, silence {limits.timeout:g} s")
        if on_listening is not None:
            on_listening(listener.host, listener.port)
        server = _Server(program, listener, limits, max_batch, max_sessions, log, ot)
        server.run(stop or threading.Event())
    log(f"stopped after {server.n} session(s)")
    return list(server.summaries)


# ---------------------------------------------------------------------------------------------
# the parent: accept, hand out slots, log
# ---------------------------------------------------------------------------------------------
class _Child:
    """The parent's record of one connection's process."""

    def __init__(self, pid: int, ctrl: socket.socket, peer: str):
        self.pid, self.ctrl, self.peer = pid, ctrl, peer
        self.n: int | None = None  # the session's number, from its valid hello on
        self.state = "handshake"  # → "queued" → "running" → "done"
        self.since = time.monotonic()
        self.buf = b""
        self.summary: dict | None = None
        self.killed: str | None = None

    def send(self, **msg) -> None:
        try:
            self.ctrl.sendall(json.dumps(msg).encode() + b"\n")
        except OSError:
            pass  # the process is gone: its end of the pair is closed, the parent reaps it


class _Server:
    def __init__(self, program: Program, listener, limits: ServeLimits, max_batch: int,
                 max_sessions: int | None, log, ot: str):
        self.program, self.listener, self.limits, self.max_batch, self.log, self.ot = (
            program, listener, limits, max_batch, log, ot)
        self.max_sessions = max_sessions  # (None: no limit)
        self.children: dict[socket.socket, _Child] = {}
        self.queue: list[_Child] = []
        self.running = 0
        self.n = 0
        self.summaries: collections.deque = collections.deque(maxlen=_KEEP_SUMMARIES)
        self.accepting = True  # the listening socket is open
        self.refusing = False  # stopping: queued and new clients get "busy"
        self.signals = 0

    # -- main loop --------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.listener.sock.setblocking(False)
        restore = self._install_signals()
        try:
            while True:
                if self.signals >= 2 and self.children:
                    self._kill_all("second signal")
                elif (self.signals or stop.is_set()) and not self.refusing:
                    self._begin_stop("signal received" if self.signals else "stop requested")
                if self._all_sessions_taken():
                    self._close_listener()
                if not self.accepting and not self.children:
                    return
                rlist = list(self.children) + ([self.listener.sock] if self.accepting else [])
                try:
                    ready, _, _ = select.select(rlist, [], [], 0.25)
                except InterruptedError:
                    continue
                for sock in ready:
                    if sock is self.listener.sock:
                        self._accept()
                    elif sock in self.children:
                        self._read(self.children[sock])
                self._enforce_deadlines()
        except KeyboardInterrupt:  # (only when the handlers could not be installed)
            self._kill_all("interrupted")
        finally:
            for sig, handler in restore.items():
                signal.signal(sig, handler)

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum, frame):
            self.signals += 1
        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _close_listener(self) -> None:
        if self.accepting:
            self.accepting = False
            self.listener.close()

    def _begin_stop(self, why: str) -> None:
        self.log(f"{why}: no new clients; finishing {self.running} running session(s)")
        self.refusing = True
        self._close_listener()
        for child in self.queue:
            child.send(refuse="the server is shutting down")
        self.queue.clear()

    def _kill_all(self, why: str) -> None:
        if not self.children:
            return
        self.log(f"{why}: killing {len(self.children)} session process(es)")
        self.refusing = True
        self._close_listener()
        for child in list(self.children.values()):
            child.killed = child.killed or why
            _kill(child.pid)
            self._reap(child)

    # -- accepting ----------------------------------------------------------------------------------
    def _all_sessions_taken(self) -> bool:
        return self.max_sessions is not None and self.n >= self.max_sessions

    def _accept(self) -> None:
        """Accept what is pending (at most 32 connections, so that the running sessions' messages
        are not kept waiting) and fork a process for each."""
        for _ in range(32):
            if not self.accepting or self._all_sessions_taken():
                return
            try:
                sock, addr = self.listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log(f"accept failed: {e}")
                return
            peer = f"{addr[0]}:{addr[1]}"
            shaking = sum(c.state == "handshake" for c in self.children.values())
            if shaking >= self.limits.handshakes:
                self._refuse_at_once(sock, peer, f"{shaking} connections are still in their handshake")
                continue
            self._fork(sock, peer)

    def _refuse_at_once(self, sock: socket.socket, peer: str, why: str) -> None:
        """Too many connections in their handshake: a plain-TCP client gets a ``busy`` notice
        (one small frame, never waited for); a TLS client (whose handshake this process does not
        do) sees the connection closed."""
        self.log(f"busy: refused {peer} at once ({why})")
        if self.listener.tls is None:
            payload = notice_bytes("busy", reason=why)
            try:
                sock.setblocking(False)
                sock.send(HEADER.pack(1, len(payload)) + payload)
            except OSError:
                pass
        sock.close()

    def _fork(self, sock: socket.socket, peer: str) -> None:
        ours, theirs = socket.socketpair()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        t_fork = time.monotonic()
        try:
            pid = os.fork()
        except OSError as e:  # out of processes or memory: this client is turned away
            ours.close()
            theirs.close()
            self._refuse_at_once(sock, peer, f"cannot start a session process: {e}")
            return
        if pid == 0:  # the session's process: never returns
            code = 70
            try:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent decides when we end
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                ours.close()
                self.listener.close()
                for other in self.children:
                    other.close()
                code = _session_process(sock, theirs, self.listener, self.program, self.limits,
                                        self.max_batch, t_fork, self.ot)
            finally:
                os._exit(code)
        theirs.close()
        sock.close()
        self.children[ours] = _Child(pid, ours, peer)

    # -- messages from the session processes --------------------------------------------------------
    def _read(self, child: _Child) -> None:
        try:
            data = child.ctrl.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._reap(child)
            return
        child.buf += data
        *lines, child.buf = child.buf.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("ev") == "hello":
                self._admit(child)
            elif msg.get("ev") == "done":
                self._done(child, msg["summary"])
            elif msg.get("ev") == "log":  # the session's progress (server-made text)
                self.log(f"session {child.n}: {msg.get('line', '')}")

    def _admit(self, child: _Child) -> None:
        """A valid hello: the connection becomes session n, which starts or queues — or, with the
        queue full (or the server stopping), is refused without a number."""
        lim = self.limits
        if self.refusing or self._all_sessions_taken():
            child.send(refuse="the server is shutting down")
            return
        free = self.running < lim.workers and not self.queue
        if not free and len(self.queue) >= lim.queue:
            child.send(refuse=f"all {lim.workers} session slot(s) are taken and {lim.queue} client(s) "
                              "are already waiting")
            return
        self.n += 1
        child.n = self.n
        self.log(f"session {child.n}: client {child.peer} connected")
        if free:
            self._start(child)
        else:
            self.queue.append(child)
            self._set_state(child, "queued")
            child.send(queued=len(self.queue), waiting=len(self.queue))
            self.log(f"session {child.n}: queued at position {len(self.queue)} ({self.running} running)")

    def _start(self, child: _Child) -> None:
        self.running += 1
        self._set_state(child, "running")
        child.send(go=True)

    def _set_state(self, child: _Child, state: str) -> None:
        child.state, child.since = state, time.monotonic()

    def _release(self, child: _Child) -> None:
        """``child`` leaves its slot (or the queue): the next queued client starts."""
        if child.state == "running":
            self.running -= 1
        elif child in self.queue:
            self.queue.remove(child)
        self._set_state(child, "done")
        while self.queue and self.running < self.limits.workers:
            self._start(self.queue.pop(0))
        for i, waiting in enumerate(self.queue):
            waiting.send(queued=i + 1, waiting=len(self.queue))

    def _done(self, child: _Child, summary: dict) -> None:
        child.summary = summary
        self._release(child)

    def _reap(self, child: _Child) -> None:
        """The process closed its end: collect its exit status, log and keep its summary."""
        del self.children[child.ctrl]
        child.ctrl.close()
        try:
            _, status = os.waitpid(child.pid, 0)
        except ChildProcessError:
            status = 0
        if child.state != "done":
            self._release(child)
        s = child.summary
        if s is None or child.killed:
            how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit status {os.WEXITSTATUS(status)}")
            s = {"status": "error", "error": f"session process ended without a summary ({how})"
                 + (f": {child.killed}" if child.killed else "")}
        s.update(session=child.n, peer=child.peer)
        self.summaries.append(s)
        line = _describe(s)
        if line is not None:
            self.log(line)

    def _enforce_deadlines(self) -> None:
        """The backstop of the session processes' own watchdogs."""
        now = time.monotonic()
        lim = self.limits
        for child in list(self.children.values()):
            limit = {"handshake": lim.handshake_timeout, "running": lim.session_timeout}.get(child.state)
            if limit is not None and not child.killed and now - child.since > limit + _GRACE:
                child.killed = f"still {child.state} {limit + _GRACE:g} s after it started"
                _kill(child.pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _describe(s: dict) -> str | None:
    """A session's log line (the session number first); None for a connection that closed
    without sending a byte (a load balancer's health check)."""
    head = f"session {s['session']}: " if s["session"] else f"connection from {s['peer']}: "
    status = s["status"]
    if status == "empty":
        return None
    queued = f", after {s['queue_seconds']:.2f} s in the queue" if s.get("queue_seconds", 0) >= 0.01 else ""
    if status == "ok":
        return (head + f"ok — batch {s['batch']}, {s['seconds']:.2f} s, sent {format_bytes(s['bytes_sent'])}, "
                f"received {format_bytes(s['bytes_recv'])}, {s['rounds']} rounds{queued}")
    if status == "aborted":  # (the client's reasons are its own: none was sent)
        return head + "client aborted before any secret was used"
    if status == "refused":
        return head + f"refused before any secret was used — {s.get('reason', '')}"
    if status == "busy":
        return head + f"busy — the client was told: {s.get('reason', '')}"
    if status == "timeout":
        return head + f"dropped after {s['seconds']:.2f} s — {s['error']}"
    if status == "failed":
        return head + f"failed after {s['seconds']:.2f} s — {s['error'].splitlines()[0]}"
    return head + f"internal error — {s.get('error', '')}"


# ---------------------------------------------------------------------------------------------
# the session's process
# ---------------------------------------------------------------------------------------------
class _Parent:
    """The session process's end of the socket pair: one summary, sent once (by the session or
    by the watchdog, whichever ends it first)."""

    def __init__(self, ctrl: socket.socket):
        self.ctrl = ctrl
        self.buf = b""
        self.lock = threading.Lock()
        self.finished = False

    def send(self, **msg) -> None:
        self.ctrl.sendall(json.dumps(msg).encode() + b"\n")

    def finish(self, summary: dict) -> bool:
        """Send the summary unless one was sent; returns whether this call sent it."""
        with self.lock:
            if self.finished:
                return False
            self.finished = True
        try:
            self.send(ev="done", summary=summary)
        except OSError:
            pass
        return True

    def messages(self, timeout: float, client_fd: int) -> list[dict]:
        """The parent's messages that arrive within ``timeout`` seconds (maybe none). A queued
        client sends nothing, so if its connection turns readable it has hung up."""
        if b"\n" not in self.buf:
            ready, _, _ = select.select([self.ctrl, client_fd], [], [], timeout)
            if client_fd in ready:
                raise PeerGoneError("the client left while queued (it closed the connection)")
            if not ready:
                return []
            data = self.ctrl.recv(1 << 16)
            if not data:
                raise PeerGoneError("the server's parent process is gone")
            self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines]


class _Watchdog(threading.Thread):
    """Ends the session's process when a deadline passes or the client sends too slowly."""

    def __init__(self, parent: _Parent, started: float, rate_window: float, summary: dict):
        super().__init__(daemon=True, name="sirnn-serve-watchdog")
        self.parent, self.started, self.rate_window = parent, started, rate_window
        self.summary = summary  # what the session's summary holds so far
        self.deadline = None
        self.what = ""
        self.chan = None
        self.min_rate = 0.0

    def arm(self, seconds: float, what: str, chan=None, min_rate: float = 0.0) -> None:
        self.chan, self.min_rate, self.what = chan, min_rate, what
        self.window = (time.monotonic(), chan.stats.bytes_recv if chan is not None else 0)
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = None

    def run(self) -> None:
        while True:
            time.sleep(0.2)
            deadline, now = self.deadline, time.monotonic()
            if deadline is None:
                continue
            if now >= deadline:
                self.fire(self.what)
            t, got = self.window
            if self.min_rate and now - t >= self.rate_window:
                recv = self.chan.stats.bytes_recv
                rate = (recv - got) / (now - t)
                if rate < self.min_rate:
                    self.fire(f"the client sent {rate:.0f} B/s over the last {now - t:.1f} s, below the "
                              f"minimum rate of {self.min_rate:g} B/s (--min-rate)")
                self.window = (now, recv)

    def fire(self, reason: str) -> None:
        stats = self.chan.stats if self.chan is not None else None
        summary = dict(self.summary, status="timeout", error=reason, seconds=time.monotonic() - self.started,
                       rss_peak_kb=proc_status_kb("VmHWM"))
        if stats is not None:
            summary.update(bytes_sent=stats.bytes_sent, bytes_recv=stats.bytes_recv, rounds=stats.rounds)
        if self.parent.finish(summary):
            os._exit(3)  # closes the client's connection; the parent logs the reason


def _session_process(sock: socket.socket, ctrl: socket.socket, listener, program: Program,
                     limits: ServeLimits, max_batch: int, t_fork: float, ot: str) -> int:
    """Body of a session's process: handshake, queue, session; returns the exit status."""
    started = time.monotonic()
    parent = _Parent(ctrl)
    summary = {"start_ms": (started - t_fork) * 1e3, "rss_start_kb": proc_status_kb("VmRSS")}
    dog = _Watchdog(parent, started, limits.rate_window, summary)
    dog.start()
    fd = sock.fileno()  # (a TLS socket keeps the descriptor)
    queued = {"seconds": 0.0}
    chan = None

    def admit(peer_hello):
        dog.disarm()
        t = time.monotonic()
        _wait_for_slot(parent, chan, fd)
        queued["seconds"] = time.monotonic() - t
        dog.arm(limits.session_timeout, f"session deadline of {limits.session_timeout:g} s passed "
                "(--session-timeout)", chan, limits.min_rate)
    dog.arm(limits.handshake_timeout, f"no valid hello within the handshake deadline of "
            f"{limits.handshake_timeout:g} s (--handshake-timeout)")
    try:
        select.select([sock], [], [])  # (the watchdog enforces the handshake deadline)
        if sock.recv(1, socket.MSG_PEEK) == b"":  # a health check (a connect, then a close)
            parent.finish({"status": "empty", "seconds": time.monotonic() - started})
            return 0
        chan = listener.open(sock, limits.handshake_timeout + 1.0)
        progress = ProgressLog(lambda line: parent.send(ev="log", line=line), "")
        summary.update(server_session(chan, program, max_batch=max_batch, admit=admit, progress=progress,
                                      ot=ot))
    except ServerBusyError as e:
        summary.update(status="busy", reason=str(e), seconds=time.monotonic() - started)
    except (SirnnError, OSError) as e:
        summary.update(status="failed", error=f"{type(e).__name__}: {e}", seconds=time.monotonic() - started)
    except Exception as e:  # noqa: BLE001 - a bug must not take the server down; log it loudly
        summary.update(status="error", error=f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        dog.disarm()
        if chan is not None:
            chan.close(flush_timeout=2.0)
    summary.update(queue_seconds=queued["seconds"], rss_peak_kb=proc_status_kb("VmHWM"))
    parent.finish(summary)
    return 0


def _wait_for_slot(parent: _Parent, chan, fd: int) -> None:
    """Ask the parent for a session slot; while queued, tell the client its position (again every
    ``_KEEPALIVE`` s). Returns once the slot is granted; raises :class:`ServerBusyError` (after a
    ``busy`` notice to the client) or :class:`PeerGoneError` (the client left the queue)."""
    parent.send(ev="hello")
    notice = None
    while True:
        for msg in parent.messages(_KEEPALIVE, fd):
            if msg.get("go"):
                return
            if "refuse" in msg:
                chan.send_bytes(notice_bytes("busy", reason=msg["refuse"]))
                raise ServerBusyError(msg["refuse"])
            notice = notice_bytes("queued", position=msg["queued"], waiting=msg["waiting"])
        if notice is not None:  # a new position, or the same again after _KEEPALIVE s
            chan.send_bytes(notice)
