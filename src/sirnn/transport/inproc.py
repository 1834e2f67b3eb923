"""An in-process channel pair for unit tests: two queues, one per direction."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from ..errors import PeerGoneError, PeerTimeoutError
from .channel import HEADER, Channel

_CLOSED = object()


class InProcChannel(Channel):
    def __init__(self, outbox: queue.Queue, inbox: queue.Queue, timeout: float | None = 120.0):
        super().__init__(timeout)
        self._out = outbox
        self._in = inbox
        self._closed = False

    def _send_frame(self, header: bytes, payload: bytes) -> None:
        if self._closed:
            raise PeerGoneError("channel is closed")
        depth, _ = HEADER.unpack(header)
        self._out.put((depth, payload))

    def _recv_frame(self, nbytes: int | None, limit: int | None, what: str) -> tuple[int, bytes]:
        try:
            item = self._in.get(timeout=self.timeout)
        except queue.Empty:
            raise PeerTimeoutError(f"peer sent nothing for {self.timeout} s") from None
        if item is _CLOSED:
            self._in.put(_CLOSED)  # stay closed for later reads
            raise PeerGoneError("peer closed the channel")
        self._check_length(len(item[1]), nbytes, limit, what)
        return item

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.put(_CLOSED)


def inproc_pair(timeout: float | None = 120.0) -> tuple[InProcChannel, InProcChannel]:
    """Two connected channels (ALICE's end, BOB's end)."""
    a2b: queue.Queue = queue.Queue()
    b2a: queue.Queue = queue.Queue()
    return InProcChannel(a2b, b2a, timeout), InProcChannel(b2a, a2b, timeout)


def run_inproc(fn: Callable[..., Any], *args, timeout: float | None = 120.0, **kwargs) -> tuple[Any, Any]:
    """Run ``fn(role, channel, *args, **kwargs)`` for both roles in two threads.

    Returns (ALICE's result, BOB's result); re-raises the first exception of either party
    (preferring the one that caused the other to see its peer vanish).
    """
    pair = ThreadedPair(lambda role, chan: (role, chan), timeout)
    return pair.run(lambda ctx: fn(ctx[0], ctx[1], *args, **kwargs))


class ThreadedPair:
    """A long-lived pair of parties in two threads of this process (a unit-test aid).

    ``make(role, channel)`` builds each party's context (it may communicate, e.g. run OT set-up);
    :meth:`run` then calls ``fn(context, *args)`` on both sides concurrently, as many times as
    wanted, over the same channels.
    """

    def __init__(self, make: Callable[[int, Channel], Any], timeout: float | None = 120.0):
        self.channels = inproc_pair(timeout)
        self.contexts = self._both(lambda role: make(role, self.channels[role]))

    def run(self, fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, Any]:
        """Run ``fn(context, *args, **kwargs)`` for both parties; (ALICE's result, BOB's result)."""
        return self._both(lambda role: fn(self.contexts[role], *args, **kwargs))

    def run_split(self, fn_alice: Callable[[Any], Any], fn_bob: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Run different code on each side: ``fn_alice(ctx_alice)`` and ``fn_bob(ctx_bob)``."""
        fns = (fn_alice, fn_bob)
        return self._both(lambda role: fns[role](self.contexts[role]))

    def _both(self, work: Callable[[int], Any]) -> tuple[Any, Any]:
        results: list[Any] = [None, None]
        errors: list[BaseException | None] = [None, None]

        def target(role: int) -> None:
            try:
                results[role] = work(role)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors[role] = e
                self.channels[role].close()

        threads = [threading.Thread(target=target, args=(r,), daemon=True) for r in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        primary = [e for e in errors if e is not None and not isinstance(e, PeerGoneError)]
        if primary or any(errors):
            raise (primary or [e for e in errors if e is not None])[0]
        return results[0], results[1]
