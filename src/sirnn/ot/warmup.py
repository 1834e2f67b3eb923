"""Load (or compile, on the first run after install) every numba kernel before a session starts.

numba caches compiled kernels on disk, but each process still spends a few hundred
milliseconds loading them on first use; doing it here keeps that one-off cost out of the
protocol's set-up and timings (benchmarks report it as ``warmup_seconds``).
"""

from __future__ import annotations

import time

import numpy as np

from ..transport.packing import pack, unpack, unpack_at
from .aes import CRHash
from ._kernels import option_pads
from .bitmatrix import transpose_bits
from .ferret import ggm_recv, ggm_send, lpn_encode


def warm_up() -> float:
    """Touch every kernel once with tiny inputs; returns the seconds it took."""
    t0 = time.perf_counter()
    transpose_bits(np.zeros((256, 8), np.uint8))
    h = CRHash()
    idx = np.arange(2, dtype=np.uint64)
    for w in (2, 4):
        h.hash_pads(np.zeros((2, w), np.uint64), np.zeros((2, w), np.uint64), idx, 0, 40)
    option_pads(np.zeros((1, 2, 2, 2), np.uint64), 4)
    lpn_encode(np.zeros((2, 2), np.uint64), np.zeros((2, 2), np.uint64))
    lpn_encode(np.zeros(2, np.uint8), np.zeros(2, np.uint8))
    ggm_recv(h, np.zeros((1, 2), np.uint8), ggm_send(h, np.ones(2, np.uint64), np.zeros((1, 2), np.uint64), 2)[1], 2)
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        buf = pack(np.zeros(9, dtype), 3)
    unpack(buf, 9, 3)
    unpack_at(buf, 9, 3, np.arange(2))
    return time.perf_counter() - t0
