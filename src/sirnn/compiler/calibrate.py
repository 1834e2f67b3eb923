"""Calibration: a float model + calibration inputs → per-tensor scales and bitwidths → a
fixed-point :class:`~sirnn.compiler.program.Program`.

Rules (SeeDot-style; :class:`CompileConfig` holds the knobs):

* **activations** — run the float model on the calibration inputs and record max |v| of every
  tensor; its format is ``act_bits`` bits (16) at the *largest* scale that keeps that maximum
  with ``headroom_bits`` (1) spare integer bits: :func:`choose_fmt`. One headroom bit also keeps
  pairwise differences in range, which max-pooling and argmax need.
* **weights** — ``w_bits`` (16) each, at the largest scale that holds max |W|, lowered if
  needed so the layer's accumulator (out.bits + W.scale + x.scale − out.scale bits) fits the
  x.bits × w_bits product; biases at the accumulator's scale (exact adds by the server).
* **mixed bitwidths where the math wants them** — the inputs of σ/tanh inside the recurrent
  cells ("pre") get ``pre_bits`` (16) bits at a scale of at most ``pre_max_scale`` (12, SCI's
  configuration: larger scales grow the tables); σ/tanh outputs use ``gate`` ((16, 12)); the
  LSTM cell state gets ``state_bits``; accumulators and products are wider rings chosen by the
  layers (≈ 28–33 bits), each rounded once back to its 16-bit format.
* ``softmax`` / ``l2norm`` outputs: ``act_bits`` bits at the largest scale that holds 1.0 (they
  are bounded by 1 by construction: no headroom bit) (internal formats: :mod:`sirnn.nn.norm`); ``rnnpool``: two FastGRNN cells
  calibrated like the ``fastgrnn`` op (rnn1's x is the input's format, rnn2's x is rnn1's h).
* the ops whose output format is free (arithmetic of two tensors, math functions, normalize,
  reductions, average pooling, ...) get their output's calibrated format (the math functions
  — exp, sqrt, rsqrt, reciprocal, ... — at a scale of at most bits − 2: their protocols keep the sign
  and an integer bit, also when the calibrated range is below ½); ``normalize`` also
  records the range of 1/√(var + eps) (FloatModel.run's ``cell_stats``) for the format of that
  internal tensor; ``pad`` is lowered to ``gather`` (its constant at the input's scale);
* format-preserving ops (relu, abs, neg, clip, max-pooling, reduce max, reshape/flatten/
  transpose/slice, gather) keep their input's format; ``argmax`` outputs an unsigned index; where an op needs its inputs in one format
  (concat, GRU's x and h) a ``requant`` op is inserted.

There is no saturation in fixed point (a value outside its format wraps around): headroom is the
margin against inputs whose intermediates exceed what calibration saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import __version__
from ..errors import ProgramError
from ..nn.fixed import Fmt, Param, acc_bits, fit_scale, quantize
from ..nn.rnn import CellFormats, FastGRNNCell, GRUCell, LSTMCell, RNNCell
from .floatir import FloatModel, FloatOp, by_name, load_float_model
from .ops import Op, TensorSpec, _jsonable, cell_formats_to, index_bits_for
from .program import Program, load_arrays

__all__ = ["CompileConfig", "choose_fmt", "collect_ranges", "compile_model", "compare", "LOWER"]


@dataclass(frozen=True)
class CompileConfig:
    act_bits: int = 16          #: activations
    w_bits: int = 16            #: weights (and other server constants)
    headroom_bits: int = 1      #: spare integer bits over the calibrated range
    pre_bits: int = 16          #: inputs of σ/tanh in the cells
    pre_max_scale: int = 12     #: largest scale of those inputs
    gate: Fmt = Fmt(16, 12)     #: σ/tanh outputs
    state_bits: int = 16        #: LSTM cell state
    fuse_tanh: bool = True      #: σ and tanh gates of a cell step in one call
    max_scale: int | None = None  #: cap on every activation scale (None: bits − 1)
    batch: int = 256            #: calibration samples per float pass


def choose_fmt(max_abs: float, bits: int, headroom_bits: int = 1, max_scale: int | None = None,
               min_scale: int = 0, what: str | None = None, flag: str = "--bits (CompileConfig.act_bits)") -> Fmt:
    """``bits`` bits at the largest scale whose range keeps ``max_abs`` with ``headroom_bits``
    spare integer bits (at most ``max_scale``, at least ``min_scale``). ``what`` names the tensor
    (e.g. "tensor 'h'") in the error raised when the range does not fit (with the bits it would
    need and the ``flag`` that raises them)."""
    who = f"{what}: " if what else ""
    if not np.isfinite(max_abs):
        raise ProgramError(f"{who}the calibrated range is not finite (the float model yields inf or "
                           "NaN on the calibration data)")
    try:
        s = fit_scale(max_abs, bits, headroom_bits)
    except ValueError:
        s = -1
    if max_scale is not None:
        s = min(s, max_scale)
    if s < min_scale:
        need = bits + 1
        while need < 64 and fit_scale_or_none(max_abs, need, headroom_bits, min_scale) is None:
            need += 1
        raise ProgramError(f"{who}calibrated |x| up to {max_abs:g} needs {need} bits at scale ≥ {min_scale} "
                           f"with {headroom_bits} headroom bit(s), but the format has {bits}: raise {flag}")
    return Fmt(bits, s)


def fit_scale_or_none(max_abs: float, bits: int, headroom_bits: int, min_scale: int = 0) -> int | None:
    try:
        s = fit_scale(max_abs, bits, headroom_bits)
    except ValueError:
        return None
    return s if s >= min_scale else None


def collect_ranges(fm: FloatModel, x, batch: int = 256) -> tuple[dict, dict]:
    """max |v| of every tensor and of every recurrent op's internals over the inputs x (an array,
    or a dict input → batch-leading array)."""
    ranges: dict[str, float] = {}
    cells: dict[str, dict] = {}
    xs = x if isinstance(x, dict) else {fm.input: x}
    n = len(next(iter(xs.values())))
    fixed = _fixed_batch(fm)
    step = fixed or batch
    for i in range(0, n, step):
        rec: dict = {}
        fm.run({t: v[i:i + step] for t, v in xs.items()}, record=rec, cell_stats=cells)
        for k, v in rec.items():
            m = float(np.abs(v).max()) if np.size(v) else 0.0
            ranges[k] = max(ranges.get(k, 0.0), m)
    return ranges, cells


# ---------------------------------------------------------------------------------------------
class _Lowering:
    """Builds the program op by op (tensors, ops, params) from the float ops and the ranges."""

    def __init__(self, fm: FloatModel, ranges: dict, cells: dict, cfg: CompileConfig):
        self.fm, self.ranges, self.cells, self.cfg = fm, ranges, cells, cfg
        self.tensors: dict[str, TensorSpec] = {}
        self.ops: list[Op] = []
        self.params: dict[str, Param] = {}
        self.names: set[str] = set()
        self.shapes: dict[str, tuple] = {}

    def act_fmt(self, t: str, bits: int | None = None, max_scale: int | None = None) -> Fmt:
        cfg = self.cfg
        ms = cfg.max_scale if max_scale is None else (max_scale if cfg.max_scale is None else min(max_scale, cfg.max_scale))
        return choose_fmt(self.ranges.get(t, 0.0), bits or cfg.act_bits, cfg.headroom_bits, ms, what=f"tensor {t!r}")

    def declare(self, t: str, shape, fmt: Fmt, signed: bool = True) -> None:
        self.tensors[t] = TensorSpec(tuple(shape), fmt[0], fmt[1], signed)

    def param(self, op_name: str, role: str, p: Param) -> str:
        name = f"{op_name}.{role}"
        self.params[name] = p
        return name

    def emit(self, op: str, name: str, inputs, outputs, attrs=None, params=None) -> Op:
        if name in self.names:
            n = 2
            while f"{name}_{n}" in self.names:
                n += 1
            name = f"{name}_{n}"
        self.names.add(name)
        o = Op(op, name, list(inputs), list(outputs), _jsonable(dict(attrs or {})), dict(params or {}))
        self.ops.append(o)
        return o

    def spec(self, t: str) -> TensorSpec:
        return self.tensors[t]

    def as_fmt(self, t: str, fmt: Fmt, for_op: str) -> str:
        """Tensor t in format ``fmt``: t itself, or a new tensor from an inserted requant op."""
        s = self.spec(t)
        if (s.bits, s.scale) == tuple(fmt):
            return t
        new = f"{t}@{fmt[0]}.{fmt[1]}"
        if new not in self.tensors:
            self.declare(new, s.shape, fmt)
            self.emit("requant", f"{for_op}.requant_{t}", [t], [new])
        return new

    # -- weights --------------------------------------------------------------------------------
    def weight(self, W: np.ndarray, x: TensorSpec, out: Fmt) -> Param:
        cfg = self.cfg
        s = fit_scale(float(np.abs(W).max()) if W.size else 0.0, cfg.w_bits)
        cap = x.bits + cfg.w_bits - out.bits + out.scale - x.scale
        s = min(s, cap, 63 - x.scale)
        if s < 0:
            raise ProgramError("weights cannot be quantised: the accumulator would not fit a "
                               f"{x.bits} × {cfg.w_bits}-bit product; raise w_bits or lower the output scale")
        return Param(W.shape, cfg.w_bits, s, quantize(W, cfg.w_bits, s))

    def bias(self, b: np.ndarray, P: int, out: Fmt) -> Param:
        L = acc_bits(out, P)
        s = min(P, fit_scale(float(np.abs(b).max()) if b.size else 0.0, L))
        return Param(b.shape, L, s, quantize(b, L, s))

    def const(self, y: np.ndarray, bits: int, max_scale: int | None = None, what: str = "a parameter") -> Param:
        m = float(np.abs(y).max()) if y.size else 0.0
        s = choose_fmt(m, bits, 0, what=what, flag="--w-bits (CompileConfig.w_bits)").scale
        if max_scale is not None:
            s = max(0, min(s, max_scale))
        return Param(y.shape, bits, s, quantize(y, bits, s))


def _affine(L: _Lowering, fop: FloatOp, op: str, W: np.ndarray, shape_fn):
    x = fop.inputs[0]
    xs = L.spec(x)
    out = L.act_fmt(fop.outputs[0])
    Wq = L.weight(W, xs, out)
    params = {"W": L.param(fop.name, "W", Wq)}
    if "b" in fop.params:
        params["b"] = L.param(fop.name, "b", L.bias(fop.params["b"], Wq.scale + xs.scale, out))
    L.declare(fop.outputs[0], shape_fn(xs.shape, W), out)
    attrs = _window_attrs(fop, ("stride", "padding", "dilation", "groups")) if op == "conv2d" else {}
    L.emit(op, fop.name, [x], fop.outputs, attrs, params)


def _lower_linear(L, fop):
    _affine(L, fop, "linear", fop.params["W"], lambda s, W: s[:-1] + (W.shape[0],))


def _lower_matmul(L, fop):
    _affine(L, fop, "linear", fop.params["W"].T, lambda s, W: s[:-1] + (W.shape[0],))


def _lower_conv(L, fop):
    _affine(L, fop, "conv2d", fop.params["W"], lambda s, W: L.shapes[fop.outputs[0]])


def _lower_binary(L, fop):
    """add / sub / mul / div (two tensors or a tensor and a parameter y, broadcasting); the output
    format from its calibrated range. ``sub`` of a parameter is ``add`` of −y."""
    x = fop.inputs[0]
    xs = L.spec(x)
    out = L.act_fmt(fop.outputs[0])
    op, params, ins = fop.op, {}, list(fop.inputs)
    if len(fop.inputs) == 1:
        y = fop.params["y"]
        if op == "sub":
            op, y = "add", -y
        if op == "mul":
            cap = xs.bits + L.cfg.w_bits - out.bits + out.scale - xs.scale
            p = L.const(y, L.cfg.w_bits, cap, f"parameter {fop.name}.y")
        elif op == "div":
            raise ProgramError(f"{fop.name}: div by a parameter: multiply by its reciprocal instead")
        else:
            p = L.const(y, L.cfg.w_bits, max(out.scale, xs.scale), f"parameter {fop.name}.y")
        params["y"] = L.param(fop.name, "y", p)
    elif op == "mul":
        ins = _fit_product(L, fop, ins, out)
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], out)
    attrs = _div_plan(L, fop, out) if op == "div" else {}
    L.emit(op, fop.name, ins, fop.outputs, attrs, params)


RECIP_MAX_BITS = 32  #: widest shared reciprocal of a broadcast denominator


def _div_plan(L, fop, out: Fmt) -> dict:
    """A division whose denominator is broadcast (each y used ≥ 4 times): {"recip": [bits,
    scale]}, the format of a shared 1/y computed once per denominator and multiplied in (SiRNN
    division is num × reciprocal; here the reciprocal is shared); otherwise {} (mathfn.div per
    output). The format keeps |x|·ULP(1/y) ≤ ¼ ULP of the output over the calibrated |x|, and
    the calibrated max |1/y| with the headroom bit; wider than RECIP_MAX_BITS: {}."""
    xs, ys = L.spec(fop.inputs[0]), L.spec(fop.inputs[1])
    n_out = int(np.prod(L.shapes[fop.outputs[0]], dtype=np.int64))
    st = L.cells.get(fop.name, {})
    rmax = st.get("rden_max")
    if n_out < 4 * ys.size or rmax is None or not np.isfinite(rmax):
        return {}
    xmax = L.ranges.get(fop.inputs[0], 0.0)
    sr = out.scale + 2 + (max(0, int(np.ceil(np.log2(xmax)))) if xmax > 0 else 0)
    rb = sr + max(0, int(np.ceil(np.log2(rmax * (1 + 2.0**-8))))) + 1 + L.cfg.headroom_bits
    if rb > RECIP_MAX_BITS or out.bits + xs.scale + sr - out.scale > min(64, xs.bits + rb):
        return {}
    return {"recip": [int(rb), int(sr)]}


def _fit_product(L, fop, ins, out: Fmt) -> list[str]:
    """Inputs of a product of two tensors, requantised to lower scales where needed so that the
    product ring out.bits + (s_x + s_y − out.scale) fits x.bits + y.bits (at most 64)."""
    x, y = (L.spec(t) for t in ins)
    excess = out.bits + x.scale + y.scale - out.scale - min(64, x.bits + y.bits)
    if excess <= 0:
        return ins
    dx = min(x.scale, (excess + 1) // 2)
    dy = excess - dx
    if dy > y.scale:
        raise ProgramError(f"{fop.name}: the product of {ins[0]!r} and {ins[1]!r} does not fit 64 bits "
                           f"at output format {tuple(out)}")
    return [L.as_fmt(ins[0], Fmt(x.bits, x.scale - dx), fop.name) if dx else ins[0],
            L.as_fmt(ins[1], Fmt(y.bits, y.scale - dy), fop.name) if dy else ins[1]]


def _lower_matmul2(L, fop):
    if len(fop.inputs) == 1:
        return _lower_matmul(L, fop)
    out = L.act_fmt(fop.outputs[0])
    ins = _fit_product(L, fop, list(fop.inputs), out)
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], out)
    L.emit("matmul", fop.name, ins, fop.outputs)


def _lower_free(L, fop, attrs=()):
    """Elementwise with the output format from its calibrated range, at a scale of at most
    bits − 2: the math functions' formats keep the sign and an integer bit (a range below ½, e.g.
    √ of small sums of squares, would otherwise get scale bits − 1)."""
    bits = L.cfg.act_bits
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], L.act_fmt(fop.outputs[0], bits, bits - 2))
    L.emit(fop.op, fop.name, fop.inputs, fop.outputs, {k: fop.attrs[k] for k in attrs if k in fop.attrs})


def _lower_prelu(L, fop):
    xs = L.spec(fop.inputs[0])
    out = L.act_fmt(fop.outputs[0])
    cap = xs.bits + L.cfg.w_bits - out.bits + out.scale - xs.scale
    slope = L.param(fop.name, "slope", L.const(fop.params["slope"], L.cfg.w_bits, cap, f"parameter {fop.name}.slope"))
    L.declare(fop.outputs[0], xs.shape, out)
    L.emit("prelu", fop.name, fop.inputs, fop.outputs, {}, {"slope": slope})


def _lower_normalize(L, fop):
    """normalize: output format from its range; the format of r = 1/√(var + eps) from the
    calibrated range of r: out.scale + 2 significant bits at its smallest, its largest with the
    headroom bit, at most 28 bits (rsqrt's rings), the product ring within x.bits + r.bits."""
    xs = L.spec(fop.inputs[0])
    out = L.act_fmt(fop.outputs[0])
    st = L.cells.get(fop.name, {})
    rmax, rmin = st.get("rstd_max", 1.0), st.get("rstd_min", 1.0)
    if not np.isfinite(rmax) or rmin <= 0:
        raise ProgramError(f"{fop.name}: 1/√(var + eps) is not finite on the calibration data (a constant "
                           "slice with eps = 0): give normalize a positive eps")
    ib = max(0, int(np.ceil(np.log2(rmax * (1 + 2.0**-8))))) + 1 + L.cfg.headroom_bits
    sr = out.scale + 2 + max(0, int(np.ceil(-np.log2(rmin))))
    rb = min(28, sr + ib)
    sr = min(rb - ib, xs.bits + rb - out.bits - xs.scale + out.scale)
    if sr < 0:
        raise ProgramError(f"{fop.name}: 1/√(var + eps) up to {rmax:g} does not fit 28 bits at output "
                           f"{tuple(out)} (raise eps or lower the input scale)")
    attrs = {"axes": fop.attrs.get("axes"), "eps": float(fop.attrs.get("eps", 1e-5)), "rstd": [int(rb), int(sr)]}
    if attrs["axes"] is None:
        attrs["axes"] = list(range(len(xs.shape)))
    L.declare(fop.outputs[0], xs.shape, out)
    L.emit("normalize", fop.name, fop.inputs, fop.outputs, attrs)


def _lower_reduce(L, fop):
    xs = L.spec(fop.inputs[0])
    kind = fop.attrs.get("kind", "sum")
    out = xs.fmt if kind == "max" else L.act_fmt(fop.outputs[0])
    attrs = {"kind": kind, "keepdims": bool(fop.attrs.get("keepdims", True))}
    if fop.attrs.get("axes") is not None:
        attrs["axes"] = fop.attrs["axes"]
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], out)
    L.emit("reduce", fop.name, fop.inputs, fop.outputs, attrs)


def _lower_gather(L, fop, index: np.ndarray, fill: int = 0):
    xs = L.spec(fop.inputs[0])
    L.declare(fop.outputs[0], index.shape, xs.fmt)
    attrs = {"index": np.asarray(index, np.int64).tolist()}
    if fill:
        attrs["fill"] = int(fill)
    L.emit("gather", fop.name, fop.inputs, fop.outputs, attrs)


def _lower_pad(L, fop):
    from ..nn.movement import pad_index

    xs = L.spec(fop.inputs[0])
    value = float(fop.attrs.get("value", 0.0))
    fill = int(np.round(value * 2.0**xs.scale))
    lim = 1 << (xs.bits - 2)
    if not -lim <= fill < lim:
        raise ProgramError(f"{fop.name}: pad value {value:g} is outside the range of {fop.inputs[0]!r}'s "
                           f"format ({xs.bits}, {xs.scale}) with its headroom bit")
    _lower_gather(L, fop, pad_index(xs.shape, fop.attrs["pads"], fop.attrs.get("mode", "constant")), fill)


_WINDOW_DEFAULTS = {"padding": (0, [0, 0], (0, 0), [0, 0, 0, 0], (0, 0, 0, 0)),
                    "dilation": (1, [1, 1], (1, 1)), "groups": (1,), "count_include_pad": (False,)}


def _window_attrs(fop, keys) -> dict:
    """The conv/pool attributes that differ from their defaults (so that programs without them
    stay as before)."""
    return {k: fop.attrs[k] for k in keys if k in fop.attrs and fop.attrs[k] not in _WINDOW_DEFAULTS.get(k, ())}


def _lower_pool(L, fop):
    xs = L.spec(fop.inputs[0])
    keys = ("kernel", "stride", "padding", "dilation") + (("count_include_pad",) if fop.op == "avgpool2d" else ())
    out = xs.fmt if fop.op == "maxpool2d" else L.act_fmt(fop.outputs[0])
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], out)
    L.emit(fop.op, fop.name, fop.inputs, fop.outputs, _window_attrs(fop, keys))


def _lower_same(L, fop, attrs=()):
    xs = L.spec(fop.inputs[0])
    L.emit(fop.op, fop.name, fop.inputs, fop.outputs, {k: fop.attrs[k] for k in attrs if k in fop.attrs})
    # output shape: from the float model's recorded output (per sample)
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], xs.fmt)


def _lower_argmax(L, fop):
    xs = L.spec(fop.inputs[0])
    L.declare(fop.outputs[0], xs.shape[:-1], Fmt(index_bits_for(xs.shape[-1]), 0), signed=False)
    L.emit("argmax", fop.name, fop.inputs, fop.outputs)


def _lower_math(L, fop):
    xs = L.spec(fop.inputs[0])
    x = fop.inputs[0]
    if fop.op == "tanh" and xs.scale < 1:
        x = L.as_fmt(x, Fmt(xs.bits + 1, 1), fop.name)
    L.declare(fop.outputs[0], xs.shape, L.cfg.gate)
    L.emit(fop.op, fop.name, [x], fop.outputs)


def _lower_requant(L, fop):
    xs = L.spec(fop.inputs[0])
    L.declare(fop.outputs[0], xs.shape, L.act_fmt(fop.outputs[0]))
    L.emit("requant", fop.name, fop.inputs, fop.outputs)


def _lower_concat(L, fop):
    out = L.act_fmt(fop.outputs[0])
    ins = [L.as_fmt(t, out, fop.name) for t in fop.inputs]
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], out)
    L.emit("concat", fop.name, ins, fop.outputs, {"axis": fop.attrs.get("axis", 0)})


def _fastgrnn_lowered(cfg: CompileConfig, w: dict, st: dict, x: Fmt, name: str):
    """(CellFormats, params role → Param, H) of a FastGRNN cell with input format x and the
    calibrated internals st."""
    hdr = cfg.headroom_bits

    def fmt(key, bits, max_scale=None):
        return choose_fmt(st.get(key, 0.0), bits, hdr, max_scale if cfg.max_scale is None
                          else min(cfg.max_scale, max_scale or 64))

    pre = fmt("pre", cfg.pre_bits, cfg.pre_max_scale)
    if pre.scale < 2:
        raise ProgramError(f"{name}: σ/tanh inputs up to {st.get('pre', 0):g} need more than "
                           f"{cfg.pre_bits} bits (raise pre_bits)")
    f = CellFormats(x=x, h=fmt("h", cfg.act_bits), pre=pre, gate=cfg.gate,
                    c=fmt("c", cfg.state_bits), lowrank=fmt("lowrank", cfg.act_bits),
                    w_bits=cfg.w_bits, fuse_tanh=cfg.fuse_tanh)
    return (f,) + _fastgrnn_params(w, f)


def _fastgrnn_params(w: dict, f: CellFormats) -> tuple[dict, int]:
    """Quantised FastGRNN parameters (role → Param; W1/W2, U1/U2 when low rank) and H."""
    w = dict(w)
    w["zeta"], w["nu"] = float(np.ravel(w["zeta"])[0]), float(np.ravel(w["nu"])[0])
    cell = FastGRNNCell.from_float(w, f)
    params = {}
    for key, lo in (("W", ("W1", "W2")), ("U", ("U1", "U2"))):
        v = getattr(cell, key)
        if isinstance(v, tuple):
            params[lo[0]], params[lo[1]] = v
        else:
            params[key] = v
    params.update(b_z=cell.b_z, b_h=cell.b_h, zn=cell.zn)
    return params, cell.hidden


def _lower_rnnpool(L, fop):
    from .floatir import _sub

    x = fop.inputs[0]
    xs = L.spec(x)
    sts = L.cells.get(fop.name, {})
    f1, p1, H1 = _fastgrnn_lowered(L.cfg, _sub(fop.params, "rnn1"), sts.get("rnn1", {}), xs.fmt,
                                   f"{fop.name}.rnn1")
    f2, p2, H2 = _fastgrnn_lowered(L.cfg, _sub(fop.params, "rnn2"), sts.get("rnn2", {}), f1.h,
                                   f"{fop.name}.rnn2")
    k = int(fop.attrs["patch"])
    s = int(fop.attrs.get("stride", k))
    params = {f"rnn1.{r}": L.param(fop.name, f"rnn1.{r}", v) for r, v in p1.items()}
    params.update({f"rnn2.{r}": L.param(fop.name, f"rnn2.{r}", v) for r, v in p2.items()})
    L.declare(fop.outputs[0], L.shapes[fop.outputs[0]], f2.h)
    L.emit("rnnpool", fop.name, [x], fop.outputs,
           {"patch": k, "stride": s, "hidden1": int(H1), "hidden2": int(H2),
            "formats1": cell_formats_to(f1), "formats2": cell_formats_to(f2)}, params)


def _lower_softmax(L, fop):
    """Softmax / l2norm: outputs in [0, 1] / [−1, 1] by construction, so the format is the one
    that holds 1.0 with no headroom bit (16 bits: scale 14, range [−2, 2), which still keeps
    pairwise differences)."""
    xs = L.spec(fop.inputs[0])
    out = choose_fmt(1.0, L.cfg.act_bits, 0, L.cfg.max_scale)
    L.declare(fop.outputs[0], xs.shape, out)
    attrs = {"eps": float(fop.attrs["eps"])} if fop.op == "l2norm" and "eps" in fop.attrs else {}
    if fop.op == "softmax" and fop.attrs.get("axis", -1) not in (-1, len(xs.shape) - 1):
        attrs["axis"] = int(fop.attrs["axis"])
    L.emit(fop.op, fop.name, fop.inputs, fop.outputs, attrs)


def _lower_cell(L, fop):
    cfg = L.cfg
    st = L.cells.get(fop.name, {})
    x = fop.inputs[0]
    xs = L.spec(x)
    hdr = cfg.headroom_bits

    def fmt(key, bits, max_scale=None):
        return choose_fmt(st.get(key, 0.0), bits, hdr, max_scale if cfg.max_scale is None
                          else min(cfg.max_scale, max_scale or 64))

    h = fmt("h", cfg.act_bits)
    if fop.op == "gru":  # one block matrix over [x; h] (and a given initial h): one format
        h = choose_fmt(max(st.get("h", 0.0), L.ranges.get(x, 0.0)), cfg.act_bits, hdr, cfg.max_scale)
        x = L.as_fmt(x, h, fop.name)
        xs = L.spec(x)
    pre = fmt("pre", cfg.pre_bits, cfg.pre_max_scale)
    if pre.scale < 2:
        raise ProgramError(f"{fop.name}: σ/tanh inputs up to {st.get('pre', 0):g} need more than "
                           f"{cfg.pre_bits} bits (raise pre_bits)")
    f = CellFormats(x=xs.fmt, h=h, pre=pre, gate=cfg.gate,
                    c=fmt("c", cfg.state_bits), lowrank=fmt("lowrank", cfg.act_bits),
                    w_bits=cfg.w_bits, fuse_tanh=cfg.fuse_tanh)
    w = dict(fop.params)
    params = {}
    if fop.op == "fastgrnn":
        params, H = _fastgrnn_params(w, f)
    else:
        cell = _float_cell(fop, w, f)
        params.update({k: v for k, v in cell._fields().items() if v is not None})
        H = cell.hidden
    seq = bool(fop.attrs.get("sequence", False))
    T = xs.shape[0]
    attrs = {"hidden": int(H), "formats": cell_formats_to(f), "sequence": seq}
    init = list(fop.attrs.get("init", []))
    states = [L.as_fmt(t, f.c if k == "c" else f.h, fop.name) for k, t in zip(init, fop.inputs[1:])]
    if init:
        attrs["init"] = init
    if fop.attrs.get("steps") is not None:
        attrs["steps"] = [[int(a), int(b)] for a, b in fop.attrs["steps"]]
    # variant attributes only when they differ from the default (programs stay as before)
    for k, default in (("activation", "tanh"), ("linear_before_reset", True), ("state", "h")):
        if k in fop.attrs and fop.attrs[k] != default:
            attrs[k] = fop.attrs[k]
    L.declare(fop.outputs[0], (T, H) if seq else (H,), f.c if attrs.get("state") == "c" else f.h)
    L.emit(fop.op, fop.name, [x] + states, fop.outputs, attrs,
           {role: L.param(fop.name, role, p) for role, p in params.items()})


def _float_cell(fop, w: dict, f: CellFormats):
    """The nn cell of an lstm / gru / rnn float op (weights quantised in the formats f)."""
    if fop.op == "lstm":
        return LSTMCell.from_float(w, f)
    if fop.op == "gru":
        return GRUCell.from_float(w, f, bool(fop.attrs.get("linear_before_reset", True)))
    return RNNCell.from_float(w, f, fop.attrs.get("activation", "tanh"))


def _unsupported(L, fop):
    raise ProgramError(f"{fop.name}: {fop.op} is not supported in fixed point yet (it runs in the "
                       "float reference only)")


#: float op → lowering rule
LOWER = {
    "linear": _lower_linear, "matmul": _lower_matmul2, "conv2d": _lower_conv,
    "add": _lower_binary, "sub": _lower_binary, "mul": _lower_binary, "div": _lower_binary,
    "relu": _lower_same, "abs": _lower_same, "neg": _lower_same,
    "clip": lambda L, f: _lower_same(L, f, ("min", "max")),
    "maxpool2d": _lower_pool, "avgpool2d": _lower_pool,
    "reshape": lambda L, f: _lower_same(L, f, ("shape",)), "flatten": _lower_same,
    "transpose": lambda L, f: _lower_same(L, f, ("perm",)),
    "slice": lambda L, f: _lower_same(L, f, ("axis", "start", "stop", "step")),
    "pad": _lower_pad, "gather": lambda L, f: _lower_gather(L, f, f.params["index"].astype(np.int64)),
    "argmax": _lower_argmax, "sigmoid": _lower_math, "tanh": _lower_math, "requant": _lower_requant,
    "exp": _lower_free, "sqrt": _lower_free, "rsqrt": _lower_free, "reciprocal": _lower_free,
    "softplus": _lower_free, "hardswish": _lower_free,
    "leakyrelu": lambda L, f: _lower_free(L, f, ("alpha",)),
    "hardsigmoid": lambda L, f: _lower_free(L, f, ("alpha", "beta")),
    "prelu": _lower_prelu, "normalize": _lower_normalize, "reduce": _lower_reduce,
    "concat": _lower_concat, "fastgrnn": _lower_cell, "lstm": _lower_cell, "gru": _lower_cell, "rnn": _lower_cell,
    "softmax": _lower_softmax, "l2norm": _lower_softmax, "rnnpool": _lower_rnnpool,
}


def _as_float_model(model) -> FloatModel:
    if isinstance(model, FloatModel):
        return model
    return load_float_model(model)


def _fixed_batch(fm: FloatModel) -> int | None:
    """The batch size a recurrent op's per-sample step ranges fix (None: any)."""
    for op in fm.ops:
        steps = op.attrs.get("steps")
        if steps is not None and len(steps) > 1:
            return len(steps)
    return None


def load_calib(path) -> np.ndarray | dict:
    """Calibration (or input) data from a file: a .npy array, or an .npz with one array per input
    name (never unpickled)."""
    return load_arrays(path, "calibration data")


def _as_calib(calib, fm: FloatModel):
    """Calibration inputs → a batch-leading float array (one input) or dict input → array (several
    inputs; each array in the input's own layout, its batch on the input's batch axis)."""
    if isinstance(calib, (str, bytes)) or hasattr(calib, "__fspath__"):
        calib = load_calib(calib)
    calib = by_name(calib, fm.inputs, ProgramError, what="calibration data")
    out, n = {}, None
    for t in fm.inputs:
        x = np.asarray(calib[t], np.float64)
        shape, b = fm.input_shapes[t], fm.batch_axes.get(t, 0)
        if x.shape == shape:
            x = x[None]
        elif x.ndim == len(shape) + 1:
            x = np.moveaxis(x, b, 0)
        who = "calibration data" if len(fm.inputs) == 1 else f"calibration data for {t!r}"
        if x.shape[1:] != shape or len(x) == 0 or (n is not None and len(x) != n):
            want = f"(N,) + {shape}" if b == 0 else str(shape[:b] + ("N",) + shape[b:])
            raise ProgramError(f"{who} of shape {np.shape(calib[t])}: expected {want}"
                               + ("" if n is None else f" with N = {n}"))
        if not np.isfinite(x).all():
            raise ProgramError(f"{who} contains NaN or infinity")
        out[t], n = x, len(x)
    fixed = _fixed_batch(fm)
    if fixed is not None and n % fixed:
        raise ProgramError(f"the model runs batches of exactly {fixed} samples (per-sample sequence lengths): "
                           f"give calibration data of a multiple of {fixed} samples, not {n}")
    return out[fm.input] if len(fm.inputs) == 1 else out


def _rows(x, i: int, j: int):
    return {t: v[i:j] for t, v in x.items()} if isinstance(x, dict) else x[i:j]


def _client_layout(fm: FloatModel, x):
    """Batch-leading inputs → the client's layout (the batch on each input's batch axis)."""
    if not isinstance(x, dict):
        return x
    return {t: np.moveaxis(v, 0, fm.batch_axes.get(t, 0)) for t, v in x.items()}


def compile_model(model, calib, config: CompileConfig | None = None, **overrides) -> Program:
    """Float model (a :class:`FloatModel` or a file path) + calibration inputs (array or .npy
    path, (N,) + input shape; several inputs: a dict name → array or an .npz path, each array
    with its batch on the input's batch axis) → a validated fixed-point :class:`Program` (module
    doc)."""
    fm = _as_float_model(model)
    x = _as_calib(calib, fm)
    cfg = replace(config or CompileConfig(), **overrides)
    if "gate" in overrides:
        cfg = replace(cfg, gate=Fmt(*cfg.gate))
    ranges, cells = collect_ranges(fm, x, cfg.batch)
    rec: dict = {}
    first = _rows(x, 0, _fixed_batch(fm) or 1)
    fm.run(first, record=rec)
    L = _Lowering(fm, ranges, cells, cfg)
    L.shapes = {k: tuple(v.shape[1:]) for k, v in rec.items()}
    for t in fm.inputs:
        L.declare(t, fm.input_shapes[t], L.act_fmt(t))
    for fop in fm.ops:
        rule = LOWER.get(fop.op)
        if rule is None:
            _unsupported(L, fop)
        rule(L, fop)
    n = len(x) if not isinstance(x, dict) else len(next(iter(x.values())))
    meta = dict(fm.meta)
    meta.update(compiled_by=f"sirnn {__version__}", calibration_samples=int(n),
                config={"act_bits": cfg.act_bits, "w_bits": cfg.w_bits, "headroom_bits": cfg.headroom_bits,
                        "pre": [cfg.pre_bits, cfg.pre_max_scale], "gate": list(cfg.gate),
                        "fuse_tanh": cfg.fuse_tanh})
    prog = Program(input=fm.inputs, output=fm.outputs, tensors=L.tensors, ops=L.ops, params=L.params,
                   meta=meta, input_max_abs={t: ranges.get(t, 0.0) for t in fm.inputs}, batch_axes=fm.batch_axes)
    _dry_run(prog, _client_layout(fm, first))
    return prog


def _dry_run(prog: Program, x) -> None:
    """Run the cleartext interpreter on one calibration sample, so that an op whose formats
    exceed what its protocols support (e.g. a math function's internal rings beyond 64 bits at
    wide activations) is a ProgramError naming the op at compile time, not at inference."""
    from ..errors import ParameterError
    from .runtime import evaluate_clear

    at: list = []
    try:
        evaluate_clear(prog, x, progress=lambda ev: at.append(ev) if not ev.step else None)
    except ParameterError as e:
        where = f"op {at[-1].name!r} ({at[-1].op})" if at else "the program"
        raise ProgramError(f"{where} cannot run at its compiled formats: {e} (lower --bits / "
                           "CompileConfig.act_bits)") from None


def compare(model, program: Program, x) -> dict:
    """Float reference vs the cleartext fixed-point interpreter on inputs x (a batch; a dict name →
    array for several inputs).

    Index outputs: ``agreement`` (fraction of equal predictions). Real outputs: ``max_abs_err``,
    ``mean_abs_err``, ``max_abs`` (of the float output), and ``argmax_agreement`` over the last
    axis (several outputs: these per output under ``outputs``, and the first's at the top).
    ``tensors``: per tensor of the program that the float model also has, the max abs error of
    the fixed-point value (in units of its format's ULP, 2^−scale, as ``ulp``)."""
    from ..protocols.ring import to_signed
    from ..protocols.backend import ClearBackend, clear
    from .runtime import execute

    fm = _as_float_model(model)
    xb = _as_calib(x, fm)
    rec: dict = {}
    wants = fm.run(xb, record=rec)
    wants = wants if isinstance(wants, dict) else {fm.output: wants}
    feeds = xb if isinstance(xb, dict) else {fm.input: xb}
    shares = {}
    for t, v in feeds.items():
        spec = program.tensors[t]
        shares[t] = clear(np.round(v * 2.0**spec.scale).astype(np.int64), spec.bits, spec.scale)
    trace: dict = {}
    y = execute(program, ClearBackend(), shares if len(shares) > 1 else shares[program.input], trace=trace)
    ys = y if isinstance(y, dict) else {program.output: y}
    n = len(next(iter(feeds.values())))
    per_out = {}
    for t, want in wants.items():
        o, r = program.tensors[t], {}
        if not o.signed:
            r["agreement"] = float((ys[t].data.astype(np.int64) == want).mean())
        else:
            got = to_signed(ys[t].data, o.bits) / 2.0**o.scale
            err = np.abs(got - want)
            r.update(max_abs_err=float(err.max()), mean_abs_err=float(err.mean()),
                     max_abs=float(np.abs(want).max()))
            if got.ndim >= 2:
                r["argmax_agreement"] = float((got.argmax(-1) == want.argmax(-1)).mean())
        per_out[t] = r
    out: dict = {"samples": int(n)}
    out.update(per_out[fm.output])
    if len(per_out) > 1:
        out["outputs"] = per_out
    per = {}
    for name, share in trace.items():
        t = program.tensors[name]
        if name in rec and t.signed and rec[name].shape == share.shape:
            e = np.abs(to_signed(share.data, t.bits) / 2.0**t.scale - rec[name])
            per[name] = {"max_abs_err": float(e.max()), "ulp": float(e.max() * 2.0**t.scale),
                         "max_abs": float(np.abs(rec[name]).max()), "format": [t.bits, t.scale]}
    out["tensors"] = per
    return out
