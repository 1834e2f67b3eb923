"""A channel over a TCP connection (optionally TLS), for two OS processes or machines.

Design
------
* The socket is non-blocking; every wait is an explicit ``poll`` in short slices, so a channel can
  always notice a closed peer, a failed sender or its own timeout instead of hanging.
* Sends never block on the peer reading: a frame is written directly while the socket takes it
  without waiting, and whatever is left is queued for a background *sender thread*. So both
  parties may send hundreds of MB at once without deadlock. An error of the sender thread (broken
  pipe, reset) is re-raised in the caller on its next channel operation as
  :class:`~sirnn.errors.PeerGoneError`. A small frame (header and payload in one piece) with
  nothing queued before it costs one ``send`` call.
* Receives go through a small read-ahead buffer: one ``recv_into`` takes whatever has arrived
  (header, payload, and maybe the next frames), so a small message costs one call, or none when
  it was read ahead. Payloads too large for that buffer are read with ``recv_into`` straight into
  their own preallocated ``bytearray`` (linear time, no concatenation), never past their frame.
  A receive first tries to read and waits only if nothing is there. ``timeout`` is measured as
  seconds of *silence*: a long message that keeps arriving never times out; silence between
  frames leaves the channel usable, silence inside a frame makes it unusable (out of step).
* An ``ssl.SSLSocket`` must not be used by two threads at once (OpenSSL objects are not
  thread-safe), so for TLS every non-blocking socket call is made under one lock; waits happen
  outside the lock. Plain sockets are full duplex and need no lock.
* Like every channel, a ``TCPChannel`` is used by one thread at a time (the sender thread is its
  own business).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import ssl
import threading
import time
from typing import Callable

from ..errors import (HandshakeError, ParameterError, PeerGoneError, PeerTimeoutError, ProtocolError,
                      TransportError)
from .channel import HEADER, Channel

#: Largest payload accepted from the peer (a corrupt or foreign header must not allocate TBs).
DEFAULT_MAX_FRAME = 1 << 34  # 16 GiB
_CHUNK = 1 << 20  # bytes handed to one send / recv_into call
_SMALL = 1 << 16  # payloads up to this size are sent in one piece with their header
_READ_AHEAD = 1 << 13  # receive buffer: frames up to this size (with header) are read through it
_SLICE = 0.25  # seconds per poll slice (how soon a wait notices close / sender errors)
_STOP = object()  # sender-queue sentinel
_HEADER_WHAT = "a message header"
_WOULD_BLOCK_READ = (BlockingIOError, ssl.SSLWantReadError)
_PEER_GONE_ERRORS = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Waiter:
    """Waits until a socket is readable (or writable), for at most a given number of seconds."""

    def __init__(self, sock: socket.socket, for_write: bool):
        self._sock = sock
        self._for_write = for_write
        self._poll = None
        if hasattr(select, "poll"):
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLOUT if for_write else select.POLLIN)

    def wait(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if self._poll is not None:
            self._poll.poll(seconds * 1000.0)
        elif self._for_write:
            select.select([], [self._sock], [self._sock], seconds)
        else:
            select.select([self._sock], [], [self._sock], seconds)


def _describe_peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "peer"


class TCPChannel(Channel):
    """One party's end of a TCP (or TLS-over-TCP) connection.

    ``sock`` must be connected (and, for TLS, already past the TLS handshake: use :func:`connect`
    and :meth:`Listener.accept`, which do that). ``timeout`` is the number of seconds of silence
    after which a receive raises :class:`PeerTimeoutError` (None: wait forever); it also bounds how
    long the sender thread waits for a peer that reads nothing.

    Received payloads are returned as ``bytearray`` (bytes-like, no extra copy).
    """

    def __init__(self, sock: socket.socket, timeout: float | None = 120.0, *,
                 max_frame: int = DEFAULT_MAX_FRAME, server_side: bool = False):
        super().__init__(timeout)
        self.max_frame = max_frame
        self.server_side = server_side  #: accepted (True) or connected (False): for error hints
        self.peer = _describe_peer(sock)
        self.is_tls = isinstance(sock, ssl.SSLSocket)
        _set_nodelay(sock)
        sock.setblocking(False)
        self._sock = sock
        self._io_lock = threading.Lock() if self.is_tls else None  # (plain sockets: no lock)
        self._read_waiter = _Waiter(sock, for_write=False)
        self._write_waiter = _Waiter(sock, for_write=True)
        self._queue: queue.Queue = queue.Queue()
        self._send_lock = threading.Lock()  # orders direct writes against the sender thread
        self._unsent = 0  # frames queued for the sender thread and not fully written yet
        self._send_error: BaseException | None = None
        self._abort_send = threading.Event()
        self._closed = False
        self._out_of_step: str | None = None  # why the stream is unusable (e.g. a cut message)
        self._first_frame = True
        self._rbuf = bytearray(_READ_AHEAD)  # received bytes not yet returned: [_rpos, _rend)
        self._rview = memoryview(self._rbuf)
        self._rpos = self._rend = 0
        self._sender = threading.Thread(target=self._sender_loop, daemon=True,
                                        name=f"sirnn-tcp-sender-{self.peer}")
        self._sender.start()

    # -- errors ------------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        """Raise if the channel was closed or the sender thread failed."""
        if self._send_error is not None:
            err = self._send_error
            if isinstance(err, PeerTimeoutError):
                raise PeerTimeoutError(str(err)) from err
            raise PeerGoneError(
                f"sending to {self.peer} failed ({type(err).__name__}: {err}): the peer closed the "
                "connection or its process died") from err
        if self._closed:
            raise PeerGoneError(f"the channel to {self.peer} is closed")
        if self._out_of_step:
            raise ProtocolError(f"{self._out_of_step}: the channel is out of step and cannot be used "
                                "any more")

    @property
    def _cut_message(self) -> str:
        return f"a receive from {self.peer} timed out in the middle of a message"

    def _silence_error(self, what: str) -> PeerTimeoutError:
        return PeerTimeoutError(
            f"{what} for {self.timeout} s (the channel timeout): the peer at {self.peer} is stuck, "
            "or the two parties are not running the same protocol step")

    # -- sending -----------------------------------------------------------------------------------
    def _send_frame(self, header: bytes, payload: bytes) -> None:
        """Write the frame at once if the socket takes it, else hand the rest to the sender thread.

        The direct write (non-blocking, only when nothing is queued) saves a thread hand-off per
        small message; order is kept because queued frames always go before new ones. Only the
        thread using the channel adds to ``_unsent`` (the sender thread only takes away), so
        reading 0 without the lock means the sender thread has nothing left to write.
        """
        self._check_usable()
        if len(payload) <= _SMALL:
            frame = header + payload
            if self._unsent == 0 and self._io_lock is None:  # the usual case: one plain send
                try:
                    sent = self._sock.send(frame)
                except BlockingIOError:
                    sent = 0
                except OSError as e:  # reset, broken pipe, …: reported like a sender error
                    self._send_error = e
                    self._check_usable()  # raises PeerGoneError
                    raise
                if sent == len(frame):
                    return
                pieces = [memoryview(frame)[sent:]]
            else:
                pieces = [memoryview(frame)]
        else:
            pieces = [memoryview(header), memoryview(payload)]
        with self._send_lock:
            if self._unsent == 0:
                try:
                    pieces = self._write_now(pieces)
                except OSError as e:  # reset, broken pipe, …: reported like a sender error
                    self._send_error = e
                    self._check_usable()  # raises PeerGoneError
                    raise
                if not pieces:
                    return
            self._unsent += 1
            self._queue.put(pieces)

    def _write_now(self, pieces: list[memoryview]) -> list[memoryview]:
        """Write as much of ``pieces`` as the socket takes without waiting; return the rest."""
        for i, piece in enumerate(pieces):
            offset = 0
            while offset < len(piece):
                n = self._try_write(piece[offset:offset + _CHUNK])
                if n is None:
                    return [piece[offset:]] + pieces[i + 1:]
                offset += n
        return []

    def _try_write(self, chunk: memoryview) -> int | None:
        """One non-blocking write of ``chunk`` (or a prefix of it); None if it would block.

        After a would-block, TLS requires the retry to pass the same chunk: every caller slices
        chunks of ``_CHUNK`` bytes from the same offset, so the retry is the same chunk.
        """
        try:
            if self._io_lock is None:
                return self._sock.send(chunk)
            with self._io_lock:
                return self._sock.send(chunk)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return None

    def _sender_loop(self) -> None:
        """Body of the sender thread: write queued frames until the stop sentinel."""
        while True:
            pieces = self._queue.get()
            if pieces is _STOP:
                return
            try:
                for piece in pieces:
                    self._write_all(piece)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller by _check_usable
                self._send_error = e
                return
            with self._send_lock:
                self._unsent -= 1

    def _write_all(self, view: memoryview) -> None:
        """Write all of ``view``; waits for buffer space in slices, failing after ``timeout``."""
        offset = 0
        while offset < len(view):
            offset += self._write_some(view[offset:offset + _CHUNK])

    def _write_some(self, chunk: memoryview) -> int:
        """Write ``chunk`` (a prefix of it, for plain TCP), waiting for room; return the count."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if self._abort_send.is_set():
                raise PeerGoneError("channel closed before all data was sent")
            n = self._try_write(chunk)
            if n is not None:
                return n
            if deadline is not None and time.monotonic() >= deadline:
                raise self._silence_error("the peer has not read anything")
            self._write_waiter.wait(
                _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic()))

    # -- receiving ---------------------------------------------------------------------------------
    def _recv_frame(self, nbytes: int | None, limit: int | None,
                    what: str) -> tuple[int, bytearray]:
        self._check_usable()
        if self._rend - self._rpos < HEADER.size:
            self._fill(HEADER.size, _HEADER_WHAT)
        if self._first_frame:
            self._first_frame = False
            self._check_not_tls(self._rbuf[self._rpos:self._rpos + 2])
        depth, length = HEADER.unpack_from(self._rbuf, self._rpos)
        limit = self.max_frame if limit is None else min(limit, self.max_frame)
        try:  # before anything is allocated for the payload
            self._check_length(length, nbytes, limit, what, f"the peer at {self.peer}")
        except ProtocolError as e:
            self._out_of_step = f"{self.peer} sent a message of an unexpected size"
            raise e from None
        size = HEADER.size + length
        if self._rend - self._rpos < size:
            if size > len(self._rbuf):
                return depth, self._recv_large(length)
            self._fill(size, f"a message of {length} bytes")
        start = self._rpos + HEADER.size
        payload = self._rbuf[start:start + length]
        self._rpos = start + length
        if self._rpos == self._rend:
            self._rpos = self._rend = 0
        return depth, payload

    def _check_not_tls(self, first: bytes) -> None:
        """A plain channel whose first bytes are a TLS record (a handshake or an alert): say
        which side must change, instead of a baffling frame-length error."""
        if self.is_tls or len(first) < 2 or first[0] not in (0x15, 0x16) or first[1] != 0x03:
            return
        self._out_of_step = "the peer speaks TLS"
        if self.server_side:
            raise HandshakeError(f"the client at {self.peer} speaks TLS and this server does not: "
                                 "start the server with --tls-cert CERT --tls-key KEY (or connect "
                                 "without TLS)")
        raise HandshakeError(f"the server at {self.peer} speaks TLS and this client does not: pass "
                             "the server's certificate or CA with --tls-ca (tls_ca=…)")

    def _fill(self, need: int, what: str) -> None:
        """Read until the read-ahead buffer holds ``need`` bytes (the rest of the frame or more)."""
        if self._rpos + need > len(self._rbuf):  # move the partial frame to the front
            held = bytes(self._rview[self._rpos:self._rend])
            self._rbuf[:len(held)] = held
            self._rpos, self._rend = 0, len(held)
        while self._rend - self._rpos < need:
            try:
                n = self._read_some(self._rview[self._rend:])
            except PeerTimeoutError:
                # silence between frames leaves the channel usable, inside a frame it does not
                if self._rend > self._rpos and not self._out_of_step:
                    self._out_of_step = self._cut_message
                raise
            if n == 0:
                skip = 0 if what == _HEADER_WHAT else HEADER.size  # count payload bytes only
                raise self._eof_error(what, self._rend - self._rpos - skip, need - skip)
            self._rend += n

    def _recv_large(self, length: int) -> bytearray:
        """Receive a payload larger than the read-ahead buffer straight into its own buffer."""
        payload = bytearray(length)
        view = memoryview(payload)
        got = self._rend - self._rpos - HEADER.size  # the part already read ahead
        view[:got] = self._rview[self._rpos + HEADER.size:self._rend]
        self._rpos = self._rend = 0
        while got < length:  # never reads past the frame, so nothing is read ahead here
            try:
                n = self._read_some(view[got:got + _CHUNK])
            except PeerTimeoutError:
                self._out_of_step = self._cut_message
                raise
            if n == 0:
                raise self._eof_error(f"a message of {length} bytes", got, length)
            got += n
        return payload

    def _eof_error(self, what: str, got: int, nbytes: int) -> PeerGoneError:
        return PeerGoneError(f"peer closed the connection ({self.peer}) while we waited for {what}"
                             + (f" ({got} of {nbytes} bytes received)" if got > 0 else ""))

    def _read_some(self, chunk: memoryview) -> int:
        """Read at least one byte into ``chunk`` (0 means EOF); raise on silence or reset."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            self._check_usable()
            try:
                if self._io_lock is None:
                    return self._sock.recv_into(chunk)
                with self._io_lock:
                    return self._sock.recv_into(chunk)
            except _WOULD_BLOCK_READ:
                waiter = self._read_waiter
            except ssl.SSLWantWriteError:
                waiter = self._write_waiter
            except _PEER_GONE_ERRORS as e:
                raise PeerGoneError(
                    f"peer closed the connection ({self.peer}): {type(e).__name__}: {e}") from e
            except ssl.SSLError as e:
                raise PeerGoneError(f"the TLS session with {self.peer} failed ({e}): the peer "
                                    "rejected our certificate or the stream is corrupt") from e
            if deadline is not None and time.monotonic() >= deadline:
                raise self._silence_error("the peer sent nothing")
            waiter.wait(_SLICE if deadline is None else min(_SLICE, deadline - time.monotonic()))

    # -- closing -----------------------------------------------------------------------------------
    def close(self, flush_timeout: float = 10.0) -> None:
        """Send what is queued (waiting at most ``flush_timeout`` s), then shut the socket down."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._sender.join(flush_timeout)
        if self._sender.is_alive():
            self._abort_send.set()
            self._sender.join(2 * _SLICE)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- establishing connections --------------------------------------------------------------------
#: OpenSSL's reasons for a handshake whose peer sent something that is not TLS at all
_NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "UNKNOWN_PROTOCOL",
                    "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "RECORD_LENGTH_MISMATCH"}


def _secure(sock: socket.socket, tls: ssl.SSLContext | None, *, server_side: bool,
            server_hostname: str | None, handshake_timeout: float | None,
            peer: str) -> socket.socket:
    """Run the TLS handshake on a connected socket (identity if ``tls`` is None).

    Shared by the client and the server path; closes ``sock`` if the handshake fails.
    """
    if tls is None:
        return sock
    sock.settimeout(handshake_timeout)
    try:
        return tls.wrap_socket(sock, server_side=server_side,
                               server_hostname=None if server_side else server_hostname)
    except BaseException as e:
        sock.close()
        if isinstance(e, TimeoutError):
            raise PeerTimeoutError(
                f"TLS handshake with {peer} did not finish within {handshake_timeout} s") from e
        if isinstance(e, ssl.SSLError):
            hint = ""
            if getattr(e, "reason", None) in _NOT_TLS_REASONS:
                hint = ("; the client does not speak TLS: it must connect with --tls-ca CA.pem "
                        "(tls_ca=…)" if server_side else
                        "; the server does not speak TLS: start it with --tls-cert CERT --tls-key "
                        "KEY, or connect without --tls-ca")
            raise TransportError(f"TLS handshake with {peer} failed: {e}{hint}") from e
        if isinstance(e, OSError):
            raise PeerGoneError(f"peer {peer} closed the connection during the TLS handshake: "
                                f"{e}") from e
        raise


def _finish(sock: socket.socket, tls: ssl.SSLContext | None, *, server_side: bool,
            server_hostname: str | None, handshake_timeout: float | None,
            timeout: float | None, max_frame: int) -> TCPChannel:
    """Common tail of :func:`connect` and :meth:`Listener.accept`: TLS, then the channel."""
    _set_nodelay(sock)
    sock = _secure(sock, tls, server_side=server_side, server_hostname=server_hostname,
                   handshake_timeout=handshake_timeout, peer=_describe_peer(sock))
    return TCPChannel(sock, timeout, max_frame=max_frame, server_side=server_side)


def _try_connect(host: str, port: int, attempt_timeout: float) -> socket.socket:
    """One connection attempt; raises OSError on failure."""
    return socket.create_connection((host, port), timeout=attempt_timeout)


def connect(host: str, port: int, *, timeout: float | None = 120.0,
            connect_timeout: float = 30.0, retry_interval: float = 0.05,
            tls: ssl.SSLContext | None = None, server_hostname: str | None = None,
            max_frame: int = DEFAULT_MAX_FRAME,
            on_wait: Callable[[str], None] | None = None) -> TCPChannel:
    """Connect to a listening party and return the channel.

    A server that is not up yet is retried (backing off from ``retry_interval`` to 1 s) until
    ``connect_timeout`` seconds have passed, which also bounds the TLS handshake; ``on_wait``, if
    given, is called once with a line such as "waiting for server at H:P…" when the first attempt
    fails (so a user is not left staring at silence). ``timeout`` is
    the channel's silence timeout. With ``tls``, ``server_hostname`` (default: ``host``) is the
    name checked against the server's certificate when the context checks host names.
    """
    deadline = time.monotonic() + connect_timeout
    sock = connect_socket(host, port, connect_timeout, retry_interval, on_wait=on_wait)
    return _finish(sock, tls, server_side=False, server_hostname=server_hostname or host,
                   handshake_timeout=max(deadline - time.monotonic(), 1.0), timeout=timeout,
                   max_frame=max_frame)


def connect_socket(host: str, port: int, connect_timeout: float = 30.0,
                   retry_interval: float = 0.05,
                   on_wait: Callable[[str], None] | None = None) -> socket.socket:
    """The plain connected (blocking) socket of :func:`connect`: same retries (and ``on_wait``);
    no TLS, no channel."""
    deadline = time.monotonic() + connect_timeout
    delay = retry_interval
    while True:
        remaining = deadline - time.monotonic()
        try:
            sock = _try_connect(host, port, max(remaining, 0.01))
            sock.settimeout(None)  # (the attempt's timeout must not stay on the connection)
            return sock
        except socket.gaierror as e:
            raise TransportError(f"cannot resolve host {host!r}: {e}") from e
        except OSError as e:
            if on_wait is not None:
                on_wait(f"waiting for server at {host}:{port}… (nobody listens yet: {e.strerror or e}; "
                        f"retrying for up to {connect_timeout:g} s)")
                on_wait = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"could not connect to {host}:{port} within {connect_timeout} s (last error: "
                    f"{e}): is the server running and listening on that address?") from e
            time.sleep(min(delay, remaining))
            delay = min(2 * delay, 1.0)


class Listener:
    """A listening socket; :meth:`accept` returns a :class:`TCPChannel` per connecting party."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLContext | None = None,
                 timeout: float | None = 120.0, max_frame: int = DEFAULT_MAX_FRAME):
        self._sock = self.sock = sock  #: the listening socket
        self.tls = tls
        self.timeout = timeout  #: silence timeout of the accepted channels
        self.max_frame = max_frame
        self.host, self.port = sock.getsockname()[:2]

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def accept(self, timeout: float | None = None) -> TCPChannel:
        """Wait up to ``timeout`` s (None: forever) for a party to connect; return its channel."""
        sock = self.accept_socket(timeout)
        return self.open(sock, timeout if timeout is not None else self.timeout)

    def accept_socket(self, timeout: float | None = None) -> socket.socket:
        """:meth:`accept`'s plain connected socket (blocking; no TLS, no channel)."""
        self._sock.settimeout(timeout)
        try:
            sock, _ = self._sock.accept()
        except TimeoutError:
            raise PeerTimeoutError(f"no party connected to {self.host}:{self.port} within "
                                   f"{timeout} s") from None
        sock.settimeout(None)
        return sock

    def open(self, sock: socket.socket, handshake_timeout: float | None) -> TCPChannel:
        """The channel of a connection accepted on :attr:`sock` (by :meth:`accept`, or by a
        server that hands connections to worker processes): the TLS handshake, then the channel."""
        return _finish(sock, self.tls, server_side=True, server_hostname=None,
                       handshake_timeout=handshake_timeout, timeout=self.timeout,
                       max_frame=self.max_frame)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def listen(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 1,
           tls: ssl.SSLContext | None = None, timeout: float | None = 120.0,
           max_frame: int = DEFAULT_MAX_FRAME) -> Listener:
    """Listen on ``host:port`` (port 0: any free port, read it back from ``.port``).

    ``timeout`` is the silence timeout given to accepted channels.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise TransportError(f"cannot listen on {host}:{port}: {e}") from e
    return Listener(sock, tls, timeout, max_frame)


# ---- TLS contexts --------------------------------------------------------------------------------
def _hardened(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _load(what: str, load, *files) -> None:
    """Run ``load(*files)`` (a certificate/key/CA loader); a missing or unreadable file becomes
    a :class:`ParameterError` naming it and what it was for."""
    try:
        load(*files)
    except FileNotFoundError as e:
        raise ParameterError(f"TLS {what}: no such file {e.filename or files[0]!r}") from None
    except (ssl.SSLError, OSError) as e:
        names = ", ".join(repr(str(f)) for f in files if f is not None)
        raise ParameterError(f"TLS {what}: cannot load {names}: {e}") from None


def tls_server_context(certfile: str, keyfile: str | None = None,
                       cafile: str | None = None) -> ssl.SSLContext:
    """TLS context of the listening party; with ``cafile``, clients must present a certificate
    signed by that CA (mutual TLS)."""
    ctx = _hardened(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _load("server certificate/key", ctx.load_cert_chain, certfile, keyfile)
    if hasattr(ctx, "num_tickets"):
        ctx.num_tickets = 0  # no session tickets: nothing is written after the handshake
    if cafile is not None:
        _load("CA for client certificates", ctx.load_verify_locations, cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def tls_client_context(cafile: str | None = None, certfile: str | None = None,
                       keyfile: str | None = None, check_hostname: bool = True) -> ssl.SSLContext:
    """TLS context of the connecting party.

    The server's certificate is always verified, against ``cafile`` (e.g. the server's
    self-signed certificate) or else the system's CAs; ``check_hostname`` also checks its name.
    ``certfile``/``keyfile`` give the client's own certificate for mutual TLS.
    """
    ctx = _hardened(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cafile is not None:
        _load("CA for the server certificate", ctx.load_verify_locations, cafile)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if certfile is not None:
        _load("client certificate/key", ctx.load_cert_chain, certfile, keyfile)
    return ctx


__all__ = ["TCPChannel", "Listener", "connect", "connect_socket", "listen", "tls_server_context",
           "tls_client_context", "DEFAULT_MAX_FRAME"]

