"""Activations and pooling over shares: ReLU, ReLU6, max-pooling and argmax.

Comparisons use :func:`sirnn.protocols.digits.msb_shifted_bits` (MSB of x − C for public C, by
carry-lookahead over 4-bit leaves): for one comparison it costs the same as
:func:`sirnn.protocols.compare.msb`, and it lets ReLU6 share the low leaves of its two comparisons.

Max and argmax use a tournament over the last axis: elements (2k, 2k + 1) meet, the winner of a
meeting is the *left* one iff signed((a − b) mod 2^ℓ) ≥ 0 (ring-difference rule), an odd last
element passes through unchanged. For inputs whose pairwise differences do not overflow
(|a − b| < 2^{ℓ−1}, e.g. signed values in [−2^{ℓ−2}, 2^{ℓ−2})) this is the true maximum, and the
argmax is the **first** index of the maximum. Outside that range the result is still exactly what
the ``*_ref`` functions compute (same tournament, same ring rule).
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from .boolean import and_bits, select
from .digits import msb_shifted_bits
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share, check_share

ONE = U64(1)


def _check_signed(x, what: str) -> Share:
    return check_share(x, what, signed=True)


def _nonneg(x: np.ndarray, bits: int) -> np.ndarray:
    """signed(x) ≥ 0 for ring elements x, i.e. MSB(x) = 0."""
    return ((x >> U64(bits - 1)) & ONE) == 0


def _not(party: Party, b: np.ndarray) -> np.ndarray:
    """Share of 1 ⊕ b (ALICE flips her share)."""
    return b ^ ONE if party.role == ALICE else b


# ---------------------------------------------------------------------------------------------
def relu(party: Party, x: Share) -> Share:
    """ReLU(x) = x · 1{x ≥ 0} for signed ℓ-bit x; same ring, scale and signedness.

    DReLU = 1 ⊕ MSB(x) (carry of the low ℓ − 1 bits over q = ⌈(ℓ−1)/4⌉ leaves), then one MUX.
    Cost: q·288 + (2q − 2 − ⌈log2 q⌉)·148 + 2·(128 + ℓ) bits per element (ℓ = 32: 4,252 bits
    = 531.5 bytes, ℓ = 16: 254 bytes, ℓ = 64: 1,105 bytes, measured); rounds 2 + ⌈log2 q⌉ + 2.
    """
    _check_signed(x, "relu x")
    m, _ = msb_shifted_bits(party, x, [0])
    b = Share(_not(party, m[:, 0]).reshape(x.shape), 1, 0, False, party.role)
    return select(party, b, x)


def relu_ref(x: np.ndarray, bits: int) -> np.ndarray:
    x = reduce(np.asarray(x, U64), bits)
    return np.where(_nonneg(x, bits), x, U64(0))


def relu6(party: Party, x: Share) -> Share:
    """ReLU6(x) = min(max(x, 0), 6·2^s) for signed ℓ-bit fixed-point x of scale s (exact for all
    inputs); same ring, scale and signedness. Needs 6·2^s < 2^{ℓ−1} (s ≤ ℓ − 4).

    b1 = 1{x ≥ 0} = ¬MSB(x), b2' = ¬MSB(x − C) with C = 6·2^s, computed together: the carries of
    the low leaves below C's lowest set bit are shared by both comparisons. b2 = b1 ∧ b2' = 1{x ≥ C}
    (b1 rules out the overflow of x − C at very negative x; its triple comes with the leaf OTs).
    Output b1·x + b2·(C − x), both MUXes in one batch.
    Cost at ℓ = 32, s = 28: 9 leaves (2,592) + 12 ANDs (1,776) + 2 MUX (640) = 5,008 bits
    = 626 bytes per element, measured (SCI: 1,081); ℓ = 16, s = 12: 344.5 bytes; rounds
    2 + 4 + 1 + 2 (8–9 measured).
    """
    _check_signed(x, "relu6 x")
    C = 6 << x.scale
    if C >= 1 << (x.bits - 1):
        raise ParameterError(f"relu6 x: 6·2^scale does not fit a signed {x.bits}-bit ring "
                             f"(scale {x.scale} > {x.bits - 4})")
    n = x.size
    m, triples = msb_shifted_bits(party, x, [0, C], extra_and=n)
    b1, b2p = _not(party, m[:, 0]), _not(party, m[:, 1])
    b2 = and_bits(party, b1, b2p, triples)
    flat = x.ravel()
    vals = np.concatenate([flat.data, (-flat).add_public(C).data])
    res = select(party, Share(np.concatenate([b1, b2]), 1, 0, False, party.role), flat.like(vals))
    return x.like((res.data[:n] + res.data[n:]).reshape(x.shape))


def relu6_ref(x: np.ndarray, bits: int, scale: int) -> np.ndarray:
    x = reduce(np.asarray(x, U64), bits)
    C = U64(6 << scale)
    return np.where(_nonneg(x, bits), np.minimum(x, C), U64(0))


# ---------------------------------------------------------------------------------------------
def _select_many(party: Party, b: np.ndarray, X: np.ndarray, bits: int) -> np.ndarray:
    """b · X[:, j] for boolean shares b (N,) and arithmetic shares X (N, k) in Z_{2^bits}:
    one correlated OT each way per row carrying the k-vector. Cost 2·(128 + k·bits), 2 rounds."""
    corr = ((ONE - (b << ONE))[:, None] * X) & mask(bits)
    r, s = party.ot.cot_both(corr, b, bits, (X.shape[1],))
    return (b[:, None] * X - r + s) & mask(bits)


def _tournament(party: Party, v: np.ndarray, bits: int, idx: np.ndarray | None, idx_bits: int):
    """Max (and index) along axis 1 of shares v (n, L) in Z_{2^bits}."""
    role = party.role
    while v.shape[1] > 1:
        p = v.shape[1] // 2
        a, b = v[:, 0:2 * p:2], v[:, 1:2 * p:2]
        diff = (a - b) & mask(bits)
        m, _ = msb_shifted_bits(party, Share(diff.ravel(), bits, 0, True, role), [0])
        cond = _not(party, m[:, 0])  # a − b ≥ 0: the left one wins
        if idx is None:
            sel = select(party, Share(cond, 1, 0, False, role), Share(diff.ravel(), bits, 0, True, role)).data
            newv = (b.ravel() + sel) & mask(bits)
        else:
            ia, ib = idx[:, 0:2 * p:2], idx[:, 1:2 * p:2]
            wide = max(bits, idx_bits)
            pair = np.stack([diff.ravel(), (ia - ib).ravel() & mask(idx_bits)], 1)
            got = _select_many(party, cond, pair, wide)
            newv = (b.ravel() + got[:, 0]) & mask(bits)
            newi = ((ib.ravel() + got[:, 1]) & mask(idx_bits)).reshape(-1, p)
            idx = np.concatenate([newi, idx[:, 2 * p:]], axis=1)
        v = np.concatenate([newv.reshape(-1, p), v[:, 2 * p:]], axis=1)
    return v[:, 0], (None if idx is None else idx[:, 0])


def _tournament_ref(v: np.ndarray, bits: int, idx: np.ndarray | None, idx_bits: int):
    while v.shape[-1] > 1:
        p = v.shape[-1] // 2
        a, b = v[..., 0:2 * p:2], v[..., 1:2 * p:2]
        left = _nonneg((a - b) & mask(bits), bits)
        newv = np.where(left, a, b)
        v = np.concatenate([newv, v[..., 2 * p:]], axis=-1)
        if idx is not None:
            newi = np.where(left, idx[..., 0:2 * p:2], idx[..., 1:2 * p:2])
            idx = np.concatenate([newi, idx[..., 2 * p:]], axis=-1)
    return v[..., 0], (None if idx is None else idx[..., 0])


def _windows(data: np.ndarray, window, stride, what: str = "maxpool") -> np.ndarray:
    """(..., H, W) → (..., Ho, Wo, kh·kw) of non-padded windows (row-major inside a window)."""
    def pair(v):
        return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)

    win = pair(window)
    st = win if stride is None else pair(stride)
    if len(win) != 2 or len(st) != 2 or not all(isinstance(t, (int, np.integer)) and t >= 1 for t in win + st):
        raise ParameterError(f"{what} window and stride must be positive integers or pairs, "
                             f"got {window!r}, {stride!r}")
    if data.ndim < 2:
        raise ParameterError(f"{what} x must have at least 2 axes (..., H, W) for a 2-D window, "
                             f"got {data.shape}")
    H, W = data.shape[-2:]
    kh, kw = win
    if kh > H or kw > W:
        raise ParameterError(f"{what} window {win} is larger than the input's (H, W) = {(H, W)}")
    sh, sw = st
    ho, wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    rows = (np.arange(ho) * sh)[:, None] + np.arange(kh)
    cols = (np.arange(wo) * sw)[:, None] + np.arange(kw)
    out = data[..., rows[:, None, :, None], cols[None, :, None, :]]
    return out.reshape(data.shape[:-2] + (ho, wo, kh * kw))


def _pool_input(x: Share, window, stride, axis) -> np.ndarray:
    if window is None:
        if stride is not None:
            raise ParameterError("maxpool stride needs a window")
        if x.data.ndim == 0:
            raise ParameterError("maxpool x must have at least one axis")
        if not isinstance(axis, (int, np.integer)) or not -x.data.ndim <= axis < x.data.ndim:
            raise ParameterError(f"maxpool axis {axis!r} out of range for shape {x.shape}")
        return np.moveaxis(x.data, axis, -1)
    return _windows(x.data, window, stride)


def maxpool(party: Party, x: Share, window=None, stride=None, axis: int = -1) -> Share:
    """Maximum over ``axis`` (window None), or 2-D max-pooling of x (..., H, W) with window
    (kh, kw) (int or pair), stride (default = window), no padding → (..., Ho, Wo).

    Tournament (see the module doc for the tie/overflow rule); per meeting one MSB of a − b and
    one MUX: cost per meeting ≈ relu's (ℓ = 32: ≈ 532 bytes), L − 1 meetings per output,
    ⌈log2 L⌉ levels of (2 + ⌈log2 q⌉ + 2) rounds. Output keeps x's ring, scale, signedness.
    """
    if not isinstance(x, Share):
        raise ParameterError(f"maxpool x must be a Share, got {type(x).__name__}")
    data = _pool_input(x, window, stride, axis)
    if data.shape[-1] == 0:
        raise ParameterError("maxpool over an empty axis")
    out, _ = _tournament(party, data.reshape(-1, data.shape[-1]), x.bits, None, 0)
    return x.like(out.reshape(data.shape[:-1]))


def maxpool_ref(x: np.ndarray, bits: int, window=None, stride=None, axis: int = -1) -> np.ndarray:
    x = reduce(np.asarray(x, U64), bits)
    data = np.moveaxis(x, axis, -1) if window is None else _windows(x, window, stride)
    return _tournament_ref(data, bits, None, 0)[0]


def _index_bits(L: int, index_bits) -> int:
    need = max(1, (L - 1).bit_length())
    if index_bits is None:
        return need
    index_bits = check_bits(index_bits, "argmax index_bits")
    if index_bits < need:
        raise ParameterError(f"argmax index_bits={index_bits} cannot hold indices up to {L - 1}")
    return index_bits


def argmax(party: Party, x: Share, index_bits: int | None = None, return_max: bool = False):
    """Index of the maximum over the last axis of x, as an unsigned arithmetic share in
    Z_{2^index_bits} (default: the fewest bits that hold L − 1), shape x.shape[:-1]. Ties: the
    first index wins (see the module doc). With ``return_max`` also returns the max (a Share).

    Same tournament as :func:`maxpool`; the index rides along in the same MUX (one COT per
    direction carrying the pair (a − b, i_a − i_b)): cost per meeting = MSB(ℓ) + 2·(128 + 2·max(ℓ,
    index_bits)) bits; same rounds as maxpool.
    """
    if not isinstance(x, Share):
        raise ParameterError(f"argmax x must be a Share, got {type(x).__name__}")
    if x.data.ndim == 0 or x.shape[-1] == 0:
        raise ParameterError(f"argmax x needs a non-empty last axis, got shape {x.shape}")
    L = x.shape[-1]
    ib = _index_bits(L, index_bits)
    flat = x.data.reshape(-1, L)
    if party.role == ALICE:  # the public indices 0..L−1, shared as (i, 0)
        idx = np.broadcast_to(np.arange(L, dtype=U64), flat.shape).copy()
    else:
        idx = np.zeros_like(flat)
    v, i = _tournament(party, flat, x.bits, idx, ib)
    out = Share(i.reshape(x.shape[:-1]), ib, 0, False, party.role)
    return (out, x.like(v.reshape(x.shape[:-1]))) if return_max else out


def argmax_ref(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(index, max) under the tournament rule."""
    x = reduce(np.asarray(x, U64), bits)
    idx = np.broadcast_to(np.arange(x.shape[-1], dtype=U64), x.shape)
    v, i = _tournament_ref(x, bits, idx, 64)
    return i, v
