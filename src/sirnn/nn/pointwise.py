"""Elementwise layers over shares beyond ReLU/σ/tanh, written once against a :class:`Backend`.

Sign-driven ones use one MSB and MUXes (plus public multiplications, :func:`layers.scale_public`):

* ``abs_`` |x| = x − 2·b·x (b = MSB(x), one MUX); ``clip`` min/max against public bounds (two
  MSBs in one call, two MUXes in one call; exact for |x| < 2^{bits−2}, the calibrated range with
  its headroom bit);
* ``leaky_relu`` / ``prelu``: x ≥ 0 ? x : α·x — α public (one extension reusing b, one TR) or
  the server's slope (one mul_known), one MUX;
* ``hardsigmoid`` clip(α·x + β, 0, 1) = α·clip(x, −β/α, (1 − β)/α) + β (the clip on x, then one
  public affine map), ``hardswish`` x·hardsigmoid(x) (one more multiplication).

The math-library ones: ``exp`` (any sign, saturating), ``sqrt``, ``rsqrt``, ``reciprocal`` (either
sign) and ``div`` (SiRNN division; a signed denominator by |y| and the sign restored with a MUX;
the compiler's runtime divides by a broadcast denominator as x × its shared ``reciprocal``).

``softplus`` is an approximation, named so: log(1 + e^x) = max(x, 0) + log1p(u), u = e^{−|x|}
∈ (0, 1) from rExp, and log1p(u) by the minimax line of its bucket among 2^``table_bits``
buckets of u (line error ≤ 1.5·10⁻⁵ at 6 bits, 2.3·10⁻⁴ at 4), plus rExp's error and the
roundings. Measured against numpy float64 (np.logaddexp(0, x)) over all 32,768 inputs of a
(16, 12) input with |x| < 8 (one headroom bit), output (16, 12): table_bits 6 (default) max abs
error 1.75·10⁻⁴ = 0.72 ULP, mean 6.2·10⁻⁵; table_bits 4: max 3.7·10⁻⁴ (1.5 ULP); input (16, 11)
→ output (16, 10): max 1.04 ULP (tests/test_ir_ops.py::test_softplus_error_bound).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ParameterError
from ..mathfn import div as _div, exp_saturating, reciprocal as _recip, rsqrt as _rsqrt, sqrt as _sqrt
from ..mathfn.common import fixed_table, to_format, zeros_msb
from ..mathfn.exp import nexp_mid
from ..protocols.backend import Backend
from ..protocols.share import Share, concat
from .fixed import Fmt, Param, requant
from .layers import _check_x, mul, mul_known, scale_public

__all__ = ["abs_", "clip", "clip_bounds", "leaky_relu", "prelu", "hardsigmoid", "hardswish", "softplus",
           "exp", "sqrt", "rsqrt", "reciprocal", "div", "SOFTPLUS_TABLE_BITS"]

SOFTPLUS_TABLE_BITS = 6


def _sign_select(be: Backend, b: Share, pos: Share, neg: Share) -> Share:
    """b ? neg : pos (one MUX)."""
    return pos + be.select(b, neg - pos)


def abs_(be: Backend, x: Share) -> Share:
    """|x|, same format: one MSB, one MUX."""
    _check_x(x, "abs x")
    return _sign_select(be, be.msb(x), x, -x)


def clip_bounds(lo: float | None, hi: float | None, fmt: Fmt) -> tuple[int | None, int | None]:
    """Public bounds → integers at fmt's scale (lo rounded up, hi down), dropped (None) where they
    lie beyond ±2^{bits−2}: no value of the calibrated range (one headroom bit) reaches them."""
    lim = 1 << (fmt.bits - 2)
    ql = None if lo is None else int(np.ceil(lo * 2.0**fmt.scale))
    qh = None if hi is None else int(np.floor(hi * 2.0**fmt.scale))
    if ql is not None and ql <= -lim:
        ql = None
    if qh is not None and qh >= lim:
        qh = None
    if ql is not None and qh is not None and ql > qh:
        raise ParameterError(f"clip: min {lo} is above max {hi}")
    return ql, qh


def clip(be: Backend, x: Share, lo: int | None, hi: int | None) -> Share:
    """min(max(x, lo), hi) for public integers lo ≤ hi at x's scale (None: no bound); same format.
    The MSBs of x − lo and hi − x in one call (x < lo, x > hi), the two corrections in one MUX
    call. Exact while |x − lo|, |hi − x| < 2^{bits−1} (|x|, |lo|, |hi| < 2^{bits−2}: see
    :func:`clip_bounds`)."""
    _check_x(x, "clip x")
    ds, vals = [], []
    if lo is not None:
        d = x.add_public(-lo)             # < 0 iff x < lo; correction lo − x
        ds.append(d), vals.append(-d)
    if hi is not None:
        d = (-x).add_public(hi)           # < 0 iff x > hi; correction hi − x
        ds.append(d), vals.append(d)
    if not ds:
        return x
    corr = be.select(be.msb(_stack(ds)), _stack(vals))
    return x + corr.like(corr.data.sum(axis=0))


def _stack(vs: list[Share]) -> Share:
    return concat([v.like(v.data[None]) for v in vs], 0)


def leaky_relu(be: Backend, x: Share, alpha: float, out: Fmt) -> Share:
    """x ≥ 0 ? x : α·x → ``out``: b = MSB(x); α·x by :func:`scale_public` (its sign extension
    reuses b, one TR); x to ``out`` (local when the formats agree); one MUX."""
    _check_x(x, "leakyrelu x")
    b = be.msb(x)
    neg = scale_public(be, x, float(alpha), out, msb=b)
    return _sign_select(be, b, requant(be, x, out), neg)


def prelu(be: Backend, x: Share, slope: Param, out: Fmt) -> Share:
    """x ≥ 0 ? x : slope·x for the server's slope (broadcast to x) → ``out``: one MSB, one
    mul_known, one MUX."""
    _check_x(x, "prelu x")
    b = be.msb(x)
    neg = mul_known(be, x, slope, out)
    return _sign_select(be, b, requant(be, x, out), neg)


def hardsigmoid(be: Backend, x: Share, alpha: float, beta: float, out: Fmt) -> Share:
    """clip(α·x + β, 0, 1) → ``out`` as α·clip(x, lo, hi) + β with lo, hi = −β/α, (1 − β)/α
    (swapped for α < 0) at x's scale: one :func:`clip` and one public affine map."""
    _check_x(x, "hardsigmoid x")
    out = Fmt(*out)
    if alpha == 0:
        v = np.full(x.shape, min(max(beta, 0.0), 1.0))
        return be.public(np.round(v * 2.0**out.scale).astype(np.int64), out.bits, out.scale)
    a, b = -beta / alpha, (1.0 - beta) / alpha
    lo, hi = (a, b) if alpha > 0 else (b, a)
    xc = clip(be, x, *clip_bounds(lo, hi, Fmt(x.bits, x.scale)))
    return scale_public(be, xc, float(alpha), out, bias=float(beta))


def hardswish(be: Backend, x: Share, out: Fmt) -> Share:
    """x·hardsigmoid(x) with α = 1/6, β = 1/2 (ONNX HardSwish) → ``out``: hardsigmoid into
    (x.bits, x.bits − 3), then one multiplication."""
    _check_x(x, "hardswish x")
    hs = hardsigmoid(be, x, 1.0 / 6.0, 0.5, Fmt(x.bits, x.bits - 3))
    return mul(be, x, hs, out)


@lru_cache(maxsize=None)
def softplus_lines(t: int, s: int, sa: int, sb: int) -> np.ndarray:
    """Per bucket i of u = e^{−|x|} ∈ [i, i + 1)·2^{−t} (f = the low s bits of u at scale t + s):
    the minimax line log1p(u) ≈ α_i + d_i·f/2^{t+s} (chord slope d_i, centred offset), as
    integers (A = round(α·2^sa), B = round(d·2^sb)). Shape (2^t, 2), int64."""
    n, fmax = 1 << t, (1 << s) - 1
    fs = np.unique(np.round(np.linspace(0, fmax, min(fmax + 1, 4097))))
    u = np.arange(n)[:, None] / 2.0**t + fs[None, :] / 2.0**(t + s)
    G = np.log1p(u)
    d = (G[:, -1] - G[:, 0]) / fmax if fmax else np.zeros(n)
    D = G - (G[:, :1] + d[:, None] * fs[None, :])
    alpha = G[:, 0] + (D.max(axis=1) + D.min(axis=1)) / 2
    return np.stack([fixed_table(alpha, sa), fixed_table(d * 2.0**(t + s), sb)], axis=1)


def softplus(be: Backend, x: Share, out: Fmt, *, table_bits: int = SOFTPLUS_TABLE_BITS) -> Share:
    """softplus(x) = log(1 + e^x) ≈ max(x, 0) + log1p(u), u = e^{−|x|} (approximation; module
    doc). b = MSB(x); max(x, 0) and −|x| from one MUX call; u by rExp at scale m = out.scale + 3
    (capped below 1); one TR splits u into its top t = ``table_bits`` bits (the bucket) and the
    low bits f (local); one 1-of-2^t LUT gives the bucket's line (A, B); A + B·f by one small
    multiplication (operands with public-zero MSBs, A added locally in its ring), rounded into
    ``out`` by one TR (and a cheap extension), added to max(x, 0) rounded to ``out``."""
    _check_x(x, "softplus x")
    out = Fmt(*out).check("softplus output")
    t = int(table_bits)
    m = out.scale + 3
    s = m - t
    if t < 1 or s < 1:
        raise ParameterError(f"softplus: table_bits must lie in 1..{m - 1}, got {table_bits!r}")
    sa, sb = out.scale + 3, out.scale + 3
    b = be.msb(x)
    sel = be.select(_stack([b, b]), _stack([x, x + x]))
    pos = x - sel.like(sel.data[0])              # x·(1 − b) = max(x, 0)
    nabs = -x + sel.like(sel.data[1])            # −x + 2b·x = −|x|
    u = nexp_mid(be, nabs, m, below_one=True)    # < 2^m, ring m + 2
    idx = be.tr(u, s)                            # ⌊u / 2^s⌋ < 2^t, ring t + 2
    R = m + sb + 2                               # the line's ring at scale m + sb
    f = u.reduce(s + t + 1).with_meta(scale=0) - _shifted(idx, s, s + t + 1)  # u mod 2^s, MSB zero
    ab = be.lut(softplus_lines(t, s, sa, sb), idx.reduce(t).with_meta(scale=0, signed=False), sb + 2)
    z = zeros_msb(be, x.shape)
    p = be.mul(f, ab[..., 1], R, msb_x=z, msb_y=z)                 # d·f at scale m + sb
    a = _shifted(ab[..., 0], m + sb - sa, R)                       # A at scale m + sb (local)
    lg = (p + a).with_meta(scale=m + sb, signed=False)             # log1p(u) ≤ log 2
    return requant(be, pos, out) + to_format(be, lg, out.bits, out.scale, vmax=1 << (m + sb))


def _shifted(v: Share, k: int, bits: int) -> Share:
    """v·2^k as a ``bits``-bit share, locally: exact when v's ring width + k ≥ bits (the shares'
    wrap 2^{v.bits} vanishes mod 2^bits)."""
    assert v.bits + k >= bits
    return Share((v.data << np.uint64(k)) & np.uint64((1 << bits) - 1), bits, 0, False, v.role)


def exp(be: Backend, x: Share, out: Fmt) -> Share:
    """e^x for any sign → ``out``, saturating at the largest value (mathfn.exp_saturating)."""
    return exp_saturating(be, _check_x(x, "exp x"), out[0], out[1])


def sqrt(be: Backend, x: Share, out: Fmt) -> Share:
    """√x (x ≤ 0 → 0) → ``out`` (mathfn.sqrt)."""
    return _sqrt(be, _check_x(x, "sqrt x"), out[0], out[1])


def rsqrt(be: Backend, x: Share, out: Fmt) -> Share:
    """1/√x (x ≤ 0 and overflow → the largest value) → ``out`` (mathfn.rsqrt)."""
    return _rsqrt(be, _check_x(x, "rsqrt x"), out[0], out[1])


def reciprocal(be: Backend, x: Share, out: Fmt) -> Share:
    """1/x for either sign → ``out``: 1/|x| by mathfn.reciprocal (saturating), sign by a MUX."""
    _check_x(x, "reciprocal x")
    b = be.msb(x)
    r = _recip(be, _sign_select(be, b, x, -x), out[0], out[1])
    return _sign_select(be, b, r, -r)


def div(be: Backend, x: Share, y: Share, out: Fmt) -> Share:
    """x / y elementwise (equal shapes) for a denominator of either sign → ``out``: SiRNN
    division of x by |y| (mathfn.div: rounded, saturated), the sign of y restored by a MUX
    (b = MSB(y): one MSB, two MUXes on top of the division)."""
    _check_x(x, "div x"), _check_x(y, "div y")
    b = be.msb(y)
    q = _div(be, x, _sign_select(be, b, y, -y), out[0], out[1])
    return _sign_select(be, b, q, -q)
