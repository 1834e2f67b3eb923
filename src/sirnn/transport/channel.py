"""The channel abstraction shared by every transport.

A channel carries framed messages between the two parties. Every frame has a 12-byte header
(message depth, payload length) followed by the payload. Payload bytes are what protocols cost
(and what :attr:`ChannelStats.bytes_sent` counts); the headers are counted apart, in
:attr:`ChannelStats.wire_bytes_sent`.

Rounds are counted as the *depth* of the message flow (a Lamport clock): a message sent after
receiving one of depth d has depth d + 1, and consecutive sends without a receive in between share
a depth. A strictly alternating exchange of k messages therefore has k rounds, and both parties
sending at once and then receiving is one round, however large the messages.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ProtocolError
from .packing import pack, packed_nbytes, unpack

HEADER = struct.Struct("<IQ")  # depth, payload length


@dataclass
class ChannelStats:
    """Counters of one party's side of a channel."""

    bytes_sent: int = 0  #: payload bytes sent (the protocol's communication)
    bytes_recv: int = 0  #: payload bytes received
    wire_bytes_sent: int = 0  #: payload + framing headers sent
    messages_sent: int = 0
    rounds: int = 0  #: depth of the deepest message sent or received so far

    def copy(self) -> "ChannelStats":
        return ChannelStats(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __sub__(self, other: "ChannelStats") -> "ChannelStats":
        return ChannelStats(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                               for f in fields(self)})

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Channel(ABC):
    """One party's end of a two-party connection.

    Subclasses implement :meth:`_send_frame`, :meth:`_recv_frame` and :meth:`close`; the framing,
    packing, length checks and counters live here.
    """

    def __init__(self, timeout: float | None = 120.0):
        self.timeout = timeout
        self.stats = ChannelStats()
        self._recv_depth = 0  # deepest message received so far

    # -- transport-specific -------------------------------------------------------------------
    @abstractmethod
    def _send_frame(self, header: bytes, payload: bytes) -> None:
        """Queue one frame for sending; must not block on the peer reading it."""

    @abstractmethod
    def _recv_frame(self, nbytes: int | None, limit: int | None, what: str) -> tuple[int, bytes]:
        """Block until the next frame arrives; return (depth, payload).

        The frame's announced length goes through :meth:`_check_length` (with ``nbytes``,
        ``limit`` and ``what`` as given to :meth:`recv_bytes`) *before* its payload is allocated.
        Raises PeerGoneError / PeerTimeoutError instead of hanging.
        """

    @abstractmethod
    def close(self) -> None:
        """Flush pending sends and release the connection."""

    # -- bytes ----------------------------------------------------------------------------------
    def send_bytes(self, payload: bytes | memoryview) -> None:
        if type(payload) is not bytes:  # (this runs per message: no needless calls)
            payload = bytes(payload)
        depth = self._recv_depth + 1
        self._send_frame(HEADER.pack(depth, len(payload)), payload)
        st = self.stats
        st.bytes_sent += len(payload)
        st.wire_bytes_sent += len(payload) + HEADER.size
        st.messages_sent += 1
        if depth > st.rounds:
            st.rounds = depth

    def recv_bytes(self, nbytes: int | None = None, what: str = "message", *,
                   max_nbytes: int | None = None) -> bytes:
        """Receive one message of exactly ``nbytes`` bytes, or (``nbytes`` None) of at most
        ``max_nbytes`` (None: the channel's own limit, if it has one).

        The length the peer announces is checked before anything is allocated: a frame of another
        size is a :class:`ProtocolError` naming ``what``, and the channel is then out of step.
        """
        depth, payload = self._recv_frame(nbytes, max_nbytes, what)
        if depth > self._recv_depth:
            self._recv_depth = depth
        st = self.stats
        st.bytes_recv += len(payload)
        if depth > st.rounds:
            st.rounds = depth
        return payload

    @staticmethod
    def _check_length(length: int, nbytes: int | None, limit: int | None, what: str,
                      peer: str = "the peer") -> None:
        """Raise ProtocolError unless a frame of ``length`` bytes is what the receive expects."""
        if nbytes is not None and length != nbytes:
            raise ProtocolError(
                f"expected a {what} of {nbytes} bytes, {peer} announced {length}: the two parties are "
                "not running the same protocol step or parameters")
        if limit is not None and length > limit:
            raise ProtocolError(
                f"{peer} announced a {what} of {length} bytes, more than the {limit} allowed here: "
                "it is not a sirnn party of this version, or the stream is corrupt")

    def snapshot(self) -> ChannelStats:
        """Counters now, for measuring a window (``stats - snapshot``), starting a fresh round.

        The next message this party sends gets a new depth even if its last action was a send,
        so the window's ``rounds`` counts exactly the rounds of what runs inside it.
        """
        self._recv_depth = self.stats.rounds
        return self.stats.copy()

    # -- arrays of ℓ-bit values -----------------------------------------------------------------
    def send(self, values: np.ndarray, bits: int) -> None:
        """Send an array of ``bits``-bit values, packed densely (the shape is not sent)."""
        self.send_bytes(pack(values, bits))

    def recv(self, shape: int | tuple[int, ...], bits: int) -> np.ndarray:
        """Receive an array of the given shape of ``bits``-bit values (uint64)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        count = int(math.prod(shape))  # (math.prod: no numpy call per message)
        buf = self.recv_bytes(packed_nbytes(count, bits), what=f"{shape} array of {bits}-bit values")
        return unpack(buf, count, bits).reshape(shape)

    def exchange(self, values: np.ndarray, bits: int) -> np.ndarray:
        """Both parties send an array of the same shape at once and receive the other's."""
        self.send(values, bits)
        return self.recv(np.shape(values), bits)

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
