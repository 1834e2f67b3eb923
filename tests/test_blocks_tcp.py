"""Building blocks between two OS processes over loopback TCP (not only in-process)."""

import numpy as np
import pytest

from sirnn.protocols import activation, compare, extend, mul, truncate
from sirnn.protocols.ring import U64, mask
from sirnn.transport.launch import run_two_processes

pytestmark = pytest.mark.tcp
N = 2000


def _data():
    rng = np.random.default_rng(99)
    x = rng.integers(0, 2**32, N, dtype=np.uint64)
    y = rng.integers(0, 2**16, N, dtype=np.uint64)
    x0 = rng.integers(0, 2**32, N, dtype=np.uint64)
    y0 = rng.integers(0, 2**16, N, dtype=np.uint64)
    return x, y, x0, y0


def _party(role, chan):
    from sirnn.protocols.party import Party
    from sirnn.protocols.share import Share

    p = Party.setup(role, chan, params={"test": "blocks"})
    x, y, x0, y0 = _data()
    xs = Share(x0 if role == 0 else (x - x0) & mask(32), 32, 28, True, role)
    ys = Share(y0 if role == 0 else (y - y0) & mask(16), 16, 12, True, role)
    outs = {
        "msb": compare.msb(p, xs),
        "sext": extend.sext(p, ys, 40),
        "tr": truncate.tr(p, xs, 12),
        "div_pow2": truncate.div_pow2(p, xs, 7),
        "mul": mul.mul(p, ys, ys, 32),
        "relu6": activation.relu6(p, xs),
    }
    return {k: (v.data, v.bits) for k, v in outs.items()}


def test_blocks_over_tcp():
    a, b = run_two_processes(_party, timeout=180)
    x, y, _, _ = _data()
    want = {
        "msb": compare.msb_ref(x, 32),
        "sext": extend.sext_ref(y, 16, 40),
        "tr": truncate.tr_ref(x, 32, 12),
        "div_pow2": truncate.div_pow2_ref(x, 32, 7),
        "mul": mul.mul_ref(y, y, 16, 16, 32, True, True),
        "relu6": activation.relu6_ref(x, 32, 28),
    }
    for k, w in want.items():
        (d0, bits), (d1, _) = a[k], b[k]
        assert ((d0 + d1) & mask(bits) == w).all(), k
