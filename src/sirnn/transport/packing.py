"""Dense packing of ℓ-bit ring elements: ℓ bits on the wire per value, not 8 bytes.

Values are numpy ``uint64`` arrays whose entries are already reduced mod 2^ℓ.
Bit order is little-endian throughout (bit i of value j is bit ``j*ℓ + i`` of the stream).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

try:  # ~50x faster than the unpackbits route for odd bit widths
    from ._packkernels import pack_bits_numba as _pack_fast, unpack_bits_numba as _unpack_fast
    from ._packkernels import unpack_at_numba as _unpack_at_fast
except ImportError:  # pragma: no cover - numba missing
    _pack_fast = _unpack_fast = _unpack_at_fast = None


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes taken by ``count`` values of ``bits`` bits each."""
    return (count * bits + 7) // 8


def check_bits(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 64:
        raise ParameterError(f"bitwidth must be an integer in 1..64, got {bits!r}")
    return int(bits)


def value_dtype(bits: int) -> np.dtype:
    """The narrowest unsigned dtype holding ``bits``-bit values."""
    return np.dtype(np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64)


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack ``values`` (any shape, unsigned, each < 2^bits) into ``ceil(size*bits/8)`` bytes.

    Arrays already in a narrow dtype (uint8/16/32 wide enough for ``bits``) are packed without
    widening them to uint64 first.
    """
    bits = check_bits(bits)
    dt = np.asarray(values).dtype
    keep = dt.kind == "u" and bits <= 8 * dt.itemsize
    v = np.ascontiguousarray(values, dtype=dt.newbyteorder("<") if keep else np.uint64).ravel()
    if bits == 8 * v.dtype.itemsize:
        return v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes()
    if bits == 64:
        return v.astype("<u8", copy=False).tobytes()
    if bits % 8 == 0:
        nb = bits // 8
        w = v.dtype.itemsize
        return v.view(np.uint8).reshape(-1, w)[:, :nb].tobytes()
    if bits == 1:
        return np.packbits(v.astype(np.uint8, copy=False), bitorder="little").tobytes()
    if _pack_fast is not None:
        out = np.zeros(packed_nbytes(v.size, bits), np.uint8)
        _pack_fast(v, bits, out)
        return out.tobytes()
    bitsarr = np.unpackbits(v.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8), axis=1,
                            bitorder="little")[:, :bits]
    return np.packbits(bitsarr, bitorder="little").tobytes()


def unpack(buf: bytes | memoryview, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``count`` values of ``bits`` bits as a flat uint64 array."""
    bits = check_bits(bits)
    need = packed_nbytes(count, bits)
    if len(buf) != need:
        raise ParameterError(f"packed buffer has {len(buf)} bytes, expected {need} "
                             f"for {count} values of {bits} bits")
    raw = np.frombuffer(buf, dtype=np.uint8)
    if bits == 64:
        return raw.view("<u8").astype(np.uint64)
    if bits % 8 == 0:
        nb = bits // 8
        out = np.zeros((count, 8), dtype=np.uint8)
        out[:, :nb] = raw.reshape(count, nb)
        return out.view("<u8").ravel().astype(np.uint64, copy=False)
    if bits == 1:
        return np.unpackbits(raw, count=count, bitorder="little").astype(np.uint64)
    if _unpack_fast is not None:
        out = np.empty(count, np.uint64)
        _unpack_fast(raw, count, bits, out)
        return out
    b = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(count, bits)
    full = np.zeros((count, 64), dtype=np.uint8)
    full[:, :bits] = b
    return np.packbits(full, axis=1, bitorder="little").view("<u8").ravel().astype(np.uint64, copy=False)


def unpack_at(buf: bytes | memoryview, count: int, bits: int, positions: np.ndarray) -> np.ndarray:
    """``unpack(buf, count, bits)[positions]`` without unpacking the rest (uint64)."""
    bits = check_bits(bits)
    need = packed_nbytes(count, bits)
    if len(buf) != need:
        raise ParameterError(f"packed buffer has {len(buf)} bytes, expected {need}")
    pos = np.ascontiguousarray(positions, dtype=np.int64)
    if _unpack_at_fast is not None and bits <= 56:
        out = np.empty(pos.size, np.uint64)
        _unpack_at_fast(np.frombuffer(buf, np.uint8), pos, bits, out)
        return out
    return unpack(buf, count, bits)[pos]
