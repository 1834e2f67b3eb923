"""Lookup tables on a secret-shared index."""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share


def lut(party: Party, table, idx: Share, bits: int, scale: int = 0, signed: bool = False) -> Share:
    """T[i] in Z_{2^bits} for a shared d-bit index i (d = idx.bits ≤ 8).

    ``table`` (ALICE's input; BOB passes None): shape (2^d,) for one table, or idx.shape + (2^d,)
    for a table per element, entries already in the output ring. ALICE rotates the table by her
    share, masks it with r and BOB picks his entry by 1-of-2^d OT. Cost: 256 + 2^d·bits bits per
    element (d = 1: 128 + 2·bits), 2 rounds.
    """
    bits = check_bits(bits)
    d = idx.bits
    if d > 8:
        raise ParameterError(f"lut: index has {d} bits; at most 8 are supported (digit-decompose first)")
    size = 1 << d
    flat = idx.data.ravel()
    n = flat.size
    if party.role == ALICE:
        t = reduce(np.asarray(table, dtype=np.int64).view(U64) if np.asarray(table).dtype.kind == "i"
                   else np.asarray(table, dtype=U64), bits)
        if t.shape == (size,):
            t = np.broadcast_to(t, (n, size))
        elif t.shape == idx.shape + (size,):
            t = t.reshape(n, size)
        else:
            raise ParameterError(f"lut: table shape {t.shape} fits neither ({size},) nor {idx.shape + (size,)}")
        r = party.random(n, bits)
        rot = (flat[:, None] + np.arange(size, dtype=U64)) & mask(d)
        party.ot.kkot_send((np.take_along_axis(t, rot.astype(np.intp), axis=1) - r[:, None]) & mask(bits), bits)
        out = r
    else:
        out = party.ot.kkot_recv(flat, size, bits)
    return Share(out.reshape(idx.shape), bits, scale, signed, party.role)


def lut_ref(table: np.ndarray, i: np.ndarray, bits: int) -> np.ndarray:
    t = np.asarray(table, dtype=np.int64).view(U64) if np.asarray(table).dtype.kind == "i" else np.asarray(table, U64)
    if t.ndim == 1:
        return reduce(t[i.astype(np.intp)], bits)
    return reduce(np.take_along_axis(t, i.astype(np.intp)[..., None], axis=-1)[..., 0], bits)
