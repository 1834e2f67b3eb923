"""A fixed-point program: ordered ops over named tensors, server-held integer parameters, an input
and an output — what ``sirnn compile`` writes and what both the cleartext interpreter and the
two-party executor run (:mod:`sirnn.compiler.runtime`).

File format (``.sirnn``): one zip archive holding

* ``program.json`` — ``{"format": "sirnn-program", "version": 1, "input", "input_max_abs", "output",
  "tensors": {name: {shape, bits, scale, signed}}, "ops": [{op, name, inputs, outputs, attrs,
  params: {role: name}}], "params": {name: {shape, bits, scale}}, "meta": {...},
  "has_values": true}``; version 2 (several inputs or outputs) has ``"inputs": [{name, max_abs,
  batch_axis}]`` and ``"outputs": [{name, batch_axis}]`` in place of input, input_max_abs and
  output (``batch_axis``: where the batch axis sits in the arrays the client passes and gets, e.g.
  1 for an ONNX LSTM's initial state (num_directions, batch, H); the program itself is
  batch-leading). A program with one input and one output, both batch-leading, is written as
  version 1 (so its digest is what it was before version 2); both versions are read;
* ``params.npz`` — the parameter values, one int64 array per parameter name (absent in a
  public-only file).

Loading needs numpy and the standard library only (no torch, no onnx) and validates everything:
the format version, every op against :data:`sirnn.compiler.ops.OPS` (unknown or reserved ops,
missing or extra inputs/parameters, shapes and formats), that each tensor is defined once before
use, and that every parameter value has its declared shape and fits its ring.

What the client may see is :meth:`Program.public`: the same structure with no parameter values
(shapes, formats, op list — the model's architecture is public in this setting, its weights are
not). :meth:`Program.digest` is the SHA-256 of that public description (canonical JSON); the two
parties compare it in the session handshake.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
import zlib

import numpy as np

from ..errors import ProgramError
from ..nn.fixed import Param
from ..transport.handshake import canonical_json
from ..transport.peerdata import loads_json, peer_text
from .ops import OPS, Op, TensorSpec

__all__ = ["Program", "FORMAT", "FORMAT_VERSION", "load_program", "load_array", "load_arrays"]

FORMAT = "sirnn-program"
FORMAT_VERSION = 2
_JSON_NAME = "program.json"
_PARAMS_NAME = "params.npz"


class Program:
    """A validated fixed-point program (see the module doc).

    ``params`` maps a name to a :class:`~sirnn.nn.fixed.Param` whose values are the integers
    (server side, cleartext evaluation) or None (the client's public copy).
    """

    def __init__(self, *, input=None, output=None, tensors: dict[str, TensorSpec], ops: list[Op],
                 params: dict[str, Param], meta: dict | None = None,
                 input_max_abs=None, validate: bool = True, batch_axes: dict | None = None):
        """``input`` / ``output``: a tensor name, or a list of names (several inputs / outputs);
        ``input_max_abs``: a number (one input) or a dict input → number (or None);
        ``batch_axes``: tensor → the batch axis of an input or output in the client's arrays
        (absent: 0)."""
        self.inputs = [str(input)] if isinstance(input, str) else [str(t) for t in input]
        self.outputs = [str(output)] if isinstance(output, str) else [str(t) for t in output]
        if not self.inputs or not self.outputs:
            raise ProgramError("a program needs at least one input and one output")
        self.tensors = dict(tensors)
        self.ops = list(ops)
        self.params = dict(params)
        self.meta = dict(meta or {})
        ima = input_max_abs if isinstance(input_max_abs, dict) else {self.inputs[0]: input_max_abs}
        self.inputs_max_abs = {t: None if ima.get(t) is None else float(ima[t]) for t in self.inputs}
        self.batch_axes = {str(k): int(v) for k, v in (batch_axes or {}).items() if v}
        if validate:
            self.validate()

    # -- views ----------------------------------------------------------------------------------
    @property
    def input(self) -> str:
        return self.inputs[0]

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def input_max_abs(self) -> float | None:
        return self.inputs_max_abs[self.inputs[0]]

    @property
    def single(self) -> bool:
        """One input and one output, both batch-leading (a version-1 program)."""
        return len(self.inputs) == 1 and len(self.outputs) == 1 and not self.batch_axes

    def batch_axis(self, t: str) -> int:
        """The batch axis of input or output ``t`` in the client's arrays."""
        return self.batch_axes.get(t, 0)

    @property
    def fixed_batch(self) -> int | None:
        """The number of samples the program must run on, when a recurrent op's per-sample step
        ranges (ONNX ``sequence_lens`` of a static batch) fix it; else None (any)."""
        for op in self.ops:
            steps = op.attrs.get("steps")
            if isinstance(steps, list) and len(steps) > 1:
                return len(steps)
        return None

    @property
    def input_spec(self) -> TensorSpec:
        return self.tensors[self.input]

    @property
    def output_spec(self) -> TensorSpec:
        return self.tensors[self.output]

    @property
    def has_values(self) -> bool:
        """True if every parameter holds its values (a server's or a cleartext copy)."""
        return all(p.values is not None for p in self.params.values())

    def op_params(self, op: Op) -> dict[str, Param]:
        return {role: self.params[name] for role, name in op.params.items()}

    def public(self) -> "Program":
        """The client's view: the same program without parameter values."""
        return Program(input=self.inputs, output=self.outputs, tensors=self.tensors, ops=self.ops,
                       params={k: p.spec() for k, p in self.params.items()}, meta=self.meta,
                       input_max_abs=self.inputs_max_abs, validate=False, batch_axes=self.batch_axes)

    def describe(self) -> dict:
        """The public description as JSON-able data (no parameter values): version 1 for a
        program with one batch-leading input and output, else version 2 (module doc)."""
        if self.single:
            d = {"format": FORMAT, "version": 1, "input": self.input,
                 "input_max_abs": self.input_max_abs, "output": self.output}
        else:
            d = {"format": FORMAT, "version": 2,
                 "inputs": [{"name": t, "max_abs": self.inputs_max_abs[t], "batch_axis": self.batch_axis(t)}
                            for t in self.inputs],
                 "outputs": [{"name": t, "batch_axis": self.batch_axis(t)} for t in self.outputs]}
        d.update({"tensors": {k: t.describe() for k, t in self.tensors.items()},
                  "ops": [op.describe() for op in self.ops],
                  "params": {k: p.describe() for k, p in self.params.items()},
                  "meta": self.meta})
        return json.loads(canonical_json(d))  # normalised (tuples → lists, numpy → Python)

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical public description; equal for a program and its
        :meth:`public` copy, and for the copy the client rebuilds from :meth:`public_bytes`."""
        return hashlib.sha256(canonical_json(self.describe())).hexdigest()

    def public_bytes(self) -> bytes:
        """The public description as canonical JSON (what the server sends the client)."""
        return canonical_json(self.describe())

    @classmethod
    def from_public_bytes(cls, data: bytes) -> "Program":
        """Rebuild (and validate) a public program from :meth:`public_bytes`."""
        return cls.from_dict(loads_json(data, "public program", error=ProgramError), None)

    # -- (de)serialisation --------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, values: dict[str, np.ndarray] | None) -> "Program":
        """Program from its description and (optionally) the parameter values; validated. The
        description may come from the peer or a file: anything malformed is a ProgramError."""
        try:
            return cls._from_dict(d, values)
        except ProgramError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as e:
            raise ProgramError(f"malformed program description ({type(e).__name__}: "
                               f"{peer_text(str(e), 120)})") from None

    @classmethod
    def _from_dict(cls, d: dict, values: dict[str, np.ndarray] | None) -> "Program":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ProgramError(f"not a sirnn program (format {d.get('format') if isinstance(d, dict) else d!r})")
        v = d.get("version")
        if not isinstance(v, int) or v < 1:
            raise ProgramError(f"invalid program format version {v!r}")
        if v > FORMAT_VERSION:
            raise ProgramError(f"the program uses format version {v}, this sirnn reads up to "
                               f"{FORMAT_VERSION}: upgrade sirnn")
        for key in (("input", "output") if v == 1 else ("inputs", "outputs")) + ("tensors", "ops", "params"):
            if key not in d:
                raise ProgramError(f"the program description lacks '{key}'")
        if not isinstance(d["tensors"], dict) or not isinstance(d["ops"], list) \
                or not isinstance(d["params"], dict):
            raise ProgramError("'tensors' and 'params' must be objects, 'ops' a list")
        tensors = {str(k): TensorSpec.from_dict(t, f"tensor {k!r}") for k, t in d["tensors"].items()}
        ops = [Op.from_dict(o) for o in d["ops"]]
        params = {}
        for name, spec in d["params"].items():
            if not isinstance(spec, dict) or not {"shape", "bits", "scale"} <= spec.keys():
                raise ProgramError(f"parameter {name!r}: expected {{shape, bits, scale}}, got {spec!r}")
            val = None
            if values is not None:
                if name not in values:
                    raise ProgramError(f"parameter {name!r} has no values in the file")
                val = values[name]
                if val.dtype.kind not in "iu":
                    raise ProgramError(f"parameter {name!r} values must be integers, got {val.dtype}")
            try:
                params[name] = Param(tuple(spec["shape"]), spec["bits"], spec["scale"], val)
            except (ValueError, TypeError) as e:
                raise ProgramError(f"parameter {name!r}: {e}") from None
        if values is not None:
            extra = sorted(set(values) - set(params))
            if extra:
                raise ProgramError(f"the file holds values for undeclared parameters {extra}")
        if v == 1:
            ins, outs, imas, axes = [str(d["input"])], [str(d["output"])], {str(d["input"]): d.get("input_max_abs")}, {}
        else:
            if not isinstance(d["inputs"], list) or not isinstance(d["outputs"], list) \
                    or not all(isinstance(e, dict) and "name" in e for e in d["inputs"] + d["outputs"]):
                raise ProgramError("'inputs' and 'outputs' must be lists of objects with a name")
            ins, outs = [str(e["name"]) for e in d["inputs"]], [str(e["name"]) for e in d["outputs"]]
            imas = {str(e["name"]): e.get("max_abs") for e in d["inputs"]}
            axes = {str(e["name"]): e.get("batch_axis", 0) for e in d["inputs"] + d["outputs"]}
        for t, ima in imas.items():
            if ima is not None and (not isinstance(ima, (int, float)) or not np.isfinite(ima) or ima < 0):
                raise ProgramError(f"input_max_abs of {t!r} must be a finite number ≥ 0 or null, got {ima!r}")
        for t, b in axes.items():
            if type(b) is not int or b < 0:
                raise ProgramError(f"batch_axis of {t!r} must be an integer ≥ 0, got {b!r}")
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise ProgramError("'meta' must be an object")
        return cls(input=ins, output=outs, tensors=tensors, ops=ops, params=params, meta=meta,
                   input_max_abs=imas, batch_axes=axes)

    def save(self, path: str | os.PathLike) -> None:
        """Write the program as one self-contained file (see the module doc)."""
        d = self.describe()
        d["has_values"] = self.has_values
        if any(p.values is not None for p in self.params.values()) and not self.has_values:
            raise ProgramError("some parameters have values and others not: save either a full "
                               "program or its public() copy")
        buf = io.BytesIO()
        if self.has_values and self.params:
            np.savez_compressed(buf, **{k: np.asarray(p.values, np.int64) for k, p in self.params.items()})
        tmp = f"{os.fspath(path)}.tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(_JSON_NAME, json.dumps(d, indent=1, sort_keys=True, ensure_ascii=False))
            if self.has_values and self.params:
                z.writestr(_PARAMS_NAME, buf.getvalue(), compress_type=zipfile.ZIP_STORED)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Program":
        """Read and validate a program file (numpy and the standard library only).

        Everything is read under a cap (:data:`MAX_JSON_BYTES`, :data:`MAX_PARAM_BYTES`, and each
        parameter's declared size), checked before anything is unpacked, so a small file that
        unpacks to gigabytes is refused without unpacking it; a damaged file (a flipped bit: a
        checksum or deflate error) is a :class:`ProgramError` saying so."""
        path = os.fspath(path)
        try:
            z = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise ProgramError(f"no such program file: {path}") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise ProgramError(f"{path} is not a sirnn program file ({e})") from None
        with z:
            names = set(z.namelist())
            if _JSON_NAME not in names:
                raise ProgramError(f"{path} is not a sirnn program file (no {_JSON_NAME} inside)")
            d = loads_json(_read_member(z, _JSON_NAME, MAX_JSON_BYTES, path), f"{path}: {_JSON_NAME}",
                           error=ProgramError)
            values = None
            if isinstance(d, dict) and d.get("has_values", True) and d.get("params"):
                if _PARAMS_NAME not in names:
                    raise ProgramError(f"{path}: the parameter values ({_PARAMS_NAME}) are missing")
                sizes = _declared_nbytes(d["params"], path)
                blob = _read_member(z, _PARAMS_NAME, sum(sizes.values()) + _NPZ_SLACK * (len(sizes) + 1), path)
                values = _read_values(blob, sizes, path)
        try:
            return cls.from_dict(d, values)
        except ProgramError as e:
            raise ProgramError(f"{path}: {e}") from None

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> "Program":
        """Check the whole program (see the module doc); raise ProgramError naming the problem."""
        if len(set(self.inputs)) != len(self.inputs) or len(set(self.outputs)) != len(self.outputs):
            raise ProgramError(f"an input or output is listed twice ({self.inputs}, {self.outputs})")
        for t in self.inputs:
            if t not in self.tensors:
                raise ProgramError(f"the input tensor {t!r} is not declared")
            if not self.tensors[t].signed:
                raise ProgramError(f"the input tensor {t!r} must be signed fixed point")
        for t in self.outputs:
            if t not in self.tensors:
                raise ProgramError(f"the output tensor {t!r} is not declared")
        for t, b in self.batch_axes.items():
            if t not in self.inputs + self.outputs or b > len(self.tensors[t].shape):
                raise ProgramError(f"batch axis {b} of {t!r}: not an input or output, or beyond its axes")
        for name, p in self.params.items():
            if not isinstance(p, Param):
                raise ProgramError(f"parameter {name!r} must be a Param")
        defined = set(self.inputs)
        names = set()
        used_params = set()
        for i, op in enumerate(self.ops):
            where = f"op #{i} {op.name!r} ({op.op})"
            d = OPS.get(op.op)
            if d is None:
                raise ProgramError(f"{where}: unknown op {op.op!r} (known: {', '.join(sorted(OPS))})")
            if op.name in names:
                raise ProgramError(f"{where}: op name {op.name!r} is used twice")
            names.add(op.name)
            lo, hi = d.inputs
            if not lo <= len(op.inputs) <= hi:
                want = str(lo) if lo == hi else f"{lo}..{hi}"
                raise ProgramError(f"{where}: takes {want} input(s), got {len(op.inputs)}")
            if len(op.outputs) != d.outputs:
                raise ProgramError(f"{where}: has {d.outputs} output(s), got {len(op.outputs)}")
            for t in op.inputs:
                if t not in defined:
                    raise ProgramError(f"{where}: input {t!r} is not defined before it is used"
                                       + ("" if t in self.tensors else " (nor declared)"))
            for t in op.outputs:
                if t not in self.tensors:
                    raise ProgramError(f"{where}: output {t!r} is not declared in 'tensors'")
                if t in defined:
                    raise ProgramError(f"{where}: output {t!r} is defined twice")
                defined.add(t)
            roles = set(op.params)
            missing = [r for r in d.params if r not in roles]
            if missing:
                raise ProgramError(f"{where}: missing parameter(s) {missing}")
            extra = sorted(roles - set(d.params) - set(d.optional))
            if extra:
                raise ProgramError(f"{where}: unexpected parameter role(s) {extra}")
            for role, pname in op.params.items():
                if pname not in self.params:
                    raise ProgramError(f"{where}: parameter {role} = {pname!r} is not in the program")
                used_params.add(pname)
            bad_attrs = sorted(set(op.attrs) - set(d.attrs))
            if bad_attrs:
                raise ProgramError(f"{where}: unknown attribute(s) {bad_attrs}")
            if d.check is not None:
                d.check(op, [self.tensors[t] for t in op.inputs], [self.tensors[t] for t in op.outputs],
                        self.op_params(op))
        for t in self.outputs:
            if t not in defined:
                raise ProgramError(f"the output tensor {t!r} is not computed by any op")
        unused = sorted(set(self.params) - used_params)
        if unused:
            raise ProgramError(f"parameters not used by any op: {unused}")
        return self

    # -- text ---------------------------------------------------------------------------------------
    def summary(self) -> str:
        """A table of the ops with their output formats and parameter sizes."""
        lines = [f"input  {t}: {self.tensors[t]}"
                 + (f", calibrated |x| ≤ {self.inputs_max_abs[t]:.4g}" if self.inputs_max_abs[t] is not None else "")
                 + (f", batch axis {self.batch_axis(t)}" if self.batch_axis(t) else "") for t in self.inputs]
        w = max([len(op.name) for op in self.ops] + [5])
        lines.append(f"  {'layer':{w}s}  {'op':9s}  {'output':34s}  params")
        for op in self.ops:
            o = self.tensors[op.outputs[0]]
            ps = self.op_params(op)
            n = sum(int(np.prod(p.shape, dtype=np.int64)) for p in ps.values())
            pdesc = f"{n:,} ({', '.join(f'{r}@{p.bits}b/s{p.scale}' for r, p in ps.items())})" if ps else ""
            extra = ""
            if op.op in ("fastgrnn", "lstm", "gru", "rnn"):
                f = op.attrs["formats"]
                extra = f"  [pre {tuple(f['pre'])}, gate {tuple(f['gate'])}, h {tuple(f['h'])}]"
            lines.append(f"  {op.name:{w}s}  {op.op:9s}  {str(o):34s}  {pdesc}{extra}")
        lines += [f"output {t}: {self.tensors[t]}" + (f", batch axis {self.batch_axis(t)}" if self.batch_axis(t) else "")
                  for t in self.outputs]
        lines.append(f"digest {self.digest()}")
        return "\n".join(lines)


# ---- reading a program file under caps --------------------------------------------------------
#: the largest program.json accepted (as large as the public program a client accepts)
MAX_JSON_BYTES = 64 << 20
#: the largest total of parameter values accepted in a file (int64 each)
MAX_PARAM_BYTES = 1 << 30
_NPZ_SLACK = 1 << 14  # per parameter: the .npy header and zip entry overhead
_NPY_HEADER_MAX = 10_000  # numpy's own default cap on an .npy header
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                RuntimeError)


def _read_member(z: zipfile.ZipFile, name: str, cap: int, path: str) -> bytes:
    """The unpacked bytes of archive member ``name``, refusing (before unpacking anything) a
    member that declares more than ``cap`` bytes, and reading at most that much (a member whose
    declared size lies fails its checksum). Only stored and deflated members are accepted."""
    info = z.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ProgramError(f"{path}: {name} uses an unsupported compression (method "
                           f"{info.compress_type}); sirnn writes stored or deflated members")
    if info.file_size > cap:
        raise ProgramError(f"{path}: {name} unpacks to {info.file_size:,} bytes, more than the "
                           f"{cap:,} allowed for it: the file is corrupt or not a sirnn program")
    try:
        with z.open(info) as f:  # (zipfile inflates at most as much as the read asks for)
            data = f.read(info.file_size + 1)
    except _READ_ERRORS as e:
        raise ProgramError(f"{path}: {name} is damaged ({type(e).__name__}: {e}); write or copy the "
                           "file again") from None
    if len(data) != info.file_size:  # (zipfile's own checks catch this first)
        raise ProgramError(f"{path}: {name} is damaged (it unpacks to another size than declared)")
    return data


def _declared_nbytes(params, path: str) -> dict[str, int]:
    """Bytes of each parameter's values as declared in program.json (int64 each), capped."""
    if not isinstance(params, dict):
        raise ProgramError(f"{path}: 'params' must be an object")
    sizes = {}
    for name, spec in params.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise ProgramError(f"{path}: parameter {peer_text(name)} has no valid shape ({peer_text(shape)})")
        sizes[name] = 8 * math.prod(shape)
    total = sum(sizes.values())
    if total > MAX_PARAM_BYTES:
        raise ProgramError(f"{path}: the parameters declare {total:,} bytes of values, more than the "
                           f"{MAX_PARAM_BYTES:,} allowed")
    return sizes


def _read_values(blob: bytes, sizes: dict[str, int], path: str) -> dict[str, np.ndarray]:
    """The parameter arrays of ``params.npz``, each member capped at its declared size and its
    .npy header checked (integer dtype, at most 8 bytes per value) before the array is built."""
    try:
        inner = zipfile.ZipFile(io.BytesIO(blob))
    except _READ_ERRORS as e:
        raise ProgramError(f"{path}: {_PARAMS_NAME} is damaged ({e})") from None
    values = {}
    with inner:
        for info in inner.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in sizes or name in values:
                raise ProgramError(f"{path}: {_PARAMS_NAME} holds {peer_text(info.filename)}, which is "
                                   "not a declared parameter")
            raw = _read_member(inner, info.filename, sizes[name] + _NPZ_SLACK, f"{path}: {_PARAMS_NAME}")
            values[name] = _npy_array(raw, f"{path}: parameter {name!r}")
    return values


def npy_header(f, what: str, error=ProgramError) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the header of the .npy stream ``f`` (left at the data),
    read without loading anything; a file that is not a .npy array raises ``error`` naming
    ``what`` (and never suggests unpickling it)."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy format version {version} is not supported")
        shape, fortran, dtype = read_header(f, max_header_size=_NPY_HEADER_MAX)
    except (ValueError, EOFError) as e:
        raise error(f"{what} is not a .npy array written by numpy.save ({e})") from None
    if dtype.hasobject:
        raise error(f"{what} holds Python objects ({dtype}), not numbers")
    return shape, fortran, dtype


def load_array(path, what: str, error=ProgramError) -> np.ndarray:
    """A numeric array from the .npy file ``path`` (its header checked first: never unpickled);
    a missing, foreign or non-numeric file raises ``error`` naming ``what``."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            _, _, dtype = npy_header(f, f"the {what} file {path}", error)
            if dtype.kind not in "fiub":
                raise error(f"the {what} file {path} holds {dtype} values, not numbers")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise error(f"no such {what} file: {path}") from None
    except error:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise error(f"cannot read the {what} file {path} as a .npy array: {e}") from None


def load_arrays(path, what: str, error=ProgramError) -> np.ndarray | dict:
    """A model's input arrays: a .npy file (:func:`load_array`: one input), or an .npz with one
    numeric array per input name (a dict, never unpickled); anything else raises ``error``."""
    path = os.fspath(path)
    if not path.lower().endswith(".npz"):
        return load_array(path, what, error)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k]) for k in z.files}
    except FileNotFoundError:
        raise error(f"no such {what} file: {path}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise error(f"cannot read the {what} file {path} as an .npz of arrays: {e}") from None
    bad = [k for k, v in out.items() if v.dtype.kind not in "fiub"]
    if bad:
        raise error(f"the {what} file {path}: array(s) {bad} do not hold numbers")
    return out


def _npy_array(raw: bytes, what: str) -> np.ndarray:
    """An integer array from .npy bytes (a view of them), its header checked against its size."""
    f = io.BytesIO(raw)
    shape, fortran, dtype = npy_header(f, what)
    if dtype.kind not in "iu" or dtype.itemsize > 8:
        raise ProgramError(f"{what}: values must be integers of at most 64 bits, got {dtype}")
    count = math.prod(shape)
    if len(raw) - f.tell() != count * dtype.itemsize:
        raise ProgramError(f"{what}: the .npy header announces {shape} values of {dtype}, the data "
                           f"holds {len(raw) - f.tell()} bytes")
    return np.frombuffer(raw, dtype, count, f.tell()).reshape(shape, order="F" if fortran else "C")


def load_program(path) -> Program:
    """:meth:`Program.load`: read and validate a ``.sirnn`` file."""
    return Program.load(path)
