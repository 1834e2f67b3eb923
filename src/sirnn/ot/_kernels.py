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


# ---- fused steps of the TCCR hash of OT pads (see aes.CRHash.hash_pads) --------------------------
# Pad (i, x) = q[i] ⊕ offs[x]; AES itself runs in OpenSSL between the steps.


@numba.njit(cache=True, nogil=True)
def xor_pads(q, offs, col):  # pragma: no cover - compiled
    """The 128-bit half ``col`` of every pad q[i] ⊕ offs[x], row i·N + x: (n·N, 2) uint64."""
    n = q.shape[0]
    big = offs.shape[0]
    out = np.empty((n * big, 2), dtype=np.uint64)
    for i in range(n):
        qa = q[i, col]
        qb = q[i, col + 1]
        for x in range(big):
            out[i * big + x, 0] = qa ^ offs[x, col]
            out[i * big + x, 1] = qb ^ offs[x, col + 1]
    return out


@numba.njit(cache=True, nogil=True)
def add_tweak(u, idx, big, tw_hi):  # pragma: no cover - compiled
    """u ⊕ tweak, the tweak of row j being (idx[j // big], tw_hi)."""
    m = u.shape[0]
    out = np.empty((m, 2), dtype=np.uint64)
    for j in range(m):
        out[j, 0] = u[j, 0] ^ idx[j // big]
        out[j, 1] = u[j, 1] ^ tw_hi
    return out


@numba.njit(cache=True, nogil=True)
def chain_hi(out1, u, q, offs):  # pragma: no cover - compiled
    """Compression of a 256-bit pad: TCCR(lo) ⊕ hi = out1 ⊕ u ⊕ q[i, 2:] ⊕ offs[x, 2:]."""
    n = q.shape[0]
    big = offs.shape[0]
    h = np.empty((n * big, 2), dtype=np.uint64)
    for i in range(n):
        for x in range(big):
            j = i * big + x
            h[j, 0] = out1[j, 0] ^ u[j, 0] ^ q[i, 2] ^ offs[x, 2]
            h[j, 1] = out1[j, 1] ^ u[j, 1] ^ q[i, 3] ^ offs[x, 3]
    return h
