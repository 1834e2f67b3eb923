"""Run a layer securely (client BOB holds the input shares' secret, server ALICE the weights) and in
the clear; compare bit for bit."""

import numpy as np

from sirnn.nn.meter import Meter, combine
from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
from sirnn.protocols.ring import from_int, mask
from sirnn.protocols.share import Share


def _open(a, b):
    if isinstance(a, Share):
        assert (a.bits, a.scale, a.shape) == (b.bits, b.scale, b.shape)
        return (a.data + b.data) & mask(a.bits), (a.bits, a.scale, a.signed)
    return [_open(u, v) for u, v in zip(a, b)]


def _meta_data(c):
    if isinstance(c, Share):
        return c.data, (c.bits, c.scale, c.signed)
    return [_meta_data(u) for u in c]


def run_layer(parties, recipe, inputs, rng, server=None, client=None, meter=False):
    """recipe(be, shares, model) → Share or (nested) tuple of Shares.

    inputs: list of (signed int array, bits, scale), secret-shared at random; ``server`` is the
    model as ALICE holds it (the clear run uses it too), ``client`` BOB's copy (default: same).
    Returns (secure, clear) as nested lists of (ring values, (bits, scale, signed)), and the
    combined per-section cost if ``meter``.
    """
    client = server if client is None else client
    halves = ([], [])
    for v, bits, scale in inputs:
        x = from_int(v, bits, True)
        x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(bits)
        halves[0].append(Share(x0, bits, scale, True, 0))
        halves[1].append(Share((x - x0) & mask(bits), bits, scale, True, 1))
    meters = [None, None]

    def side(p):
        be = SecureBackend(p)
        m = Meter(be) if meter else None
        meters[p.role] = m
        kw = {"meter": m} if meter else {}
        return recipe(be, halves[p.role], server if p.role == 0 else client, **kw)

    a, b = parties.run(side)
    sec = _open(a, b)
    cb = ClearBackend()
    kw = {"meter": Meter(cb)} if meter else {}
    ref = _meta_data(recipe(cb, [clear(v, bits, scale) for v, bits, scale in inputs], server, **kw))
    return sec, ref, (combine(*meters) if meter else None)


def assert_same(sec, ref):
    if isinstance(sec, tuple) and len(sec) == 2 and isinstance(sec[1], tuple):
        (d1, m1), (d2, m2) = sec, ref
        assert m1 == m2, (m1, m2)
        assert d1.shape == d2.shape and (d1 == d2).all()
        return
    for s, r in zip(sec, ref):
        assert_same(s, r)


def fastgrnn_weights(rng, D, H, lowrank=None):
    """Random float FastGRNN weights (full or low-rank (rW, rU)) with ζ = 0.9, ν = 0.06."""
    w = dict(b_z=rng.normal(0, 0.5, H), b_h=rng.normal(0, 0.5, H), zeta=0.9, nu=0.06)
    if lowrank:
        rw, ru = lowrank
        w.update(W1=rng.normal(0, 0.5, (H, rw)), W2=rng.normal(0, 0.5, (rw, D)),
                 U1=rng.normal(0, 0.4, (H, ru)), U2=rng.normal(0, 0.4, (ru, H)))
    else:
        w.update(W=rng.normal(0, 0.4, (H, D)), U=rng.normal(0, 0.3, (H, H)))
    return w
