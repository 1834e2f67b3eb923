"""Bit-matrix kernels for OT extension: the column→row transpose and choice encodings.

Bit order is little-endian everywhere: bit j of a packed row is bit ``j % 8`` of byte ``j // 8``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_M1 = np.uint64(0x00AA00AA00AA00AA)
_M2 = np.uint64(0x0000CCCC0000CCCC)
_M3 = np.uint64(0x00000000F0F0F0F0)
_BIT_POS = np.arange(64, dtype=np.uint64)


def _transpose8x8(x: np.ndarray) -> None:
    """Transpose, in place, the 8×8 bit matrix held in each uint64 (bit 8r + c = entry (r, c))."""
    for mask, shift in ((_M1, 7), (_M2, 14), (_M3, 28)):
        s = np.uint64(shift)
        t = (x ^ (x >> s)) & mask
        x ^= t
        x ^= t << s


def transpose_bits_numpy(cols: np.ndarray) -> np.ndarray:
    """Transpose a bit matrix given as ``w`` packed rows of ``m`` bits (pure numpy).

    ``cols``: (w, m/8) uint8 with w a multiple of 8. Returns (m, w/8) uint8: row i holds bit i
    of every input row. Vectorised as 8×8 blocks, each transposed inside one uint64.
    """
    w, mb = cols.shape
    if w % 8:
        raise ValueError("row count must be a multiple of 8")
    # blocks[R, C, r] = cols[8R + r, C]
    blocks = np.ascontiguousarray(cols.reshape(w // 8, 8, mb).transpose(0, 2, 1))
    words = blocks.view("<u8").reshape(w // 8, mb)
    _transpose8x8(words)
    # now byte c of words[R, C] is out[8C + c, R]
    return np.ascontiguousarray(words.view(np.uint8).reshape(w // 8, mb, 8).transpose(1, 2, 0)).reshape(mb * 8, w // 8)


try:  # numba makes the transpose ~6x faster (0.18 s -> 0.03 s for 128 x 2^20 bits)
    from ._kernels import transpose_bits_numba as _transpose_fast
except ImportError:  # pragma: no cover - numba missing
    _transpose_fast = None


def transpose_bits(cols: np.ndarray) -> np.ndarray:
    """Transpose a packed bit matrix, (w, m/8) uint8 → (m, w/8) uint8 (numba kernel if available)."""
    cols = np.ascontiguousarray(cols, dtype=np.uint8)
    if cols.shape[0] % 8:
        raise ValueError("row count must be a multiple of 8")
    if _transpose_fast is not None:
        return _transpose_fast(cols)
    return transpose_bits_numpy(cols)


def pack_bits(bits: np.ndarray, nbits: int | None = None) -> np.ndarray:
    """Pack a 0/1 vector (little-endian), zero-padded to ``nbits`` bits."""
    b = np.asarray(bits, dtype=np.uint8).ravel()
    if nbits is not None and nbits > b.size:
        b = np.concatenate([b, np.zeros(nbits - b.size, dtype=np.uint8)])
    return np.packbits(b, bitorder="little")


def hadamard_columns(choices: np.ndarray, k: int, width: int = 256) -> np.ndarray:
    """Columns of the Walsh–Hadamard encoding of k-bit choices, packed.

    Codeword of r has bit j = <r, j mod 2^k> (parity of r & j). Returns (width, ceil(n/8)) uint8:
    column j holds bit j of every codeword. Built by linearity from the k basis columns, so the
    work is ``width`` XORs of packed columns, not ``width · n`` parities.
    """
    r = np.asarray(choices, dtype=np.uint64).ravel()
    nbytes = (r.size + 7) // 8
    # basis[b] = bit b of every choice, packed: one packbits call for all k bits
    basis = np.packbits(((r[None, :] >> _BIT_POS[:k, None]) & np.uint64(1)).astype(np.uint8),
                        axis=1, bitorder="little")
    cols = np.empty((1 << k, nbytes), dtype=np.uint8)
    cols[0] = 0
    for b in range(k):
        half = 1 << b
        np.bitwise_xor(cols[:half], basis[b], out=cols[half:2 * half])
    return np.tile(cols, (width >> k, 1))  # the 2^k columns repeat across the width (a new array)


@lru_cache(maxsize=None)
def hadamard_codewords(k: int, width: int = 256) -> np.ndarray:
    """All 2^k codewords as packed rows: (2^k, width/8) uint8 (cached; read-only)."""
    words = np.ascontiguousarray(transpose_bits(hadamard_columns(np.arange(1 << k), k, width))[: 1 << k])
    words.flags.writeable = False
    return words
