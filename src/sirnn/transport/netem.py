"""Network emulation: a TCP relay with a one-way delay and a bandwidth per direction.

This machine's kernel has no ``netem`` qdisc, so sirnn emulates a network itself: the two parties
talk through a :class:`Relay` that forwards the byte stream in both directions, releasing every
chunk at ``arrival + serialisation + delay``:

* **bandwidth** (bytes/s per direction): each direction is a link that serialises the bytes in
  order at its rate (a byte-time model: a chunk of n bytes that arrives at t starts when the link
  is free, ``start = max(t, busy_until)``, and its last byte leaves at ``start + n / rate``).
  Chunks are cut into pieces of about half a millisecond of link time, each released when its own
  last byte has been serialised, so a long message streams instead of arriving in one lump;
* **delay** (seconds, one way): added to every piece after serialisation (propagation);
* like netem without loss or reordering: a FIFO per direction, nothing dropped, duplicated or
  reordered. It is an *ideal* pipe: no TCP slow start or congestion window over the emulated
  path (the loopback hops on either side of the relay are real TCP), i.e. a WAN whose TCP window
  covers the bandwidth-delay product.

So a protocol of R rounds (sirnn counts a round as one flight of messages in one direction, see
:mod:`sirnn.transport.channel`) sending B_up and B_down bytes takes about
``compute + R · delay + B / rate`` through the relay — a round costs one *one-way* delay, half an
RTT (:meth:`NetworkProfile.model_seconds`).

Directions are named from the client's side (BOB, who holds the input): **up** is client → server,
**down** is server → client. Profiles are written like ``rtt=40ms,bw=100mbit`` (see
:meth:`NetworkProfile.parse`); the presets ``lan`` (the SiRNN paper's LAN: 0.8 ms RTT, 377 MB/s)
and ``wan`` (40 ms RTT, 100 Mbit/s) can be combined with fields (``wan,up=20mbit``).

Each direction runs two threads: a *reader* that takes bytes off the socket as soon as they arrive
(so arrival times are exact) and schedules them on a deque of ``(release_time, bytes)``, and a
*writer* that sleeps until the head's release time and sends it. The relay runs in a thread
(:meth:`Relay.start`, for tests) or in its own process (:class:`RelayProcess`, used by
:func:`~sirnn.transport.launch.run_two_processes` and by ``sirnn infer --net``) so that the
parties' Python code never delays its threads (the GIL).
"""

from __future__ import annotations

import collections
import contextlib
import math
import multiprocessing as mp
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass

from ..errors import ParameterError, PeerTimeoutError, TransportError
from .tcp import connect_socket, listen

_RECV = 1 << 20  # bytes taken off the socket per read
_PIECE_SECONDS = 0.0005  # a bandwidth-limited chunk is released in pieces of this much link time
_MIN_PIECE = 4096  # … but no smaller than this
_EARLY = 0.00008  # a release is sent up to this many seconds early (a sleep's usual overshoot)
_IOV = 512  # at most this many pieces per sendmsg (IOV_MAX is 1024 on Linux)
_QUEUE_LIMIT = 64 << 20  # bytes held per direction before the reader stops reading (backpressure)

_TIME_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {"bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
               "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-zµ/]*)\s*$", re.I)


def _field_error(item: str, problem: str) -> ParameterError:
    return ParameterError(f"network profile: bad field {item!r}: {problem}")


def _parse_time(item: str, text: str) -> float:
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _TIME_UNITS:
        raise _field_error(item, "expected a time such as 40ms, 800us or 0.1s")
    return float(m.group(1)) * _TIME_UNITS[unit]


def _parse_rate(item: str, text: str) -> float:
    if text.strip().lower() in ("inf", "unlimited"):
        return math.inf
    m = _NUMBER.match(text)
    unit = m.group(2).lower().removesuffix("/s") if m else ""
    if not m or unit not in _RATE_UNITS:
        raise _field_error(item, "expected a rate such as 100mbit, 1gbit, 377MB (bytes/s) or inf")
    rate = float(m.group(1)) * _RATE_UNITS[unit]
    if rate <= 0:
        raise _field_error(item, "the rate must be positive (inf: unlimited)")
    return rate


def _format_time(s: float) -> str:
    return f"{s * 1e3:g}ms"


def _format_rate(r: float) -> str:
    """The rate in the unit that writes it with the fewest significant digits (100mbit, 377MB)."""
    if math.isinf(r):
        return "inf"
    options = []
    for i, unit in enumerate(("gbit", "mbit", "kbit", "bit", "GB", "MB", "KB", "B")):
        v = r / _RATE_UNITS[unit.lower()]
        if v >= 1:
            text = f"{v:.6g}"
            options.append((len(text.replace(".", "").strip("0")), i, text + unit))
    return min(options)[2] if options else f"{r * 8:g}bit"


@dataclass(frozen=True)
class NetworkProfile:
    """An emulated network: one-way delay (s) and bandwidth (bytes/s, inf: unlimited) per
    direction; up = client (BOB) → server (ALICE), down = server → client."""

    delay_up: float = 0.0
    delay_down: float = 0.0
    bw_up: float = math.inf
    bw_down: float = math.inf

    #: named settings; fields after a preset override it
    PRESETS = {"loopback": "rtt=0ms,bw=inf",
               "lan": "rtt=0.8ms,bw=377MB",  # SiRNN paper, Table IV: 377 MB/s, 0.8 ms RTT
               "wan": "rtt=40ms,bw=100mbit"}

    @classmethod
    def parse(cls, text: str) -> "NetworkProfile":
        """Parse ``"rtt=40ms,bw=100mbit"``-style text: comma-separated fields, applied in order.

        Fields: ``rtt=T`` (one-way delay T/2 each way), ``delay=T`` (one-way, both directions),
        ``delay_up=T``, ``delay_down=T``; ``bw=R`` (both directions), ``up=R``, ``down=R``; or a
        preset name (``loopback``, ``lan``, ``wan``). Times take ``us``, ``ms`` or ``s``; rates
        ``bit``, ``kbit``, ``mbit``, ``gbit`` (bits/s, powers of 1000), ``B``, ``KB``, ``MB``,
        ``GB`` (bytes/s, optional ``/s``), or ``inf``. A bad field raises a one-line
        :class:`ParameterError` naming it.
        """
        if not isinstance(text, str) or not text.strip():
            raise ParameterError("network profile: empty (expected e.g. rtt=40ms,bw=100mbit or lan)")
        v = {"delay_up": 0.0, "delay_down": 0.0, "bw_up": math.inf, "bw_down": math.inf}
        for item in (s.strip() for s in text.split(",")):
            key, eq, val = item.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not eq:
                if key not in cls.PRESETS:
                    raise _field_error(item, "expected key=value (rtt, delay, delay_up, delay_down, "
                                       f"bw, up, down) or a preset ({', '.join(cls.PRESETS)})")
                p = cls.parse(cls.PRESETS[key])
                v.update(delay_up=p.delay_up, delay_down=p.delay_down, bw_up=p.bw_up, bw_down=p.bw_down)
            elif key == "rtt":
                v["delay_up"] = v["delay_down"] = _parse_time(item, val) / 2
            elif key == "delay":
                v["delay_up"] = v["delay_down"] = _parse_time(item, val)
            elif key in ("delay_up", "delay_down"):
                v[key] = _parse_time(item, val)
            elif key == "bw":
                v["bw_up"] = v["bw_down"] = _parse_rate(item, val)
            elif key in ("up", "down"):
                v["bw_" + key] = _parse_rate(item, val)
            else:
                raise _field_error(item, "unknown key (expected rtt, delay, delay_up, delay_down, bw, up, down)")
        return cls(**v)

    @classmethod
    def of(cls, net: "NetworkProfile | str | None") -> "NetworkProfile | None":
        """``net`` as a profile (parsing text); None stays None."""
        return net if net is None or isinstance(net, NetworkProfile) else cls.parse(net)

    @property
    def rtt(self) -> float:
        return self.delay_up + self.delay_down

    @property
    def is_null(self) -> bool:
        """No delay and unlimited bandwidth (the relay only adds its own overhead)."""
        return self.rtt == 0 and math.isinf(self.bw_up) and math.isinf(self.bw_down)

    def __str__(self) -> str:
        d = (f"rtt={_format_time(self.rtt)}" if self.delay_up == self.delay_down else
             f"delay_up={_format_time(self.delay_up)},delay_down={_format_time(self.delay_down)}")
        b = (f"bw={_format_rate(self.bw_up)}" if self.bw_up == self.bw_down else
             f"up={_format_rate(self.bw_up)},down={_format_rate(self.bw_down)}")
        return f"{d},{b}"

    def model_seconds(self, compute: float, rounds: int, bytes_up: int, bytes_down: int) -> dict:
        """The cost model: ``compute + rounds · one-way delay + bytes / rate``.

        A round (a flight of messages in one direction) costs one one-way delay (the mean of the
        two directions'). The bytes are counted serially in both directions (``up`` bytes at the
        up rate plus ``down`` bytes at the down rate): an upper bound, since the two directions
        of a full-duplex link overlap when both parties send at once; ``duplex_total`` counts
        only the slower direction (the bound if they always overlapped). Returns the parts and
        the totals; ``issue_total`` is the serial total with a whole RTT per round.
        """
        latency = rounds * self.rtt / 2
        up, down = bytes_up / self.bw_up, bytes_down / self.bw_down
        return {"compute": compute, "latency": latency, "transfer": up + down,
                "total": compute + latency + up + down,
                "duplex_total": compute + latency + max(up, down),
                "issue_total": compute + 2 * latency + up + down}


def _sleep_until(t: float) -> None:
    """Sleep until about ``t`` (``time.monotonic``). A sleep overshoots by ~0.05–0.1 ms on this
    kind of machine (timer slack and wake-up), which would add up over thousands of rounds, so it
    ends ``_EARLY`` s before ``t`` and the caller sends then: on time on average, never more
    than ``_EARLY`` early. (Spinning on the clock instead is worse on a busy machine: a spinning
    thread loses its CPU and waits a whole time slice.)"""
    wait = t - time.monotonic() - _EARLY
    if wait > 0:
        time.sleep(wait)


# ---- the relay ---------------------------------------------------------------------------------
class _Link:
    """One direction of the relay: ``src`` → ``dst`` with a delay and a rate (bytes/s)."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, rate: float,
                 name: str, on_done):
        self.src, self.dst, self.delay, self.rate = src, dst, delay, rate
        self.piece = max(_MIN_PIECE, int(rate * _PIECE_SECONDS)) if math.isfinite(rate) else None
        self.bytes = 0  #: bytes handed to ``dst`` so far
        self.error: BaseException | None = None
        #: [release time, piece (None: end of stream), buffer to recycle after it or None
        #: (, bytes it held: on a chunk's last piece)]
        self._queue: collections.deque = collections.deque()
        self._pool: list[bytearray] = []  # free receive buffers
        self._held = 0  # bytes (buffer space) held by the queue
        self._cond = threading.Condition()
        self._busy_until = 0.0  # when the link finishes serialising what it has
        self._closing = False
        self._on_done = on_done
        self._threads = [threading.Thread(target=self._read_loop, daemon=True, name=f"relay-{name}-read"),
                         threading.Thread(target=self._write_loop, daemon=True, name=f"relay-{name}-write")]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)

    def abort(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _schedule(self, view: memoryview, now: float) -> list[list]:
        """[release time, piece, None] entries for a chunk that arrived at ``now``."""
        if self.piece is None:
            return [[now + self.delay, view, None]]
        start, n = max(now, self._busy_until), len(view)
        out = [[start + min(off + self.piece, n) / self.rate + self.delay, view[off:off + self.piece], None]
               for off in range(0, n, self.piece)]
        self._busy_until = start + n / self.rate
        return out

    def _read_loop(self) -> None:
        """Take bytes off ``src`` as they arrive and queue them with their release times. A large
        read keeps its buffer until the writer has sent it (no copy; buffers are recycled), a
        small one is copied out so that the buffer is reused at once."""
        pool = self._pool  # free buffers (the writer gives them back)
        try:
            while True:
                buf = pool.pop() if pool else bytearray(_RECV)
                n = self.src.recv_into(buf)
                now = time.monotonic()
                if not n:
                    break
                if n >= _RECV // 4:
                    entries, held = self._schedule(memoryview(buf)[:n], now), len(buf)
                    entries[-1][2] = buf  # the writer recycles the buffer after the last piece
                else:
                    entries, held = self._schedule(memoryview(bytes(memoryview(buf)[:n])), now), n
                    pool.append(buf)
                entries[-1].append(held)
                with self._cond:
                    while self._held > _QUEUE_LIMIT and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        return
                    self._queue.extend(entries)
                    self._held += held
                    self._cond.notify_all()
        except OSError as e:
            self.error = self.error or e
        with self._cond:  # EOF (or a reset) travels like data: after what was sent before it
            self._queue.append([max(time.monotonic(), self._busy_until) + self.delay, None, None])
            self._cond.notify_all()

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        return
                    release = self._queue[0][0]
                _sleep_until(release)  # (ends up to _EARLY s early: the head goes now anyway)
                with self._cond:
                    due = max(time.monotonic(), release)
                    batch = []  # the head and whatever else is due, sent in one call
                    while (self._queue and self._queue[0][0] <= due and self._queue[0][1] is not None
                           and len(batch) < _IOV):
                        batch.append(self._queue.popleft())
                    eof = not batch
                    if eof:  # the head is the end of the stream
                        self._queue.popleft()
                if eof:
                    with contextlib.suppress(OSError):
                        self.dst.shutdown(socket.SHUT_WR)
                    return
                views = [e[1] for e in batch]
                self.bytes += sum(len(v) for v in views)  # (before the send: the receiver may check it)
                _send_views(self.dst, views)
                held = 0
                for e in batch:
                    if e[2] is not None:
                        self._pool.append(e[2])
                    if len(e) > 3:
                        held += e[3]
                with self._cond:
                    self._held -= held
                    self._cond.notify_all()
        except OSError as e:  # the receiving side is gone: tear the whole relay down
            self.error = self.error or e
        finally:
            self._on_done(self)


def _send_views(sock: socket.socket, views: list[memoryview]) -> None:
    """Send every view, in order, with as few ``sendmsg`` calls as the socket allows (no copy)."""
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


class Relay:
    """A one-connection TCP relay emulating ``profile`` (a :class:`NetworkProfile` or its text).

    It listens on ``listen_host:listen_port`` (port 0: any free port, see :attr:`port`); the
    client connects there, the relay connects to the target (the server) and forwards both ways
    until both directions have closed. Bytes from the client travel *up*.
    """

    def __init__(self, profile: NetworkProfile | str, listen_host: str = "127.0.0.1",
                 listen_port: int = 0):
        self.profile = NetworkProfile.of(profile)
        self._listener = listen(listen_host, listen_port)
        self.host, self.port = self._listener.address
        self.links: list[_Link] = []
        self._socks: list[socket.socket] = []
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._ended = 0  # links whose writer has ended
        self._thread: threading.Thread | None = None

    # -- set-up ------------------------------------------------------------------------------------
    @staticmethod
    def connect_target(host: str, port: int, timeout: float = 30.0) -> socket.socket:
        """Connect to the server (retrying while it is not up, for ``timeout`` seconds)."""
        return connect_socket(host, port, timeout)

    def accept_client(self, timeout: float | None = 120.0) -> socket.socket:
        """Wait for the client (one only: the listener closes)."""
        try:
            return self._listener.accept_socket(timeout)
        finally:
            self._listener.close()

    def run(self, client: socket.socket, server: socket.socket) -> None:
        """Forward between the connected ``client`` and ``server`` until both directions end."""
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socks = [client, server]
        p = self.profile
        self.links = [_Link(client, server, p.delay_up, p.bw_up, "up", self._link_done),
                      _Link(server, client, p.delay_down, p.bw_down, "down", self._link_done)]
        for link in self.links:
            link.start()
        self._done.wait()
        for link in self.links:
            link.abort()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()

    def _link_done(self, link: _Link) -> None:
        """Called by a link's writer when it ends: the relay is done when both have ended, or
        at once if one failed (then both sockets are shut down so that each party sees it)."""
        if link.error is not None:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._done.set()
        with self._lock:
            self._ended += 1
            if self._ended == len(self.links):
                self._done.set()

    def serve(self, target: tuple[str, int], accept_timeout: float | None = 120.0,
              connect_timeout: float = 30.0) -> None:
        """Accept one client, connect to ``target``, forward until both directions end."""
        client = self.accept_client(accept_timeout)
        try:
            server = self.connect_target(*target, timeout=connect_timeout)
        except BaseException:
            client.close()
            raise
        self.run(client, server)

    def start(self, target: tuple[str, int], **kwargs) -> "Relay":
        """:meth:`serve` in a daemon thread (tests); returns self."""
        self._thread = threading.Thread(target=self.serve, args=(target,), kwargs=kwargs, daemon=True,
                                        name="sirnn-relay")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop forwarding and close every socket."""
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self._done.set()
        if self._thread is not None:
            self._thread.join(5.0)


# ---- the relay in its own process --------------------------------------------------------------
def _relay_main(profile: NetworkProfile, listen_host: str, target_host: str, target, port_out,
                accept_timeout: float | None, connect_timeout: float) -> None:
    """Entry point of a relay process. ``target`` is the server's port, or a queue on which the
    server publishes it (:func:`~sirnn.transport.launch.run_two_processes`); the relay publishes
    its own port on ``port_out`` as an int, or an error message as a str."""
    try:
        relay = Relay(profile, listen_host)
        if not isinstance(target, int):
            try:
                target = target.get(timeout=connect_timeout)
            except queue.Empty:
                raise TransportError(f"relay: the server did not publish its port within "
                                     f"{connect_timeout} s") from None
        server = relay.connect_target(target_host, target, connect_timeout)
    except Exception as e:  # noqa: BLE001 - reported to whoever waits for the port
        port_out.put(str(e))
        return
    port_out.put(relay.port)
    try:
        client = relay.accept_client(accept_timeout)
    except PeerTimeoutError:
        server.close()
        return
    relay.run(client, server)


def stop_process(process, grace: float = 1.0) -> None:
    """Terminate ``process`` (a multiprocessing process) if it still runs, kill it if it has not
    exited after ``grace`` seconds, and reap it."""
    if process.is_alive():
        process.terminate()
        process.join(grace)
    if process.is_alive():
        process.kill()
    process.join()


class RelayProcess:
    """A :class:`Relay` in its own process, between a client and the server at
    ``target_host:target`` (``target``: a port, or a queue that will carry it).

    The relay connects to the server first; :meth:`wait_port` (or ``port_out``, if given) then
    yields the port clients connect to. Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, profile: NetworkProfile | str, target_host: str, target, *,
                 listen_host: str = "127.0.0.1", port_out=None, accept_timeout: float | None = 120.0,
                 connect_timeout: float = 30.0):
        ctx = mp.get_context("spawn")
        self._port_out = port_out if port_out is not None else ctx.Queue()
        self.connect_timeout = connect_timeout
        self.process = ctx.Process(
            target=_relay_main, name="sirnn-relay", daemon=True,
            args=(NetworkProfile.of(profile), listen_host, target_host, target, self._port_out,
                  accept_timeout, connect_timeout))
        self.process.start()

    def wait_port(self, timeout: float | None = None) -> int:
        """The relay's listening port, once it has connected to the server; TransportError
        (and the relay stopped) if it could not."""
        timeout = self.connect_timeout + 30.0 if timeout is None else timeout
        try:
            got = self._port_out.get(timeout=timeout)
        except queue.Empty:
            got = f"the network relay did not start within {timeout} s"
        if isinstance(got, str):
            self.stop()
            raise TransportError(got)
        return got

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> "RelayProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["NetworkProfile", "Relay", "RelayProcess"]
