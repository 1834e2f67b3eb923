"""AES-based primitives from OpenSSL (via ``cryptography``): a PRG and a correlation-robust hash.

* :class:`PRG` — AES-128 in CTR mode keyed by a 16-byte seed; a stream with a position, so one
  seed serves a whole session of OT extensions.
* :class:`CRHash` — hashes from AES under a public fixed key (π), after Guo, Katz, Wang and Yu
  (S&P 2020): the tweakable circular correlation-robust ``π(π(x) ⊕ t) ⊕ π(x)`` for OT pads, and
  the circular correlation-robust ``π(σ(x)) ⊕ σ(x)`` for GGM trees. Longer inputs (256-bit KK13
  pads) are compressed first, longer outputs are produced block by block under distinct tweaks.
  Everything is vectorised over whole batches: one OpenSSL call per block column.
"""

from __future__ import annotations

import math
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:
    from . import _kernels as _kern
except ImportError:  # pragma: no cover - numba missing: numpy path
    _kern = None

_CHUNK_PADS = 1 << 14  # pads hashed per chunk: a few arrays of 256 KiB stay in cache

# π's key: public and fixed (the first 16 bytes of the hexadecimal expansion of π).
_FIXED_KEY = bytes.fromhex("243f6a8885a308d313198a2e03707344")
_COMPRESS = 0xFFFFFFFF  # block number of the tweak that compresses 256-bit pads


def _count(shape) -> int:
    """Number of elements of an array shape (an int or a tuple), without a numpy call."""
    return int(shape) if isinstance(shape, (int, np.integer)) else int(math.prod(shape))


class PRG:
    """AES-128-CTR stream under a 16-byte seed. ``bytes(n)`` continues where the last call ended.

    One OpenSSL CTR context lives as long as the PRG, so a call costs one ``update`` (no key
    schedule or context set-up per call).
    """

    def __init__(self, seed: bytes | None = None):
        self.seed = os.urandom(16) if seed is None else bytes(seed)
        if len(self.seed) != 16:
            raise ValueError("PRG seed must be 16 bytes")
        self._stream = Cipher(algorithms.AES(self.seed), modes.CTR(bytes(16))).encryptor()
        self._zeros = self._out = np.empty(0, np.uint8)

    def bytes(self, n: int) -> np.ndarray:
        """The next ``n`` bytes of the stream as a uint8 array."""
        return np.frombuffer(self._stream.update(bytes(n)), dtype=np.uint8)

    def bytes_into(self, out: np.ndarray) -> np.ndarray:
        """Fill the contiguous uint8 array ``out`` with the next ``out.size`` bytes; returns it.

        No allocation per call: for streams read in many chunks of the same size."""
        n = out.size
        if self._zeros.size < n + 16:  # OpenSSL's update_into wants a spare block of room
            self._zeros = np.zeros(n + 16, np.uint8)
            self._out = np.empty(n + 16, np.uint8)
        self._stream.update_into(memoryview(self._zeros[:n]), memoryview(self._out))
        out[:] = self._out[:n]
        return out

    def uint64(self, shape) -> np.ndarray:
        """Uniform uint64 array."""
        count = _count(shape)
        return self.bytes(8 * count).view("<u8").astype(np.uint64, copy=False).reshape(shape)

    def ring(self, shape, bits: int) -> np.ndarray:
        """Uniform elements of Z_{2^bits} (as uint64)."""
        x = self.uint64(shape)
        return x if bits == 64 else x & np.uint64((1 << bits) - 1)

    def bits(self, shape) -> np.ndarray:
        """Uniform bits as a uint8 array of 0/1."""
        count = _count(shape)
        return np.unpackbits(self.bytes((count + 7) // 8), count=count,
                             bitorder="little").reshape(shape)

    def below(self, shape, bound: int) -> np.ndarray:
        """Uniform integers in [0, bound) for a power-of-two bound (uint64)."""
        if bound & (bound - 1):
            raise ValueError("bound must be a power of two")
        return self.uint64(shape) & np.uint64(bound - 1)


class CRHash:
    """Hashes from fixed-key AES π (Guo–Katz–Wang–Yu, S&P 2020), batch-oriented.

    * :meth:`hash128` / :meth:`hash_expand` / :meth:`hash_pads` — the *tweakable* circular
      correlation-robust hash ``TCCR(x, t) = π(π(x) ⊕ t) ⊕ π(x)`` (GKWY's TCCR construction).
      Security claim (proven by GKWY in the random-permutation model for π): for a secret uniform
      R, the outputs ``TCCR(w_j ⊕ R, t_j)`` on adversarially chosen (w_j, t_j) — each tweak used
      with one w only — are indistinguishable from random; the advantage is of the order of
      (oracle queries × permutation queries) / 2^128 (GKWY give the exact bound; with Ferret's
      Δ of 127 secret bits, / 2^127). That is exactly what OT extension needs: the pads
      q_i ⊕ x·Δ of instance i share one tweak i and differ in the secret Δ. Cost: two AES calls
      per 128-bit output block for the first block, one more per further block.
    * :meth:`ccr` — the untweaked circular correlation-robust hash ``π(σ(x)) ⊕ σ(x)`` with the
      linear orthomorphism ``σ(a‖b) = (a ⊕ b)‖a`` (GKWY's MMO^σ); one AES call. Used inside
      the Half-Tree GGM expansion of Ferret (ot/ferret.py), whose proof asks for CCR.

    Blocks are ``(n, 2)`` uint64 arrays (low, high 64-bit halves of a 128-bit block). Tweaks are
    (instance index, domain‖block number): the index in the low half, the domain (< 2^24) in the
    top bits of the high half. 256-bit inputs (KK13 pads) are first compressed to 128 bits by one
    TCCR call under a reserved tweak, ``h = TCCR(x_lo, t_c) ⊕ x_hi``.
    """

    def __init__(self):
        self._enc = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB()).encryptor()

    def permute(self, blocks: np.ndarray) -> np.ndarray:
        """π applied to every 128-bit block of a C-contiguous ``(n, 2)`` uint64 array."""
        src = np.ascontiguousarray(blocks, dtype=np.uint64)
        # OpenSSL's update_into wants one spare block of room in the output buffer
        buf = np.empty(src.size + 2, dtype=np.uint64)
        if src.size:
            self._enc.update_into(memoryview(src).cast("B"), memoryview(buf).cast("B"))
        return buf[:src.size].reshape(src.shape)

    def ccr(self, x: np.ndarray) -> np.ndarray:
        """``π(σ(x)) ⊕ σ(x)`` row by row (circular correlation robust, no tweak)."""
        s = np.empty_like(x)
        np.bitwise_xor(x[:, 0], x[:, 1], out=s[:, 0])
        s[:, 1] = x[:, 0]
        out = self.permute(s)
        out ^= s
        return out

    def hash128(self, x: np.ndarray, tweaks: np.ndarray) -> np.ndarray:
        """``TCCR(x, t) = π(π(x) ⊕ t) ⊕ π(x)`` row by row; ``x`` and ``tweaks`` are (n, 2) uint64."""
        u = self.permute(x)
        out = self.permute(u ^ tweaks)
        out ^= u
        return out

    def hash_expand(self, x: np.ndarray, index: np.ndarray, domain: int, out_bytes: int) -> np.ndarray:
        """Hash each pad to ``out_bytes`` pseudorandom bytes.

        ``x``: (n, 2) uint64 (128-bit pads) or (n, 4) uint64 (256-bit pads, compressed first).
        ``index``: (n,) uint64 per-instance indices (unique within the OT extension that produced
        the pads). ``domain`` (< 2^24) separates extensions and uses. Output block j of pad x is
        ``π(π(x) ⊕ t_j) ⊕ π(x)``. Returns (n, out_bytes) uint8.
        """
        n = x.shape[0]
        tw = np.empty((n, 2), dtype=np.uint64)
        tw[:, 0] = index
        dom = np.uint64(domain << 40)
        if x.shape[1] == 4:  # 256-bit pad: compress to 128 bits first
            tw[:, 1] = dom | np.uint64(_COMPRESS)
            x = self.hash128(x[:, :2], tw) ^ x[:, 2:]
        u = self.permute(x)
        nblk = (out_bytes + 15) // 16
        res = np.empty((n, nblk, 2), dtype=np.uint64)
        for j in range(nblk):  # blocks per output, not per OT
            tw[:, 1] = dom | np.uint64(j)
            res[:, j] = self.permute(u ^ tw)
            res[:, j] ^= u
        return res.reshape(n, nblk * 16 // 8).view(np.uint8)[:, :out_bytes]

    def hash_pads(self, q: np.ndarray, offsets: np.ndarray, index: np.ndarray, domain: int,
                  out_bytes: int) -> np.ndarray:
        """``hash_expand`` of every pad q[i] ⊕ offsets[x]: (n·N, out_bytes) uint8, row i·N + x.

        This is the OT sender's bulk work (N keys per instance). With numba the pads and tweaks
        are formed in fused passes around the OpenSSL calls, in cache-sized chunks, instead of
        materialising every step for the whole batch.
        """
        n, big = q.shape[0], offsets.shape[0]
        if _kern is None:
            pads = (q[:, None, :] ^ offsets[None]).reshape(n * big, q.shape[1])
            return self.hash_expand(pads, np.repeat(index, big), domain, out_bytes)
        q = np.ascontiguousarray(q, np.uint64)
        offsets = np.ascontiguousarray(offsets, np.uint64)
        index = np.ascontiguousarray(index, np.uint64)
        nblk = (out_bytes + 15) // 16
        out = np.empty((n * big, nblk * 2), dtype=np.uint64)
        step = max(1, _CHUNK_PADS // big)
        for lo in range(0, n, step):  # chunks of the batch, not OTs
            hi = min(n, lo + step)
            out[lo * big:hi * big] = self._hash_pads_chunk(q[lo:hi], offsets, index[lo:hi], domain, nblk)
        return out.view(np.uint8)[:, :out_bytes]

    def _hash_pads_chunk(self, q, offsets, index, domain, nblk):
        dom = domain << 40
        big = offsets.shape[0]
        x = _kern.xor_pads(q, offsets, 0)
        if q.shape[1] == 4:  # compress: h = TCCR(lo, t_c) ⊕ hi
            u = self.permute(x)
            out1 = self.permute(_kern.add_tweak(u, index, big, np.uint64(dom | _COMPRESS)))
            x = _kern.chain_hi(out1, u, q, offsets)
        u = self.permute(x)
        res = np.empty((u.shape[0], nblk, 2), dtype=np.uint64)
        for j in range(nblk):
            res[:, j] = self.permute(_kern.add_tweak(u, index, big, np.uint64(dom | j)))
            res[:, j] ^= u
        return res.reshape(u.shape[0], nblk * 2)
