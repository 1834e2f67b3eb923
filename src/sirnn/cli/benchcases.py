"""The benchmarks ``sirnn bench`` knows. Add a protocol by registering a :class:`Case`."""

from __future__ import annotations

import numpy as np

from .. import ALICE
from ..protocols import boolean, compare, lut as lutmod
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
    {"n": 1 << 20, "bits": 32}, "chosen-message 1-of-2 OT (IKNP), ALICE sends"))


def _cot_check(o, a, b):
    d = _ot_inputs(0, o)
    want = (a + d["m"][:, 0] * d["c"]) & mask(o["bits"])
    return {"mismatches": int((b != want).sum())}


register(Case(
    "cot", _ot_inputs,
    lambda p, d, o: (p.ot.cot_send(d["m"][:, 0], o["bits"]) if p.role == ALICE
                     else p.ot.cot_recv(d["c"], o["bits"])),
    _cot_check, {"n": 1 << 20, "bits": 32}, "correlated OT over Z_2^bits (IKNP), ALICE sends"))


def _kk_inputs(role, o):
    n, big, bits = o["n"], o["N"], o["bits"]
    return {"m": _ring(o, 3, (n, big), bits), "c": _ring(o, 4, n, int(big).bit_length() - 1)}


register(Case(
    "kkot", _kk_inputs,
    lambda p, d, o: (p.ot.kkot_send(d["m"], o["bits"]) if p.role == ALICE
                     else p.ot.kkot_recv(d["c"], o["N"], o["bits"])),
    lambda o, a, b: {"mismatches": int((b != _kk_inputs(1, o)["m"][np.arange(o["n"]),
                                                              _kk_inputs(1, o)["c"].astype(int)]).sum())},
    {"n": 1 << 18, "N": 16, "bits": 8}, "1-of-N OT (KK13), ALICE sends"))


# ---- building blocks on one shared input -----------------------------------------------------
def shared_input(o: dict, role: int, bits: int, stream: int = 10) -> np.ndarray:
    """This party's share of the benchmark's cleartext input (x from `seed`, random x0)."""
    x = _ring(o, stream, o["n"], bits)
    x0 = _ring(o, stream + 1, o["n"], bits)
    return x0 if role == ALICE else (x - x0) & mask(bits)


def cleartext_input(o: dict, bits: int, stream: int = 10) -> np.ndarray:
    return _ring(o, stream, o["n"], bits)


def unary_case(name: str, proto, ref, defaults: dict, help: str = "", signed: bool = True) -> Case:
    """A benchmark of ``proto(party, x, opts) -> Share`` on one shared ``bw_in``-bit input,
    checked against ``ref(x, opts) -> ring elements``."""

    def run(p: Party, data, o):
        out = proto(p, Share(data, o["bw_in"], o.get("scale_in", 0), signed, p.role), o)
        return out.data, out.bits

    def check(o, a, b):
        (d0, bits), (d1, _) = a, b
        got = (d0 + d1) & mask(bits)
        want = ref(cleartext_input(o, o["bw_in"]), o)
        return {"mismatches": int((got != want).sum())}

    return register(Case(name, lambda role, o: shared_input(o, role, o["bw_in"]), run, check,
                         defaults, help))


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
