"""Fixed-point conventions of the neural layers: tensor formats, server-held parameters, and
requantisation (change of scale and of ring width) with explicit rules.

Formats
-------
Every activation tensor is a *signed* two's-complement value in a ring Z_{2^bits} with a scale:
the real number is signed(x)/2^scale. A :class:`Fmt` is the pair (bits, scale). Weights and biases
are plaintext integers held by the server (ALICE), each tensor quantised at its own scale
(:class:`Param`); on the client's (BOB's) side a layer knows only their shapes and formats
(:meth:`Param.spec`).

Requantisation rules (:func:`requant`), for a signed x in (m, s) → (bits, scale):

* scale drop d = s − scale > 0: round to nearest, ties up — y = ⌊(x + 2^{d−1}) / 2^d⌋ — by one
  exact truncate-and-reduce TR(x + 2^{d−1}, d) into m − d bits (``rounding="floor"``: TR(x, d)).
  TR is the exact floor *modulo* 2^{m−d}, and ⌊(X + 2^{d−1})/2^d⌋ mod 2^{m−d} depends only on
  X mod 2^m, so wrap-around of x in its ring is harmless: the result is exact whenever the rounded
  value fits the target. This is why products are computed directly into the ring
  out.bits + d (see :func:`acc_bits`) and never into a wider one.
* scale rise g > 0: a local left shift by g (after a sign extension if the target ring is wider).
* width: a wider target ring costs a sign extension (interactive, :meth:`Backend.sext`; needs the
  value to be a correct signed value of its current ring), a narrower one a local reduction.

Precondition (as in SeeDot/SiRNN, no saturation): the exact (rounded) value fits the target
format. Under it every layer is exact up to the stated rounding; scales are chosen from the value
ranges (:func:`fit_scale`) so that it holds, with headroom.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.ring import check_bits, decode, from_int, to_signed
from ..protocols.share import Share

__all__ = ["Fmt", "Param", "fit_scale", "quantize", "requant", "requant_msb", "acc_bits", "add_known",
           "known_share", "public_zeros", "decode_share", "align_scale"]


class Fmt(NamedTuple):
    """A signed fixed-point tensor format: ring Z_{2^bits}, real value = signed(x)/2^scale."""

    bits: int
    scale: int

    def check(self, what: str = "format") -> "Fmt":
        check_bits(self.bits, f"{what} bits")
        if not isinstance(self.scale, (int, np.integer)) or not 0 <= self.scale < self.bits:
            raise ParameterError(f"{what}: scale must lie in 0..bits − 1, got {self}")
        return self

    @property
    def max_real(self) -> float:
        """The largest representable real value (2^{bits−1} − 1)/2^scale."""
        return ((1 << (self.bits - 1)) - 1) / 2.0**self.scale

    def encode(self, values) -> np.ndarray:
        """Reals → signed integers round(v·2^scale) (round half to even, numpy), range-checked."""
        q = np.round(np.asarray(values, np.float64) * 2.0**self.scale)
        from_int(q, self.bits, True, what=f"value for format {tuple(self)}")  # before the cast
        return q.astype(np.int64)

    def decode(self, ring: np.ndarray) -> np.ndarray:
        return decode(ring, self.bits, self.scale, True)

    def of(self, x: Share) -> bool:
        return (x.bits, x.scale) == tuple(self)


def fmt_of(x: Share) -> Fmt:
    return Fmt(x.bits, x.scale)


def fit_scale(max_abs: float, bits: int, headroom_bits: int = 0) -> int:
    """The largest scale s (≤ bits − 1) with round(max_abs·2^s) ≤ 2^{bits−1−headroom} − 1 (SeeDot's
    rule: keep the observed range, plus ``headroom_bits`` spare integer bits)."""
    check_bits(bits)
    top = (1 << (bits - 1 - headroom_bits)) - 1
    if top < 1:
        raise ParameterError(f"fit_scale: no room in {bits} bits with {headroom_bits} headroom bits")
    m = float(max_abs)
    if not np.isfinite(m) or m < 0:
        raise ParameterError(f"fit_scale: max_abs must be finite and ≥ 0, got {max_abs!r}")
    s = bits - 1
    while s > 0 and round(m * 2.0**s) > top:
        s -= 1
    if round(m * 2.0**s) > top:
        raise ParameterError(f"fit_scale: |value| {m} does not fit {bits} bits even at scale 0")
    return s


def quantize(values, bits: int, scale: int) -> np.ndarray:
    """Reals → integers round(v·2^scale) that must fit a signed ``bits``-bit ring."""
    return Fmt(bits, scale).encode(values)


@dataclass(frozen=True)
class Param:
    """A server-held plaintext tensor: integers ``values`` (None on the client's side) of a signed
    ``bits``-bit ring at ``scale``. ``spec()`` is what the client holds: shape and format only."""

    shape: tuple
    bits: int
    scale: int
    values: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        check_bits(self.bits, "parameter bits")
        if self.values is not None:
            v = np.asarray(self.values)
            if v.shape != self.shape:
                raise ParameterError(f"Param values have shape {v.shape}, expected {self.shape}")
            from_int(v, self.bits, True, what="parameter")
            object.__setattr__(self, "values", v.astype(np.int64))

    @classmethod
    def from_float(cls, w, bits: int = 16, scale: int | None = None, headroom_bits: int = 0) -> "Param":
        """Quantise reals at ``scale`` (default: :func:`fit_scale` of max |w|)."""
        w = np.asarray(w, np.float64)
        if scale is None:
            scale = fit_scale(np.abs(w).max() if w.size else 0.0, bits, headroom_bits)
        return cls(w.shape, bits, int(scale), quantize(w, bits, scale))

    def spec(self) -> "Param":
        return replace(self, values=None)

    def at(self, be: Backend):
        """The values on the server's side (required there), None on the client's."""
        if be.role == ALICE:
            if self.values is None:
                raise ParameterError("the server (ALICE) must hold the parameter values")
            return self.values
        return None

    def to_float(self) -> np.ndarray:
        if self.values is None:
            raise ParameterError("parameter values are not known on this side")
        return self.values / 2.0**self.scale

    def rescaled(self, scale: int, bits: int | None = None) -> "Param":
        """The same tensor at another scale (left shift, or round to nearest, ties up); plaintext.
        Used by the server to bring a bias to an accumulator's scale."""
        bits = self.bits if bits is None else bits
        if self.values is None:
            return Param(self.shape, bits, scale)
        d = scale - self.scale
        v = self.values << d if d >= 0 else (self.values + (1 << (-d - 1))) >> (-d)
        return Param(self.shape, bits, scale, v)

    def describe(self) -> dict:
        """Public description (for handshake digests)."""
        return {"shape": list(self.shape), "bits": self.bits, "scale": self.scale}


# ---------------------------------------------------------------------------------------------
def acc_bits(out: Fmt, acc_scale: int, cap: int = 64) -> int:
    """Ring width for a product/accumulator at ``acc_scale`` that is later rounded to ``out``:
    out.bits + (acc_scale − out.scale), which is all the exact TR needs (module doc); at most ``cap``."""
    return min(out.bits + max(acc_scale - out.scale, 0), cap)


def known_share(be: Backend, p: Param, bits: int | None = None, scale: int | None = None) -> Share:
    """A sharing of the server's tensor: ALICE holds its value, BOB zero (no communication)."""
    bits = p.bits if bits is None else bits
    scale = p.scale if scale is None else scale
    q = p.rescaled(scale, bits)
    if be.role == ALICE:
        data = from_int(q.at(be), bits, True, what="server tensor")
    else:
        data = np.zeros(p.shape, np.uint64)
    return Share(data, bits, scale, True, be.role)


def add_known(be: Backend, x: Share, p: Param | None) -> Share:
    """x + b for the server's b (broadcast against x), added locally by ALICE at x's scale (b is
    rescaled exactly if b.scale ≤ x.scale, else rounded by ALICE in the clear)."""
    if p is None:
        return x
    if be.role != ALICE:
        return x.like(x.data)
    q = p.rescaled(x.scale, 64).values
    return x.add_public(np.broadcast_to(q, x.shape).astype(np.int64))


def public_zeros(be: Backend, shape, fmt: Fmt) -> Share:
    return be.public(np.zeros(shape, np.int64), fmt.bits, fmt.scale)


def align_scale(x: Share, scale: int) -> Share:
    """Local left shift of x to a larger ``scale`` in the same ring (the caller keeps the range)."""
    if scale < x.scale:
        raise ParameterError(f"align_scale: cannot lower the scale locally ({x.scale} → {scale})")
    return x.lshift(scale - x.scale).with_meta(scale=scale) if scale > x.scale else x


def requant(be: Backend, x: Share, out: Fmt, rounding: str = "nearest") -> Share:
    """Signed x → format ``out`` by the rules of the module doc (exact rounding, then width).

    ``rounding``: "nearest" (ties up, TR of x + 2^{d−1}) or "floor" (TR of x). Costs: a scale drop
    is one TR (the wrap of the low d bits; e.g. 30 → 16 bits, d = 14: 247.5 bytes per element and 5
    rounds, measured), a wider ring one sign extension, everything else is local.
    """
    out = Fmt(*out).check("requant target")
    if rounding not in ("nearest", "floor"):
        raise ParameterError(f"rounding must be 'nearest' or 'floor', got {rounding!r}")
    x = x.with_meta(signed=True)
    d = x.scale - out.scale
    if d > 0:
        if d >= x.bits:
            raise ParameterError(f"requant: dropping {d} fraction bits from a {x.bits}-bit value")
        if rounding == "nearest":
            x = x.add_public(np.uint64(1) << np.uint64(d - 1))
        x = be.tr(x, d).with_meta(scale=out.scale, signed=True)
    if x.bits > out.bits:
        x = x.reduce(out.bits)
    elif x.bits < out.bits:
        x = be.sext(x, out.bits).with_meta(signed=True)
    if d < 0:
        x = x.lshift(-d).with_meta(scale=out.scale)
    return x


def requant_msb(be: Backend, x: Share, out: Fmt, rounding: str = "nearest") -> tuple[Share, Share]:
    """(:func:`requant` (x, out), boolean shares of its MSB). When the requantisation is one TR
    landing exactly in out.bits (the accumulator rings of :func:`acc_bits`), the MSB comes with
    the TR in the same rounds (:meth:`Backend.tr_msb`); otherwise it is one more :meth:`Backend.msb`."""
    out = Fmt(*out).check("requant target")
    d = x.scale - out.scale
    if rounding not in ("nearest", "floor") or d <= 0 or d >= x.bits or x.bits - d != out.bits:
        y = requant(be, x, out, rounding)
        return y, be.msb(y)
    x = x.with_meta(signed=True)
    if rounding == "nearest":
        x = x.add_public(np.uint64(1) << np.uint64(d - 1))
    y, b = be.tr_msb(x, d)
    return y.with_meta(scale=out.scale, signed=True), b


def decode_share(x: Share) -> np.ndarray:
    """Cleartext (trivial-sharing) value → reals."""
    return to_signed(x.data, x.bits) / 2.0**x.scale
