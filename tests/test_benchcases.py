"""Every `sirnn bench` case, run in-process at a small size: its output must match its *_ref.

Catches a case whose inputs/run/check disagree with the protocol it benchmarks (the benchmark
itself runs the same code in two OS processes, which is too slow for the test suite).
"""

import pytest

from sirnn.cli.benchmath import CASES  # every case `sirnn bench` knows (building blocks and math)

# small sizes; anything not listed runs with its defaults and n = SMALL_N
SMALL_N = 256
SMALL = {
    "matmul": [{"n": 12, "a": 4, "b": 5, "c": 3}, {"n": 6, "a": 3, "b": 4, "known": 1, "bw_in2": 16}],
    "mul": [{}, {"known": 1}, {"bw_in": 16, "bw_out": 32}, {"bw_in": 8, "bw_in2": 16, "bw_out": 20, "known": 1}],
    "msnzb": [{}, {"index": 1, "d": 8}],
    "tr": [{}, {"s": 5, "bw_in": 20}],
    "argmax": [{"k": 5}],
    "relu6": [{}, {"bw_in": 16, "scale_in": 8}],
    "zext": [{}, {"bw_in": 16, "bw_out": 40}],
    "kkot": [{}, {"N": 256, "bits": 16}],
}
PARAMS = [pytest.param(name, extra, id=f"{name}-{i}" if len(SMALL.get(name, [{}])) > 1 else name)
          for name in sorted(CASES) for i, extra in enumerate(SMALL.get(name, [{}]))]


def test_every_case_has_a_check():
    for name in ("zext", "sext", "tr", "ars", "lrs", "div_pow2", "mul", "matmul", "digits", "msnzb",
                 "relu", "relu6", "maxpool", "argmax"):
        assert name in CASES, name


@pytest.mark.parametrize("name,extra", PARAMS)
def test_case_matches_reference(parties, name, extra):
    case = CASES[name]
    opts = {**case.defaults, "n": SMALL_N, **extra}
    inputs = [case.inputs(role, opts) for role in (0, 1)]
    out = parties.run_split(lambda p: case.run(p, inputs[0], opts), lambda p: case.run(p, inputs[1], opts))
    assert case.check(opts, *out)["mismatches"] == 0
