"""Arithmetic in Z_{2^ℓ} on numpy uint64 arrays, and conversions to and from signed integers."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

U64 = np.uint64


def check_bits(bits, what: str = "bitwidth") -> int:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= 64:
        raise ParameterError(f"{what} must be an integer in 1..64, got {bits!r}")
    return int(bits)


def mask(bits: int) -> np.uint64:
    """2^bits − 1 as a uint64 scalar."""
    return U64((1 << bits) - 1)


def reduce(x: np.ndarray, bits: int) -> np.ndarray:
    """x mod 2^bits (uint64)."""
    x = np.asarray(x, dtype=U64)
    return x if bits == 64 else x & mask(bits)


def to_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Ring elements → signed integers in [−2^{ℓ−1}, 2^{ℓ−1}) as int64."""
    sh = U64(64 - bits)
    return ((np.asarray(x, dtype=U64) << sh).view(np.int64)) >> np.int64(64 - bits)


def from_int(v, bits: int, signed: bool = True, what: str = "value") -> np.ndarray:
    """Integers → ring elements, checking that each fits ℓ bits (signed or unsigned range)."""
    bits = check_bits(bits)
    a = np.asarray(v)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    kind = "signed" if signed else "unsigned"
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ParameterError(f"{what} contains NaN or infinity")
        if (a != np.round(a)).any():
            raise ParameterError(f"{what} must be integers (fixed-point encoded), got fractions")
        # range-check the floats themselves: a cast of 1e30 to int64 would wrap silently
        if a.size and (a.min() < float(lo) or a.max() >= float(hi) + 1.0):
            raise ParameterError(f"{what} out of range for a {kind} {bits}-bit ring: must lie in "
                                 f"[{lo}, {hi}], got values up to {np.abs(a).max():g} in magnitude")
        a = a.astype(np.uint64 if a.size and a.max() >= 2.0**63 else np.int64)
    if a.dtype.kind == "u" and a.dtype.itemsize == 8:
        big = a.astype(object) if a.size and a.max() >= 2**63 else a.astype(np.int64)
    else:
        big = a.astype(np.int64) if a.dtype.kind != "O" else a
    if big.size and (big.min() < lo or big.max() > hi):
        raise ParameterError(f"{what} out of range for a {kind} {bits}-bit ring: must lie in [{lo}, {hi}]")
    if big.dtype == object:
        return np.array([int(t) & ((1 << 64) - 1) for t in big.ravel()], dtype=U64).reshape(big.shape)
    return reduce(big.astype(np.int64).view(U64), bits)


def encode(x, bits: int, scale: int, signed: bool = True, what: str = "input") -> np.ndarray:
    """Real numbers → fixed-point ring elements round(x·2^scale), range-checked."""
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ParameterError(f"{what} contains NaN or infinity")
    return from_int(np.round(a * 2.0**scale), bits, signed, what)


def decode(x: np.ndarray, bits: int, scale: int, signed: bool = True) -> np.ndarray:
    """Fixed-point ring elements → float64."""
    v = to_signed(x, bits) if signed else reduce(x, bits)
    return v.astype(np.float64) / 2.0**scale
