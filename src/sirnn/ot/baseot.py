"""Base OT: Chou–Orlandi "simplest OT" on the prime-order subgroup of edwards25519 (libsodium via PyNaCl).

Random-message 1-of-2 OTs, ``count`` at once, three messages:

* sender: a ← Z_ℓ, sends A = a·G (with a 32-byte session nonce)
* receiver: for each j, b_j ← Z_ℓ, B_j = b_j·G + c_j·A; sends all B_j
* sender: k0_j = H(j, A, B_j, a·B_j), k1_j = H(j, A, B_j, a·(B_j − A))
* receiver: k_{c_j} = H(j, A, B_j, b_j·A)

Cost: 32 + 32·count bytes, 2 rounds; 2 scalar multiplications per OT on each side. Points are
validated on receipt. Only used to seed the first OT extension; everything else is bootstrapped.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from nacl import bindings as nb

from ..errors import ProtocolError
from ..transport import Channel

_POINT = 32


def _random_scalar() -> bytes:
    return nb.crypto_core_ed25519_scalar_reduce(os.urandom(64))


def _kdf(nonce: bytes, j: int, a_pt: bytes, b_pt: bytes, shared: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16, person=b"sirnn-baseot")
    h.update(nonce + j.to_bytes(4, "little") + a_pt + b_pt + shared)
    return h.digest()


def _check_point(p: bytes, what: str) -> None:
    if not nb.crypto_core_ed25519_is_valid_point(p):
        raise ProtocolError(f"base OT: peer sent an invalid curve point as {what}")


def base_ot_send(chan: Channel, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Sender side: returns (k0, k1), each (count, 16) uint8 of random keys."""
    a = _random_scalar()
    a_pt = nb.crypto_scalarmult_ed25519_base_noclamp(a)
    nonce = os.urandom(32)
    chan.send_bytes(nonce + a_pt)
    payload = bytes(chan.recv_bytes(count * _POINT, what="base-OT receiver message"))
    neg_a_pt = nb.crypto_scalarmult_ed25519_base_noclamp(nb.crypto_core_ed25519_scalar_negate(a))
    k0 = bytearray()
    k1 = bytearray()
    for j in range(count):  # public-key operations: one per base OT, a fixed 128 per session
        b_pt = payload[j * _POINT:(j + 1) * _POINT]
        _check_point(b_pt, f"B[{j}]")
        k0 += _kdf(nonce, j, a_pt, b_pt, nb.crypto_scalarmult_ed25519_noclamp(a, b_pt))
        diff = nb.crypto_core_ed25519_add(b_pt, neg_a_pt)
        k1 += _kdf(nonce, j, a_pt, b_pt, nb.crypto_scalarmult_ed25519_noclamp(a, diff))
    return (np.frombuffer(bytes(k0), np.uint8).reshape(count, 16),
            np.frombuffer(bytes(k1), np.uint8).reshape(count, 16))


def base_ot_recv(chan: Channel, choices: np.ndarray) -> np.ndarray:
    """Receiver side: ``choices`` (count,) of 0/1; returns k_c, (count, 16) uint8."""
    choices = np.asarray(choices, dtype=np.uint8).ravel()
    first = bytes(chan.recv_bytes(32 + _POINT, what="base-OT sender message"))
    nonce, a_pt = first[:32], first[32:]
    _check_point(a_pt, "A")
    out = bytearray()
    msg = bytearray()
    for j, c in enumerate(choices):
        b = _random_scalar()
        b_pt = nb.crypto_scalarmult_ed25519_base_noclamp(b)
        if c:
            b_pt = nb.crypto_core_ed25519_add(b_pt, a_pt)
        msg += b_pt
        out += _kdf(nonce, j, a_pt, b_pt, nb.crypto_scalarmult_ed25519_noclamp(b, a_pt))
    chan.send_bytes(bytes(msg))
    return np.frombuffer(bytes(out), np.uint8).reshape(len(choices), 16)
