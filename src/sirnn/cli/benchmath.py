"""Benchmarks of the math library: exp, sigmoid, tanh (and more as they land).

Each reports, besides the usual cost figures, ``mismatches`` against the cleartext fixed-point
functionality (must be 0) and ``max_ulp`` / ``mean_ulp`` of the reconstructed secure output
against float64 math; ``--dump FILE.npz`` saves the inputs and outputs for rechecking.
The float reference is saturated to the output range (rsqrt, reciprocal, div saturate by rule: where
they do, the error is 0 when they return the largest value).

Inputs: uniform integers over the function's domain; div takes two inputs (an (n, 2) array, both
in the bw_in/scale_in format): the numerator uniform over the signed range, the denominator
log-uniform over [1, 2^{bw_in−1}) (positive), so small and large quotients (and saturation) all
occur.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

from .. import ALICE
from ..mathfn import div, exp_saturating, nexp, reciprocal, rsqrt, sigmoid, sqrt, tanh
from ..protocols.backend import ClearBackend, SecureBackend, clear
from ..protocols.ring import from_int, mask, to_signed
from ..protocols.share import Share
from .bench import Case
from .benchcases import CASES, register

__all__ = ["CASES", "MATH"]


def _div_pair(be, x, bits_out, scale_out):
    return div(be, x[..., 0], x[..., 1], bits_out, scale_out)


def _div_inputs(rng, o):
    b, n = o["bw_in"], o["n"]
    num = rng.integers(-(1 << (b - 1)), (1 << (b - 1)) - 1, n, endpoint=True)
    den = np.minimum(np.floor(np.exp2(rng.uniform(0, b - 1, n))), (1 << (b - 1)) - 1).astype(np.int64)
    return np.stack([num, den], axis=-1)


def _two_inputs(b):
    raise ParameterError("div takes two inputs (numerator, denominator); measure it with `sirnn bench div`")


# name: (recipe, float reference, input domain as a function of (bits) -> (lo, hi) integers)
MATH = {
    "exp": (nexp, np.exp, lambda b: (-(1 << (b - 1)), 0)),
    "exp_sat": (exp_saturating, np.exp, lambda b: (-(1 << (b - 1)), (1 << (b - 1)) - 1)),
    "sigmoid": (sigmoid, lambda v: 1 / (1 + np.exp(-v)), lambda b: (-(1 << (b - 1)), (1 << (b - 1)) - 1)),
    "tanh": (tanh, np.tanh, lambda b: (-(1 << (b - 1)), (1 << (b - 1)) - 1)),
    "rsqrt": (rsqrt, lambda v: 1 / np.sqrt(v), lambda b: (1, (1 << (b - 1)) - 1)),
    "sqrt": (sqrt, np.sqrt, lambda b: (0, (1 << (b - 1)) - 1)),
    "reciprocal": (reciprocal, lambda v: 1 / v, lambda b: (1, (1 << (b - 1)) - 1)),
    "div": (_div_pair, lambda v: v[..., 0] / v[..., 1], _two_inputs),
}
SAMPLERS = {"div": _div_inputs}  # name: (rng, options) -> integer inputs, instead of the domain


def math_inputs_clear(name: str, o: dict) -> np.ndarray:
    rng = np.random.default_rng([o.get("seed", 1), 50])
    if name in SAMPLERS:
        return SAMPLERS[name](rng, o)
    lo, hi = MATH[name][2](o["bw_in"])
    return rng.integers(lo, hi, o["n"], endpoint=True)


def _inputs(name):
    def inputs(role: int, o: dict) -> np.ndarray:
        x = from_int(math_inputs_clear(name, o), o["bw_in"])
        x0 = np.random.default_rng([o.get("seed", 1), 51]).integers(0, 2**64, x.shape, dtype=np.uint64,
                                                                   endpoint=False) & mask(o["bw_in"])
        return x0 if role == ALICE else (x - x0) & mask(o["bw_in"])
    return inputs


def _run(name):
    def run(p, data, o):
        fn = MATH[name][0]
        y = fn(SecureBackend(p), Share(data, o["bw_in"], o["scale_in"], True, p.role), o["bw_out"], o["scale_out"])
        return y.data, y.bits
    return run


def float_reference(name: str, xs: np.ndarray, o: dict) -> np.ndarray:
    """float64 value of the function at the (integer, fixed-point) inputs, saturated to the output
    range (the functions saturate by rule, so a saturated result counts as exact); exp_sat's
    documented saturation point e^c is applied to its input."""
    ref = MATH[name][1]
    v = xs / 2.0 ** o["scale_in"]
    lim = 2.0 ** (o["bw_out"] - 1) / 2.0 ** o["scale_out"]
    if name == "exp_sat":
        c = np.floor(np.log(lim - 2.0 ** -o["scale_out"]) * 2.0 ** o["scale_in"]) / 2.0 ** o["scale_in"]
        v = np.minimum(v, c)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.clip(ref(v), -lim, lim - 2.0 ** -o["scale_out"])


def _check(name):
    def check(o, a, b):
        fn = MATH[name][0]
        (d0, bits), (d1, _) = a, b
        y = (d0 + d1) & mask(bits)
        xs = math_inputs_clear(name, o)
        want = fn(ClearBackend(), clear(xs, o["bw_in"], o["scale_in"]), o["bw_out"], o["scale_out"]).data
        real = float_reference(name, xs, o)
        got = to_signed(y, o["bw_out"]) / 2.0 ** o["scale_out"]
        ulp = np.abs(got - real) * 2.0 ** o["scale_out"]
        if o.get("dump"):
            np.savez(o["dump"], x=xs.astype(np.int64), y=to_signed(y, o["bw_out"]), bw_in=o["bw_in"],
                     scale_in=o["scale_in"], bw_out=o["bw_out"], scale_out=o["scale_out"])
        return {"mismatches": int((y != want).sum()), "max_ulp": float(ulp.max()),
                "mean_ulp": float(ulp.mean())}
    return check


for _name in MATH:
    register(Case(_name, _inputs(_name), _run(_name), _check(_name),
                  {"n": 1 << 16, "bw_in": 16, "scale_in": 12, "bw_out": 16, "scale_out": 12},
                  f"{_name} on fixed point (math library)"))
