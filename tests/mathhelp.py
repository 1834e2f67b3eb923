"""Run a math recipe securely (two parties, in-process) and in the clear; compare bit for bit."""

import numpy as np

from sirnn.protocols.backend import ClearBackend, SecureBackend, clear
from sirnn.protocols.ring import U64, from_int, mask, to_signed
from sirnn.protocols.share import Share


def run_both(parties, recipe, x_int, bits, scale, rng, **kw):
    """recipe(backend, x_share, **kw) -> Share. Returns (secure ring values, clear ring values, out Share meta)."""
    x = from_int(x_int, bits, True)
    x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(bits)
    x1 = (x - x0) & mask(bits)
    ins = (x0, x1)
    outs = parties.run(lambda p: recipe(SecureBackend(p), Share(ins[p.role], bits, scale, True, p.role), **kw))
    a, b = outs
    assert (a.bits, a.scale) == (b.bits, b.scale)
    sec = (a.data + b.data) & mask(a.bits)
    ref = recipe(ClearBackend(), clear(x_int, bits, scale), **kw)
    assert (ref.bits, ref.scale, ref.signed) == (a.bits, a.scale, a.signed)
    return sec, ref.data, ref


def ulp_stats(y_ring, bits_out, scale_out, want):
    got = to_signed(y_ring, bits_out) / 2.0**scale_out
    err = np.abs(got - want) * 2.0**scale_out
    return err.max(), err.mean()
