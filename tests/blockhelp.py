"""Helpers for testing two-party protocols against their cleartext functionalities."""

import numpy as np

from sirnn.protocols.ring import U64, mask
from sirnn.protocols.share import Share

BITWIDTHS = [1, 2, 7, 8, 16, 31, 32, 37, 63, 64]


def edge_values(bits: int) -> np.ndarray:
    """0, 1, −1, 2^{ℓ−1}, 2^{ℓ−1} − 1, 2^ℓ − 1 (as ring elements), and their neighbours."""
    m = (1 << bits) - 1
    h = 1 << (bits - 1)
    vals = {0, 1, m, h, h - 1, (h + 1) & m, 2 & m, (m - 1) & m}
    return np.array(sorted(vals), dtype=U64)


def random_ring(rng, n, bits):
    return rng.integers(0, 2**63, size=n, dtype=np.uint64, endpoint=True) * U64(2) + rng.integers(0, 2, n).astype(U64) & mask(bits)


def split(x: np.ndarray, bits: int, rng, how: str = "random") -> tuple[np.ndarray, np.ndarray]:
    """Shares (x0, x1) of x: random, or chosen to wrap (x0 = 2^ℓ − 1) / not wrap (x0 = 0)."""
    x = np.asarray(x, U64) & mask(bits)
    if how == "random":
        x0 = random_ring(rng, x.size, bits).reshape(x.shape)
    elif how == "nowrap":
        x0 = np.zeros_like(x)
    elif how == "wrap":
        x0 = np.full_like(x, mask(bits))
    else:
        raise ValueError(how)
    return x0, (x - x0) & mask(bits)


def all_splits(x, bits, rng):
    """x repeated three times: random shares, non-wrapping shares, wrapping shares."""
    parts = [split(x, bits, rng, h) for h in ("random", "nowrap", "wrap")]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([x, x, x]))


def run2(parties, fn, in0, in1):
    """Run fn(party, my_input) on both sides; return the reconstructed output (ring elements)."""
    res = parties.run_split(lambda p: fn(p, in0), lambda p: fn(p, in1))
    return combine(*res)


def combine(s0, s1):
    if isinstance(s0, Share):
        assert s0.bits == s1.bits and s0.shape == s1.shape
        return (s0.data + s1.data) & mask(s0.bits)
    return s0, s1


def shares(role, data, bits, scale=0, signed=True):
    return Share(data, bits, scale, signed, role)
