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

from itertools import pairwise

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from . import activation, boolean, compare, digits, extend, truncate
from . import lut as lutmod
from . import mul as mulmod
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


#: The chunk budget of :class:`SecureBackend`, in bytes of estimated working memory (a protocol
#: constant: both parties must chunk alike). An interactive operation whose working memory is
#: estimated above it runs as ⌈estimate / budget⌉ chunks of its elements (columns of a matrix
#: product), one after the other, each chunk's result written into the preallocated output. The
#: functionality is per element (per column), so the result is the unchunked one bit for bit;
#: each chunk adds the operation's rounds. The estimates (per element, from public shapes and
#: widths only) were measured as the peak resident memory of each protocol above the process's
#: RSS (``benchmarks/memprofile.py``, the larger of the two parties; a Heads crop and Industrial-72
#: at batch 128): see the ``_MEM_*`` constants.
CHUNK_BYTES = 1 << 29
_MEM_PRODUCT = 36    #: a known-matrix product W (a, b)·x (b, c): bytes per a·b·k·c (k = min width)
_MEM_BIT = 128       #: comparisons, truncations, extensions, digits, ReLU: bytes per element per bit
_MEM_MUL = 168       #: a secret × secret product: bytes per element per bit of the smaller width
_MEM_MUL_KNOWN = 104  #: a known × secret product: bytes per element per bit of the smaller width
_MEM_TABLE = 8       #: a LUT (one-hot dot): bytes per element per table entry (per entry value)


def _n_chunks(n: int, per: float, budget: int | None) -> int:
    """How many chunks n units (elements, columns) of ``per`` bytes each are cut into."""
    if budget is None or n <= 1 or n * per <= budget:
        return 1
    return int(min(n, -(-int(n * per) // budget)))


def _bounds(n: int, k: int) -> list[tuple[int, int]]:
    """k contiguous [lo, hi) ranges covering 0..n, sizes differing by at most one (public)."""
    b = [n * i // k for i in range(k + 1)]
    return list(pairwise(b))


def _flat(s, lo: int, hi: int, keep: int = 0):
    """Elements lo..hi of share s flattened over all but its ``keep`` trailing axes (None stays
    None; a :class:`PublicBits` stays one)."""
    if s is None:
        return None
    lead = (-1,) + (s.shape[len(s.shape) - keep:] if keep else ())
    if isinstance(s, np.ndarray):  # a plain operand (e.g. ALICE's weights) beside the shares
        return s.reshape(lead)[lo:hi]
    if isinstance(s, PublicBits):
        return PublicBits(s.public.reshape(lead)[lo:hi], s.role)
    return s.like(s.data.reshape(lead)[lo:hi])


def _cols(s, lo: int, hi: int, axis: int):
    """Columns (axis 1) or rows (axis 0) lo..hi of a 2-D share (None stays None)."""
    if s is None:
        return None
    sl = (slice(None), slice(lo, hi)) if axis == 1 else (slice(lo, hi),)
    if isinstance(s, PublicBits):
        return PublicBits(s.public[sl], s.role)
    return s.like(s.data[sl])


class _Gather:
    """The chunks' outputs (a Share, or a tuple/list of Shares) written into arrays of the full
    size (n elements, then each output's own trailing axes), allocated at the first chunk."""

    def __init__(self, n: int, lead: tuple):
        self.n, self.lead = n, tuple(lead)
        self.arrays = self.public = self.metas = self.kind = None

    def put(self, part, lo: int, hi: int) -> None:
        parts = list(part) if isinstance(part, (tuple, list)) else [part]
        if self.arrays is None:
            self.kind = type(part) if isinstance(part, (tuple, list)) else None
            self.metas = parts
            self.arrays = [np.empty((self.n,) + p.shape[1:], U64) for p in parts]
            self.public = [np.empty((self.n,) + p.shape[1:], U64) if isinstance(p, PublicBits) else None
                           for p in parts]
        for j, p in enumerate(parts):
            self.arrays[j][lo:hi] = p.data
            if self.public[j] is not None:
                if isinstance(p, PublicBits):
                    self.public[j][lo:hi] = p.public
                else:
                    self.public[j] = None

    def result(self):
        res = []
        for m, arr, pub in zip(self.metas, self.arrays, self.public):
            shape = self.lead + m.shape[1:]
            res.append(PublicBits(pub.reshape(shape), m.role) if pub is not None else m.like(arr.reshape(shape)))
        return res[0] if self.kind is None else self.kind(res)


class SecureBackend(Backend):
    """Runs every operation as a two-party protocol for ``party``; operations whose working memory
    is estimated above ``chunk`` bytes run in chunks (see :data:`CHUNK_BYTES`; None: never). Both
    parties must use the same ``chunk``."""

    def __init__(self, party: Party, chunk: int | None = CHUNK_BYTES):
        self.party = party
        self.role = party.role
        if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk < 1):
            raise ParameterError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.chunk = chunk

    # -- chunking ---------------------------------------------------------------------------------
    def _elementwise(self, fn, shares: list, per: float, keep: int = 0):
        """fn(*shares) with every share (and a plain array beside them, e.g. ALICE's weights of
        a known product) cut into the same chunks of its (flattened) elements when the estimate (elements × ``per`` bytes) exceeds the budget; ``keep`` trailing axes of
        the first share stay whole (e.g. a one-hot's positions). Outputs: the chunks' outputs
        (elements first, then their own trailing axes) in arrays of the full size."""
        x = shares[0]
        if not isinstance(x, Share) or any(s is not None and not isinstance(s, (Share, np.ndarray))
                                           for s in shares):
            return fn(*shares)  # (the protocol names the problem)
        lead = x.shape[:len(x.shape) - keep] if keep else x.shape
        n = int(np.prod(lead, dtype=np.int64))
        k = _n_chunks(n, per, self.chunk)
        if k == 1 or any(s is not None and s.shape[:len(lead)] != lead for s in shares):
            return fn(*shares)
        g = _Gather(n, lead)
        for lo, hi in _bounds(n, k):
            g.put(fn(*[_flat(s, lo, hi, keep if i == 0 else _trail(s, lead)) for i, s in enumerate(shares)]),
                  lo, hi)
        return g.result()

    def msb(self, x):
        return self._elementwise(lambda x: compare.msb(self.party, x), [x], _per_bits(x))

    def select(self, b, x):
        return self._elementwise(lambda b, x: boolean.select(self.party, b, x), [b, x], _per_bits(x))

    def b2a(self, b, bits):
        return self._elementwise(lambda b: boolean.b2a(self.party, b, bits), [b], _MEM_BIT * bits)

    def lut(self, table, idx, bits, scale=0, signed=False):
        return self.lut_many([table], [idx], bits, scale, signed)[0]

    def lut_many(self, tables, idxs, bits, scale=0, signed=False):
        ts = [np.asarray(t) for t in tables]

        def run(ts, idxs):
            args = ts if self.role == ALICE else [t.shape[1] if t.ndim == 2 else None for t in ts]
            return lutmod.lut_many(self.party, args, idxs, bits, scale, signed)

        if not all(isinstance(i, Share) for i in idxs) or len(ts) != len(idxs):
            return run(ts, idxs)  # (the protocol names the problem)
        per_el = [t.shape == i.shape + (1 << i.bits,) for t, i in zip(ts, idxs)]
        per = [_MEM_TABLE * (1 << i.bits) * (t.shape[1] if t.ndim == 2 and not pe else 1)
               for t, i, pe in zip(ts, idxs, per_el)]
        total = sum(i.size * p for i, p in zip(idxs, per))  # the lookups share one OT batch
        k = _n_chunks(min(i.size for i in idxs), total / max(1, min(i.size for i in idxs)), self.chunk) \
            if idxs else 1
        if k == 1:
            return run(ts, idxs)
        outs = [[] for _ in idxs]
        for c in range(k):
            cut_i, cut_t = [], []
            for t, i, pe in zip(ts, idxs, per_el):
                lo, hi = _bounds(i.size, k)[c]
                cut_i.append(_flat(i, lo, hi))
                cut_t.append(t.reshape(-1, t.shape[-1])[lo:hi] if pe else t)
            for o, part in zip(outs, run(cut_t, cut_i)):
                o.append(part)
        res = []
        for i, parts in zip(idxs, outs):
            arr = np.concatenate([p.data for p in parts])
            res.append(parts[0].like(arr.reshape(i.shape + parts[0].shape[1:])))
        return res

    def mul(self, x, y, bits_out, msb_x=None, msb_y=None):
        return self._elementwise(lambda x, y, mx, my: mulmod.mul(self.party, x, y, bits_out, msb_x=mx, msb_y=my),
                                 [x, y, msb_x, msb_y], _MEM_MUL * min(x.bits, y.bits, bits_out))

    def tr(self, x, s, by_table=False, bob_last=False):
        return self._elementwise(lambda x: truncate.tr(self.party, x, s, allow_scale_underflow=True,
                                                       by_table=by_table, bob_last=bob_last), [x], _per_bits(x))

    def tr_msb(self, x, s):
        return self._elementwise(lambda x: truncate.tr_msb(self.party, x, s, allow_scale_underflow=True),
                                 [x], _per_bits(x))

    def tr_two(self, x, s, t):
        return self._elementwise(lambda x: truncate.tr_two(self.party, x, s, t, allow_scale_underflow=True),
                                 [x], _per_bits(x))

    def zext(self, x, bits, msb=None):
        return self._elementwise(lambda x, m: extend.zext(self.party, x, bits, m), [x, msb], _per_bits(x))

    def sext(self, x, bits, msb=None):
        return self._elementwise(lambda x, m: extend.sext(self.party, x, bits, m), [x, msb], _per_bits(x))

    def digits(self, x, d):
        return self._elementwise(lambda x: digits.digit_decompose(self.party, x, d), [x], _per_bits(x))

    def msnzb_onehot(self, x):
        return self._elementwise(lambda x: digits.msnzb_onehot(self.party, x), [x], _per_bits(x))

    def onehot_dot(self, onehot, weights, bits, scale=0, signed=False):
        w = np.asarray(weights)
        per = _MEM_TABLE * onehot.shape[-1] * (w.shape[1] if w.ndim == 2 else 1) if onehot.data.ndim else 1
        return self._elementwise(lambda o: digits.onehot_dot(self.party, o, weights, bits, scale, signed),
                                 [onehot], per, keep=1 if onehot.data.ndim else 0)

    def matmul(self, x, y, bits_out, msb_x=None, msb_y=None):
        return mulmod.matmul(self.party, x, y, bits_out, msb_x=msb_x, msb_y=msb_y)

    def mul_known(self, w, x, bits_out, *, w_bits, w_scale=0, msb_x=None):
        return self._elementwise(
            lambda x, w, mx: mulmod.mul_known(self.party, ALICE, w, x, bits_out, w_bits=w_bits, w_signed=True,
                                              w_scale=w_scale, msb_x=mx),
            [x, w, msb_x], _MEM_MUL_KNOWN * min(x.bits, w_bits, bits_out))

    def matmul_known(self, W, x, bits_out, *, w_bits, w_scale=0, w_shape=None, w_left=True, msb_x=None):
        def run(x, mx):
            return mulmod.matmul_known(self.party, ALICE, W, x, bits_out, w_bits=w_bits, w_signed=True,
                                       w_scale=w_scale, w_shape=w_shape, w_left=w_left, msb_x=mx)
        shape = np.shape(W) if W is not None else tuple(w_shape) if w_shape is not None else None
        if shape is None or len(shape) != 2 or len(x.shape) != 2:
            return run(x, msb_x)  # (matmul_known names the problem)
        axis = 1 if w_left else 0  # the columns of x (W·x) or its rows (x·W) are independent
        units = x.shape[axis]
        per = _MEM_PRODUCT * shape[0] * shape[1] * min(x.bits, w_bits, bits_out)
        k = _n_chunks(units, per, self.chunk)
        if k == 1:
            return run(x, msb_x)
        out = None
        for lo, hi in _bounds(units, k):
            z = run(_cols(x, lo, hi, axis), _cols(msb_x, lo, hi, axis))
            if out is None:
                out = np.empty((z.shape[0], units) if axis == 1 else (units, z.shape[1]), U64)
                meta = z
            out[(slice(None), slice(lo, hi)) if axis == 1 else slice(lo, hi)] = z.data
            del z
        return meta.like(out)

    def ars(self, x, s, msb=None):
        return self._elementwise(lambda x, m: truncate.ars(self.party, x, s, m, allow_scale_underflow=True),
                                 [x, msb], _per_bits(x))

    def div_pow2(self, x, s, msb=None):
        return self._elementwise(lambda x, m: truncate.div_pow2(self.party, x, s, m, allow_scale_underflow=True),
                                 [x, msb], _per_bits(x))

    def relu(self, x):
        return self._elementwise(lambda x: activation.relu(self.party, x), [x], _per_bits(x))

    def maxpool(self, x, window=None, stride=None, axis=-1):
        return activation.maxpool(self.party, x, window, stride, axis)

    def argmax(self, x, index_bits=None, return_max=False):
        return activation.argmax(self.party, x, index_bits, return_max)


def _per_bits(x) -> int:
    """Bytes per element of a comparison-like protocol on x (its bit width × :data:`_MEM_BIT`)."""
    return _MEM_BIT * x.bits


def _trail(s, lead: tuple) -> int:
    """How many trailing axes share s has beyond the leading element axes ``lead``."""
    return 0 if s is None else len(s.shape) - len(lead)


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
