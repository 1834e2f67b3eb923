"""Neural layers over shares, written once against a :class:`Backend` (two-party protocol with a
:class:`SecureBackend`, its exact cleartext functionality with a :class:`ClearBackend`).

Conventions (see :mod:`sirnn.nn.fixed`): activations are signed fixed-point Shares; weights and
biases are server-held :class:`Param` s (ALICE passes them with values, BOB their ``spec()``);
every layer that multiplies computes its products directly into the ring
``out.bits + (product scale − out.scale)`` and rounds once to ``out`` (nearest, ties up). Shapes:
``linear`` takes x (in,) or (B, in) like ``torch.nn.Linear``; ``conv2d`` takes (C, H, W) or
(N, C, H, W) with W (OC, C, kh, kw).

Softmax and L2 normalisation (nexp, div and rsqrt of the math library) are in
:mod:`sirnn.nn.norm`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..mathfn import logistic
from ..protocols.backend import Backend
from ..protocols.share import Share, concat
from .fixed import Fmt, Param, acc_bits, add_known, align_scale, requant

__all__ = ["linear", "conv2d", "relu", "maxpool2d", "argmax", "add", "mul", "mul_known",
           "sigmoid", "tanh", "affine", "im2col", "zeros_msb", "stack"]


def zeros_msb(be: Backend, shape) -> Share:
    """Public zero MSB: the operand is known to be non-negative and below 2^{bits−1}."""
    return be.public_bits(np.zeros(shape, np.int64))


def _check_x(x, what: str) -> Share:
    if not isinstance(x, Share):
        raise ParameterError(f"{what} must be a Share, got {type(x).__name__}")
    if not x.signed:
        raise ParameterError(f"{what} must be a signed fixed-point share")
    return x


def _param(p, what: str, ndim: int | None = None) -> Param:
    if not isinstance(p, Param):
        raise ParameterError(f"{what} must be a Param (server-held tensor), got {type(p).__name__}")
    if ndim is not None and len(p.shape) != ndim:
        raise ParameterError(f"{what} must be {ndim}-D, got shape {p.shape}")
    return p


def _reshaped(p: Param, shape) -> Param:
    return Param(shape, p.bits, p.scale, None if p.values is None else p.values.reshape(shape))


# ---------------------------------------------------------------------------------------------
# affine maps with server-held matrices
# ---------------------------------------------------------------------------------------------
def affine(be: Backend, terms: list[tuple[Param, Share]], bits: int, *,
           bias: Param | None = None) -> Share:
    """Σ_i W_i · x_i (+ bias) for server-held W_i (a, b_i) and shared x_i (b_i, c), unrounded:
    ring Z_{2^bits}, scale P = W_i.scale + x_i.scale (must agree for all terms).

    When all x_i share a ring width they are stacked and the W_i concatenated by the server
    (one :meth:`Backend.matmul_known`, one set of rounds); otherwise one call per term.
    The bias (a,) or (a, 1) is added by ALICE at scale P.
    """
    if not terms:
        raise ParameterError("affine needs at least one (W, x) term")
    scales = {W.scale + x.scale for W, x in terms}
    if len(scales) != 1:
        raise ParameterError(f"affine: the products W_i·x_i have different scales {sorted(scales)}; "
                             "quantise each W_i at P − x_i.scale")
    P = scales.pop()
    a = terms[0][0].shape[0]
    c = terms[0][1].shape[1]
    for W, x in terms:
        _param(W, "affine W", 2)
        if len(x.shape) != 2 or W.shape[0] != a or x.shape != (W.shape[1], c):
            raise ParameterError(f"affine: W {W.shape} and x {x.shape} do not fit a ({a}, ·)·(·, {c}) product")
    groups: dict[int, list] = {}
    for W, x in terms:
        groups.setdefault(x.bits, []).append((W, x))
    acc = None
    for m, grp in groups.items():
        xs = grp[0][1].like(np.concatenate([x.data for _, x in grp], axis=0))
        vals = [W.at(be) for W, _ in grp]
        Wcat = None if vals[0] is None else np.concatenate(vals, axis=1)
        wbits = max(W.bits for W, _ in grp)
        if bits > m + wbits:
            raise ParameterError(f"affine: accumulator ring {bits} bits exceeds {m} + {wbits} "
                                 "(input + weight bits); lower the weight scale or the output width")
        w_shape = (a, sum(W.shape[1] for W, _ in grp))
        z = be.matmul_known(Wcat, xs, bits, w_bits=wbits, w_scale=P - xs.scale, w_shape=w_shape)
        acc = z if acc is None else acc + z
    if bias is not None:
        b = _param(bias, "bias")
        if b.shape not in ((a,), (a, 1)):
            raise ParameterError(f"bias has shape {b.shape}, expected ({a},)")
        acc = add_known(be, acc, _reshaped(b, (a, 1)))
    return acc


def linear(be: Backend, x: Share, W: Param, b: Param | None, out: Fmt, *, rounding: str = "nearest") -> Share:
    """y = x·Wᵀ + b (torch.nn.Linear) for shared x (in,) or (B, in), server-held W (out_dim, in),
    bias (out_dim,) → format ``out``. One matmul_known into out.bits + (W.scale + x.scale −
    out.scale) bits, the bias added by ALICE at the product scale, one rounding TR."""
    _check_x(x, "linear x")
    _param(W, "linear W", 2)
    if x.shape[-1] != W.shape[1] or len(x.shape) not in (1, 2):
        raise ParameterError(f"linear: x {x.shape} does not match W {W.shape} (x must be (in,) or (B, in))")
    xt = x.like(x.data.reshape(-1, W.shape[1]).T)  # (in, B)
    P = W.scale + x.scale
    acc = affine(be, [(W, xt)], acc_bits(Fmt(*out), P), bias=b)
    y = requant(be, acc, out, rounding)
    return y.like(np.ascontiguousarray(y.data.T).reshape(x.shape[:-1] + (W.shape[0],)))


def im2col(data: np.ndarray, kh: int, kw: int, stride: tuple, padding: tuple) -> tuple[np.ndarray, int, int]:
    """(N, C, H, W) → (C·kh·kw, N·Ho·Wo) patch matrix (zero padding; rows ordered (c, i, j) like
    W.reshape(OC, −1)). Local on each share: padded zeros are shares of zero."""
    N, C, H, W = data.shape
    ph, pw = padding
    sh, sw = stride
    d = np.pad(data, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if kh > Hp or kw > Wp:
        raise ParameterError(f"conv2d: kernel ({kh}, {kw}) larger than the padded input ({Hp}, {Wp})")
    ho, wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    rows = (np.arange(ho) * sh)[:, None] + np.arange(kh)  # (ho, kh)
    cols = (np.arange(wo) * sw)[:, None] + np.arange(kw)  # (wo, kw)
    p = d[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, ho, wo, kh, kw)
    p = p.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * ho * wo)
    return p, ho, wo


def _pair(v, what: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2 or not all(isinstance(u, (int, np.integer)) and u >= 0 for u in t):
        raise ParameterError(f"conv2d {what} must be a non-negative int or pair, got {v!r}")
    return int(t[0]), int(t[1])


def conv2d(be: Backend, x: Share, W: Param, b: Param | None, out: Fmt, *, stride=1, padding=0,
           rounding: str = "nearest") -> Share:
    """2-D convolution (cross-correlation, as torch.nn.Conv2d) of shared x (C, H, W) or
    (N, C, H, W) with server-held W (OC, C, kh, kw) and bias (OC,): im2col (local), one
    matmul_known W (OC, C·kh·kw) · patches, bias by ALICE, one rounding to ``out``.
    Output (OC, Ho, Wo) or (N, OC, Ho, Wo).

    Note: im2col repeats input entries; matmul_known's wraps and COTs are per patch entry.
    """
    _check_x(x, "conv2d x")
    _param(W, "conv2d W", 4)
    batched = len(x.shape) == 4
    if len(x.shape) not in (3, 4):
        raise ParameterError(f"conv2d x must be (C, H, W) or (N, C, H, W), got {x.shape}")
    data = x.data if batched else x.data[None]
    N, C = data.shape[:2]
    OC, C2, kh, kw = W.shape
    if C != C2:
        raise ParameterError(f"conv2d: x has {C} channels, W expects {C2}")
    st = _pair(stride, "stride")
    if min(st) < 1:
        raise ParameterError("conv2d stride must be ≥ 1")
    pad = _pair(padding, "padding")
    cols, ho, wo = im2col(data, kh, kw, st, pad)
    Wm = _reshaped(W, (OC, C * kh * kw))
    P = W.scale + x.scale
    acc = affine(be, [(Wm, x.like(cols))], acc_bits(Fmt(*out), P), bias=b)
    y = requant(be, acc, out, rounding)  # (OC, N·ho·wo)
    yd = y.data.reshape(OC, N, ho, wo).transpose(1, 0, 2, 3)
    return y.like(np.ascontiguousarray(yd if batched else yd[0]))


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------
def relu(be: Backend, x: Share) -> Share:
    """max(x, 0); same format."""
    return be.relu(_check_x(x, "relu x"))


def maxpool2d(be: Backend, x: Share, window, stride=None) -> Share:
    """2-D max-pooling over the last two axes (no padding; stride defaults to the window); same
    format. Exact max when pairwise differences do not overflow the ring (|a − b| < 2^{bits−1})."""
    return be.maxpool(_check_x(x, "maxpool x"), window, stride)


def argmax(be: Backend, x: Share, index_bits: int | None = None) -> Share:
    """Index of the maximum over the last axis (first index on ties), as an unsigned share."""
    return be.argmax(_check_x(x, "argmax x"), index_bits)


def add(be: Backend, x: Share, y: Share, out: Fmt | None = None) -> Share:
    """x + y. Equal formats: local. Otherwise the narrower ring is sign-extended, the smaller scale
    shifted up (local), and the sum requantised to ``out`` (default: the aligned format)."""
    _check_x(x, "add x"), _check_x(y, "add y")
    if x.shape != y.shape:
        raise ParameterError(f"add: shapes differ, {x.shape} vs {y.shape}")
    bits = max(x.bits, y.bits)
    x = be.sext(x, bits).with_meta(signed=True) if x.bits < bits else x
    y = be.sext(y, bits).with_meta(signed=True) if y.bits < bits else y
    s = max(x.scale, y.scale)
    z = align_scale(x, s) + align_scale(y, s)
    return z if out is None else requant(be, z, out)


def mul(be: Backend, x: Share, y: Share, out: Fmt, *, x_nonneg: bool = False, y_nonneg: bool = False,
        rounding: str = "nearest") -> Share:
    """Elementwise x ⊙ y → ``out``: one mixed-width multiplication into out.bits + (x.scale +
    y.scale − out.scale) bits (at most x.bits + y.bits) and one rounding. ``*_nonneg`` promise
    that the operand is ≥ 0 (e.g. a sigmoid output): its MSB is then publicly zero, which makes the
    multiplication's wrap one 1-of-4 OT instead of a millionaires' instance."""
    _check_x(x, "mul x"), _check_x(y, "mul y")
    if x.shape != y.shape:
        raise ParameterError(f"mul: shapes differ, {x.shape} vs {y.shape}")
    L = acc_bits(Fmt(*out), x.scale + y.scale, cap=x.bits + y.bits)
    p = be.mul(x, y, L, msb_x=zeros_msb(be, x.shape) if x_nonneg else None,
               msb_y=zeros_msb(be, y.shape) if y_nonneg else None)
    return requant(be, p, out, rounding)


def mul_known(be: Backend, x: Share, w: Param, out: Fmt, *, rounding: str = "nearest") -> Share:
    """Elementwise x ⊙ w for a server-held w broadcast against x (e.g. a per-channel scale or a
    scalar) → ``out``; one mul_known and one rounding."""
    _check_x(x, "mul_known x")
    _param(w, "mul_known w")
    try:
        np.broadcast_shapes(w.shape, x.shape)
    except ValueError:
        raise ParameterError(f"mul_known: w {w.shape} does not broadcast against x {x.shape}") from None
    v = w.at(be)
    v = None if v is None else np.broadcast_to(v, x.shape).copy()
    L = acc_bits(Fmt(*out), x.scale + w.scale, cap=x.bits + w.bits)
    p = be.mul_known(v, x, L, w_bits=w.bits, w_scale=w.scale)
    return requant(be, p, out, rounding)


def sigmoid(be: Backend, x: Share, out: Fmt, *, extra_scale: int = logistic.EXTRA_SCALE,
            msb: Share | None = None) -> Share:
    """σ(x) → ``out`` (SiRNN's recipe; internal scale out.scale + extra_scale). ``msb``: boolean
    shares of MSB(x) if the caller already has them (e.g. from :func:`fixed.requant_msb`)."""
    return logistic.sigmoid(be, _check_x(x, "sigmoid x"), out.bits, out.scale, extra_scale=extra_scale, msb=msb)


def tanh(be: Backend, x: Share, out: Fmt, *, msb: Share | None = None) -> Share:
    return logistic.tanh(be, _check_x(x, "tanh x"), out.bits, out.scale, msb=msb)


def stack(shares: list[Share], axis: int = 0) -> Share:
    """Concatenate shares of one format (local)."""
    return concat(shares, axis)
