"""Additive secret shares over Z_{2^ℓ} with explicit bitwidth, fixed-point scale and signedness.

A secret x ∈ Z_{2^ℓ} is held as x = x0 + x1 mod 2^ℓ (ALICE holds x0, BOB holds x1). ℓ = 1 is the
boolean (XOR) case. The real number a share stands for is signed(x)/2^scale (or unsigned(x)/2^scale).
Local operations (no communication) are methods; :func:`share_input` and :func:`reveal` talk.
"""

from __future__ import annotations

import numpy as np

from .. import ALICE, BOB
from ..errors import ParameterError
from .party import Party
from .ring import U64, check_bits, from_int, mask, reduce


class Share:
    """One party's share of a secret array. Immutable in spirit: operations return new shares."""

    __slots__ = ("data", "bits", "scale", "signed", "role")

    def __init__(self, data: np.ndarray, bits: int, scale: int = 0, signed: bool = True, role: int = ALICE):
        self.bits = check_bits(bits)
        self.data = reduce(np.asarray(data, dtype=U64), self.bits)
        if not isinstance(scale, (int, np.integer)) or scale < 0 or scale > 64:
            raise ParameterError(f"scale must be an integer in 0..64, got {scale!r}")
        self.scale = int(scale)
        self.signed = bool(signed)
        self.role = role

    # -- metadata ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"Share(shape={self.shape}, bits={self.bits}, scale={self.scale}, {kind}, role={self.role})"

    def like(self, data: np.ndarray, bits: int | None = None, scale: int | None = None,
             signed: bool | None = None) -> "Share":
        """A share with this one's role and the given data/metadata (defaults: this one's)."""
        return Share(data, self.bits if bits is None else bits, self.scale if scale is None else scale,
                     self.signed if signed is None else signed, self.role)

    def with_meta(self, scale: int | None = None, signed: bool | None = None) -> "Share":
        """Relabel scale or signedness (same ring element)."""
        return self.like(self.data, scale=scale, signed=signed)

    # -- local arithmetic -------------------------------------------------------------------
    def _check_same(self, other: "Share", op: str) -> None:
        if not isinstance(other, Share):
            raise ParameterError(f"{op}: expected a Share, got {type(other).__name__}")
        if other.bits != self.bits:
            raise ParameterError(f"{op}: bitwidths differ ({self.bits} vs {other.bits}); "
                                 "extend or truncate one operand first")
        if other.scale != self.scale:
            raise ParameterError(f"{op}: scales differ ({self.scale} vs {other.scale})")

    def __add__(self, other: "Share") -> "Share":
        self._check_same(other, "add")
        return self.like(self.data + other.data)

    def __sub__(self, other: "Share") -> "Share":
        self._check_same(other, "subtract")
        return self.like(self.data - other.data)

    def __neg__(self) -> "Share":
        return self.like(U64(0) - self.data)

    def __xor__(self, other: "Share") -> "Share":
        if self.bits != 1:
            raise ParameterError("XOR is for boolean (1-bit) shares")
        return self + other

    def add_public(self, c) -> "Share":
        """x + c for a public ring element (array) c: ALICE adds it, BOB does nothing."""
        if self.role != ALICE:
            return self.like(self.data)
        return self.like(self.data + _as_ring(c, self.bits))

    def invert(self) -> "Share":
        """NOT of a boolean share (1 ⊕ x)."""
        if self.bits != 1:
            raise ParameterError("invert is for boolean (1-bit) shares")
        return self.add_public(1)

    def mul_public(self, c, scale: int = 0) -> "Share":
        """x · c mod 2^ℓ for public integer(s) c (any sign); the result's scale is scale(x) + scale."""
        return self.like(self.data * _as_ring(c, self.bits), scale=self.scale + scale)

    def lshift(self, s: int) -> "Share":
        """x · 2^s mod 2^ℓ (same scale: the caller decides what the shift means)."""
        if not 0 <= s < 64:
            raise ParameterError(f"shift must be in 0..63, got {s}")
        return self.like(self.data << U64(s))

    def reduce(self, bits: int) -> "Share":
        """x mod 2^bits, a share in the smaller ring Z_{2^bits} (bits ≤ ℓ)."""
        bits = check_bits(bits)
        if bits > self.bits:
            raise ParameterError(f"reduce: target ring ({bits} bits) is larger than the share's "
                                 f"({self.bits} bits); use an extension protocol")
        return self.like(self.data, bits=bits)

    # -- array plumbing ---------------------------------------------------------------------
    def __getitem__(self, idx) -> "Share":
        return self.like(self.data[idx])

    def reshape(self, *shape) -> "Share":
        return self.like(self.data.reshape(*shape))

    def ravel(self) -> "Share":
        return self.like(self.data.ravel())


class PublicBits(Share):
    """A trivial boolean sharing of *public* bits (ALICE holds them, BOB zeros), that also carries
    the cleartext bits (``public``, known to both parties). It is an ordinary boolean Share to every
    protocol; some may use ``public`` instead (e.g. :func:`sirnn.protocols.mul.mul` folds the wrap
    of an operand with a public MSB into its OT round). Local operations return plain Shares."""

    __slots__ = ("public",)

    def __init__(self, bits01, role: int = ALICE):
        pub = np.asarray(bits01, dtype=U64) & U64(1)
        super().__init__(pub if role == ALICE else np.zeros_like(pub), 1, 0, False, role)
        self.public = pub


def check_share(x, what: str, *, signed: bool | None = None, boolean: bool = False) -> Share:
    """``x`` must be a Share (a signed one if ``signed``, a 1-bit one if ``boolean``)."""
    if not isinstance(x, Share) or (boolean and x.bits != 1):
        kind = "a boolean (1-bit) Share" if boolean else "a Share"
        raise ParameterError(f"{what} must be {kind}, got {type(x).__name__}"
                             + (f" of {x.bits} bits" if isinstance(x, Share) else ""))
    if signed and not x.signed:
        raise ParameterError(f"{what} must be a signed share (two's complement); got an unsigned one")
    return x


def check_msb_share(msb, x: Share, what: str) -> Share | None:
    """An optional boolean share of MSB(x): None, or a 1-bit Share of x's shape."""
    if msb is None:
        return None
    if not isinstance(msb, Share) or msb.bits != 1:
        raise ParameterError(f"{what}: msb must be a boolean (1-bit) Share of MSB(x) or None")
    if msb.shape != x.shape:
        raise ParameterError(f"{what}: msb shape {msb.shape} differs from x shape {x.shape}")
    return msb


def _as_ring(c, bits: int) -> np.ndarray:
    a = np.asarray(c)
    if a.dtype == U64:
        return reduce(a, bits)
    return reduce(a.astype(np.int64).view(U64), bits)


def concat(shares: list[Share], axis: int = 0) -> Share:
    """Concatenate shares of equal ring, scale and signedness."""
    first = shares[0]
    for s in shares[1:]:
        first._check_same(s, "concat")
    return first.like(np.concatenate([s.data for s in shares], axis=axis))


def share_input(party: Party, owner: int, values=None, *, bits: int, scale: int = 0,
                signed: bool = True, shape=None) -> Share:
    """Secret-share the owner's integer array (already fixed-point encoded) between the parties.

    Owner passes ``values`` (signed or unsigned integers that must fit ``bits``); the other party
    passes ``shape``. Cost: ℓ bits per element, one message.
    """
    bits = check_bits(bits)
    if party.role == owner:
        x = from_int(values, bits, signed, what="secret input")
        r = party.random(x.shape, bits)
        party.chan.send((x - r) & mask(bits), bits)
        return Share(r, bits, scale, signed, party.role)
    if shape is None:
        raise ParameterError("share_input: the party that does not own the input must pass its shape")
    return Share(party.chan.recv(tuple(np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),), bits),
                 bits, scale, signed, party.role)


def reveal(party: Party, x: Share, to: int | None = None) -> np.ndarray | None:
    """Open a share. ``to`` = ALICE, BOB or None (both). Returns ring elements (uint64), or None for
    the party that learns nothing. Cost: ℓ bits per element per receiving party, 1 round."""
    if to is None:
        return (x.data + party.chan.exchange(x.data, x.bits)) & mask(x.bits)
    if to not in (ALICE, BOB):
        raise ParameterError(f"reveal: 'to' must be ALICE, BOB or None, got {to!r}")
    if party.role == to:
        return (x.data + party.chan.recv(x.shape, x.bits)) & mask(x.bits)
    party.chan.send(x.data, x.bits)
    return None


def public_share(party: Party, values: np.ndarray, bits: int, scale: int = 0, signed: bool = True) -> Share:
    """A sharing of a public array: ALICE holds it, BOB holds zero."""
    v = from_int(values, bits, signed, what="public value")
    return Share(v if party.role == ALICE else np.zeros_like(v), bits, scale, signed, party.role)
