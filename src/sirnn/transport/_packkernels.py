"""numba kernels for dense ℓ-bit packing (bit widths that are not whole bytes)."""

from __future__ import annotations

import numba
import numpy as np

_LOW56 = np.uint64((1 << 56) - 1)


@numba.njit(cache=True, nogil=True)
def pack_bits_numba(v, bits, out):  # pragma: no cover - compiled
    """Write v (uint64, each < 2^bits, bits ≤ 63) densely little-endian into zeroed uint8 ``out``.

    The accumulator holds < 8 pending bits between values; each value goes in as a low part of
    at most 56 bits and a high part, so nothing overflows 64 bits.
    """
    acc = np.uint64(0)
    nacc = 0
    pos = 0
    lo_bits = min(bits, 56)
    for i in range(v.shape[0]):
        x = v[i]
        for part in range(2):
            if part == 0:
                chunk = x & _LOW56
                k = lo_bits
            else:
                if bits <= 56:
                    break
                chunk = x >> np.uint64(56)
                k = bits - 56
            acc |= chunk << np.uint64(nacc)
            nacc += k
            while nacc >= 8:
                out[pos] = np.uint8(acc & np.uint64(0xFF))
                pos += 1
                acc >>= np.uint64(8)
                nacc -= 8
    if nacc > 0:
        out[pos] = np.uint8(acc & np.uint64(0xFF))


@numba.njit(cache=True, nogil=True)
def unpack_bits_numba(buf, count, bits, out):  # pragma: no cover - compiled
    """Inverse of pack_bits_numba: ``count`` values of ``bits`` bits (≤ 63) into uint64 ``out``."""
    acc = np.uint64(0)
    nacc = 0
    pos = 0
    lo_bits = min(bits, 56)
    lo_mask = (np.uint64(1) << np.uint64(lo_bits)) - np.uint64(1)
    for i in range(count):
        while nacc < lo_bits:
            acc |= np.uint64(buf[pos]) << np.uint64(nacc)
            pos += 1
            nacc += 8
        val = acc & lo_mask
        acc >>= np.uint64(lo_bits)
        nacc -= lo_bits
        if bits > 56:
            k = bits - 56
            while nacc < k:
                acc |= np.uint64(buf[pos]) << np.uint64(nacc)
                pos += 1
                nacc += 8
            val |= (acc & ((np.uint64(1) << np.uint64(k)) - np.uint64(1))) << np.uint64(56)
            acc >>= np.uint64(k)
            nacc -= k
        out[i] = val


@numba.njit(cache=True, nogil=True)
def unpack_at_numba(buf, positions, bits, out):  # pragma: no cover - compiled
    """Values number positions[i] of a packed stream of ``bits``-bit values (bits ≤ 56)."""
    m = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    nbuf = buf.shape[0]
    for i in range(positions.shape[0]):
        off = positions[i] * bits
        byte = off >> 3
        acc = np.uint64(0)
        for k in range(8):
            if byte + k < nbuf:
                acc |= np.uint64(buf[byte + k]) << np.uint64(8 * k)
        out[i] = (acc >> np.uint64(off & 7)) & m
