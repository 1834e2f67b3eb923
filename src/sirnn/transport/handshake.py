"""Session handshake: both parties check version, roles and public parameters before any secret.

Each party sends one small JSON *hello* at the same time (one round) and checks the peer's:

``{"magic": "sirnn", "version": 1, "role": 0, "digest": "<sha256 hex>", "keys": {name: digest}}``
(plus ``"ot": "<engine>"`` when the session's OT engine rides in the hello, see :func:`handshake`)

``digest`` is the SHA-256 of a canonical JSON encoding of the public parameters (model structure,
bitwidths, scales, ...); ``keys`` holds one digest per top-level key of a parameter dict, so a
mismatch can name the keys whose values differ without sending the values. Both parties run the
same checks on the same pair of hellos, so a mismatch fails loudly *on both sides*, and the
channel stays in step (another handshake may follow). The handshake never hangs: a silent peer
hits the channel timeout.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import numpy as np

from .. import PROTOCOL_VERSION
from ..errors import HandshakeError, ParameterError, ProtocolError
from .channel import Channel
from .peerdata import loads_json, peer_text

MAGIC = "sirnn"
ROLE_NAMES = {0: "ALICE (server)", 1: "BOB (client)"}
MAX_HELLO = 1 << 20  #: a hello larger than this is not from a sirnn party


def _to_json_value(obj: Any) -> Any:
    """``json`` fallback: numpy scalars and arrays, tuples and bytes as plain JSON values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": bytes(obj).hex()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not a JSON-serialisable public parameter")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes of ``value``: sorted keys, no spaces, ASCII, no NaN/infinity."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False, default=_to_json_value).encode("ascii")
    except (TypeError, ValueError) as e:
        raise ParameterError(f"public parameters cannot be encoded canonically: {e}") from e


def params_digest(params: dict | bytes | None) -> str:
    """SHA-256 hex digest of the public parameters (raw bytes are hashed as they are)."""
    if isinstance(params, (bytes, bytearray, memoryview)):
        data = bytes(params)
    else:
        data = canonical_json(params)
    return hashlib.sha256(data).hexdigest()


def key_digests(params: dict | bytes | None) -> dict[str, str]:
    """One digest per top-level key of a parameter dict (empty for bytes or None)."""
    if not isinstance(params, dict):
        return {}
    return {str(k): params_digest(canonical_json(v)) for k, v in params.items()}


def make_hello(role: int, params: dict | bytes | None = None, *,
               version: int = PROTOCOL_VERSION, ot: str | None = None) -> dict:
    """The hello this party sends (``ot``: this party's OT engine choice, if it rides along)."""
    if role not in ROLE_NAMES:
        raise ParameterError(f"role must be 0 (ALICE, server) or 1 (BOB, client), got {role!r}")
    hello = {"magic": MAGIC, "version": version, "role": role, "digest": params_digest(params),
             "keys": key_digests(params)}
    if ot is not None:
        hello["ot"] = ot
    return hello


def _parse_hello(payload: bytes) -> dict:
    """Decode the peer's hello; anything that is not a sirnn hello raises HandshakeError."""
    try:
        hello = loads_json(payload, "hello", error=HandshakeError)
    except HandshakeError as e:
        raise HandshakeError(f"peer is not a sirnn party: {e}") from None
    if not isinstance(hello, dict) or hello.get("magic") != MAGIC:
        raise HandshakeError(f"peer is not a sirnn party (its first message, "
                             f"{peer_text(payload[:40], 50)}, is not a sirnn hello)")
    return hello


def _check_version(ours: dict, peer: dict) -> None:
    if peer.get("version") != ours["version"]:
        raise HandshakeError(f"protocol version mismatch: we speak {ours['version']}, peer speaks "
                             f"{peer_text(peer.get('version'))}; run the same sirnn version on both sides")


def _check_roles(ours: dict, peer: dict) -> None:
    role = peer.get("role")
    if type(role) is not int or role not in ROLE_NAMES:
        raise HandshakeError(f"peer sent an invalid role {peer_text(role)} (expected 0 or 1)")
    if role == ours["role"]:
        raise HandshakeError(
            f"both parties claim role {ROLE_NAMES[role]}: one side must be ALICE (server, role 0, "
            "holds the model) and the other BOB (client, role 1, holds the input)")


def _differing_keys(ours: dict, peer: dict) -> str:
    """Human-readable list of the top-level parameter keys that differ (may be empty)."""
    mine, theirs = ours.get("keys") or {}, peer.get("keys") or {}
    if not isinstance(theirs, dict) or not (mine or theirs):
        return ""
    parts = []
    changed = sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])
    if changed:
        parts.append(f"values differ for {', '.join(changed)}")
    only_ours = sorted(mine.keys() - theirs.keys())
    if only_ours:
        parts.append(f"only we have {', '.join(only_ours)}")
    only_peer = sorted(theirs.keys() - mine.keys())
    if only_peer:
        shown = ", ".join(peer_text(k, 40) for k in only_peer[:5])
        parts.append(f"only the peer has {shown}" + (f" and {len(only_peer) - 5} more" if len(only_peer) > 5 else ""))
    return "; ".join(parts)


def _check_params(ours: dict, peer: dict) -> None:
    if peer.get("digest") != ours["digest"]:
        detail = _differing_keys(ours, peer)
        raise HandshakeError(
            f"public parameters differ: ours {ours['digest'][:12]} vs peer "
            f"{peer_text(str(peer.get('digest'))[:12])}" + (f" ({detail})" if detail else "")
            + "; both parties must load the same model and configuration")


def _check_ot(ours: dict, peer: dict) -> None:
    if "ot" in ours and peer.get("ot") != ours["ot"]:
        raise HandshakeError(f"OT engine mismatch: we use {ours['ot']!r}, the peer "
                             f"{peer_text(peer.get('ot'), 40)}; pick the same --ot on both sides")


def check_hello(ours: dict, peer: dict) -> None:
    """Raise HandshakeError naming the first mismatch between our hello and the peer's."""
    _check_version(ours, peer)
    _check_roles(ours, peer)
    _check_params(ours, peer)
    _check_ot(ours, peer)


def handshake(channel: Channel, role: int, params: dict | bytes | None = None, *,
              version: int = PROTOCOL_VERSION, on_notice: Callable[[dict], None] | None = None,
              before_reply: Callable[[dict], None] | None = None, ot: str | None = None) -> dict:
    """Exchange hellos with the peer and check them; return the peer's hello.

    Raises HandshakeError (on both sides) if the peer is not a sirnn party, speaks another
    protocol version, claims the same role, holds different public parameters, or (``ot`` given)
    names another OT engine.

    Two hooks serve a server that runs its clients' sessions one pool slot at a time:

    * ``before_reply`` (the server's side): receive the peer's hello first, check it, call
      ``before_reply(peer_hello)`` — which may wait for a free slot, sending *notices* meanwhile —
      and only then send ours. Only one side may use it (the other must send first). A hello that
      fails the checks is still answered at once, so the mismatch is reported on both sides.
    * ``on_notice`` (the client's side): the peer may send notices (JSON objects with a
      ``"notice"`` key, see :func:`notice_bytes`) before its hello; each is passed to
      ``on_notice``, which may raise to end the session (e.g. the server is busy).
    """
    ours = make_hello(role, params, version=version, ot=ot)
    if before_reply is None:
        channel.send_bytes(canonical_json(ours))
    while True:
        peer = _parse_hello(_recv_hello(channel))
        if on_notice is None or "notice" not in peer:
            break
        on_notice(peer)
    if before_reply is not None:
        try:
            check_hello(ours, peer)
        except HandshakeError:
            channel.send_bytes(canonical_json(ours))
            raise
        before_reply(peer)
        channel.send_bytes(canonical_json(ours))
    check_hello(ours, peer)
    return peer


def _recv_hello(channel: Channel) -> bytes:
    try:
        payload = channel.recv_bytes(what="hello", max_nbytes=MAX_HELLO)
    except HandshakeError:  # already says what is wrong (e.g. TLS on one side only)
        raise
    except ProtocolError as e:  # e.g. a foreign header announcing an absurd length
        raise HandshakeError(f"peer is not a sirnn party: {e}") from e
    return payload


def notice_bytes(kind: str, **fields) -> bytes:
    """A notice a server may send before its hello (``{"magic": "sirnn", "notice": kind, …}``),
    e.g. ``"queued"`` (with the position) or ``"busy"`` (with a reason)."""
    return canonical_json({"magic": MAGIC, "notice": kind, **fields})


__all__ = ["handshake", "notice_bytes", "params_digest", "canonical_json", "make_hello", "check_hello",
           "ROLE_NAMES", "MAGIC"]
