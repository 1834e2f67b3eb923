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
from ..protocols.mul import matmul_cost_bits, matmul_known_cost_bits, mul_cost_bits, mul_known_cost_bits
from ..protocols.share import Share, concat
from .fixed import Fmt, Param, acc_bits, add_known, align_scale, requant
from .movement import gather, gather_data, pads4, window_index

__all__ = ["linear", "conv2d", "relu", "maxpool2d", "avgpool2d", "argmax", "add", "mul", "mul_known",
           "matmul", "broadcast", "scale_public", "sigmoid", "tanh", "affine", "im2col", "zeros_msb", "stack"]


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


def im2col(data: np.ndarray, kh: int, kw: int, stride: tuple, padding, dilation=(1, 1)) -> tuple[np.ndarray, int, int]:
    """(N, C, H, W) → (C·kh·kw, N·Ho·Wo) patch matrix (zero padding: an int, a pair or (top,
    left, bottom, right); rows ordered (c, i, j) like W.reshape(OC, −1)). Local on each share:
    padded zeros are shares of zero (:func:`~sirnn.nn.movement.window_index`)."""
    N, C, H, W = data.shape
    try:
        idx = window_index((C, H, W), (kh, kw), stride, padding, dilation)
    except ParameterError as e:
        raise ParameterError(f"conv2d: {e}") from None
    _, ho, wo, K = idx.shape
    p = gather_data(data, idx, 0)  # (N, C, ho, wo, kh·kw)
    p = p.transpose(1, 4, 0, 2, 3).reshape(C * K, N * ho * wo)
    return p, ho, wo


def _pair(v, what: str, minimum: int = 0) -> tuple[int, int]:
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2 or not all(isinstance(u, (int, np.integer)) and u >= minimum for u in t):
        raise ParameterError(f"{what} must be an int ≥ {minimum} or a pair of them, got {v!r}")
    return int(t[0]), int(t[1])


def conv_groups_plan(OC: int, G: int, K: int, M: int, x_bits: int, bits_out: int, w_bits: int) -> str:
    """``block_diag`` or ``elementwise`` for a grouped convolution (see :func:`conv2d`): the one
    with fewer bits by the protocols' cost functions (K = C/G·kh·kw, M = N·Ho·Wo)."""
    blk = matmul_known_cost_bits(OC, G * K, M, x_bits, bits_out, w_bits)
    elt = mul_known_cost_bits(x_bits, bits_out, w_bits, count=OC * K * M)
    return "block_diag" if blk <= elt else "elementwise"


def conv2d(be: Backend, x: Share, W: Param, b: Param | None, out: Fmt, *, stride=1, padding=0,
           dilation=1, groups: int = 1, rounding: str = "nearest") -> Share:
    """2-D convolution (cross-correlation, as torch.nn.Conv2d / ONNX Conv) of shared x (C, H, W)
    or (N, C, H, W) with server-held W (OC, C/groups, kh, kw) and bias (OC,) → ``out``; padding
    an int, a pair or (top, left, bottom, right); dilation an int or a pair.
    Output (OC, Ho, Wo) or (N, OC, Ho, Wo).

    im2col (local), then one multiplication call, bias by ALICE, one rounding. groups = 1: one
    matmul_known W (OC, C·kh·kw) · patches. groups > 1 (depthwise included), whichever costs fewer
    bits (:func:`conv_groups_plan`): one matmul_known with the groups' kernels on the diagonal of
    an (OC, C·kh·kw) matrix (public zeros elsewhere; wins when OC/groups is large), or one
    elementwise mul_known of the OC·(C/groups)·kh·kw·Ho·Wo products (each output channel against
    its group's patches) and a local sum over the window (wins for depthwise). Either way the
    rounds of a single product.

    Note: im2col repeats input entries; matmul_known's wraps and COTs are per patch entry.
    """
    _check_x(x, "conv2d x")
    _param(W, "conv2d W", 4)
    batched = len(x.shape) == 4
    if len(x.shape) not in (3, 4):
        raise ParameterError(f"conv2d x must be (C, H, W) or (N, C, H, W), got {x.shape}")
    data = x.data if batched else x.data[None]
    N, C = data.shape[:2]
    OC, Cg, kh, kw = W.shape
    if not isinstance(groups, (int, np.integer)) or groups < 1 or C % groups or OC % groups:
        raise ParameterError(f"conv2d: groups must divide the {C} input and {OC} output channels, got {groups!r}")
    if C != Cg * groups:
        raise ParameterError(f"conv2d: x has {C} channels, W expects {Cg * groups} ({Cg} per group × {groups})")
    st = _pair(stride, "conv2d stride", 1)
    dil = _pair(dilation, "conv2d dilation", 1)
    cols, ho, wo = im2col(data, kh, kw, st, pads4(padding), dil)
    P = W.scale + x.scale
    L = acc_bits(Fmt(*out), P)
    G, K, M = groups, Cg * kh * kw, N * ho * wo
    if G == 1:
        acc = affine(be, [(_reshaped(W, (OC, K)), x.like(cols))], L, bias=b)
    elif conv_groups_plan(OC, G, K, M, x.bits, L, W.bits) == "block_diag":
        # the groups' kernels on the diagonal, public zeros elsewhere (the server's matrix)
        Wm = Param((OC, G * K), W.bits, W.scale,
                   None if W.values is None else _block_diag(W.values.reshape(G, OC // G, K)))
        acc = affine(be, [(Wm, x.like(cols))], L, bias=b)
    else:
        per = cols.reshape(G, 1, K, M)  # each output channel against its group's patches
        xg = x.like(np.ascontiguousarray(np.broadcast_to(per, (G, OC // G, K, M)).reshape(OC, K, M)))
        Wv = W.at(be)
        Wb = None if Wv is None else np.broadcast_to(Wv.reshape(OC, K, 1), (OC, K, M)).copy()
        if L > x.bits + W.bits:
            raise ParameterError(f"conv2d: accumulator ring {L} bits exceeds {x.bits} + {W.bits}")
        z = be.mul_known(Wb, xg, L, w_bits=W.bits, w_scale=W.scale)
        acc = z.like(z.data.sum(axis=1))
        if b is not None:
            acc = add_known(be, acc, _reshaped(b, (OC, 1)))
    y = requant(be, acc, out, rounding)  # (OC, N·ho·wo)
    yd = y.data.reshape(OC, N, ho, wo).transpose(1, 0, 2, 3)
    return y.like(np.ascontiguousarray(yd if batched else yd[0]))


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------
def relu(be: Backend, x: Share) -> Share:
    """max(x, 0); same format."""
    return be.relu(_check_x(x, "relu x"))


def maxpool2d(be: Backend, x: Share, window, stride=None, padding=0, dilation=1) -> Share:
    """2-D max-pooling over the last two axes (stride defaults to the window); same format.
    Exact max when pairwise differences do not overflow the ring (|a − b| < 2^{bits−1}).

    Without padding and dilation: :meth:`Backend.maxpool` on the windows. With them (x (C, H, W)
    or (N, C, H, W)): the windows by the index map of :func:`~sirnn.nn.movement.window_index`
    (local), padding filled with −2^{bits−2} (below every value of a format with one headroom
    bit, so it never wins and differences do not wrap), then the same tournament over each window."""
    _check_x(x, "maxpool x")
    win = _pair(window, "maxpool window", 1)
    st = win if stride is None else _pair(stride, "maxpool stride", 1)
    dil = _pair(dilation, "maxpool dilation", 1)
    pads = pads4(padding)
    if not any(pads) and dil == (1, 1):
        return be.maxpool(x, win, st)
    if len(x.shape) not in (3, 4):
        raise ParameterError(f"maxpool with padding or dilation needs x (C, H, W) or (N, C, H, W), got {x.shape}")
    batched = len(x.shape) == 4
    xb = x if batched else x.like(x.data[None])
    idx = window_index(xb.shape[1:], win, st, pads, dil)
    w = gather(xb, idx, -(1 << (x.bits - 2)))  # (N, C, Ho, Wo, k)
    y = be.maxpool(w, axis=-1)
    return y if batched else y.like(y.data[0])


def avgpool2d(be: Backend, x: Share, window, out: Fmt, stride=None, padding=0,
              count_include_pad: bool = False) -> Share:
    """2-D average pooling of x (C, H, W) or (N, C, H, W) → ``out``: the windows by an index map
    (local, zero padding), the window sums times the public 1/count (count = kh·kw, or the
    number of non-padded entries unless ``count_include_pad``), rounded once
    (:func:`scale_public`: one extension and one TR)."""
    _check_x(x, "avgpool x")
    win = _pair(window, "avgpool window", 1)
    st = win if stride is None else _pair(stride, "avgpool stride", 1)
    if len(x.shape) not in (3, 4):
        raise ParameterError(f"avgpool needs x (C, H, W) or (N, C, H, W), got {x.shape}")
    batched = len(x.shape) == 4
    xb = x if batched else x.like(x.data[None])
    idx = window_index(xb.shape[1:], win, st, padding)
    count = np.full(idx.shape[:-1], idx.shape[-1]) if count_include_pad else (idx >= 0).sum(-1)
    y = scale_public(be, gather(xb, idx), 1.0 / count, out, sum_last=True)
    return y if batched else y.like(y.data[0])


def _const_scale(c: np.ndarray, c_bits: int) -> int:
    """The scale for public constants c: the least k ≤ the precision limit with c·2^k integral
    (exact), else the one that gives max |c| ``c_bits`` − 1 significant bits."""
    m = float(np.abs(c).max())
    top = c_bits - 2 - int(np.floor(np.log2(m)))
    for k in range(0, max(top, 0) + 1):
        v = c * 2.0**k
        if np.all(v == np.round(v)):
            return k
    return top


def scale_public(be: Backend, x: Share, c, out: Fmt, *, sum_last: bool = False, bias=None,
                 nonneg: bool = False, msb: Share | None = None, c_bits: int = 20,
                 rounding: str = "nearest") -> Share:
    """round(c ⊙ x + bias), or round(c ⊙ Σ_last x + bias), for public reals c and bias
    (broadcast against the result) → ``out``.

    c is quantised at scale k (exactly when c·2^k is integral for a small k, e.g. 1 or 1/2^j;
    otherwise with ``c_bits`` − 1 significant bits); x is brought to the ring L = out.bits +
    (x.scale + k − out.scale) — a sign extension (zero extension with a public-zero MSB when
    ``nonneg``; ``msb`` if the caller has MSB(x)) when L > x.bits, a local reduction otherwise —
    then multiplied by the integers locally, summed (local), the bias added by ALICE, and rounded
    once (one TR). This is the exact division by a public count of means and average pooling: the
    error is the rounding (½ ULP) plus |Σx|·|c − c_q|."""
    _check_x(x, "scale_public x")
    out = Fmt(*out).check("scale_public output")
    c = np.asarray(c, np.float64)
    res_shape = tuple(np.broadcast_shapes(x.shape[:-1] if sum_last else x.shape, c.shape))
    if not np.all(np.isfinite(c)):
        raise ParameterError("scale_public: the constant must be finite")
    if not c.any():
        base = np.zeros(res_shape) if bias is None else np.broadcast_to(np.asarray(bias, np.float64), res_shape)
        return be.public(np.round(base * 2.0**out.scale).astype(np.int64), out.bits, out.scale)
    k = max(_const_scale(c, c_bits), out.scale - x.scale)
    L = out.bits + x.scale + k - out.scale
    if L > 64:
        k -= L - 64
        L = 64
        if k < max(out.scale - x.scale, 0) or k < -int(np.floor(np.log2(np.abs(c).max()))):
            raise ParameterError(f"scale_public: no room in 64 bits for the constant at output {tuple(out)}")
    cq = np.round(c * 2.0**k).astype(np.int64)
    if L > x.bits:
        v = be.zext(x, L, msb=zeros_msb(be, x.shape)) if nonneg else be.sext(x, L, msb=msb)
    else:
        v = x.reduce(L)
    v = v.with_meta(signed=True).mul_public(cq[..., None] if sum_last and cq.ndim else cq, scale=k)
    if sum_last:
        v = v.like(v.data.sum(axis=-1))
    if v.shape != tuple(res_shape):
        v = v.like(np.ascontiguousarray(np.broadcast_to(v.data, res_shape)))
    if bias is not None:
        bq = np.round(np.broadcast_to(np.asarray(bias, np.float64), res_shape) * 2.0**v.scale).astype(np.int64)
        v = v.add_public(bq)
    return requant(be, v, out, rounding)


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


def broadcast(x: Share, shape) -> Share:
    """x broadcast (numpy rules) to ``shape``, as a contiguous share (local)."""
    shape = tuple(shape)
    return x if x.shape == shape else x.like(np.ascontiguousarray(np.broadcast_to(x.data, shape)))


def matmul_plan(B: int, a: int, b: int, c: int, m: int, n: int, bits_out: int) -> str:
    """How :func:`matmul` multiplies B independent (a, b)·(b, c) products of m-bit by n-bit shares
    into ``bits_out`` bits, whichever costs the fewest bits (all take the rounds of one product):
    ``hadamard`` (all B·a·b·c products in one :meth:`Backend.mul`), ``x_diag`` (one
    :meth:`Backend.matmul` of the block-diagonal (B·a, B·b) x by the stacked (B·b, c) y) or
    ``y_diag`` (the stacked (a, B·b) x by the block-diagonal (B·b, B·c) y). B = 1 is a plain
    matmul."""
    costs = {"hadamard": mul_cost_bits(m, n, bits_out, count=B * a * b * c),
             "x_diag": matmul_cost_bits(B * a, B * b, c, m, n, bits_out),
             "y_diag": matmul_cost_bits(a, B * b, B * c, m, n, bits_out)}
    return min(costs, key=costs.get)


def _block_diag(v: np.ndarray) -> np.ndarray:
    """(B, p, q) → the block-diagonal (B·p, B·q) with public zeros off the diagonal (local)."""
    B, p, q = v.shape
    d = np.zeros((B, p, B, q), v.dtype)
    r = np.arange(B)
    d[r, :, r, :] = v
    return d.reshape(B * p, B * q)


def matmul(be: Backend, x: Share, y: Share, out: Fmt, *, rounding: str = "nearest") -> Share:
    """Product of two shared matrices, batched: x (..., a, b) @ y (..., b, c) → (..., a, c) in
    ``out`` (leading axes broadcast as numpy's matmul).

    The B products (B = the number of batch entries) are computed into out.bits + (x.scale +
    y.scale − out.scale) bits by one multiplication call — one Hadamard :meth:`Backend.mul` of
    all products (then a local sum over b) or one :meth:`Backend.matmul` with either operand
    block-diagonal, whichever :func:`matmul_plan` finds cheapest in bits (Backend.matmul amortises
    each entry's COTs over a row or a column, so it wins for few, larger matrices) — then one
    rounding. Every plan computes the same exact sums mod 2^ring, so the result does not depend
    on the plan."""
    _check_x(x, "matmul x"), _check_x(y, "matmul y")
    if len(x.shape) < 2 or len(y.shape) < 2 or x.shape[-1] != y.shape[-2]:
        raise ParameterError(f"matmul: shapes {x.shape} and {y.shape} do not fit (..., a, b) @ (..., b, c)")
    try:
        lead = tuple(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
    except ValueError:
        raise ParameterError(f"matmul: batch axes of {x.shape} and {y.shape} do not broadcast") from None
    a, b, c = x.shape[-2], x.shape[-1], y.shape[-1]
    B = int(np.prod(lead, dtype=np.int64))
    L = acc_bits(Fmt(*out), x.scale + y.scale, cap=x.bits + y.bits)
    xs = broadcast(x, lead + (a, b)).data.reshape(B, a, b)
    ys = broadcast(y, lead + (b, c)).data.reshape(B, b, c)
    plan = matmul_plan(B, a, b, c, x.bits, y.bits, L)
    if plan == "hadamard":
        full = (B, a, b, c)
        p = be.mul(broadcast(x.like(xs[..., None]), full), broadcast(y.like(ys[:, None]), full), L)
        z = p.data.sum(axis=-2)
    elif plan == "x_diag":
        p = be.matmul(x.like(_block_diag(xs)), y.like(ys.reshape(B * b, c)), L)
        z = p.data.reshape(B, a, c)
    else:
        p = be.matmul(x.like(xs.transpose(1, 0, 2).reshape(a, B * b)), y.like(_block_diag(ys)), L)
        z = p.data.reshape(a, B, c).transpose(1, 0, 2)
    acc = p.like(np.ascontiguousarray(z).reshape(lead + (a, c))).with_meta(signed=True)
    return requant(be, acc, out, rounding)


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
