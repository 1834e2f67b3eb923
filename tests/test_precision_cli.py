"""`sirnn precision`: exhaustive sweeps of the cleartext functionality, as the issue asks."""

import json
import subprocess
import sys

import pytest

from sirnn.cli.precision import precision_report

BOUNDS = {"exp": 2, "sigmoid": 3, "tanh": 4, "rsqrt": 4, "sqrt": 3, "reciprocal": 3, "exp_sat": 2}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_precision_all_16bit_inputs(name):
    rep = precision_report(name, 16, 12, 16, 12)
    assert rep["inputs"] == "all inputs" and rep["count"] >= 2**15 - 1  # positive domains: 1..2^15 − 1
    assert rep["max_ulp"] <= BOUNDS[name]
    assert len(rep["worst"]) == 5 and rep["worst"][0]["ulp"] == pytest.approx(rep["max_ulp"])


def test_precision_cli_json():
    out = subprocess.run([sys.executable, "-m", "sirnn", "precision", "sigmoid", "--bw-in", "12",
                          "--scale-in", "8", "--json"], capture_output=True, text=True, check=True)
    rep = json.loads(out.stdout)
    assert rep["count"] == 4096 and rep["max_ulp"] <= 3
