"""``sirnn precision``: ULP error of a math function's cleartext functionality against float64.

The float64 reference is saturated to the output range (the functions saturate by documented
rules), see :func:`sirnn.cli.benchmath.float_reference`.

All 2^ℓ inputs of an ℓ ≤ 16-bit configuration (within the function's domain), or 10^6 random
ones for wider inputs. The cleartext functionality is what the secure protocol computes bit for
bit (see ``sirnn bench FUNCTION``, which checks that), so these are the protocol's figures.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ParameterError

from ..protocols.backend import ClearBackend, clear
from ..protocols.ring import to_signed
from .benchmath import MATH, float_reference

EXHAUSTIVE_BITS = 16
SAMPLES = 10**6


def precision_report(name: str, bw_in: int, scale_in: int, bw_out: int, scale_out: int,
                     seed: int = 1, worst: int = 5, arrays: dict | None = None) -> dict:
    """ULP error of ``name``'s cleartext functionality against float64 over its domain (see the
    module doc). ``arrays`` (a dict), if given, receives the inputs ``x`` (real values), the
    fixed-point outputs ``got``, the references ``exact`` and the errors ``ulp`` (for plots)."""
    if name not in MATH:
        raise ParameterError(f"unknown function {name!r}; choose from: {', '.join(MATH)}")
    fn, _, domain = MATH[name]
    lo, hi = domain(bw_in)
    if bw_in <= EXHAUSTIVE_BITS:
        xs, how = np.arange(lo, hi + 1, dtype=np.int64), "all inputs"
    else:
        xs = np.random.default_rng(seed).integers(lo, hi, SAMPLES, endpoint=True)
        how = f"{SAMPLES:,} random inputs (seed {seed})"
    y = fn(ClearBackend(), clear(xs, bw_in, scale_in), bw_out, scale_out)
    got = to_signed(y.data, bw_out) / 2.0**scale_out
    real = float_reference(name, xs, {"bw_in": bw_in, "scale_in": scale_in, "bw_out": bw_out,
                                      "scale_out": scale_out})
    ulp = np.abs(got - real) * 2.0**scale_out
    if arrays is not None:
        arrays.update(x=xs / 2.0**scale_in, got=got, exact=real, ulp=ulp)
    order = np.argsort(-ulp)[:worst]
    return {
        "function": name, "bw_in": bw_in, "scale_in": scale_in, "bw_out": bw_out, "scale_out": scale_out,
        "inputs": how, "count": int(xs.size), "max_ulp": float(ulp.max()), "mean_ulp": float(ulp.mean()),
        "worst": [{"x": float(xs[i] / 2.0**scale_in), "x_int": int(xs[i]), "got": float(got[i]),
                   "exact": float(real[i]), "ulp": float(ulp[i])} for i in order],
    }


def format_precision(rep: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(rep)
    lines = [f"{rep['function']}: {rep['bw_in']}-bit input scale {rep['scale_in']} → "
             f"{rep['bw_out']}-bit output scale {rep['scale_out']}; {rep['inputs']} ({rep['count']:,})",
             f"  max ULP  {rep['max_ulp']:.4f}", f"  mean ULP {rep['mean_ulp']:.4f}", "  worst inputs:"]
    for w in rep["worst"]:
        lines.append(f"    x = {w['x']:.6g} ({w['x_int']}): got {w['got']:.6g}, exact {w['exact']:.6g}, "
                     f"{w['ulp']:.3f} ULP")
    return "\n".join(lines)
