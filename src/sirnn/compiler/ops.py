"""The ops of a fixed-point program: their inputs, parameters, attributes, and the shape and format
rules a program must satisfy (checked when a program is built or loaded).

Conventions
-----------
* Tensor shapes are **per sample**: the runtime adds a leading batch axis (N samples evaluated
  together), so ``linear`` on a tensor of shape (in,) runs on (N, in).
* Every activation is a signed fixed-point tensor with a format (bits, scale): the real value is
  signed(x)/2^scale in Z_{2^bits}. The only unsigned tensors are ``argmax`` indices (scale 0).
* Parameters are server-held integer tensors (:class:`~sirnn.nn.fixed.Param`: shape, bits,
  scale, values); an op names them by *role* (e.g. ``{"W": "fc1.W", "b": "fc1.b"}``).
* Where an op's output format is free (``linear``, ``conv2d``, ``add``, ``sub``, ``mul``,
  ``div``, ``matmul``, the math functions, ``leakyrelu``, ``prelu``, ``hardsigmoid``,
  ``hardswish``, ``softplus``, ``normalize``, ``reduce`` sum/mean/l2, ``avgpool2d``,
  ``requant``) the declared output tensor's format is the target; elsewhere (``relu``, ``abs``,
  ``neg``, ``clip``, max-pooling, ``reduce`` max, plumbing and ``gather``, the recurrent cells)
  it is fixed by the input and must match.

Adding an op: give it an :class:`OpDef` here (``register``), a runner in
:data:`sirnn.compiler.runtime.RUNNERS`, and, for the compiler, a float function and a lowering
rule in :mod:`sirnn.compiler.floatir` / :mod:`sirnn.compiler.calibrate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ProgramError
from ..errors import ParameterError
from ..nn.fixed import Fmt
from ..nn.movement import pads4, window_out_hw
from ..protocols.ring import check_bits

__all__ = ["TensorSpec", "Op", "OpDef", "OPS", "register", "index_bits_for", "CELL_PARAMS",
           "cell_formats_from", "cell_formats_to"]


# ---------------------------------------------------------------------------------------------
# tensors and ops
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """Per-sample shape and fixed-point format of a tensor."""

    shape: tuple
    bits: int
    scale: int
    signed: bool = True

    def __post_init__(self):
        try:
            shape = tuple(int(s) for s in self.shape)
        except (TypeError, ValueError):
            raise ProgramError(f"tensor shape must be a list of integers, got {self.shape!r}") from None
        if any(s < 0 for s in shape):
            raise ProgramError(f"tensor shape has a negative dimension: {shape}")
        object.__setattr__(self, "shape", shape)
        try:
            check_bits(self.bits, "tensor bits")
        except ValueError as e:
            raise ProgramError(str(e)) from None
        if not isinstance(self.scale, (int, np.integer)) or isinstance(self.scale, bool) \
                or not 0 <= self.scale < self.bits:
            raise ProgramError(f"tensor scale must be in 0..bits − 1, got scale {self.scale!r} "
                               f"for {self.bits} bits")
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "scale", int(self.scale))
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def fmt(self) -> Fmt:
        return Fmt(self.bits, self.scale)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def with_shape(self, shape) -> "TensorSpec":
        return TensorSpec(tuple(shape), self.bits, self.scale, self.signed)

    def describe(self) -> dict:
        return {"shape": list(self.shape), "bits": self.bits, "scale": self.scale, "signed": self.signed}

    @classmethod
    def from_dict(cls, d: dict, what: str = "tensor") -> "TensorSpec":
        if not isinstance(d, dict) or not {"shape", "bits", "scale"} <= d.keys():
            raise ProgramError(f"{what}: expected {{shape, bits, scale[, signed]}}, got {d!r}")
        return cls(d["shape"], d["bits"], d["scale"], d.get("signed", True))

    def __str__(self) -> str:
        kind = "" if self.signed else " unsigned"
        return f"{tuple(self.shape)} @ ({self.bits}, {self.scale}){kind}"


@dataclass
class Op:
    """One step of a program: ``outputs = op(inputs; params, attrs)``."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  #: role → program parameter name

    def describe(self) -> dict:
        return {"op": self.op, "name": self.name, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "attrs": _jsonable(self.attrs),
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> "Op":
        if not isinstance(d, dict) or "op" not in d:
            raise ProgramError(f"an op must be an object with at least 'op', got {d!r}")
        for key in ("inputs", "outputs"):
            v = d.get(key, [])
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise ProgramError(f"op {d.get('name', d['op'])!r}: '{key}' must be a list of tensor names")
        if not isinstance(d.get("attrs", {}), dict) or not isinstance(d.get("params", {}), dict):
            raise ProgramError(f"op {d.get('name', d['op'])!r}: 'attrs' and 'params' must be objects")
        return cls(str(d["op"]), str(d.get("name", d["op"])), list(d.get("inputs", [])),
                   list(d.get("outputs", [])), dict(d.get("attrs", {})), dict(d.get("params", {})))


def _jsonable(v):
    """Attributes as plain JSON values (tuples → lists, numpy arrays and scalars → Python)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


# ---------------------------------------------------------------------------------------------
# op definitions
# ---------------------------------------------------------------------------------------------
#: check(op, ins, outs, params) raises ProgramError unless the op is well formed; ``ins``/``outs``
#: are TensorSpecs, ``params`` maps role → Param (values may be None: the client's copy).
Check = Callable[[Op, list, list, dict], None]


@dataclass(frozen=True)
class OpDef:
    name: str
    inputs: tuple[int, int]               #: (min, max) number of inputs
    outputs: int = 1
    params: tuple[str, ...] = ()          #: required parameter roles
    optional: tuple[str, ...] = ()        #: optional parameter roles
    attrs: tuple[str, ...] = ()           #: allowed attribute names
    check: Check | None = None
    doc: str = ""


OPS: dict[str, OpDef] = {}


def register(d: OpDef) -> OpDef:
    """Add (or replace) an op definition."""
    OPS[d.name] = d
    return d


def _fail(op: Op, msg: str):
    raise ProgramError(f"op {op.name!r} ({op.op}): {msg}")


def _signed_in(op: Op, ins) -> None:
    for i, t in enumerate(ins):
        if not t.signed:
            _fail(op, f"input {op.inputs[i]!r} must be a signed fixed-point tensor, got an index tensor")


def _same_fmt_out(op: Op, t: TensorSpec, o: TensorSpec, shape) -> None:
    if tuple(o.shape) != tuple(shape):
        _fail(op, f"output {op.outputs[0]!r} has shape {o.shape}, expected {tuple(shape)}")
    if (o.bits, o.scale, o.signed) != (t.bits, t.scale, t.signed):
        _fail(op, f"output {op.outputs[0]!r} must keep the input format ({t.bits}, {t.scale}), "
                  f"declared ({o.bits}, {o.scale})")


def _out_shape(op: Op, o: TensorSpec, shape) -> None:
    if tuple(o.shape) != tuple(shape):
        _fail(op, f"output {op.outputs[0]!r} has shape {o.shape}, expected {tuple(shape)}")
    if not o.signed:
        _fail(op, f"output {op.outputs[0]!r} must be signed")


def _acc_fits(op: Op, out: TensorSpec, prod_scale: int, in_bits: int, w_bits: int, what: str) -> None:
    """The product ring out.bits + (prod_scale − out.scale) must fit a multiplication of
    in_bits × w_bits (and 64 bits)."""
    need = out.bits + max(prod_scale - out.scale, 0)
    if need > min(64, in_bits + w_bits):
        _fail(op, f"{what}: the accumulator needs {need} bits (output {out.bits} bits + "
                  f"{prod_scale - out.scale} dropped fraction bits) but a {in_bits}-bit × {w_bits}-bit "
                  f"product has at most {min(64, in_bits + w_bits)}: lower the weight scale")


def _check_bias(op: Op, b, n_out: int) -> None:
    if b is not None and b.shape not in ((n_out,), (n_out, 1)):
        _fail(op, f"bias has shape {b.shape}, expected ({n_out},)")


def _check_linear(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    W, b = p["W"], p.get("b")
    if len(W.shape) != 2:
        _fail(op, f"W must be 2-D (out, in), got {W.shape}")
    if len(x.shape) < 1 or x.shape[-1] != W.shape[1]:
        _fail(op, f"input {op.inputs[0]!r} of shape {x.shape} does not match W {W.shape} (last axis = in)")
    _check_bias(op, b, W.shape[0])
    _out_shape(op, o, x.shape[:-1] + (W.shape[0],))
    _acc_fits(op, o, W.scale + x.scale, x.bits, W.bits, "W·x")


def _pair(op, v, what, minimum):
    t = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    if not isinstance(t, (list, tuple)) or len(t) != 2 or not all(
            isinstance(u, (int, np.integer)) and not isinstance(u, bool) and u >= minimum for u in t):
        _fail(op, f"attribute {what} must be an integer ≥ {minimum} or a pair of them, got {v!r}")
    return int(t[0]), int(t[1])


def conv_out_hw(H, W, k, stride, pad, dilation=(1, 1)):
    """(Ho, Wo) of a sliding window; pad an int, a pair or (top, left, bottom, right)."""
    return window_out_hw(H, W, k, stride, pad, dilation)


def _pads(op, v):
    try:
        return pads4(v)
    except ParameterError:
        _fail(op, f"attribute padding must be an int ≥ 0, a pair or (top, left, bottom, right), got {v!r}")


def _window_attrs(op, x, kernel) -> tuple:
    """(stride, pads, dilation, (Ho, Wo)) of a conv/pool op on x (C, H, W), checked."""
    if len(x.shape) != 3:
        _fail(op, f"input must be (C, H, W), got {x.shape}")
    st = kernel if op.op != "conv2d" and op.attrs.get("stride") is None else \
        _pair(op, op.attrs.get("stride", 1), "stride", 1)
    pad = _pads(op, op.attrs.get("padding", 0))
    dil = _pair(op, op.attrs.get("dilation", 1), "dilation", 1)
    ho, wo = conv_out_hw(x.shape[1], x.shape[2], kernel, st, pad, dil)
    if ho < 1 or wo < 1:
        _fail(op, f"window {tuple(kernel)} (dilation {dil}) is larger than the padded input")
    return st, pad, dil, (ho, wo)


def _check_conv2d(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    W, b = p["W"], p.get("b")
    if len(W.shape) != 4:
        _fail(op, f"W must be 4-D (OC, C/groups, kh, kw), got {W.shape}")
    G = op.attrs.get("groups", 1)
    if not isinstance(G, int) or isinstance(G, bool) or G < 1 or W.shape[0] % G:
        _fail(op, f"attribute groups must be a positive integer dividing the {W.shape[0]} output channels, got {G!r}")
    if len(x.shape) != 3 or x.shape[0] != W.shape[1] * G:
        _fail(op, f"input {x.shape} must be (C, H, W) with C = {W.shape[1]} × {G} groups")
    _, _, _, hw = _window_attrs(op, x, W.shape[2:])
    _check_bias(op, b, W.shape[0])
    _out_shape(op, o, (W.shape[0],) + hw)
    _acc_fits(op, o, W.scale + x.scale, x.bits, W.bits, "W·x")


def _broadcast(op, a, b, what):
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        _fail(op, f"{what}: shapes {tuple(a)} and {tuple(b)} do not broadcast")


def _check_binary(op, ins, outs, p, kind):
    _signed_in(op, ins)
    (o,) = outs
    x = ins[0]
    if len(ins) == 2:
        if p:
            _fail(op, f"{kind} takes two input tensors or one tensor and a parameter 'y', not both")
        y_shape, y_fmt = ins[1].shape, (ins[1].bits, ins[1].scale)
    else:
        y = p.get("y")
        if y is None:
            _fail(op, f"{kind} needs a second input tensor or a parameter 'y'")
        y_shape, y_fmt = y.shape, (y.bits, y.scale)
    _out_shape(op, o, _broadcast(op, x.shape, y_shape, "x and y"))
    if kind == "mul":
        _acc_fits(op, o, x.scale + y_fmt[1], x.bits, y_fmt[0], "x ⊙ y")
    if kind == "div" and x.bits + y_fmt[0] > 65:
        _fail(op, f"division of {x.bits}-bit by {y_fmt[0]}-bit values needs at most 65 bits together")
    if kind == "div" and "recip" in op.attrs:
        r = op.attrs["recip"]
        if not isinstance(r, (list, tuple)) or len(r) != 2 or not all(isinstance(v, int) for v in r) \
                or not 4 <= r[0] <= 32 or not 0 <= r[1] <= r[0] - 2:
            _fail(op, f"attribute recip must be the [bits, scale] of the shared 1/y (bits 4..32), got {r!r}")
        _acc_fits(op, o, x.scale + r[1], x.bits, r[0], "x ⊙ 1/y")


def _check_matmul(op, ins, outs, p):
    _signed_in(op, ins)
    (x, y), (o,) = ins, outs
    xs, ys = tuple(x.shape), tuple(y.shape)
    if not xs or not ys:
        _fail(op, "matmul operands must have at least one axis")
    x2 = (1,) + xs if len(xs) == 1 else xs
    y2 = ys + (1,) if len(ys) == 1 else ys
    if x2[-1] != y2[-2]:
        _fail(op, f"inner dimensions differ: {xs} @ {ys}")
    lead = _broadcast(op, x2[:-2], y2[:-2], "matmul batch axes")
    shape = lead + ((x2[-2],) if len(xs) > 1 else ()) + ((y2[-1],) if len(ys) > 1 else ())
    _out_shape(op, o, shape)
    _acc_fits(op, o, x.scale + y.scale, x.bits, y.bits, "x @ y")


def _check_free(op, ins, outs, p):
    """Elementwise, output format free (with an integer bit)."""
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    _out_shape(op, o, x.shape)
    if o.bits < o.scale + 2:
        _fail(op, f"output format ({o.bits}, {o.scale}) has no room for the integer bit and sign")


def _check_float_attr(op, key, default=None, required=False, allow_none=False):
    v = op.attrs.get(key, default)
    if v is None and allow_none and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        _fail(op, f"attribute {key} must be a finite number, got {v!r}")
    return float(v)


def _check_clip(op, ins, outs, p):
    _check_same(op, ins, outs, p)
    lo = _check_float_attr(op, "min", allow_none=True)
    hi = _check_float_attr(op, "max", allow_none=True)
    if lo is not None and hi is not None and lo > hi:
        _fail(op, f"min {lo} is above max {hi}")


def _check_leaky(op, ins, outs, p):
    _check_free(op, ins, outs, p)
    _check_float_attr(op, "alpha", 0.01)


def _check_hardsigmoid(op, ins, outs, p):
    _check_free(op, ins, outs, p)
    _check_float_attr(op, "alpha", 0.2)
    _check_float_attr(op, "beta", 0.5)


def _check_prelu(op, ins, outs, p):
    _check_free(op, ins, outs, p)
    (x,), (o,), s = ins, outs, p["slope"]
    if _broadcast(op, s.shape, x.shape, "slope and x") != tuple(x.shape):
        _fail(op, f"slope of shape {s.shape} does not broadcast to the input {x.shape}")
    _acc_fits(op, o, x.scale + s.scale, x.bits, s.bits, "slope ⊙ x")


def _check_exp(op, ins, outs, p):
    _check_free(op, ins, outs, p)
    if 2 * (outs[0].bits + 1) + 2 > 64:
        _fail(op, f"exp output of {outs[0].bits} bits needs internal products wider than 64 bits")


def _axes_of(op, nd: int, key: str = "axes") -> tuple:
    ax = op.attrs.get(key)
    if ax is None:
        return tuple(range(nd))
    ax = [ax] if isinstance(ax, int) else ax
    if not isinstance(ax, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool)
                                                    and -nd <= a < nd for a in ax) or not ax:
        _fail(op, f"attribute {key} must be a non-empty list of axes in {-nd}..{nd - 1}, got {op.attrs.get(key)!r}")
    norm = sorted(a % nd for a in ax)
    if len(set(norm)) != len(norm):
        _fail(op, f"attribute {key} repeats an axis: {ax}")
    return tuple(norm)


def _check_reduce(op, ins, outs, p):
    from ..nn.norm import L2_MAX_OUT_BITS, REDUCE_KINDS

    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    kind = op.attrs.get("kind")
    if kind not in REDUCE_KINDS:
        _fail(op, f"attribute kind must be one of {', '.join(REDUCE_KINDS)}, got {kind!r}")
    ax = _axes_of(op, len(x.shape))
    keep = op.attrs.get("keepdims", True)
    if not isinstance(keep, bool):
        _fail(op, f"attribute keepdims must be true or false, got {keep!r}")
    shape = tuple(1 if i in ax else n for i, n in enumerate(x.shape)) if keep else \
        tuple(n for i, n in enumerate(x.shape) if i not in ax)
    if kind == "max":
        _same_fmt_out(op, x, o, shape)
    else:
        _out_shape(op, o, shape)
    if kind == "l2" and 2 * x.bits > 64:
        _fail(op, f"input of {x.bits} bits: its squares need more than 64 bits")
    if kind == "l2" and o.bits > L2_MAX_OUT_BITS:
        _fail(op, f"an l2 output of {o.bits} bits is wider than {L2_MAX_OUT_BITS} (mathfn.sqrt's rings)")


def _check_normalize(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    _axes_of(op, len(x.shape))
    _check_float_attr(op, "eps", 1e-5)
    if op.attrs.get("eps", 1e-5) < 0:
        _fail(op, "attribute eps must be ≥ 0")
    r = op.attrs.get("rstd")
    if not isinstance(r, (list, tuple)) or len(r) != 2 or not all(isinstance(v, int) for v in r) \
            or not 0 <= r[1] <= r[0] - 2 or not 4 <= r[0] <= 32:
        _fail(op, f"attribute rstd must be the [bits, scale] of 1/√(var + eps) (bits 4..32), got {r!r}")
    from ..nn.norm import NORM_GUARD

    g = NORM_GUARD
    if 2 * (x.bits + g) > 64:
        _fail(op, f"input of {x.bits} bits: the squared deviations ({x.bits} + {g} guard bits) need more than 64 bits")
    _out_shape(op, o, x.shape)
    _acc_fits(op, o, x.scale + g + r[1], x.bits + g, r[0], "(x − mean) ⊙ rstd")


def _check_gather(op, ins, outs, p):
    (x,), (o,) = ins, outs
    idx = op.attrs.get("index")
    try:
        a = np.asarray(idx)
        if a.dtype.kind not in "iu" and a.size:
            raise ValueError
        a = a.astype(np.int64)
    except (ValueError, TypeError):
        _fail(op, "attribute index must be a (nested) list of integers")
    if a.size and (a.min() < -1 or a.max() >= x.size):
        _fail(op, f"index entries must lie in −1..{x.size - 1} (−1: the fill value)")
    fill = op.attrs.get("fill", 0)
    if not isinstance(fill, int) or isinstance(fill, bool) or not -(1 << (x.bits - 1)) <= fill < (1 << (x.bits - 1)):
        _fail(op, f"attribute fill must be a signed {x.bits}-bit integer (at the input's scale), got {fill!r}")
    _same_fmt_out(op, x, o, a.shape)


def _check_same(op, ins, outs, p):
    _signed_in(op, ins)
    _same_fmt_out(op, ins[0], outs[0], ins[0].shape)


def _check_maxpool(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    k = _pair(op, op.attrs.get("kernel"), "kernel", 1)
    if op.attrs.get("padding") is None and op.attrs.get("dilation") is None:  # no padding: any (..., H, W)
        st = k if op.attrs.get("stride") is None else _pair(op, op.attrs["stride"], "stride", 1)
        if len(x.shape) < 2 or k[0] > x.shape[-2] or k[1] > x.shape[-1]:
            _fail(op, f"window {k} does not fit the input's last two axes {x.shape}")
        _same_fmt_out(op, x, o, x.shape[:-2] + conv_out_hw(x.shape[-2], x.shape[-1], k, st, (0, 0)))
        return
    _, pad, _, hw = _window_attrs(op, x, k)
    if pad[0] >= k[0] or pad[2] >= k[0] or pad[1] >= k[1] or pad[3] >= k[1]:
        _fail(op, f"padding {pad} must be smaller than the window {k} (no all-padding window)")
    _same_fmt_out(op, x, o, x.shape[:1] + hw)


def _check_avgpool(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    k = _pair(op, op.attrs.get("kernel"), "kernel", 1)
    _, pad, _, hw = _window_attrs(op, x, k)
    if op.attrs.get("dilation", 1) not in (1, [1, 1], (1, 1)):
        _fail(op, "avgpool2d has no dilation")
    if not isinstance(op.attrs.get("count_include_pad", False), bool):
        _fail(op, "attribute count_include_pad must be true or false")
    _out_shape(op, o, x.shape[:1] + hw)


def index_bits_for(K: int) -> int:
    return max(1, (int(K) - 1).bit_length())


def _check_argmax(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    if op.attrs.get("axis", -1) not in (-1, len(x.shape) - 1):
        _fail(op, "only argmax over the last axis is supported (transpose first)")
    if not x.shape or x.shape[-1] < 1:
        _fail(op, f"input needs a non-empty last axis, got {x.shape}")
    if tuple(o.shape) != tuple(x.shape[:-1]):
        _fail(op, f"output has shape {o.shape}, expected {tuple(x.shape[:-1])}")
    need = index_bits_for(x.shape[-1])
    if o.signed or o.scale != 0 or o.bits < need:
        _fail(op, f"output must be an unsigned index tensor of ≥ {need} bits at scale 0, got "
                  f"({o.bits}, {o.scale}{'' if not o.signed else ', signed'})")


def _check_math(op, ins, outs, p):
    _check_free(op, ins, outs, p)
    if op.op == "tanh" and ins[0].scale < 1:
        _fail(op, "tanh needs an input scale ≥ 1")


def _check_requant(op, ins, outs, p):
    _signed_in(op, ins)
    _out_shape(op, outs[0], ins[0].shape)


def _resolve_shape(op, shape, size: int) -> tuple:
    if not isinstance(shape, (list, tuple)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= -1 for s in shape):
        _fail(op, f"attribute shape must be a list of integers (one may be −1), got {shape!r}")
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        _fail(op, "attribute shape may contain −1 only once")
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or size % known:
            _fail(op, f"cannot reshape {size} elements to {shape}")
        shape[shape.index(-1)] = size // known
    if int(np.prod(shape, dtype=np.int64)) != size:
        _fail(op, f"cannot reshape {size} elements to {tuple(shape)}")
    return tuple(shape)


def _check_reshape(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _same_fmt_out(op, x, o, _resolve_shape(op, op.attrs.get("shape"), x.size))


def _check_flatten(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _same_fmt_out(op, x, o, (x.size,))


def _check_transpose(op, ins, outs, p):
    (x,), (o,) = ins, outs
    perm = op.attrs.get("perm")
    if not isinstance(perm, (list, tuple)) or sorted(perm) != list(range(len(x.shape))):
        _fail(op, f"attribute perm must be a permutation of 0..{len(x.shape) - 1}, got {perm!r}")
    _same_fmt_out(op, x, o, tuple(x.shape[i] for i in perm))


def _slice_of(op, x_shape, attrs) -> tuple[int, slice]:
    axis = attrs.get("axis", 0)
    if not isinstance(axis, int) or not -len(x_shape) <= axis < len(x_shape):
        _fail(op, f"attribute axis {axis!r} out of range for shape {x_shape}")
    vals = [attrs.get(k) for k in ("start", "stop", "step")]
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in vals):
        _fail(op, "attributes start, stop, step must be integers or null")
    if vals[2] is not None and vals[2] == 0:
        _fail(op, "slice step must not be 0")
    return axis % len(x_shape), slice(*vals)


def _check_slice(op, ins, outs, p):
    (x,), (o,) = ins, outs
    axis, sl = _slice_of(op, x.shape, op.attrs)
    n = len(range(*sl.indices(x.shape[axis])))
    if n == 0:
        _fail(op, "the slice is empty")
    _same_fmt_out(op, x, o, x.shape[:axis] + (n,) + x.shape[axis + 1:])


def _check_concat(op, ins, outs, p):
    x = ins[0]
    axis = op.attrs.get("axis", 0)
    if not isinstance(axis, int) or not -len(x.shape) <= axis < len(x.shape):
        _fail(op, f"attribute axis {axis!r} out of range for shape {x.shape}")
    axis %= len(x.shape)
    for i, t in enumerate(ins[1:], 1):
        if (t.bits, t.scale, t.signed) != (x.bits, x.scale, x.signed):
            _fail(op, f"inputs must share one format (insert a requant): {op.inputs[0]!r} is "
                      f"({x.bits}, {x.scale}), {op.inputs[i]!r} is ({t.bits}, {t.scale})")
        if len(t.shape) != len(x.shape) or any(a != b for j, (a, b) in enumerate(zip(t.shape, x.shape)) if j != axis):
            _fail(op, f"input shapes {x.shape} and {t.shape} differ outside axis {axis}")
    shape = list(x.shape)
    shape[axis] = sum(t.shape[axis] for t in ins)
    _same_fmt_out(op, x, outs[0], shape)


# ---- recurrent cells ------------------------------------------------------------------------
#: parameter roles of the cells (FastGRNN: W or W1, W2 (low rank); U or U1, U2)
CELL_PARAMS = {
    "fastgrnn": (("b_z", "b_h", "zn"), ("W", "W1", "W2", "U", "U1", "U2")),
    "lstm": (("W_ih", "W_hh", "b"), ("h0", "c0")),
    "gru": (("Wb", "b"), ("h0", "Wn")),
    "rnn": (("W_ih", "W_hh", "b"), ("h0",)),
}
#: attributes of the cells (beyond hidden, formats, sequence: the variants, absent = default)
CELL_ATTRS = {"fastgrnn": (), "lstm": ("state",), "gru": ("linear_before_reset",), "rnn": ("activation",)}
_FMT_KEYS = ("x", "h", "pre", "gate", "c", "lowrank")


def cell_formats_from(d) -> "object":
    """CellFormats from its JSON description (as written by :func:`cell_formats_to`)."""
    from ..nn.rnn import CellFormats

    if not isinstance(d, dict):
        raise ProgramError(f"cell formats must be an object, got {d!r}")
    kw = {}
    try:
        for k in _FMT_KEYS:
            if k in d:
                kw[k] = Fmt(*(int(v) for v in d[k])).check(f"cell format {k}")
        if "w_bits" in d:
            kw["w_bits"] = int(d["w_bits"])
        if "fuse_tanh" in d:
            kw["fuse_tanh"] = bool(d["fuse_tanh"])
    except (TypeError, ValueError) as e:
        raise ProgramError(f"invalid cell formats {d!r}: {e}") from None
    unknown = set(d) - set(_FMT_KEYS) - {"w_bits", "fuse_tanh"}
    if unknown:
        raise ProgramError(f"unknown cell format keys {sorted(unknown)}")
    return CellFormats(**kw)


def cell_formats_to(f) -> dict:
    d = {k: [int(v) for v in getattr(f, k)] for k in _FMT_KEYS}
    d["w_bits"] = int(f.w_bits)
    d["fuse_tanh"] = bool(f.fuse_tanh)
    return d


def _check_cell(op, ins, outs, p):
    x, (o,) = ins[0], outs
    _signed_in(op, ins)
    try:
        f = cell_formats_from(op.attrs.get("formats"))
    except ProgramError as e:
        _fail(op, str(e))
    H = op.attrs.get("hidden")
    if not isinstance(H, int) or H < 1:
        _fail(op, f"attribute hidden must be a positive integer, got {H!r}")
    if len(x.shape) != 2 or x.shape[0] < 1:
        _fail(op, f"input must be a sequence (T, D) with T ≥ 1, got {x.shape}")
    T, D = x.shape
    if (x.bits, x.scale) != tuple(f.x):
        _fail(op, f"input format ({x.bits}, {x.scale}) differs from the cell's x format {tuple(f.x)}")

    def shape(role, want):
        got = p[role].shape
        if tuple(got) != tuple(want):
            _fail(op, f"parameter {role} has shape {got}, expected {tuple(want)}")

    if op.op == "fastgrnn":
        for full, lo in (("W", ("W1", "W2")), ("U", ("U1", "U2"))):
            has_lo = [r in p for r in lo]
            if (full in p) == any(has_lo) or (any(has_lo) and not all(has_lo)):
                _fail(op, f"give either {full} or both {lo[0]} and {lo[1]}")
        ins_dim = {"W": D, "U": H}
        for full, (a, b) in (("W", ("W1", "W2")), ("U", ("U1", "U2"))):
            if full in p:
                shape(full, (H, ins_dim[full]))
            else:
                r = p[a].shape[1] if len(p[a].shape) == 2 else -1
                shape(a, (H, r))
                shape(b, (r, ins_dim[full]))
        shape("b_z", (H,))
        shape("b_h", (H,))
        shape("zn", (2, 1))
    elif op.op in ("lstm", "rnn"):
        g = 4 if op.op == "lstm" else 1
        shape("W_ih", (g * H, D))
        shape("W_hh", (g * H, H))
        shape("b", (g * H,))
        if op.attrs.get("activation", "tanh") not in ("tanh", "relu"):
            _fail(op, f"activation must be tanh or relu, got {op.attrs.get('activation')!r}")
    elif op.op == "gru":
        if tuple(f.x) != tuple(f.h):
            _fail(op, "GRU needs x and h in one format")
        lbr = op.attrs.get("linear_before_reset", True)
        if not isinstance(lbr, bool) or lbr == ("Wn" in p):
            _fail(op, "linear_before_reset must be true or false, and false exactly with the parameter Wn")
        rows = 4 * H if lbr else 3 * H
        shape("Wb", (rows, D + H))
        shape("b", (rows,))
        if not lbr:
            shape("Wn", (H, H))
    for role in ("h0", "c0"):
        if role in p:
            shape(role, (H,))
    init = op.attrs.get("init", [])
    if not isinstance(init, list) or len(set(init)) != len(init) or not set(init) <= {"h", "c"} \
            or ("c" in init and op.op != "lstm") or op.op == "fastgrnn" and init:
        _fail(op, f"attribute init must list the runtime initial states ('h', 'c' for an lstm), got {init!r}")
    if len(ins) != 1 + len(init):
        _fail(op, f"takes the sequence and {len(init)} initial state(s) {init}, got {len(ins)} inputs")
    for key, s in zip(init, ins[1:]):
        if key + "0" in p:
            _fail(op, f"the initial {key} is both a parameter and an input")
        sf = f.c if key == "c" else f.h
        if tuple(s.shape) != (H,) or (s.bits, s.scale) != tuple(sf):
            _fail(op, f"initial state {key} must be ({H},) at the cell's {key} format {tuple(sf)}, got "
                      f"{s.shape} at ({s.bits}, {s.scale})")
    steps = op.attrs.get("steps")
    if steps is not None:
        ok = op.op != "fastgrnn" and isinstance(steps, list) and len(steps) >= 1 and all(
            isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r) and 0 <= r[0] <= r[1] <= T
            for r in steps)
        if not ok:
            _fail(op, f"attribute steps must be a list of [start, stop] step ranges within 0..{T}, got "
                      f"{str(steps)[:80]}")
    seq = op.attrs.get("sequence", False)
    if not isinstance(seq, bool):
        _fail(op, f"attribute sequence must be true or false, got {seq!r}")
    state = op.attrs.get("state", "h")
    if state not in ("h", "c") or (state == "c" and (op.op != "lstm" or seq)):
        _fail(op, f"attribute state must be 'h' (or 'c' for an lstm without sequence), got {state!r}")
    want = (T, H) if seq else (H,)
    if tuple(o.shape) != want:
        _fail(op, f"output has shape {o.shape}, expected {want}")
    of = f.c if state == "c" else f.h
    if (o.bits, o.scale, o.signed) != (of.bits, of.scale, True):
        _fail(op, f"output format ({o.bits}, {o.scale}) differs from the cell's {state} format {tuple(of)}")


def _last_axis(op, x):
    if op.attrs.get("axis", -1) not in (-1, len(x.shape) - 1):
        _fail(op, f"only {op.op} over the last axis is supported (transpose first)")
    if not x.shape or x.shape[-1] < 1:
        _fail(op, f"input needs a non-empty last axis, got {x.shape}")


def _check_softmax(op, ins, outs, p):
    """Signed input, reduction over one axis (any: softmax; the last: l2norm), outputs in
    [−1, 1] (1.0 must fit)."""
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    if op.op == "softmax":
        (ax,) = _axes_of(op, len(x.shape), "axis") if "axis" in op.attrs else (len(x.shape) - 1,)
        if not x.shape or x.shape[ax] < 1:
            _fail(op, f"input needs a non-empty axis {ax}, got {x.shape}")
    else:
        _last_axis(op, x)
    _out_shape(op, o, x.shape)
    if o.bits < o.scale + 2:
        _fail(op, f"output format ({o.bits}, {o.scale}) cannot hold 1.0")


def _check_l2norm(op, ins, outs, p):
    _check_softmax(op, ins, outs, p)  # same shape and output rules
    (x,), (o,) = ins, outs
    if 2 * x.bits > 64:
        _fail(op, f"input of {x.bits} bits: its squares need more than 64 bits")
    from ..nn.norm import l2_internal_fmts

    try:
        l2_internal_fmts(x.bits, x.scale, x.shape[-1], o.fmt)
    except Exception as e:  # ParameterError
        _fail(op, str(e))


#: rnnpool parameter roles: "rnn1.<role>" and "rnn2.<role>" for the FastGRNN roles
RNNPOOL_PARAMS = tuple(tuple(f"{c}.{r}" for c in ("rnn1", "rnn2") for r in roles) for roles in CELL_PARAMS["fastgrnn"])


def _check_rnnpool(op, ins, outs, p):
    (x,), (o,) = ins, outs
    _signed_in(op, ins)
    if len(x.shape) != 3:
        _fail(op, f"input must be (C, H, W), got {x.shape}")
    C, Hh, Ww = x.shape
    k = op.attrs.get("patch")
    st = op.attrs.get("stride")
    for v, w in ((k, "patch"), (st, "stride")):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            _fail(op, f"attribute {w} must be a positive integer, got {v!r}")
    if k > Hh or k > Ww:
        _fail(op, f"patch {k} is larger than the input {x.shape[1:]}")
    Ho, Wo = conv_out_hw(Hh, Ww, (k, k), (st, st), (0, 0))
    dims = {}
    for c, D in (("rnn1", C), ("rnn2", None)):
        sub = Op("fastgrnn", f"{op.name}.{c}", op.inputs, op.outputs,
                 {"hidden": op.attrs.get("hidden" + c[-1]), "formats": op.attrs.get("formats" + c[-1])},
                 {})
        sub_p = {r.split(".", 1)[1]: v for r, v in p.items() if r.startswith(c + ".")}
        H = sub.attrs["hidden"]
        if c == "rnn2":
            D = dims["rnn1"][0]
        try:
            f = cell_formats_from(sub.attrs["formats"])
        except ProgramError as e:
            _fail(op, f"{c}: {e}")
        fin = TensorSpec((k, D), f.x.bits, f.x.scale)
        fout = TensorSpec((H,) if isinstance(H, int) and H >= 1 else (1,), f.h.bits, f.h.scale)
        _check_cell(sub, [fin], [fout], sub_p)
        dims[c] = (H, f)
    (_, f1), (H2, f2) = dims["rnn1"], dims["rnn2"]
    if (x.bits, x.scale) != tuple(f1.x):
        _fail(op, f"input format ({x.bits}, {x.scale}) differs from rnn1's x format {tuple(f1.x)}")
    if tuple(f2.x) != tuple(f1.h):
        _fail(op, f"rnn2's x format {tuple(f2.x)} must be rnn1's h format {tuple(f1.h)}")
    if tuple(o.shape) != (4 * H2, Ho, Wo):
        _fail(op, f"output has shape {o.shape}, expected {(4 * H2, Ho, Wo)}")
    if (o.bits, o.scale, o.signed) != (f2.h.bits, f2.h.scale, True):
        _fail(op, f"output format ({o.bits}, {o.scale}) differs from rnn2's h format {tuple(f2.h)}")


# ---- the table ------------------------------------------------------------------------------
for _d in (
    OpDef("linear", (1, 1), params=("W",), optional=("b",), check=_check_linear,
          doc="y = x·Wᵀ + b over the last axis (torch.nn.Linear); W, b server-held"),
    OpDef("conv2d", (1, 1), params=("W",), optional=("b",), attrs=("stride", "padding", "dilation", "groups"),
          check=_check_conv2d, doc="2-D convolution (torch.nn.Conv2d), x (C, H, W), W (OC, C/groups, kh, kw)"),
    OpDef("add", (1, 2), optional=("y",), check=lambda *a: _check_binary(*a, "add"),
          doc="x + y (two tensors, or a server-held y; numpy broadcasting either way)"),
    OpDef("sub", (1, 2), optional=("y",), check=lambda *a: _check_binary(*a, "sub"),
          doc="x − y (two tensors, or a server-held y; numpy broadcasting either way)"),
    OpDef("mul", (1, 2), optional=("y",), check=lambda *a: _check_binary(*a, "mul"),
          doc="x ⊙ y elementwise (two tensors, or a server-held y; numpy broadcasting either way)"),
    OpDef("div", (2, 2), attrs=("recip",), check=lambda *a: _check_binary(*a, "div"),
          doc="x / y elementwise, broadcasting (SiRNN division of x by |y|, sign by a MUX; with "
              "recip [bits, scale]: one shared 1/y per denominator times x)"),
    OpDef("matmul", (2, 2), check=_check_matmul,
          doc="x @ y of two tensors (numpy matmul on per-sample shapes; one Hadamard product + local sums)"),
    OpDef("relu", (1, 1), check=_check_same, doc="max(x, 0)"),
    OpDef("abs", (1, 1), check=_check_same, doc="|x| (MSB, MUX)"),
    OpDef("neg", (1, 1), check=_check_same, doc="−x (local)"),
    OpDef("clip", (1, 1), attrs=("min", "max"), check=_check_clip,
          doc="min(max(x, min), max), public bounds (MSBs, MUXes)"),
    OpDef("leakyrelu", (1, 1), attrs=("alpha",), check=_check_leaky, doc="x ≥ 0 ? x : αx (public α)"),
    OpDef("prelu", (1, 1), params=("slope",), check=_check_prelu,
          doc="x ≥ 0 ? x : slope·x (server-held slope broadcast to x)"),
    OpDef("hardsigmoid", (1, 1), attrs=("alpha", "beta"), check=_check_hardsigmoid,
          doc="clip(αx + β, 0, 1)"),
    OpDef("hardswish", (1, 1), check=_check_free, doc="x·hardsigmoid(x; 1/6, 1/2)"),
    OpDef("exp", (1, 1), check=_check_exp, doc="e^x, any sign, saturating (mathfn.exp_saturating)"),
    OpDef("sqrt", (1, 1), check=_check_free, doc="√x (mathfn.sqrt; x ≤ 0 → 0)"),
    OpDef("rsqrt", (1, 1), check=_check_free, doc="1/√x (mathfn.rsqrt; saturating)"),
    OpDef("reciprocal", (1, 1), check=_check_free, doc="1/x, either sign (mathfn.reciprocal of |x|, MUX)"),
    OpDef("softplus", (1, 1), check=_check_free,
          doc="log(1 + e^x), approximate: max(x, 0) + table of log1p(e^{−|x|}) (sirnn.nn.pointwise)"),
    OpDef("normalize", (1, 1), attrs=("axes", "eps", "rstd"), check=_check_normalize,
          doc="(x − mean)/√(var + eps) over axes (sirnn.nn.norm.normalize; rstd: format of 1/√(var + eps))"),
    OpDef("reduce", (1, 1), attrs=("kind", "axes", "keepdims"), check=_check_reduce,
          doc="sum / mean / max / l2 over axes (sirnn.nn.norm.reduce_last)"),
    OpDef("gather", (1, 1), attrs=("index", "fill"), check=_check_gather,
          doc="out = x.flat[index] per sample, −1 → fill (local: pad, expand, tile, gather)"),
    OpDef("maxpool2d", (1, 1), attrs=("kernel", "stride", "padding", "dilation"), check=_check_maxpool,
          doc="max-pooling over the last two axes (stride defaults to kernel; padding never wins)"),
    OpDef("avgpool2d", (1, 1), attrs=("kernel", "stride", "padding", "count_include_pad"), check=_check_avgpool,
          doc="average pooling, x (C, H, W) (window sums × public 1/count, one rounding)"),
    OpDef("argmax", (1, 1), attrs=("axis",), check=_check_argmax,
          doc="index of the maximum over the last axis (first on ties), unsigned"),
    OpDef("sigmoid", (1, 1), check=_check_math, doc="σ(x) (SiRNN's recipe)"),
    OpDef("tanh", (1, 1), check=_check_math, doc="tanh(x) (SiRNN's recipe)"),
    OpDef("requant", (1, 1), check=_check_requant, doc="change of format (exact rounding / extension)"),
    OpDef("reshape", (1, 1), attrs=("shape",), check=_check_reshape, doc="per-sample reshape"),
    OpDef("flatten", (1, 1), check=_check_flatten, doc="per-sample flatten to (size,)"),
    OpDef("transpose", (1, 1), attrs=("perm",), check=_check_transpose, doc="per-sample axis permutation"),
    OpDef("slice", (1, 1), attrs=("axis", "start", "stop", "step"), check=_check_slice,
          doc="x[start:stop:step] along a per-sample axis"),
    OpDef("concat", (1, 64), attrs=("axis",), check=_check_concat, doc="concatenation (one format)"),
    OpDef("fastgrnn", (1, 1), params=CELL_PARAMS["fastgrnn"][0], optional=CELL_PARAMS["fastgrnn"][1],
          attrs=("hidden", "formats", "sequence"), check=_check_cell,
          doc="FastGRNN over a sequence (T, D) → final h (H,) or all h (T, H)"),
    OpDef("lstm", (1, 3), params=CELL_PARAMS["lstm"][0], optional=CELL_PARAMS["lstm"][1],
          attrs=("hidden", "formats", "sequence", "init", "steps") + CELL_ATTRS["lstm"], check=_check_cell,
          doc="LSTM (torch.nn.LSTMCell gates) over a sequence (optional constant h0, c0 or initial states "
              "as inputs (init); steps: per-sample step ranges (sequence_lens); state c: final c)"),
    OpDef("gru", (1, 2), params=CELL_PARAMS["gru"][0], optional=CELL_PARAMS["gru"][1],
          attrs=("hidden", "formats", "sequence", "init", "steps") + CELL_ATTRS["gru"], check=_check_cell,
          doc="GRU (torch.nn.GRUCell gates; linear_before_reset false: ONNX's default) over a sequence"),
    OpDef("rnn", (1, 2), params=CELL_PARAMS["rnn"][0], optional=CELL_PARAMS["rnn"][1],
          attrs=("hidden", "formats", "sequence", "init", "steps") + CELL_ATTRS["rnn"], check=_check_cell,
          doc="Elman RNN (tanh or relu; torch.nn.RNNCell) over a sequence"),
    OpDef("softmax", (1, 1), attrs=("axis",), check=_check_softmax,
          doc="softmax over an axis (default the last; max, nexp, local sum, div; sirnn.nn.norm)"),
    OpDef("l2norm", (1, 1), attrs=("axis", "eps"), check=_check_l2norm,
          doc="x / ‖x‖₂ over the last axis (squares, local sum, rsqrt, mul; sirnn.nn.norm)"),
    OpDef("rnnpool", (1, 1), params=RNNPOOL_PARAMS[0], optional=RNNPOOL_PARAMS[1],
          attrs=("patch", "stride", "hidden1", "hidden2", "formats1", "formats2"), check=_check_rnnpool,
          doc="RNNPool (FastGRNN rnn1 over rows/columns of each patch, rnn2 both ways over the "
              "summaries) over (C, H, W) → (4·hidden2, Ho, Wo)"),
):
    register(_d)
