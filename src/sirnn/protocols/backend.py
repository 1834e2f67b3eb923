"""One interface, two evaluations: a recipe written against a :class:`Backend` runs either as the
two-party protocol (:class:`SecureBackend`, on shares) or as its cleartext fixed-point
functionality (:class:`ClearBackend`, on plain ring elements).

Cleartext values are represented as *trivial sharings*: a :class:`Share` whose holder is ALICE and
whose other half is zero, so the local operations of :class:`Share` (add, negate, public
constants, shifts, reductions) mean the same thing in both worlds. Each interactive operation maps
to a protocol on one side and to that protocol's ``*_ref`` functionality on the other; since the
tests check every protocol against its ``*_ref`` bit for bit, a recipe's secure output equals its
cleartext output bit for bit. The math library, the neural layers and the model runtime are all
written once, against this interface.
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from . import activation, boolean, compare, digits, extend, lut as lutmod, mul as mulmod, truncate
from .party import Party
from .ring import U64, from_int, mask
from .share import PublicBits, Share


class Backend:
    """The operations recipes may use. Values are :class:`Share` objects (see the module doc)."""

    role: int

    # -- constants and inputs ------------------------------------------------------------------
    def public(self, values, bits: int, scale: int = 0, signed: bool = True) -> Share:
        """A public constant array as a (trivial) sharing."""
        v = from_int(values, bits, signed, what="public constant")
        return Share(v if self.role == ALICE else np.zeros_like(v), bits, scale, signed, self.role)

    def public_bits(self, values) -> Share:
        """Public booleans as a (trivial) boolean sharing, e.g. an MSB known to be zero; a
        :class:`PublicBits`, so protocols that can use the public values do (the functionality
        is that of the trivial sharing either way)."""
        v = from_int(np.asarray(values, np.int64), 1, False, what="public bits")
        return PublicBits(v, self.role)

    # -- interactive operations (subclasses) -------------------------------------------------------
    def msb(self, x: Share) -> Share: raise NotImplementedError
    def select(self, b: Share, x: Share) -> Share: raise NotImplementedError
    def b2a(self, b: Share, bits: int) -> Share: raise NotImplementedError
    def lut(self, table, idx: Share, bits: int, scale: int = 0, signed: bool = False) -> Share: raise NotImplementedError
    def lut_many(self, tables, idxs: list[Share], bits, scale: int = 0, signed: bool = False) -> list[Share]:
        """:meth:`lut` of tables[j] on idxs[j] for every j, in one round trip (equal index widths;
        ``bits`` one width, with equal entry shapes, or one per table; see
        :func:`sirnn.protocols.lut.lut_many`)."""
        raise NotImplementedError
    def mul(self, x: Share, y: Share, bits_out: int, msb_x: Share | None = None,
            msb_y: Share | None = None) -> Share: raise NotImplementedError
    def tr(self, x: Share, s: int, by_table: bool = False, bob_last: bool = False) -> Share:
        """TR (truncate.tr); ``by_table``: for s ≤ 8 the carry by one table lookup (2 rounds), not
        the cheapest method; ``bob_last``: BOB sends the last message. Same functionality."""
        raise NotImplementedError
    def tr_msb(self, x: Share, s: int) -> tuple[Share, Share]:
        """(tr(x, s), msb(x)): the MSB of x is that of the TR output (see truncate.tr_msb)."""
        raise NotImplementedError
    def tr_two(self, x: Share, s: int, t: int) -> tuple[Share, Share]:
        """(tr(x, s), tr(x, t)) in the rounds of one TR (see truncate.tr_two)."""
        raise NotImplementedError
    def zext(self, x: Share, bits: int, msb: Share | None = None) -> Share: raise NotImplementedError
    def sext(self, x: Share, bits: int, msb: Share | None = None) -> Share: raise NotImplementedError
    def digits(self, x: Share, d: int) -> list[Share]: raise NotImplementedError
    def msnzb_onehot(self, x: Share) -> Share: raise NotImplementedError
    def onehot_dot(self, onehot: Share, weights, bits: int, scale: int = 0, signed: bool = False) -> Share: raise NotImplementedError
    # neural-layer operations; ``W``/``w`` are the server's (ALICE's) private plaintext integers: BOB
    # passes None (and ``w_shape``), the clear side knows them. Outputs as in sirnn.protocols.mul.
    def matmul(self, x: Share, y: Share, bits_out: int, msb_x: Share | None = None,
               msb_y: Share | None = None) -> Share: raise NotImplementedError
    def mul_known(self, w, x: Share, bits_out: int, *, w_bits: int, w_scale: int = 0,
                  msb_x: Share | None = None) -> Share: raise NotImplementedError
    def matmul_known(self, W, x: Share, bits_out: int, *, w_bits: int, w_scale: int = 0, w_shape=None,
                     w_left: bool = True, msb_x: Share | None = None) -> Share: raise NotImplementedError
    def ars(self, x: Share, s: int, msb: Share | None = None) -> Share: raise NotImplementedError
    def div_pow2(self, x: Share, s: int, msb: Share | None = None) -> Share: raise NotImplementedError
    def relu(self, x: Share) -> Share: raise NotImplementedError
    def maxpool(self, x: Share, window=None, stride=None, axis: int = -1) -> Share: raise NotImplementedError
    def argmax(self, x: Share, index_bits: int | None = None, return_max: bool = False): raise NotImplementedError

    # -- derived operations (same code in both worlds) -----------------------------------------
    def if_else(self, b: Share, x: Share, y: Share) -> Share:
        """b ? x : y with one MUX."""
        return y + self.select(b, x - y)


class SecureBackend(Backend):
    """Runs every operation as a two-party protocol for ``party``."""

    def __init__(self, party: Party):
        self.party = party
        self.role = party.role

    def msb(self, x):
        return compare.msb(self.party, x)

    def select(self, b, x):
        return boolean.select(self.party, b, x)

    def b2a(self, b, bits):
        return boolean.b2a(self.party, b, bits)

    def lut(self, table, idx, bits, scale=0, signed=False):
        t = np.asarray(table)
        arg = t if self.role == ALICE else (t.shape[1] if t.ndim == 2 else None)
        return lutmod.lut(self.party, arg, idx, bits, scale, signed)

    def lut_many(self, tables, idxs, bits, scale=0, signed=False):
        ts = [np.asarray(t) for t in tables]
        args = ts if self.role == ALICE else [t.shape[1] if t.ndim == 2 else None for t in ts]
        return lutmod.lut_many(self.party, args, idxs, bits, scale, signed)

    def mul(self, x, y, bits_out, msb_x=None, msb_y=None):
        return mulmod.mul(self.party, x, y, bits_out, msb_x=msb_x, msb_y=msb_y)

    def tr(self, x, s, by_table=False, bob_last=False):
        return truncate.tr(self.party, x, s, allow_scale_underflow=True, by_table=by_table, bob_last=bob_last)

    def tr_msb(self, x, s):
        return truncate.tr_msb(self.party, x, s, allow_scale_underflow=True)

    def tr_two(self, x, s, t):
        return truncate.tr_two(self.party, x, s, t, allow_scale_underflow=True)

    def zext(self, x, bits, msb=None):
        return extend.zext(self.party, x, bits, msb)

    def sext(self, x, bits, msb=None):
        return extend.sext(self.party, x, bits, msb)

    def digits(self, x, d):
        return digits.digit_decompose(self.party, x, d)

    def msnzb_onehot(self, x):
        return digits.msnzb_onehot(self.party, x)

    def onehot_dot(self, onehot, weights, bits, scale=0, signed=False):
        return digits.onehot_dot(self.party, onehot, weights, bits, scale, signed)

    def matmul(self, x, y, bits_out, msb_x=None, msb_y=None):
        return mulmod.matmul(self.party, x, y, bits_out, msb_x=msb_x, msb_y=msb_y)

    def mul_known(self, w, x, bits_out, *, w_bits, w_scale=0, msb_x=None):
        return mulmod.mul_known(self.party, ALICE, w, x, bits_out, w_bits=w_bits, w_signed=True,
                                w_scale=w_scale, msb_x=msb_x)

    def matmul_known(self, W, x, bits_out, *, w_bits, w_scale=0, w_shape=None, w_left=True, msb_x=None):
        return mulmod.matmul_known(self.party, ALICE, W, x, bits_out, w_bits=w_bits, w_signed=True,
                                   w_scale=w_scale, w_shape=w_shape, w_left=w_left, msb_x=msb_x)

    def ars(self, x, s, msb=None):
        return truncate.ars(self.party, x, s, msb, allow_scale_underflow=True)

    def div_pow2(self, x, s, msb=None):
        return truncate.div_pow2(self.party, x, s, msb, allow_scale_underflow=True)

    def relu(self, x):
        return activation.relu(self.party, x)

    def maxpool(self, x, window=None, stride=None, axis=-1):
        return activation.maxpool(self.party, x, window, stride, axis)

    def argmax(self, x, index_bits=None, return_max=False):
        return activation.argmax(self.party, x, index_bits, return_max)


class ClearBackend(Backend):
    """Evaluates every operation by its cleartext functionality (the reference semantics)."""

    role = ALICE

    @staticmethod
    def _v(data, bits, scale=0, signed=False) -> Share:
        return Share(data, bits, scale, signed, ALICE)

    @staticmethod
    def _check(x: Share) -> Share:
        if not isinstance(x, Share) or x.role != ALICE:
            raise ParameterError("ClearBackend values are trivial sharings held by ALICE")
        return x

    def msb(self, x):
        return self._v(compare.msb_ref(self._check(x).data, x.bits), 1)

    def select(self, b, x):
        return x.like(boolean.select_ref(self._check(b).data, self._check(x).data, x.bits))

    def b2a(self, b, bits):
        return self._v(boolean.b2a_ref(self._check(b).data, bits), bits)

    def lut(self, table, idx, bits, scale=0, signed=False):
        return self._v(lutmod.lut_ref(table, self._check(idx).data, bits, idx.bits), bits, scale, signed)

    def lut_many(self, tables, idxs, bits, scale=0, signed=False):
        ws = bits if isinstance(bits, (list, tuple)) else [bits] * len(tables)
        return [self.lut(t, i, b, scale, signed) for t, i, b in zip(tables, idxs, ws)]

    def mul(self, x, y, bits_out, msb_x=None, msb_y=None):
        self._check(x), self._check(y)
        z = mulmod.mul_ref(x.data, y.data, x.bits, y.bits, bits_out, x.signed, y.signed)
        return self._v(z, bits_out, x.scale + y.scale, x.signed or y.signed)

    def tr(self, x, s, by_table=False, bob_last=False):
        self._check(x)
        return self._v(truncate.tr_ref(x.data, x.bits, s), x.bits - s, max(x.scale - s, 0), x.signed)

    def tr_msb(self, x, s):
        return self.tr(x, s), self.msb(x)

    def tr_two(self, x, s, t):
        if not 0 < s < t:
            raise ParameterError(f"tr_two: need 0 < s < t, got s = {s}, t = {t}")
        return self.tr(x, s), self.tr(x, t)

    def zext(self, x, bits, msb=None):
        return self._v(extend.zext_ref(self._check(x).data, x.bits, bits), bits, x.scale, x.signed)

    def sext(self, x, bits, msb=None):
        return self._v(extend.sext_ref(self._check(x).data, x.bits, bits), bits, x.scale, x.signed)

    def digits(self, x, d):
        parts = digits.digit_decompose_ref(self._check(x).data, x.bits, d)
        widths = digits.digit_widths(x.bits, d)
        return [self._v(p, w) for p, w in zip(parts, widths)]

    def msnzb_onehot(self, x):
        return self._v(digits.msnzb_onehot_ref(self._check(x).data, x.bits), 1)

    def onehot_dot(self, onehot, weights, bits, scale=0, signed=False):
        return self._v(digits.onehot_dot_ref(self._check(onehot).data, weights, bits), bits, scale, signed)

    def matmul(self, x, y, bits_out, msb_x=None, msb_y=None):
        self._check(x), self._check(y)
        z = mulmod.matmul_ref(x.data, y.data, x.bits, y.bits, bits_out, x.signed, y.signed)
        return self._v(z, bits_out, x.scale + y.scale, x.signed or y.signed)

    def mul_known(self, w, x, bits_out, *, w_bits, w_scale=0, msb_x=None):
        z = mulmod.mul_known_ref(w, self._check(x).data, x.bits, bits_out, w_bits=w_bits, w_signed=True,
                                 x_signed=x.signed)
        return self._v(np.reshape(z, x.shape), bits_out, w_scale + x.scale, True)

    def matmul_known(self, W, x, bits_out, *, w_bits, w_scale=0, w_shape=None, w_left=True, msb_x=None):
        if w_shape is not None and tuple(np.shape(W)) != tuple(w_shape):
            raise ParameterError(f"w_shape {tuple(w_shape)} differs from W's shape {np.shape(W)}")
        z = mulmod.matmul_known_ref(W, self._check(x).data, x.bits, bits_out, w_bits=w_bits, w_signed=True,
                                    x_signed=x.signed, w_left=w_left)
        return self._v(z, bits_out, w_scale + x.scale, True)

    def ars(self, x, s, msb=None):
        return x.like(truncate.ars_ref(self._check(x).data, x.bits, s), scale=max(x.scale - s, 0))

    def div_pow2(self, x, s, msb=None):
        return x.like(truncate.div_pow2_ref(self._check(x).data, x.bits, s), scale=max(x.scale - s, 0))

    def relu(self, x):
        if not self._check(x).signed:
            raise ParameterError("relu x must be a signed share (two's complement); got an unsigned one")
        return x.like(activation.relu_ref(x.data, x.bits))

    def maxpool(self, x, window=None, stride=None, axis=-1):
        return x.like(activation.maxpool_ref(self._check(x).data, x.bits, window, stride, axis))

    def argmax(self, x, index_bits=None, return_max=False):
        self._check(x)
        ib = activation._index_bits(x.shape[-1], index_bits)
        i, v = activation.argmax_ref(x.data, x.bits)
        out = self._v(i, ib)
        return (out, x.like(v)) if return_max else out


def clear(values, bits: int, scale: int = 0, signed: bool = True) -> Share:
    """A cleartext fixed-point value (ring elements or signed integers) for :class:`ClearBackend`."""
    a = np.asarray(values)
    data = a.astype(U64) & mask(bits) if a.dtype == U64 else from_int(a, bits, signed)
    return Share(data, bits, scale, signed, ALICE)
