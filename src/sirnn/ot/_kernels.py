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


# ---- Ferret (see ot/ferret.py) ------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def lpn_blocks(out, pre, idx, d, mask, assign):  # pragma: no cover - compiled
    """out[i] (^)= ⊕_{j<d} pre[idx[i·d + j] & mask] for every row i of out ((m, 2) uint64);
    ``assign``: overwrite out instead of XORing into it (no need to zero it first)."""
    m = out.shape[0]
    for i in range(m):
        a = np.uint64(0)
        b = np.uint64(0)
        if not assign:
            a = out[i, 0]
            b = out[i, 1]
        base = i * d
        for j in range(d):
            r = idx[base + j] & mask
            a ^= pre[r, 0]
            b ^= pre[r, 1]
        out[i, 0] = a
        out[i, 1] = b


@numba.njit(cache=True, nogil=True)
def lpn_bits(out, pre, idx, d, mask, assign):  # pragma: no cover - compiled
    """The same code on bits: out[i] (^)= ⊕_{j<d} pre[idx[i·d + j] & mask] (uint8 arrays)."""
    m = out.shape[0]
    for i in range(m):
        a = np.uint8(0)
        if not assign:
            a = out[i]
        base = i * d
        for j in range(d):
            a ^= pre[idx[base + j] & mask]
        out[i] = a


@numba.njit(cache=True, nogil=True)
def ggm_sigma(tree, half):  # pragma: no cover - compiled
    """σ(x) = (x_lo ⊕ x_hi, x_lo) of the nodes tree[:, :half], as a contiguous (t·half, 2) array."""
    t = tree.shape[0]
    s = np.empty((t * half, 2), dtype=np.uint64)
    for a in range(t):
        for j in range(half):
            x0 = tree[a, j, 0]
            s[a * half + j, 0] = x0 ^ tree[a, j, 1]
            s[a * half + j, 1] = x0
    return s


@numba.njit(cache=True, nogil=True)
def ggm_children(tree, half, s, e, low_mask, sums):  # pragma: no cover - compiled
    """Children of the nodes tree[:, :half] given σ(x) and π(σ(x)): left = π(σ(x)) ⊕ σ(x) in
    place of the parent, right = parent ⊕ left at j + half; the low word of both is ANDed with
    ``low_mask``. sums[a, 0] / sums[a, 1]: XOR of tree a's left / right children."""
    t = tree.shape[0]
    for a in range(t):
        l0 = np.uint64(0)
        l1 = np.uint64(0)
        r0 = np.uint64(0)
        r1 = np.uint64(0)
        for j in range(half):
            q = a * half + j
            h0 = e[q, 0] ^ s[q, 0]
            h1 = e[q, 1] ^ s[q, 1]
            p0 = tree[a, j, 0]
            p1 = tree[a, j, 1]
            x0 = h0 & low_mask
            y0 = (p0 ^ h0) & low_mask
            y1 = p1 ^ h1
            tree[a, j, 0] = x0
            tree[a, j, 1] = h1
            tree[a, j + half, 0] = y0
            tree[a, j + half, 1] = y1
            l0 ^= x0
            l1 ^= h1
            r0 ^= y0
            r1 ^= y1
        sums[a, 0, 0] = l0
        sums[a, 0, 1] = l1
        sums[a, 1, 0] = r0
        sums[a, 1, 1] = r1


@numba.njit(cache=True, nogil=True)
def ggm_recv_start(tree, alpha, k_recv, pos, known, low_mask):  # pragma: no cover - compiled
    """Receiver's level 1: the path child (α_1) unknown (0), the other one K_{¬α_1}; ``pos``:
    the path node of every tree, ``known``: the XOR of the level's known nodes."""
    for a in range(tree.shape[0]):
        p = alpha[a, 0]
        tree[a, p, 0] = 0
        tree[a, p, 1] = 0
        tree[a, 1 - p, 0] = k_recv[a, 0, 0] & low_mask
        tree[a, 1 - p, 1] = k_recv[a, 0, 1]
        known[a, 0] = k_recv[a, 0, 0] & low_mask
        known[a, 1] = k_recv[a, 0, 1]
        pos[a] = p


@numba.njit(cache=True, nogil=True)
def ggm_recv_level(tree, half, sums, alpha, level, k_recv, pos, known, low_mask):  # pragma: no cover - compiled
    """Receiver's fix-up after expanding level ``level`` (1-based, ≥ 2) of each tree: the two
    children of its unknown path node (set to 0 and expanded as junk, equal children) are
    cleared, the sibling of the path child becomes K_{¬α} ⊕ (XOR of the other known nodes on
    that side), and the path moves down. ``known``: the XOR of the level's known nodes."""
    for a in range(tree.shape[0]):
        other = 1 - alpha[a, level - 1]
        p = pos[a]
        s0 = (sums[a, other, 0] ^ tree[a, p, 0] ^ k_recv[a, level - 1, 0]) & low_mask
        s1 = sums[a, other, 1] ^ tree[a, p, 1] ^ k_recv[a, level - 1, 1]
        known[a, 0] = sums[a, 0, 0] ^ sums[a, 1, 0] ^ s0  # the two junk children cancel
        known[a, 1] = sums[a, 0, 1] ^ sums[a, 1, 1] ^ s1
        tree[a, p, 0] = 0
        tree[a, p, 1] = 0
        tree[a, p + half, 0] = 0
        tree[a, p + half, 1] = 0
        q = p + other * half
        tree[a, q, 0] = s0
        tree[a, q, 1] = s1
        pos[a] = p + alpha[a, level - 1] * half


@numba.njit(cache=True, nogil=True)
def ggm_recv_finish(tree, pos, known):  # pragma: no cover - compiled
    """The punctured leaf := XOR of the known leaves ⊕ 1 (= V_α ⊕ Δ)."""
    for a in range(tree.shape[0]):
        tree[a, pos[a], 0] = known[a, 0] ^ np.uint64(1)
        tree[a, pos[a], 1] = known[a, 1]


@numba.njit(cache=True, nogil=True)
def option_pads(g, n_opt):  # pragma: no cover - compiled
    """1-of-N from random OTs: pad[i·N + x] = ⊕_j g[i, j, bit j of x] for every option x.

    ``g``: (n, k, 2, 2) uint64 keys [instance, OT j, bit value, word]. Each pad is one earlier
    pad ⊕ (g[i, j, 0] ⊕ g[i, j, 1]) for the lowest set bit j of x: N XORs per instance."""
    n, k = g.shape[0], g.shape[1]
    out = np.empty((n * n_opt, 2), dtype=np.uint64)
    for i in range(n):
        base = i * n_opt
        a = np.uint64(0)
        b = np.uint64(0)
        for j in range(k):
            a ^= g[i, j, 0, 0]
            b ^= g[i, j, 0, 1]
        out[base, 0] = a
        out[base, 1] = b
        for x in range(1, n_opt):
            j = 0
            while not (x >> j) & 1:
                j += 1
            prev = base + (x ^ (1 << j))
            out[base + x, 0] = out[prev, 0] ^ g[i, j, 0, 0] ^ g[i, j, 1, 0]
            out[base + x, 1] = out[prev, 1] ^ g[i, j, 0, 1] ^ g[i, j, 1, 1]
    return out
