"""Local data movement: one kernel, :func:`gather_data` (out = x.flat[index] per sample, index −1
→ a fill value), and the constant index maps that express padding and sliding windows with it.

Everything here is local on each share (and the same code runs on float arrays): a public index
map moves share entries around; a padded entry is a public constant, held by ALICE (BOB holds 0),
so zero padding is zero on both sides. The pooling layers, im2col (convolution), ``pad`` and
``gather`` of the compiler all go through :func:`gather_data`.
"""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from ..protocols.share import Share

__all__ = ["gather_data", "gather", "window_index", "window_out_hw", "pad_index", "pads4"]


def gather_data(data: np.ndarray, index, fill=0) -> np.ndarray:
    """data (N, ...) → (N,) + index.shape with out[n, i] = data[n].flat[index[i]], and ``fill``
    where index[i] < 0."""
    flat = data.reshape(data.shape[0], -1)
    idx = np.asarray(index, np.int64)
    if idx.size and idx.max(initial=-1) >= flat.shape[1]:
        raise ParameterError(f"gather: index {int(idx.max())} out of range for {flat.shape[1]} elements")
    pad = idx < 0
    out = flat[:, np.where(pad, 0, idx)]
    if pad.any():
        out[:, pad] = fill
    return out


def gather(x: Share, index, fill: int = 0) -> Share:
    """:func:`gather_data` on a share; ``fill`` is a public signed integer at x's scale (ALICE
    holds it, BOB 0). No communication."""
    f = (int(fill) % (1 << x.bits)) if x.role == ALICE else 0
    return x.like(gather_data(x.data, index, np.uint64(f)))


def pads4(padding) -> tuple[int, int, int, int]:
    """A 2-D padding as (top, left, bottom, right): an int, a pair (symmetric) or a 4-tuple (ONNX's
    order x1_begin, x2_begin, x1_end, x2_end)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = (int(padding),) * 4
    else:
        t = tuple(padding)
        p = t + t if len(t) == 2 else t
    if len(p) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in p):
        raise ParameterError(f"padding must be an int ≥ 0, a pair or (top, left, bottom, right), got {padding!r}")
    return tuple(int(v) for v in p)


def window_out_hw(H: int, W: int, kernel, stride, padding, dilation=(1, 1)) -> tuple[int, int]:
    """Output (Ho, Wo) of a sliding window (convolution / pooling, floor mode)."""
    pt, pl, pb, pr = pads4(padding)
    eh = dilation[0] * (kernel[0] - 1) + 1
    ew = dilation[1] * (kernel[1] - 1) + 1
    return (H + pt + pb - eh) // stride[0] + 1, (W + pl + pr - ew) // stride[1] + 1


def window_index(shape, kernel, stride, padding=0, dilation=(1, 1)) -> np.ndarray:
    """Index map of the sliding windows of a (C, H, W) tensor: (C, Ho, Wo, kh·kw) flat indices
    (row-major inside a window), −1 where the window covers padding."""
    C, H, W = (int(s) for s in shape)
    kh, kw = kernel
    pt, pl, _, _ = pads4(padding)
    Ho, Wo = window_out_hw(H, W, kernel, stride, padding, dilation)
    if Ho < 1 or Wo < 1:
        raise ParameterError(f"window {tuple(kernel)} (dilation {tuple(dilation)}) is larger than the "
                             f"padded input {(H, W)}")
    rows = (np.arange(Ho) * stride[0])[:, None] + np.arange(kh) * dilation[0] - pt  # (Ho, kh)
    cols = (np.arange(Wo) * stride[1])[:, None] + np.arange(kw) * dilation[1] - pl  # (Wo, kw)
    r, c = rows[:, None, :, None], cols[None, :, None, :]
    valid = (r >= 0) & (r < H) & (c >= 0) & (c < W)                                 # (Ho, Wo, kh, kw)
    flat = np.where(valid, r * W + c, -1)
    idx = np.where(valid, np.arange(C)[:, None, None, None, None] * (H * W) + flat, -1)
    return idx.reshape(C, Ho, Wo, kh * kw)


def pad_index(shape, pads, mode: str = "constant") -> np.ndarray:
    """Index map of ONNX Pad on a tensor of ``shape``: pads [(begin, end)] per axis (non-negative),
    mode constant (−1: the fill value), reflect or edge."""
    pads = [(int(a), int(b)) for a, b in pads]
    if len(pads) != len(shape) or any(a < 0 or b < 0 for a, b in pads):
        raise ParameterError(f"pad: need one non-negative (begin, end) per axis of {tuple(shape)}, got {pads}")
    ar = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    if mode == "constant":
        return np.pad(ar, pads, constant_values=-1)
    if mode in ("reflect", "edge"):
        if mode == "reflect" and any((a or b) and s < 2 for (a, b), s in zip(pads, shape)):
            raise ParameterError("pad: reflect needs at least 2 elements along a padded axis")
        return np.pad(ar, pads, mode=mode)
    raise ParameterError(f"pad: mode must be constant, reflect or edge, got {mode!r}")
