"""Lookup tables on a secret-shared index."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import ALICE
from ..errors import ParameterError
from .party import Party
from .ring import U64, check_bits, mask, reduce
from .share import Share
from ..transport.packing import value_dtype


def lut(party: Party, table, idx: Share, bits: int, scale: int = 0, signed: bool = False) -> Share:
    """T[i] in Z_{2^bits} for a shared d-bit index i (d = idx.bits ≤ 8).

    ``table`` (ALICE's input; BOB passes None and gets the same shapes from ``idx``): one table of
    shape (2^d,), a table of k-vectors (2^d, k) (output idx.shape + (k,), all k values from one OT),
    or a table per element, idx.shape + (2^d,); entries are integers taken mod 2^bits. ALICE
    rotates the table by her share, masks it with r and BOB picks his entry by 1-of-2^d OT.
    For vector tables BOB must know k: pass ``table`` = the int k on BOB's side.
    Cost: 256 + 2^d·k·bits bits per element (d = 1: 128 + 2·k·bits), 2 rounds.
    """
    bits = check_bits(bits)
    return lut_many(party, [table], [idx], bits, scale, signed)[0]


def _alice_picked(party: Party, table, idx: Share, bits: int):
    """ALICE's masked, rotated table rows (n, 2^d[, k]) for one lookup, her output r and mshape."""
    d = idx.bits
    size = 1 << d
    flat = idx.data.ravel()
    n = flat.size
    t = _table_ring(table, bits).astype(value_dtype(bits))
    per_element = t.shape == idx.shape + (size,)
    if not per_element and t.shape != (size,) and not (t.ndim == 2 and t.shape[0] == size):
        raise ParameterError(f"lut: table shape {t.shape} fits none of ({size},), ({size}, k), "
                             f"{idx.shape + (size,)}")
    k = t.shape[1] if t.ndim == 2 and not per_element else 0
    mshape = (k,) if k else ()
    r = party.random((n,) + mshape, bits).astype(t.dtype)
    if per_element:  # row i rotated by i0_i
        rot = ((flat[:, None] + np.arange(size, dtype=U64)) & mask(d)).astype(np.intp)
        picked = np.take_along_axis(t.reshape(n, size), rot, axis=1)
    else:  # one table: rows of a sliding window over the table written twice
        twice = np.concatenate([t, t])
        picked = sliding_window_view(twice, size, axis=0)[flat.astype(np.intp)]
        if k:
            picked = picked.transpose(0, 2, 1)  # (n, size, k)
    picked = picked - (r[:, None] if not k else r[:, None, :])
    if bits < 8 * picked.dtype.itemsize:
        picked &= picked.dtype.type((1 << bits) - 1)
    return picked, r, mshape


def lut_many(party: Party, tables: list, idxs: list[Share], bits, scale: int = 0,
             signed: bool = False) -> list[Share]:
    """Several independent lookups :func:`lut` (tables[j] on idxs[j]) in one round trip: the same
    cost in bits as the separate calls, but 2 rounds in all. All indices must have the same width
    d. ``bits``: one output width for all (one 1-of-2^d OT batch; the tables then need the same
    entry shape: scalars, or k-vectors, BOB passing k), or a list, one per table (one batch per
    table, all started before any is answered)."""
    if len(tables) != len(idxs) or not idxs:
        raise ParameterError("lut_many: one table per index, at least one")
    d = idxs[0].bits
    if d > 8:
        raise ParameterError(f"lut: index has {d} bits; at most 8 are supported (digit-decompose first)")
    if any(i.bits != d for i in idxs):
        raise ParameterError(f"lut_many: index widths differ {[i.bits for i in idxs]}")
    if isinstance(bits, (list, tuple)):
        if len(bits) != len(tables):
            raise ParameterError("lut_many: one output width per table")
        ws = [check_bits(b) for b in bits]
        if party.role == ALICE:
            outs = []
            for t, i, b in zip(tables, idxs, ws):
                picked, r, mshape = _alice_picked(party, t, i, b)
                party.ot.kkot_send(picked, b)
                outs.append((r.astype(U64), mshape))
        else:
            pend = [(party.ot.kkot_recv_start(i.data.ravel(), 1 << d, b, (int(t),) if t is not None else ()),
                     (int(t),) if t is not None else ()) for t, i, b in zip(tables, idxs, ws)]
            outs = [(pd.finish(), mshape) for pd, mshape in pend]
        return [Share(o.reshape(i.shape + mshape), b, scale, signed, party.role)
                for (o, mshape), i, b in zip(outs, idxs, ws)]
    bits = check_bits(bits)
    size = 1 << d
    if party.role == ALICE:
        parts = [_alice_picked(party, t, i, bits) for t, i in zip(tables, idxs)]
        mshape = parts[0][2]
        if any(p[2] != mshape for p in parts):
            raise ParameterError("lut_many: tables have different entry shapes")
        party.ot.kkot_send(parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts]), bits)
        outs = [p[1].astype(U64) for p in parts]
    else:
        ks = {t for t in tables}
        if len(ks) != 1:
            raise ParameterError("lut_many: tables have different entry shapes")
        k = ks.pop()
        mshape = (int(k),) if k is not None else ()
        flat = np.concatenate([i.data.ravel() for i in idxs])
        got = party.ot.kkot_recv(flat, size, bits, mshape)
        outs, pos = [], 0
        for i in idxs:
            outs.append(got[pos:pos + i.size])
            pos += i.size
    return [Share(o.reshape(i.shape + mshape), bits, scale, signed, party.role) for o, i in zip(outs, idxs)]


def _table_ring(table, bits: int) -> np.ndarray:
    t = np.asarray(table)
    if t.dtype.kind not in "iu":
        raise ParameterError(f"lut: table must hold integers, got dtype {t.dtype}")
    return reduce(t.astype(np.int64).view(U64) if t.dtype.kind == "i" else t.astype(U64), bits)


def lut_ref(table: np.ndarray, i: np.ndarray, bits: int, d: int | None = None) -> np.ndarray:
    """Cleartext :func:`lut` (one table (2^d,), a vector table (2^d, k), or per-element tables
    idx.shape + (2^d,)). ``d``: the index width; with it the shapes decide as in :func:`lut` (a
    (2^d, k) table on 2^d indices is a vector table); without it a table per element wins."""
    t = _table_ring(table, bits)
    i = np.asarray(i).astype(np.intp)
    per_element = (t.shape == i.shape + (1 << d,)) if d is not None else (
        t.ndim == i.ndim + 1 and t.shape[:-1] == i.shape)
    if per_element:
        return np.take_along_axis(t, i[..., None], axis=-1)[..., 0]
    return t[i]
