"""OT extension core shared by IKNP (width 128, repetition code) and KK13 (width 256, Walsh–Hadamard).

The receiver holds both seeds of every column j (from base OTs where it was the *sender*); the
sender holds the seed of its secret bit s_j. For m instances and a code C of width w:

* receiver: T_j = G(k0_j), U_j = T_j ⊕ G(k1_j) ⊕ C_j (column j of the codewords); sends U (w·m bits)
* sender:   Q_j = G(k_{s_j}) ⊕ s_j·U_j, so row q_i = t_i ⊕ (C(r_i) ∧ s)

Rows come out of one bit-matrix transpose. The pads t_i (receiver) and q_i ⊕ (C(x) ∧ s) (sender)
are hashed by the caller; ``index`` numbers the instances for the hash tweak.
"""

from __future__ import annotations

import numpy as np

from ..transport import Channel
from .aes import PRG
from .bitmatrix import transpose_bits


_COLUMN_CHUNK = 4096  #: bytes per column generated ahead (one refill: w OpenSSL calls)


class _Columns:
    """w PRG streams, one per column, advanced together.

    The streams are read ahead in chunks of ``chunk`` bytes per column: a small extension (a few
    hundred OTs, the common case in a recurrent cell's step) then costs one slice of the buffer
    instead of w OpenSSL calls. The bytes handed out are exactly the streams' next bytes, as
    without the buffer (the messages do not change).
    """

    def __init__(self, seeds: np.ndarray, chunk: int = _COLUMN_CHUNK):
        self.prgs = [PRG(bytes(s)) for s in np.asarray(seeds, np.uint8)]
        self.chunk = chunk
        self._buf = np.empty((len(self.prgs), 0), np.uint8)
        self._pos = 0

    def _fill(self, nbytes: int) -> np.ndarray:
        return np.stack([g.bytes(nbytes) for g in self.prgs])  # (w, nbytes): a loop over w, not m

    def next(self, nbytes: int) -> np.ndarray:
        """The next ``nbytes`` bytes of every stream, (w, nbytes) uint8 (a fresh, writable array)."""
        pos, have = self._pos, self._buf.shape[1]
        if pos + nbytes <= have:
            self._pos = pos + nbytes
            return self._buf[:, pos:pos + nbytes].copy()
        need = nbytes - (have - pos)
        if need >= self.chunk:  # a large extension: no read-ahead
            fresh = self._fill(need)
            out = fresh if pos == have else np.concatenate([self._buf[:, pos:], fresh], axis=1)
            self._buf, self._pos = np.empty((len(self.prgs), 0), np.uint8), 0
            return out
        fresh = self._fill(self.chunk)
        out = np.concatenate([self._buf[:, pos:], fresh[:, :need]], axis=1)
        self._buf, self._pos = fresh, need
        return out


class ExtSender:
    """Sender's end of one OT-extension instance (one direction, one width)."""

    def __init__(self, chan: Channel, s_bits: np.ndarray, seeds: np.ndarray):
        self.chan = chan
        self.s_bits = np.asarray(s_bits, np.uint8)
        self.width = self.s_bits.size
        self.s = np.packbits(self.s_bits, bitorder="little").view("<u8").astype(np.uint64)
        self._cols = _Columns(seeds)
        self._mask = self.s_bits.astype(bool)
        self.count = 0

    def extend(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Receive the receiver's U for m instances (m a multiple of 8); return (q rows, index).

        q rows: (m, width/64) uint64. index: (m,) uint64.
        """
        mb = m // 8
        q = self._cols.next(mb)
        u = np.frombuffer(self.chan.recv_bytes(self.width * mb, what="OT-extension matrix"),
                          np.uint8).reshape(self.width, mb)
        q[self._mask] ^= u[self._mask]
        return _rows(q), self._indices(m)

    def _indices(self, m: int) -> np.ndarray:
        idx = np.arange(self.count, self.count + m, dtype=np.uint64)
        self.count += m
        return idx


class ExtReceiver:
    """Receiver's end of one OT-extension instance."""

    def __init__(self, chan: Channel, seeds0: np.ndarray, seeds1: np.ndarray):
        self.chan = chan
        self.width = len(seeds0)
        self._cols0 = _Columns(seeds0)
        self._cols1 = _Columns(seeds1)
        self.count = 0

    def extend(self, code_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Send U for the codeword columns (width, m/8); return (t rows (m, width/64), index)."""
        mb = code_cols.shape[1]
        t = self._cols0.next(mb)
        u = self._cols1.next(mb)
        u ^= t
        u ^= code_cols
        self.chan.send_bytes(u.tobytes())
        m = 8 * mb
        idx = np.arange(self.count, self.count + m, dtype=np.uint64)
        self.count += m
        return _rows(t), idx


def _rows(cols: np.ndarray) -> np.ndarray:
    return transpose_bits(cols).view("<u8").astype(np.uint64, copy=False)
