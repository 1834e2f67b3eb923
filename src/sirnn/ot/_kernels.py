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


# ---- fused steps of the MMO hash of OT pads (see aes.CRHash.hash_pads) --------------------------
# Pad (i, x) = q[i] ⊕ offs[x]; σ(a‖b) = (a ⊕ b)‖a; AES itself runs in OpenSSL between the steps.


@numba.njit(cache=True, nogil=True, inline="always")
def _sigma_tweak(sig, ain, j, a, b, t, tw_hi):  # pragma: no cover - compiled
    """Row j: σ(a‖b) = (a ⊕ b)‖a, and σ ⊕ (t‖tw_hi)."""
    s0 = a ^ b
    sig[j, 0] = s0
    sig[j, 1] = a
    ain[j, 0] = s0 ^ t
    ain[j, 1] = a ^ tw_hi


@numba.njit(cache=True, nogil=True)
def mmo_in(q, offs, idx, tw_hi, col):  # pragma: no cover - compiled
    """σ of the 128-bit half ``col`` of every pad, and σ ⊕ tweak (the AES input)."""
    n = q.shape[0]
    big = offs.shape[0]
    sig = np.empty((n * big, 2), dtype=np.uint64)
    ain = np.empty((n * big, 2), dtype=np.uint64)
    for i in range(n):
        qa = q[i, col]
        qb = q[i, col + 1]
        t = idx[i]
        for x in range(big):
            j = i * big + x
            _sigma_tweak(sig, ain, j, qa ^ offs[x, col], qb ^ offs[x, col + 1], t, tw_hi)
    return sig, ain


@numba.njit(cache=True, nogil=True)
def mmo_chain(out1, sig, q, offs, idx, tw_hi):  # pragma: no cover - compiled
    """Second block of a 256-bit pad: y = H1 ⊕ pad_hi (H1 = out1 ⊕ sig); returns σ(y), σ(y) ⊕ tweak."""
    n = q.shape[0]
    big = offs.shape[0]
    sig2 = np.empty((n * big, 2), dtype=np.uint64)
    ain = np.empty((n * big, 2), dtype=np.uint64)
    for i in range(n):
        t = idx[i]
        for x in range(big):
            j = i * big + x
            a = out1[j, 0] ^ sig[j, 0] ^ q[i, 2] ^ offs[x, 2]
            b = out1[j, 1] ^ sig[j, 1] ^ q[i, 3] ^ offs[x, 3]
            _sigma_tweak(sig2, ain, j, a, b, t, tw_hi)
    return sig2, ain


@numba.njit(cache=True, nogil=True)
def mmo_retweak(sig, idx, big, tw_hi):  # pragma: no cover - compiled
    """σ ⊕ tweak for a further output block of the same compressed pads."""
    m = sig.shape[0]
    ain = np.empty((m, 2), dtype=np.uint64)
    for j in range(m):
        ain[j, 0] = sig[j, 0] ^ idx[j // big]
        ain[j, 1] = sig[j, 1] ^ tw_hi
    return ain
