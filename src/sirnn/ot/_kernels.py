"""numba kernels for bit-level work that numpy expresses poorly. Imported lazily by bitmatrix."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def transpose_bits_numba(cols):  # pragma: no cover - compiled
    """Same contract as bitmatrix.transpose_bits_numpy; tiled 8×8 block transposes."""
    w, mb = cols.shape
    wb = w // 8
    out = np.empty((mb * 8, wb), dtype=np.uint8)
    tile = 256
    for c0 in range(0, mb, tile):
        for rb in range(wb):
            for c in range(c0, min(c0 + tile, mb)):
                x = np.uint64(0)
                for r in range(8):
                    x |= np.uint64(cols[8 * rb + r, c]) << np.uint64(8 * r)
                t = (x ^ (x >> np.uint64(7))) & np.uint64(0x00AA00AA00AA00AA)
                x ^= t ^ (t << np.uint64(7))
                t = (x ^ (x >> np.uint64(14))) & np.uint64(0x0000CCCC0000CCCC)
                x ^= t ^ (t << np.uint64(14))
                t = (x ^ (x >> np.uint64(28))) & np.uint64(0x00000000F0F0F0F0)
                x ^= t ^ (t << np.uint64(28))
                for k in range(8):
                    out[8 * c + k, rb] = np.uint8((x >> np.uint64(8 * k)) & np.uint64(0xFF))
    return out
