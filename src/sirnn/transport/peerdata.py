"""Data from the peer (or from a file someone else wrote), handled with caps.

Whatever the other party sends is read under a bound stated in advance: a frame's length is checked
against what the protocol expects before anything is allocated (:meth:`Channel.recv_bytes`), JSON
has a size and a nesting-depth cap checked *before* the parser runs (so a deeply nested message
never reaches Python's recursion limit), and text from the peer that ends up in an error message
or a log is escaped and shortened (:func:`peer_text`), so it cannot forge log lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from ..errors import ProtocolError

#: the deepest nesting of JSON objects/arrays accepted from the peer (sirnn's own messages use < 10)
MAX_JSON_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)  # a JSON string literal (escapes included)
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1
_SCAN = 1 << 20  # bytes per step of the depth scan (bounds its temporaries)


def peer_text(value: Any, limit: int = 60) -> str:
    """``value`` (text or data the peer sent) as a short, printable, single-line string for
    messages, logs and terminals: printable text as it is, anything else as its ASCII ``repr``
    (control, format and separator characters escaped: no new lines, no terminal escapes, no
    bidirectional overrides); cut to ``limit`` characters with "…"."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value[:limit + 1])
    elif isinstance(value, str):
        value = value[:limit + 1]
    if isinstance(value, str) and value.isprintable():
        text = value
    else:
        text = repr(value).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "…"


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text, string literals skipped (a linear scan, no
    recursion). Exact for valid JSON; for invalid text it never under-counts what a parser would
    nest before failing."""
    stripped = _STRING.sub(b"", data)
    deepest = level = 0
    for start in range(0, len(stripped), _SCAN):
        steps = _OPEN[np.frombuffer(stripped, np.uint8, min(_SCAN, len(stripped) - start), start)]
        if not steps.any():
            continue
        run = np.cumsum(steps, dtype=np.int64) + level
        deepest = max(deepest, int(run.max()))
        level = int(run[-1])
    return deepest


def loads_json(data: bytes, what: str, *, max_depth: int = MAX_JSON_DEPTH, error=ProtocolError) -> Any:
    """Parse JSON received from the peer (its size was bounded when it was received): UTF-8,
    at most ``max_depth`` levels of nesting; anything else raises ``error`` naming ``what``."""
    data = bytes(data)
    depth = json_depth(data)
    if depth > max_depth:
        raise error(f"the {what} nests {depth} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise error(f"the {what} is not valid JSON ({e}); it starts {peer_text(data[:40], 50)}") from None


__all__ = ["MAX_JSON_DEPTH", "peer_text", "json_depth", "loads_json"]
