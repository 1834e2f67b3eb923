"""Square root and reciprocal square root, and the normalise–table–scale engine they share with
the reciprocal and the division (:mod:`sirnn.mathfn.division`).

The engine computes f(x) for a positive fixed-point x (an ℓ-bit signed share at scale s, read as
the integer X ∈ [1, 2^{ℓ−1})) of the form f(x) = g(a)·2^φ:

1. **MSNZB** one-hot of X: bit k set iff 2^k ≤ X < 2^{k+1}. x = u·2^E with u = X/2^k ∈ [1, 2)
   and E = k − s. With *parity* (the square roots) a = u·2^{E mod 2} ∈ [1, 4) and φ = ∓⌊E/2⌋;
   without (the reciprocal) a = u and φ = −E.
2. **Normalise** without a multiplication: U = X·2^{F−k} = Σ_k onehot_k·(X << (F − k)) (F = ℓ − 2
   fraction bits), one MUX (select) per position whose output can be in range: U ∈ [2^F, 2^{F+1}).
3. **Table** (one 1-of-2^{m+1} OT per table with parity, 1-of-2^m without): the index is the
   parity and the top m fraction bits of u (one truncation, TR), f the remaining low bits. Each
   table bucket holds the minimax *line* of g over the bucket, y = A ∓ B·f, so one small
   multiplication B × f (f has ℓ − 2 − m bits) and one TR give g(a) to ~(3/64)·2^{−2m}
   (rsqrt), 2^{−2m−3} (reciprocal); a Newton step folded into the table (recip_unit's trick) is
   half as precise for the same table and multiplies the full-width u.
   When the output format needs more than the largest table gives, the table holds a line *below*
   g (one-sided) and Newton steps in error form follow: e = 1 − a·y² ≥ 0 (rsqrt) or 1 − u·y ≥ 0
   (reciprocal), y ← y·(1 + e/2) or y·(1 + e). e is small, so its products stay in small rings
   and its sign is known (cheap wraps).
4. **Scale back** by the public power 2^φ, φ a function of k: Σ_φ [k ∈ φ]·(y << (φ − φ_min)) with
   one MUX per distinct φ (the indicator of φ is the XOR of one or two one-hot bits, local), then
   one round-to-nearest truncation to the output scale. Wide exponent ranges use tiers (a TR of y
   per extra tier) so the rings stay within 64 bits.
5. **Saturation**: positions whose outputs all exceed the largest value, and x ≤ 0 where the
   function says so, give the largest value through one B2A (the indicator is a local XOR of one-hot
   bits). If some position's outputs straddle the largest value (e.g. rsqrt at 16/12 for
   x ∈ [1/64, 1/32): 1/√(1/64) = 8 does not fit), one MSB and one MUX clamp the result to it, so
   the output is min(rounded result, largest), exactly.

Internal precision: the scale of y is the output scale plus the output's integer bits plus
``GUARD`` bits; table size and Newton steps are the least that keep the approximation error below
a quarter of an output ULP (:class:`Plan`). Costs at 16/12 → 16/12: see :func:`rsqrt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from ..errors import ParameterError
from ..protocols.backend import Backend
from ..protocols.ring import U64, mask
from ..protocols.share import Share
from .common import check_format

GUARD = 3  # internal guard bits over the output precision
MAX_RING = 64


# ---------------------------------------------------------------------------------------------
# Functions of the form g(a)·2^φ
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mantissa:
    """f(x) = g(a)·2^{phi(E)} for x = u·2^E, a = u·2^{E mod 2} (``parity``) or a = u."""

    name: str
    g: Callable[[np.ndarray], np.ndarray]
    parity: bool
    phi: Callable[[int], int]
    invalid_max: bool  # x ≤ 0 → the largest output value (else 0)
    newton: str        # iteration used when the table alone is not precise enough


RSQRT = Mantissa("rsqrt", lambda a: 1.0 / np.sqrt(a), True, lambda E: -(E >> 1), True, "rsqrt")
SQRT = Mantissa("sqrt", np.sqrt, True, lambda E: E >> 1, False, "sqrt")
RECIP = Mantissa("reciprocal", lambda a: 1.0 / a, False, lambda E: -E, True, "recip")


def _g_table(fn: Mantissa) -> Callable[[np.ndarray], np.ndarray]:
    """The function the table approximates (sqrt with Newton steps tabulates 1/√a)."""
    return RSQRT.g if fn.newton == "sqrt" else fn.g


# ---------------------------------------------------------------------------------------------
# Tables: one line per bucket
# ---------------------------------------------------------------------------------------------
def _lines(g, parity: bool, F: int, m: int, one_sided: bool):
    """Per index i = (c, j) (c = parity class, j = top m fraction bits of u): the line
    y = alpha + beta·f (f = the low s = F − m bits of u as an integer) and its max abs error
    against g(u·2^c) on the bucket. One-sided lines lie below g."""
    s = F - m
    n_idx = 1 << (m + parity)
    i = np.arange(n_idx)
    c = i >> m
    j = i & ((1 << m) - 1)
    fmax = (1 << s) - 1
    npts = fmax + 1 if fmax < 4096 else 4097
    fs = np.unique(np.round(np.linspace(0, fmax, npts)))  # sample grid incl. both ends
    u = 1.0 + j[:, None] / 2.0**m + fs[None, :] / 2.0**F
    G = g(u * 2.0 ** c[:, None])
    beta = (G[:, -1] - G[:, 0]) / fmax if fmax else np.zeros(n_idx)
    D = G - (G[:, :1] + beta[:, None] * fs[None, :])
    dmax, dmin = D.max(axis=1), D.min(axis=1)
    if one_sided:
        return G[:, 0] + dmin, beta, dmax - dmin
    return G[:, 0] + (dmax + dmin) / 2, beta, (dmax - dmin) / 2


@lru_cache(maxsize=None)
def line_tables(fn_name: str, F: int, m: int, S: int, t: int, one_sided: bool):
    """Integer tables (A, B) for :func:`_lines`: y_int = A − ⌊B·f/2^t⌋ (decreasing g) or
    A + ⌊B·f/2^t⌋ (increasing), at scale S. A is centred for the floor (minimax), or lowered
    so that y ≤ g everywhere (one-sided). Returns (A, B, decreasing, max line error)."""
    fn = {"rsqrt": RSQRT, "sqrt": SQRT, "reciprocal": RECIP}[fn_name]
    g = _g_table(fn) if one_sided else fn.g
    alpha, beta, err = _lines(g, fn.parity, F, m, one_sided)
    dec = bool((beta <= 0).all())
    B = np.round(np.abs(beta) * 2.0 ** (S + t)).astype(np.int64)
    a = alpha * 2.0**S
    if one_sided:
        A = np.floor(a).astype(np.int64) - (2 if dec else 1)
    else:
        A = np.round(a - 0.5 if dec else a + 0.5).astype(np.int64)
    A.setflags(write=False)
    B.setflags(write=False)
    return A, B, dec, float(err.max())


# ---------------------------------------------------------------------------------------------
# Plan: every public choice for one (function, input format, output format)
# ---------------------------------------------------------------------------------------------
@dataclass
class Plan:
    fn: Mantissa
    in_bits: int
    in_scale: int
    out_bits: int
    out_scale: int
    F: int = 0                      # fraction bits of u
    used: list = field(default_factory=list)    # positions k whose outputs can be in range
    saturating: list = field(default_factory=list)  # positions whose outputs all exceed the max
    cls: dict = field(default_factory=dict)     # k -> parity class
    phi: dict = field(default_factory=dict)     # k -> output exponent
    edge: bool = False              # some position straddles the largest value: clamp
    m: int = 0                      # table index bits (without parity)
    s: int = 0                      # low bits of u multiplied by the slope
    t: int = 0                      # slope scale over S
    S: int = 0                      # scale of y
    Y: int = 0                      # ring of y (MSB known zero)
    newton: int = 0                 # Newton steps
    err: float = 0.0                # table line error (abs, y units)
    tiers: list = field(default_factory=list)   # [(hi, lo)] exponent ranges sharing one y
    W: int = 0                      # widest tier
    out_max: float = 0.0            # largest output of a used position (real)


def _classify(fn: Mantissa, in_bits: int, in_scale: int, out_bits: int, out_scale: int, F: int):
    big = (1 << (out_bits - 1)) - 1
    used, sat, cls, phi, edge, out_max = [], [], {}, {}, False, 0.0
    for k in range(F + 1):
        E = k - in_scale
        c = (E & 1) if fn.parity else 0
        p = fn.phi(E)
        ends = np.array([1.0, 2.0 - 2.0**-k]) * 2.0**c
        vals = fn.g(ends) * 2.0**p * 2.0**out_scale
        lo, hi = vals.min(), vals.max()
        cls[k], phi[k] = c, p
        if lo >= big + 0.5:
            sat.append(k)
            continue
        used.append(k)
        out_max = max(out_max, hi / 2.0**out_scale)
        if hi > big - 1:
            edge = True
            if hi >= (1 << out_bits) - 4:
                raise AssertionError("a position straddling the largest value exceeds the ring")  # pragma: no cover
    return used, sat, cls, phi, edge, out_max


def _tiers(phis: list[int], Y: int, limit: int) -> list[tuple[int, int]]:
    """Split the exponent range (descending) into tiers [hi, lo] so that Y + width ≤ limit."""
    hi_all, lo_all = max(phis), min(phis)
    width = max(limit - Y, 0)
    tiers, hi = [], hi_all
    while hi >= lo_all:
        lo = max(hi - width, lo_all)
        tiers.append((hi, lo))
        hi = lo - 1
    return tiers


@lru_cache(maxsize=None)
def make_plan(fn_name: str, in_bits: int, in_scale: int, out_bits: int, out_scale: int,
              rel_goal: float | None = None, S_min: int = 0) -> Plan:
    """Choose table size, Newton steps, internal scale and rings (all public).

    ``rel_goal``: required relative precision of y instead of the output-based one (division).
    """
    fn = {"rsqrt": RSQRT, "sqrt": SQRT, "reciprocal": RECIP}[fn_name]
    what = f"{fn.name} ({in_bits}-bit input, scale {in_scale} → {out_bits}-bit, scale {out_scale})"
    F = in_bits - 2
    pl = Plan(fn, in_bits, in_scale, out_bits, out_scale, F=F)
    pl.used, pl.saturating, pl.cls, pl.phi, pl.edge, pl.out_max = _classify(
        fn, in_bits, in_scale, out_bits, out_scale, F)
    if not pl.used:
        pl.S, pl.Y = 0, 0
        return pl
    classes = sorted({pl.cls[k] for k in pl.used})
    gsup = max(float(fn.g(np.array([1.0, 2.0 - 2.0**-F]) * 2.0**c).max()) for c in classes)
    ginf = min(float(fn.g(np.array([1.0, 2.0 - 2.0**-F]) * 2.0**c).min()) for c in classes)
    if rel_goal is None:
        top = int(np.ceil(np.log2(pl.out_max)))
        goal = 2.0 ** -(out_scale + 2) / pl.out_max * ginf  # abs error in y at the largest output
        pl.S = max(out_scale + GUARD + top, S_min)
    else:
        goal = rel_goal * ginf
        pl.S = S_min
    par = 1 if fn.parity else 0
    m_lin = min(8 - par, F)
    S0 = pl.S

    def candidates():
        for m in range(1, m_lin + 1):  # a line table alone
            if _lines(fn.g, fn.parity, F, m, False)[2].max() <= goal:
                yield m, 0
        for steps in (1, 2):  # one-sided table + Newton steps (each squares the relative error)
            for m in range(3, m_lin + 1):
                e = _lines(_g_table(fn), fn.parity, F, m, True)[2].max() / 0.5  # table values ≥ 1/2
                for _ in range(steps):
                    e = (1.5 if fn.newton != "recip" else 1.0) * e * e
                if e * gsup <= goal:
                    yield m, steps

    need = None
    for m, steps in candidates():
        pl.m, pl.newton = m, steps
        pl.s = F - m
        pl.t = 4 * -(-(pl.s + 1) // 4)  # ≥ s + 1 (slope error ≤ 1/4 ULP of S), whole 4-bit leaves
        pl.S = max(S0, m + GUARD + 2)
        ysup = 1.0 if fn.newton == "sqrt" and steps else gsup
        pl.err = line_tables(fn.name, F, m, pl.S, pl.t, steps > 0)[3]
        pl.Y = (int(np.ceil((ysup + pl.err) * 2.0**pl.S)) + 8).bit_length() + 1
        need = pl.Y + 2
        if steps:
            eb = _e_bits(pl)
            need = max(need, F + eb, pl.Y + eb, 2 * pl.Y - 1 if fn.newton != "recip" else 0)
        if need <= MAX_RING:
            break
    else:
        if need is None:
            raise ParameterError(f"{what}: the output format needs more precision than two Newton "
                                 "steps give")
        raise ParameterError(f"{what}: internal scale {pl.S} needs a {need}-bit ring (at most "
                             f"{MAX_RING})")
    if fn.newton == "sqrt" and pl.newton:  # y = a·r ≤ 2
        pl.Y = (int(np.ceil(2.0 * 2.0**pl.S)) + 8).bit_length() + 1
    if rel_goal is None:
        phis = sorted({pl.phi[k] for k in pl.used}, reverse=True)
        pl.tiers = _tiers(phis, pl.Y, MAX_RING - 2)
        pl.W = max(hi - lo for hi, lo in pl.tiers)
        if pl.Y + pl.W > MAX_RING - 2 or pl.Y > MAX_RING - 2:
            raise ParameterError(f"{what}: the output exponent range needs rings wider than "
                                 f"{MAX_RING} bits")
    return pl


# ---------------------------------------------------------------------------------------------
# Share plumbing (local)
# ---------------------------------------------------------------------------------------------
def _xor_cols(oh: Share, cols) -> Share:
    """XOR of one-hot positions ``cols`` (the indicator that one of them is set): local."""
    cols = list(cols)
    if not cols:
        return Share(np.zeros(oh.shape[:-1], U64), 1, 0, False, oh.role)
    return Share(oh.data[..., cols].sum(axis=-1) & U64(1), 1, 0, False, oh.role)


def _top_bit(b: Share, bits: int) -> Share:
    """A shared bit (boolean, or the low bit of any share) placed at the top of a ``bits``-bit ring:
    (b0 + b1)·2^{bits−1} ≡ b·2^{bits−1} (mod 2^bits), local."""
    return Share((b.data & U64(1)) << U64(bits - 1), bits, 0, False, b.role)


def _stack(shares: list[Share]) -> Share:
    first = shares[0]
    return first.like(np.stack([s.data for s in shares], axis=-1))


def _sum_last(x: Share) -> Share:
    return x.like(x.data.sum(axis=-1))


def _zeros(be: Backend, shape) -> Share:
    return be.public_bits(np.zeros(shape, np.int64))


def _fit(be: Backend, v: Share, bits: int) -> Share:
    """Change the ring of a non-negative value whose MSB is known to be zero (cheap extension)."""
    if v.bits > bits:
        return v.reduce(bits)
    if v.bits < bits:
        return be.zext(v, bits, msb=_zeros(be, v.shape))
    return v


def _umul(be: Backend, x: Share, y: Share, bits: int) -> Share:
    """Product of two non-negative values with known-zero MSBs, mod 2^bits."""
    z = _zeros(be, x.shape)
    return be.mul(x.with_meta(signed=False), y.with_meta(signed=False), bits, msb_x=z, msb_y=z)


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------
def normalise(be: Backend, x: Share, pl: Plan, positions, u_bits: int):
    """One-hot, U = X·2^{F−k} (only for ``positions``; 0 elsewhere) in a ``u_bits``-bit ring
    (≤ ℓ; MSB zero when u_bits = F + 2) and the parity bit."""
    oh = be.msnzb_onehot(x)
    X = x.data
    xs = [Share((X << U64(pl.F - k)) & mask(u_bits), u_bits, 0, False, x.role) for k in positions]
    if xs:
        U = _sum_last(be.select(_stack([oh[..., k] for k in positions]), _stack(xs)))
    else:
        U = Share(np.zeros(x.shape, U64), u_bits, 0, False, x.role)
    pb = _xor_cols(oh, [k for k in positions if pl.cls[k]])
    return oh, U, pb


def mantissa(be: Backend, U: Share, pb: Share, pl: Plan) -> Share:
    """y ≈ g(a) at scale pl.S in a pl.Y-bit ring (MSB zero), from U (ring ≥ F + 1)."""
    F, m, s, S = pl.F, pl.m, pl.s, pl.S
    fn = pl.fn
    W = U.reduce(F + 1)
    if fn.parity:  # V + parity·2^F: u's fraction bits under the parity bit
        W = W.add_public(U64((1 << (F + 1)) - (1 << F))) + _top_bit(pb, F + 1)
    ib = m + (1 if fn.parity else 0)
    if s > 0:
        T = be.tr(W, s, by_table=True)  # ⌊W / 2^s⌋: F + 1 − s = m + 1 bits; BOB's table lookup next
        f = W.reduce(s + 1) - _top_bit(T, s + 1)  # the low s bits, value < 2^s (MSB zero)
    else:
        T, f = W, None
    idx = T.reduce(ib).with_meta(scale=0, signed=False)
    A, B, dec, _ = line_tables(fn.name, F, m, S, pl.t, pl.newton > 0)
    yb = pl.Y if not (fn.newton == "sqrt" and pl.newton) else S + 2
    bb = max(int(B.max()).bit_length() + 1, 3)
    wl = yb + max(pl.t - s - 1, 0)
    if f is None or int(B.max()) == 0:
        y = be.lut(A, idx, yb, scale=S, signed=False)
    elif 2 * wl <= yb + bb + 8 and yb + pl.t <= MAX_RING:
        # A and B from one OT, B in the ring that makes the TR of f·B land in y's ring: no
        # extension after it (yb + t ≤ (s + 1) + wl), for at most 8 more bits per entry
        ab = be.lut(np.stack([A, B], axis=1), idx, wl, scale=0, signed=False)
        y = ab[..., 0].reduce(yb).with_meta(scale=S)
        p = _umul(be, f, ab[..., 1], yb + pl.t)
        y = _add_term(y, be.tr(p, pl.t, bob_last=True).with_meta(scale=S, signed=False), dec)
    else:  # A and B at their own widths in one round trip, then the extension
        y, b = be.lut_many([A, B], [idx, idx], [yb, bb], scale=0, signed=False)
        p = _umul(be, f, b, s + bb)
        term = _fit(be, be.tr(p, pl.t, bob_last=True), yb).with_meta(scale=S, signed=False)
        y = _add_term(y.with_meta(scale=S), term, dec)
    for step in range(pl.newton):
        y = _newton(be, y, U, pb, pl, last=(step == pl.newton - 1))
    if fn.newton == "sqrt" and pl.newton:  # √a = a·(1/√a)
        ur = be.tr(_umul(be, _fit(be, U, F + 2), y, F + S + 3), F)  # u·r at scale S, < 2^{S+1}
        ur = ur.with_meta(scale=S, signed=False)
        y = ur + be.select(pb, ur)
    return y.with_meta(scale=S, signed=False)


def _add_term(y: Share, term: Share, dec: bool) -> Share:
    return y - term if dec else y + term


def _e_bits(pl: Plan) -> int:
    """Ring of e at scale S: e ≤ 2·(relative table error) (rsqrt) or the relative error (recip);
    the table's values are ≥ 1/2. Margin for the truncations; MSB zero."""
    e0 = pl.err / 0.5 * (2 if pl.fn.newton in ("rsqrt", "sqrt") else 1)
    return (int(np.ceil(e0 * 2.0**pl.S)) + 64).bit_length() + 1


def _newton(be: Backend, y: Share, U: Share, pb: Share, pl: Plan, last: bool) -> Share:
    """One Newton step in error form from below (y ≤ g(a)): e = 1 − a·y² ≥ 0, y·(1 + e/2)
    (rsqrt) or e = 1 − u·y ≥ 0, y·(1 + e) (reciprocal)."""
    F, S, Yb = pl.F, pl.S, y.bits
    rs = pl.fn.newton in ("rsqrt", "sqrt")
    eb = _e_bits(pl)
    Ue = _fit(be, U, F + 2)
    if rs:
        y2 = be.tr(_umul(be, y, y, 2 * Yb - 1), S)  # y² at scale S
        P = _umul(be, Ue, y2, F + eb)               # u·y² at scale F + S, mod 2^{F+eb}
        P = P + be.select(pb, P)                    # a·y²
    else:
        P = _umul(be, Ue, y, F + eb)                # u·y at scale F + S
    E = (-P).add_public(U64((1 << (F + S)) & ((1 << (F + eb)) - 1)))  # e·2^{F+S} ≥ 0
    e = be.tr(E, F)                                 # e at scale S, eb bits
    corr = be.tr(_umul(be, y, e, Yb + eb), S + (1 if rs else 0))
    y = y + _fit(be, corr, Yb).with_meta(scale=y.scale)
    if not last:  # stay below g for the next step
        y = y.add_public(U64((1 << Yb) - 4))
    return y


def scale_back(be: Backend, oh: Share, y: Share, pl: Plan) -> Share:
    """Σ_φ [k has exponent φ]·y·2^φ, rounded to the output scale: unsigned, out_bits ring."""
    S, so = pl.S, pl.out_scale
    phi_max = max(pl.phi[k] for k in pl.used)
    C = S - phi_max + pl.W
    ring = pl.Y + pl.W
    sh = C - so
    bs, xs = [], []
    for hi, lo in pl.tiers:
        d = phi_max - hi
        yt = be.tr(y, d) if d else y
        yt = _fit(be, yt, ring)
        for ph in range(hi, lo - 1, -1):
            ks = [k for k in pl.used if pl.phi[k] == ph]
            if ks:
                bs.append(_xor_cols(oh, ks))
                xs.append(yt.lshift(ph + C - S + d))
    R = _sum_last(be.select(_stack(bs), _stack(xs)))
    R = be.tr(R.add_public(U64(1) << U64(sh - 1)), sh, by_table=True)
    bound = int(np.ceil(pl.out_max * 2.0**so)) + 4
    if R.bits < pl.out_bits:
        if bound >= 1 << (R.bits - 1):
            raise AssertionError("scale_back: result ring too small")  # pragma: no cover
        R = be.zext(R, pl.out_bits, msb=_zeros(be, R.shape))
    return R.reduce(pl.out_bits)


def finish(be: Backend, R: Share, oh: Share, pl: Plan) -> Share:
    """Largest value for saturating positions (and x ≤ 0 where the function says so); clamp."""
    bo = pl.out_bits
    big = (1 << (bo - 1)) - 1
    if pl.fn.invalid_max:
        ind = _xor_cols(oh, pl.used).invert()
    else:
        ind = _xor_cols(oh, pl.saturating) if pl.saturating else None
    if ind is not None:
        R = R + be.b2a(ind, bo).mul_public(big).with_meta(scale=R.scale, signed=R.signed)
    if pl.edge:
        R = R + be.select(be.msb(R), (-R).add_public(big))
    return R.with_meta(scale=pl.out_scale, signed=True)


def check_input(x: Share, what: str) -> None:
    if not isinstance(x, Share):
        raise ParameterError(f"{what}: x must be a Share, got {type(x).__name__}")
    if not x.signed:
        raise ParameterError(f"{what}: x must be a signed fixed-point share (it is read as positive)")
    if x.bits < 4:
        raise ParameterError(f"{what}: x needs at least 4 bits, got {x.bits}")


def evaluate(be: Backend, x: Share, fn_name: str, bits_out: int, scale_out: int) -> Share:
    """f(x) for the engine's functions (rsqrt, sqrt, reciprocal): see the module doc."""
    check_input(x, fn_name)
    check_format(bits_out, scale_out, f"{fn_name} output")
    pl = make_plan(fn_name, x.bits, x.scale, int(bits_out), int(scale_out))
    if not pl.used:  # every positive input saturates (or the function is 0 on all of them)
        oh = be.msnzb_onehot(x)
        R = Share(np.zeros(x.shape, U64), pl.out_bits, 0, False, x.role)
        return finish(be, R, oh, pl)
    newton = pl.newton > 0
    oh, U, pb = normalise(be, x, pl, pl.used, pl.F + 2 if newton else pl.F + 1)
    y = mantissa(be, U, pb, pl)
    return finish(be, scale_back(be, oh, y, pl), oh, pl)


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------
def rsqrt(be: Backend, x: Share, bits_out: int, scale_out: int) -> Share:
    """1/√x for fixed-point x > 0 (signed ``x.bits``-bit share at scale ``x.scale``) →
    signed (bits_out, scale_out), rounded to nearest.

    Rules: results that do not fit the output (1/√x > largest value, e.g. x ≤ 1/64 at 16/12 →
    16/12) give the largest value, 2^{bits_out−1} − 1, exactly (min(result, largest)); x ≤ 0 gives
    the largest value too (1/√0 = +∞; negative inputs are outside the domain).
    Recipe: module doc (MSNZB, normalisation by MUXes, table of lines on (parity, top bits),
    Newton steps only when the output needs them, scale back by MUXes).

    At 16/12 → 16/12 (measured, both parties, protocol version 3): 3,575.25 bytes per element,
    29 rounds (version 2: 3,134.75 B, 44 rounds): MSNZB 489 (10 rounds), 9 MUXes normalising
    (positions 6..14; the others saturate) 321.75 (2), TR for the index by a 1-of-128 table 160
    (1), the line (A, B) from one 1-of-256 OT at 20 bits 1,312 (1), slope × 7 low bits 376 (2),
    TR into y's ring 124 (3), one cheap extension 34 (1), 5 MUXes scaling back 190 (2), rounding
    TR by a table 304 (1), B2A for the saturating positions 18 (1), clamp (MSB + MUX) 246.5 (5);
    rounds on the critical path (``benchmarks/round_profile.py``). On the Ferret engine
    (protocol version 4, its parameters: comparisons instead of the two carry tables, 4-bit
    leaves): 1,592.5 bytes per element, 36 rounds, of which the 1-of-256 line table is 1,281.
    Precision over all 2^16 inputs: max 0.569 ULP, mean
    0.249 (saturated where 1/√x ≥ 8, i.e. x ≤ 1/64).
    """
    return evaluate(be, x, "rsqrt", bits_out, scale_out)


def sqrt(be: Backend, x: Share, bits_out: int, scale_out: int) -> Share:
    """√x for fixed-point x ≥ 0 → signed (bits_out, scale_out), rounded to nearest.

    Rules: x ≤ 0 gives 0 (√0 = 0; negative inputs are outside the domain); results that do not
    fit give the largest value. Same recipe as :func:`rsqrt` with a table of √a (with Newton
    steps: the table and the iteration of 1/√a, then √a = a·(1/√a), one more multiplication).
    At 16/12 → 16/12 (measured): 2,625.5 bytes per element, 30 rounds (table 1-of-64: √a is
    flatter); all 2^16 inputs: max 0.645 ULP, mean 0.251.
    """
    return evaluate(be, x, "sqrt", bits_out, scale_out)


def rsqrt_ref_float(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(x)
