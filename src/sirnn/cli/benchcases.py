"""The benchmarks ``sirnn bench`` knows. Add a protocol by registering a :class:`Case`."""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..errors import ParameterError
from ..protocols import activation, boolean, compare, extend, truncate
from ..protocols import digits as digitsmod, lut as lutmod, mul as mulmod
from ..protocols.party import Party
from ..protocols.ring import U64, mask
from ..protocols.share import Share
from .bench import Case

CASES: dict[str, Case] = {}


def register(case: Case) -> Case:
    CASES[case.name] = case
    return case


def _rng(opts: dict, stream: int) -> np.random.Generator:
    return np.random.default_rng([opts.get("seed", 1), stream])


def _ring(opts: dict, stream: int, shape, bits: int) -> np.ndarray:
    return _rng(opts, stream).integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False) & mask(bits)


# ---- OT ------------------------------------------------------------------------------------------
def _ot_inputs(role, o):
    n, bits = o["n"], o["bits"]
    return {"m": _ring(o, 1, (n, 2), bits), "c": _ring(o, 2, n, 1)}


register(Case(
    "ot", _ot_inputs,
    lambda p, d, o: (p.ot.send(d["m"][:, 0], d["m"][:, 1], o["bits"]) if p.role == ALICE
                     else p.ot.recv(d["c"], o["bits"])),
    lambda o, a, b: {"mismatches": int((b != _ot_inputs(1, o)["m"][np.arange(o["n"]),
                                                             _ot_inputs(1, o)["c"].astype(int)]).sum())},
    {"n": 1 << 20, "bits": 32}, "chosen-message 1-of-2 OT, ALICE sends"))


def _cot_check(o, a, b):
    d = _ot_inputs(0, o)
    want = (a + d["m"][:, 0] * d["c"]) & mask(o["bits"])
    return {"mismatches": int((b != want).sum())}


register(Case(
    "cot", _ot_inputs,
    lambda p, d, o: (p.ot.cot_send(d["m"][:, 0], o["bits"]) if p.role == ALICE
                     else p.ot.cot_recv(d["c"], o["bits"])),
    _cot_check, {"n": 1 << 20, "bits": 32}, "correlated OT over Z_2^bits, ALICE sends"))


register(Case(
    "rcot", lambda role, o: None,
    lambda p, d, o: p.ot.rcot_send(o["n"]) if p.role == ALICE else p.ot.rcot_recv(o["n"]),
    lambda o, a, b: {"mismatches": int((b[1] != a[1] ^ (b[0].astype(np.uint64)[:, None] * a[0])).any(axis=1).sum())},
    {"n": 1 << 23}, "random correlated OT, raw 128-bit blocks (Ferret or IKNP), ALICE holds Δ"))


def _kk_inputs(role, o):
    n, big, bits = o["n"], o["N"], o["bits"]
    return {"m": _ring(o, 3, (n, big), bits), "c": _ring(o, 4, n, int(big).bit_length() - 1)}


register(Case(
    "kkot", _kk_inputs,
    lambda p, d, o: (p.ot.kkot_send(d["m"], o["bits"]) if p.role == ALICE
                     else p.ot.kkot_recv(d["c"], o["N"], o["bits"])),
    lambda o, a, b: {"mismatches": int((b != _kk_inputs(1, o)["m"][np.arange(o["n"]),
                                                              _kk_inputs(1, o)["c"].astype(int)]).sum())},
    {"n": 1 << 18, "N": 16, "bits": 8}, "1-of-N OT (KK13 or log2 N random OTs), ALICE sends"))


# ---- building blocks on shared (or one party's known) operands ---------------------------------
def shared_input(o: dict, role: int, bits: int, stream: int = 10, shape=None) -> np.ndarray:
    """This party's share of a benchmark cleartext input (x from `seed`, random x0); shape (n,)."""
    shape = (o["n"],) if shape is None else shape
    x = _ring(o, stream, shape, bits)
    x0 = _ring(o, stream + 1, shape, bits)
    return x0 if role == ALICE else (x - x0) & mask(bits)


def cleartext_input(o: dict, bits: int, stream: int = 10, shape=None) -> np.ndarray:
    return _ring(o, stream, (o["n"],) if shape is None else shape, bits)


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def block_case(name: str, operands, proto, ref, defaults: dict, help: str = "", signed: bool = True) -> Case:
    """A benchmark of ``proto(party, args, opts)`` returning a Share (or a list/tuple of Shares).

    ``operands(opts)`` lists ``(shape, bits, known)``: operand i is the cleartext from stream
    10 + 2i; ``known`` False makes it a Share (``signed``, scale ``scale_in``) held by both
    parties, True makes it ALICE's plaintext (BOB gets None). The reconstructed outputs are
    checked against ``ref(cleartexts, opts)`` (an array or a list of arrays, one per output);
    ``mismatches`` counts differing output entries.
    """

    def inputs(role, o):
        return [(_ring(o, 10 + 2 * i, shape, bits) if role == ALICE else None) if known
                else shared_input(o, role, bits, 10 + 2 * i, shape)
                for i, (shape, bits, known) in enumerate(operands(o))]

    def run(p: Party, data, o):
        args = [d if known else Share(d, bits, o.get("scale_in", 0), signed, p.role)
                for d, (_, bits, known) in zip(data, operands(o))]
        return [(s.data, s.bits) for s in _as_list(proto(p, args, o))]

    def check(o, a, b):
        want = _as_list(ref([cleartext_input(o, bits, 10 + 2 * i, shape)
                             for i, (shape, bits, _) in enumerate(operands(o))], o))
        bad = sum(int((((d0 + d1) & mask(bits)) != (np.asarray(w, U64) & mask(bits))).sum())
                  for ((d0, bits), (d1, _)), w in zip(zip(a, b), want, strict=True))
        return {"mismatches": bad}

    return register(Case(name, inputs, run, check, defaults, help))


def unary_case(name: str, proto, ref, defaults: dict, help: str = "", signed: bool = True) -> Case:
    """A benchmark of ``proto(party, x, opts) -> Share`` on one shared ``bw_in``-bit input (n,),
    checked against ``ref(x, opts) -> ring elements``."""
    return block_case(name, lambda o: [((o["n"],), o["bw_in"], False)],
                      lambda p, args, o: proto(p, args[0], o), lambda xs, o: ref(xs[0], o),
                      defaults, help, signed)


unary_case("wrap", lambda p, x, o: compare.wrap(p, x),
           lambda x, o: compare.wrap_ref(_ring(o, 11, o["n"], o["bw_in"]),
                                         (x - _ring(o, 11, o["n"], o["bw_in"])) & mask(o["bw_in"]), o["bw_in"]),
           {"n": 1 << 16, "bw_in": 32}, "Wrap(x) = 1{x0 + x1 ≥ 2^ℓ}")
unary_case("msb", lambda p, x, o: compare.msb(p, x), lambda x, o: compare.msb_ref(x, o["bw_in"]),
           {"n": 1 << 16, "bw_in": 32}, "MSB of a shared value")
unary_case("drelu", lambda p, x, o: compare.drelu(p, x), lambda x, o: compare.drelu_ref(x, o["bw_in"]),
           {"n": 1 << 16, "bw_in": 32}, "DReLU = 1{x ≥ 0}")


def _mill_inputs(role, o):
    return _ring(o, 20 + role, o["n"], o["bw_in"])


register(Case(
    "millionaire", _mill_inputs,
    lambda p, v, o: (compare.millionaire(p, v, o["bw_in"]).data, 1),
    lambda o, a, b: {"mismatches": int(((a[0] ^ b[0]) != compare.millionaire_ref(_mill_inputs(0, o),
                                                                                 _mill_inputs(1, o))).sum())},
    {"n": 1 << 16, "bw_in": 32}, "ALICE's x > BOB's y"))


def _bool_input(o, role):
    return shared_input(o, role, 1, stream=30)


register(Case(
    "b2a", lambda role, o: _bool_input(o, role),
    lambda p, b, o: (boolean.b2a(p, Share(b, 1, 0, False, p.role), o["bw_out"]).data, o["bw_out"]),
    lambda o, a, b: {"mismatches": int((((a[0] + b[0]) & mask(a[1])) != cleartext_input(o, 1, 30)).sum())},
    {"n": 1 << 16, "bw_out": 32}, "boolean to arithmetic"))


def _mux_inputs(role, o):
    return _bool_input(o, role), shared_input(o, role, o["bw_in"])


register(Case(
    "mux", _mux_inputs,
    lambda p, d, o: (boolean.select(p, Share(d[0], 1, 0, False, p.role),
                                    Share(d[1], o["bw_in"], 0, True, p.role)).data, o["bw_in"]),
    lambda o, a, b: {"mismatches": int((((a[0] + b[0]) & mask(a[1])) != boolean.select_ref(
        cleartext_input(o, 1, 30), cleartext_input(o, o["bw_in"]), o["bw_in"])).sum())},
    {"n": 1 << 16, "bw_in": 32}, "MUX b·x"))


def _lut_table(o):
    return _ring(o, 40, 1 << o["bw_in"], o["bw_out"])


unary_case("lut", lambda p, x, o: lutmod.lut(p, _lut_table(o) if p.role == ALICE else None, x, o["bw_out"]),
           lambda x, o: lutmod.lut_ref(_lut_table(o), x, o["bw_out"]),
           {"n": 1 << 16, "bw_in": 8, "bw_out": 16}, "lookup table on a shared index", signed=False)


# ---- extensions and truncations (sirnn.protocols.extend, truncate) ---------------------------
def _shift(o: dict) -> int:
    """--opt s=..., else s = scale_in − scale_out."""
    return o["s"] if "s" in o else o.get("scale_in", 0) - o.get("scale_out", 0)


_EXT = {"n": 1 << 16, "bw_in": 32, "bw_out": 64}
_SHIFT = {"n": 1 << 16, "bw_in": 32, "scale_in": 12, "scale_out": 0}

for _name, _signed in (("zext", False), ("sext", True)):
    unary_case(_name, lambda p, x, o, f=getattr(extend, _name): f(p, x, o["bw_out"]),
               lambda x, o, f=getattr(extend, _name + "_ref"): f(x, o["bw_in"], o["bw_out"]),
               _EXT, f"{'zero' if _name == 'zext' else 'signed'} extension bw_in → bw_out", signed=_signed)

for _name, _help in (("tr", "truncate-and-reduce by s bits: bw_in → bw_in − s"),
                     ("ars", "arithmetic right shift by s (same ring)"),
                     ("lrs", "logical right shift by s (same ring)"),
                     ("div_pow2", "signed division by 2^s rounding towards zero")):
    unary_case(_name, lambda p, x, o, f=getattr(truncate, _name): f(p, x, _shift(o), allow_scale_underflow=True),
               lambda x, o, f=getattr(truncate, _name + "_ref"): f(x, o["bw_in"], _shift(o)),
               _SHIFT, _help + " (--opt s=..., default scale_in − scale_out)")


# ---- multiplication (sirnn.protocols.mul) ----------------------------------------------------
def _bw2(o: dict) -> int:
    return o.get("bw_in2", o["bw_in"])


def _shapes(o: dict) -> tuple[tuple, tuple]:
    """matmul: (a, b) × (b, c) with c = n / a unless given; n must be a·c (the outputs)."""
    a, b = o["a"], o["b"]
    c = o.get("c", o["n"] // a)
    if a * c != o["n"]:
        raise ParameterError(f"matmul: n counts the a·c outputs; pass --n {a * c} for a={a}, c={c} "
                             f"(got n={o['n']})")
    return (a, b), (b, c)


def _product(p: Party, args, o, matrix: bool):
    w, y = args
    if not o.get("known"):
        return (mulmod.matmul if matrix else mulmod.mul)(p, w, y, o["bw_out"], signed=True)
    kw = {"w_shape": _shapes(o)[0]} if matrix else {}
    return (mulmod.matmul_known if matrix else mulmod.mul_known)(
        p, ALICE, w, y, o["bw_out"], w_bits=o["bw_in"], w_signed=True, **kw)


def _product_ref(xs, o, matrix: bool):
    return (mulmod.matmul_ref if matrix else mulmod.mul_ref)(xs[0], xs[1], o["bw_in"], _bw2(o), o["bw_out"],
                                                             True, True)


def _product_operands(o: dict, matrix: bool) -> list:
    shapes = _shapes(o) if matrix else ((o["n"],), (o["n"],))
    return [(shapes[0], o["bw_in"], bool(o.get("known"))), (shapes[1], _bw2(o), False)]


_PRODUCT_HELP = (" of signed bw_in × bw_in2 (default bw_in) → bw_out bits; --opt known=1: the first operand "
                 "is ALICE's plaintext")
for _name, _matrix, _defaults, _help in (
        ("mul", False, {"n": 1 << 16, "bw_in": 32, "bw_out": 32}, "elementwise product"),
        ("matmul", True, {"n": 64 * 64, "bw_in": 32, "bw_out": 32, "a": 64, "b": 64},
         "matrix product (a, b)·(b, c) (--opt a=,b=,c=; n = a·c, c = n/a by default)")):
    block_case(_name, lambda o, m=_matrix: _product_operands(o, m),
               lambda p, args, o, m=_matrix: _product(p, args, o, m),
               lambda xs, o, m=_matrix: _product_ref(xs, o, m), _defaults, _help + _PRODUCT_HELP)


# ---- digits, MSNZB, activations (sirnn.protocols.digits, activation) -------------------------
unary_case("digits", lambda p, x, o: digitsmod.digit_decompose(p, x, o["d"]),
           lambda x, o: digitsmod.digit_decompose_ref(x, o["bw_in"], o["d"]),
           {"n": 1 << 16, "bw_in": 32, "d": 8}, "digit decomposition into d-bit digits (--opt d=)", signed=False)
unary_case("msnzb", lambda p, x, o: (digitsmod.msnzb_index(p, x, o["bw_out"], o["d"]) if o.get("index")
                                     else digitsmod.msnzb_onehot(p, x, o["d"])),
           lambda x, o: (digitsmod.msnzb_index_ref(x, o["bw_in"], o["bw_out"]) if o.get("index")
                         else digitsmod.msnzb_onehot_ref(x, o["bw_in"])),
           {"n": 1 << 16, "bw_in": 32, "d": 4, "bw_out": 8},
           "one-hot of the most significant non-zero bit (--opt d=; --opt index=1: the index in bw_out bits)",
           signed=False)
unary_case("relu", lambda p, x, o: activation.relu(p, x), lambda x, o: activation.relu_ref(x, o["bw_in"]),
           {"n": 1 << 16, "bw_in": 32}, "ReLU")
unary_case("relu6", lambda p, x, o: activation.relu6(p, x),
           lambda x, o: activation.relu6_ref(x, o["bw_in"], o["scale_in"]),
           {"n": 1 << 16, "bw_in": 32, "scale_in": 28}, "ReLU6 = min(max(x, 0), 6) at scale scale_in")


def _tournament_case(name: str, proto, ref, k: int, help: str) -> Case:
    """n outputs, each over k signed bw_in-bit inputs (input shape (n, k), reduced along k)."""
    return block_case(name, lambda o: [((o["n"], o["k"]), o["bw_in"], False)],
                      lambda p, args, o: proto(p, args[0]), lambda xs, o: ref(xs[0], o["bw_in"]),
                      {"n": 1 << 16, "bw_in": 32, "k": k}, help + " (--opt k=); n counts outputs")


_tournament_case("maxpool", activation.maxpool, activation.maxpool_ref, 4, "max of k elements")
_tournament_case("argmax", lambda p, x: activation.argmax(p, x, return_max=True), activation.argmax_ref, 8,
                 "index and value of the max of k elements")
