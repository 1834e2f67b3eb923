"""Run both parties of a protocol in two OS processes over loopback TCP (tests, demos, benches).

``run_two_processes(fn, *args)`` runs ``fn(role, channel, *args, **kwargs)`` as ALICE (role 0,
listening on 127.0.0.1, port chosen by the OS) and BOB (role 1, connecting) in two ``spawn``ed
processes. ALICE sends its port to BOB through a queue. Each child reports its result (or its
exception and traceback) through its own pipe; the parent re-raises failures, detects children
that die without reporting, enforces an overall timeout and always reaps both children.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from .. import ALICE, BOB
from ..errors import ParameterError, PeerGoneError, SirnnError, TransportError
from .handshake import ROLE_NAMES
from .netem import NetworkProfile, RelayProcess, stop_process
from .tcp import TCPChannel, connect, listen, tls_client_context, tls_server_context

_HOST = "127.0.0.1"
_GRACE = 5.0  # seconds the other party may still run once one party has failed


# ---- child side ----------------------------------------------------------------------------------
def proc_status_kb(field: str) -> int | None:
    """A size (KiB) from /proc/self/status (Linux; None elsewhere), e.g. ``VmRSS``, ``VmHWM``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _tls_contexts(tls_files: tuple[str, str] | None, role: int):
    """The TLS context of ``role`` (mutual TLS with one self-signed certificate), or None."""
    if tls_files is None:
        return None
    cert, key = tls_files
    if role == ALICE:
        return tls_server_context(cert, key, cafile=cert)
    return tls_client_context(cafile=cert, certfile=cert, keyfile=key)


def _open_channel(role: int, port_queue, tls_files, timeout: float,
                  channel_timeout: float | None) -> TCPChannel:
    """ALICE listens and publishes her port; BOB reads the port and connects."""
    tls = _tls_contexts(tls_files, role)
    if role == ALICE:
        with listen(_HOST, 0, tls=tls, timeout=channel_timeout) as listener:
            port_queue.put(listener.port)
            return listener.accept(timeout=timeout)
    try:
        port = port_queue.get(timeout=timeout)
    except queue.Empty:
        raise TransportError(f"ALICE did not publish her port within {timeout} s") from None
    if isinstance(port, str):  # the network relay could not start (RelayProcess)
        raise TransportError(port)
    return connect(_HOST, port, timeout=channel_timeout, connect_timeout=timeout, tls=tls,
                   server_hostname="localhost")


def _pickled_class(exc: BaseException) -> bytes | None:
    try:
        cls = type(exc)
        return pickle.dumps(cls) if pickle.loads(pickle.dumps(cls)) is cls else None
    except Exception:  # noqa: BLE001 - unpicklable class: the parent falls back to SirnnError
        return None


def _report(conn: Connection, outcome: tuple) -> None:
    """Send the outcome to the parent; an unpicklable result is reported as an error."""
    try:
        conn.send(outcome)
    except Exception as e:  # noqa: BLE001
        conn.send(("error", None, type(e).__name__,
                   f"could not send the result to the parent: {e}", traceback.format_exc()))


def _child_main(role: int, fn: Callable, args: tuple, kwargs: dict, port_queue,
                result_conn: Connection, tls_files, timeout: float,
                channel_timeout: float | None) -> None:
    """Entry point of one party's process."""
    try:
        channel = _open_channel(role, port_queue, tls_files, timeout, channel_timeout)
        try:
            outcome = ("ok", fn(role, channel, *args, **kwargs))
        except BaseException:
            channel.close(flush_timeout=1.0)  # the peer need not read what is left: let it see EOF
            raise
        channel.close()
    except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
        outcome = ("error", _pickled_class(e), type(e).__name__, str(e), traceback.format_exc())
    _report(result_conn, outcome)
    result_conn.close()


# ---- parent side ---------------------------------------------------------------------------------
@dataclass
class _Party:
    """The parent's view of one child process."""

    role: int
    process: Any
    conn: Connection
    #: ("ok", result) | ("error", pickled class, class name, message, traceback) | ("died", code)
    outcome: tuple | None = None

    @property
    def name(self) -> str:
        return ROLE_NAMES[self.role]

    def collect(self) -> None:
        """Read the report if there is one; a child that exited without one counts as dead."""
        try:
            if self.conn.poll():
                self.outcome = self.conn.recv()
                return
        except (EOFError, OSError):  # pipe closed without a report: the child is exiting
            self.process.join(_GRACE)
            self.outcome = ("died", self.process.exitcode)
            return
        if not self.process.is_alive():
            self.process.join()
            self.outcome = ("died", self.process.exitcode)

    def stop(self) -> None:
        """Terminate (then kill) the child if it still runs, and reap it."""
        stop_process(self.process)
        self.conn.close()


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _exception_of(party: _Party) -> BaseException | None:
    """The exception to raise in the parent for a failed party (None if it succeeded)."""
    kind = party.outcome[0]
    if kind == "ok":
        return None
    if kind == "died":
        return PeerGoneError(f"the {party.name} process died without reporting a result "
                             f"({_exit_description(party.outcome[1])})")
    _, cls_bytes, cls_name, message, tb = party.outcome
    text = f"{message}\n--- traceback in the {party.name} process ---\n{tb.rstrip()}"
    try:
        cls = pickle.loads(cls_bytes) if cls_bytes else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls(text)
    except Exception:  # noqa: BLE001 - unusual constructor: fall back below
        pass
    return SirnnError(f"{cls_name}: {text}")


def _is_consequence(party: _Party, exc: BaseException) -> bool:
    """A PeerGoneError raised by a party is usually the consequence of the other's failure."""
    return party.outcome[0] == "error" and isinstance(exc, PeerGoneError)


def _pick_error(parties: list[_Party]) -> BaseException | None:
    """The root-cause exception among the parties, with the other party's fate as a note."""
    failures = [(p, e) for p in parties if p.outcome is not None
                and (e := _exception_of(p)) is not None]
    if not failures:
        return None
    failures.sort(key=lambda pe: _is_consequence(*pe))  # stable: root causes first
    primary = failures[0][1]
    for party, exc in failures[1:]:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        primary.add_note(f"meanwhile the {party.name} process failed with "
                         f"{type(exc).__name__}: {first_line}")
    for party in parties:
        if party.outcome is None:
            primary.add_note(f"the {party.name} process did not finish and was killed")
    return primary


def _wait_for(parties: list[_Party], deadline: float) -> None:
    """Collect reports until both parties have one, the deadline passes, or one party has failed
    and the other has had a grace period to finish."""
    grace_deadline = None
    while True:
        pending = [p for p in parties if p.outcome is None]
        if not pending:
            return
        if grace_deadline is None and any(p.outcome[0] != "ok" for p in parties if p.outcome):
            grace_deadline = time.monotonic() + _GRACE
        limit = deadline if grace_deadline is None else min(deadline, grace_deadline)
        remaining = limit - time.monotonic()
        if remaining <= 0:
            return
        wait([p.conn for p in pending] + [p.process.sentinel for p in pending], remaining)
        for p in pending:
            p.collect()


def _start_party(ctx, role: int, fn, args, kwargs, port_queue, tls_files, timeout,
                 channel_timeout) -> _Party:
    recv_end, send_end = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, name=f"sirnn-{ROLE_NAMES[role].split()[0]}",
                          args=(role, fn, args, kwargs, port_queue, send_end, tls_files, timeout,
                                channel_timeout))
    process.start()
    send_end.close()  # the child holds the only writer: its exit gives the parent an EOF
    return _Party(role, process, recv_end)


def _check_picklable(fn, args, kwargs) -> None:
    try:
        pickle.dumps((fn, args, kwargs))
    except Exception as e:  # noqa: BLE001
        raise ParameterError(
            f"run_two_processes needs a module-level function and picklable arguments "
            f"(they are sent to 'spawn'ed processes): {type(e).__name__}: {e}") from e


def run_two_processes(fn: Callable[..., Any], *args, timeout: float = 120.0, tls: bool = False,
                      channel_timeout: float | None = None,
                      net: NetworkProfile | str | None = None, **kwargs) -> tuple[Any, Any]:
    """Run ``fn(role, channel, *args, **kwargs)`` as ALICE and BOB in two processes over TCP.

    Returns (ALICE's result, BOB's result); results must be picklable. ``tls`` runs mutual TLS
    with a fresh self-signed certificate. ``channel_timeout`` (default: ``timeout``) is the
    channels' silence timeout. ``net`` (a :class:`~sirnn.transport.netem.NetworkProfile` or its
    text, e.g. ``"rtt=40ms,bw=100mbit"``) puts an emulated network between the parties: BOB
    connects to a relay process (:class:`~sirnn.transport.netem.RelayProcess`) that forwards to
    ALICE with that delay and bandwidth.

    Raises the failing party's exception type (else SirnnError) with its traceback in the
    message; PeerGoneError naming the role and exit code if a child dies without reporting;
    TimeoutError (children killed) if the whole run takes longer than ``timeout`` seconds.
    """
    _check_picklable(fn, args, kwargs)
    net = NetworkProfile.of(net)
    channel_timeout = timeout if channel_timeout is None else channel_timeout
    with tempfile.TemporaryDirectory(prefix="sirnn-tls-") as tmp:
        tls_files = None
        if tls:
            from .tlsutil import make_self_signed_cert
            tls_files = make_self_signed_cert(tmp, "localhost")
        ctx = mp.get_context("spawn")
        queues = {ALICE: ctx.Queue()}  # ALICE publishes her port, BOB reads where to connect
        queues[BOB] = queues[ALICE] if net is None else ctx.Queue()
        deadline = time.monotonic() + timeout
        parties: list[_Party] = []
        relay = None
        try:
            if net is not None:  # the relay reads ALICE's port, connects, publishes its own
                relay = RelayProcess(net, _HOST, queues[ALICE], port_out=queues[BOB],
                                     accept_timeout=timeout, connect_timeout=timeout)
            for role in (ALICE, BOB):
                parties.append(_start_party(ctx, role, fn, args, kwargs, queues[role], tls_files,
                                            timeout, channel_timeout))
            _wait_for(parties, deadline)
        finally:
            for p in parties:
                p.stop()
            if relay is not None:
                relay.stop()
            for q in set(queues.values()):
                q.close()
                q.join_thread()
    error = _pick_error(parties)
    if error is not None:
        raise error
    unfinished = [p.name for p in parties if p.outcome is None]
    if unfinished:
        raise TimeoutError(f"run_two_processes({getattr(fn, '__name__', fn)!s}) did not finish "
                           f"within {timeout} s; still running (now killed): "
                           f"{', '.join(unfinished)}")
    return parties[0].outcome[1], parties[1].outcome[1]


__all__ = ["run_two_processes"]
