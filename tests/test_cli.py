"""The ``sirnn`` command line: ``demo`` and ``bench`` run as real subprocesses (each starts two
party processes over loopback TCP), plus in-process checks of the demo's verdict."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from sirnn import ALICE, BOB

pytestmark = pytest.mark.tcp


def _sirnn(tmp_path, *args, module: str = "sirnn.cli.main", timeout: float = 90):
    """Run ``python -m <module> args`` from an unrelated directory; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def _ok(proc) -> str:
    assert proc.returncode == 0, f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n" \
                                 f"--- stderr\n{proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(120)
def test_demo_runs_and_the_secure_result_matches_the_cleartext(tmp_path):
    out = _ok(_sirnn(tmp_path, "demo"))
    assert "OK: all 8 secure results match the cleartext" in out
    assert "all 1,048,576 correlated OTs are correct" in out
    assert "MISMATCH" not in out
    # who holds what is stated
    assert re.search(r"BOB\s+\(client, pid \d+\): private input", out)
    assert re.search(r"ALICE \(server, pid \d+\): private thresholds", out)
    assert "BOB alone learns the results" in out
    # one result row per value, secure value next to the cleartext one, all equal
    rows = re.findall(r"^\s+(\d+)\s+(-?\d+\.\d\d)\s+(-?\d+\.\d\d) \|\s+(\d)\s+(\d) \|\s+(\d)\s+(\d) \|"
                      r"\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)$", out, re.M)
    assert [int(r[0]) for r in rows] == list(range(8))
    for _, x, t, gt, gt_c, ge, ge_c, relu, relu_c in rows:
        assert gt == gt_c and ge == ge_c and relu == relu_c
        assert int(ge) == (float(x) >= float(t)) and int(gt) == (float(t) > float(x))
        assert float(relu) == pytest.approx(max(float(x) - float(t), 0.0), abs=1e-3)
    # a report per phase: time, bytes per party, rounds; the COT throughput
    for phase in ("handshake + OT set-up", "2^20 correlated OTs", "compare t > x (millionaires')",
                  "DReLU(x - t)", "ReLU(x - t) = MUX", "reveal to BOB"):
        assert re.search(re.escape(phase) + r"\s+[\d.]+ms\s+[\d.,]+ [KM]?B\s+[\d.,]+ [KM]?B\s+\d+$",
                         out, re.M), phase
    assert re.search(r"-> [\d.]+ M correlated OTs per s", out)
    assert re.search(r"reveal to BOB\s+\S+\s+\d+ B\s+0 B\s+1$", out, re.M)  # one way, one round


def _bench_json(tmp_path, *args, module="sirnn.cli.main") -> dict:
    out = _ok(_sirnn(tmp_path, "bench", *args, "--json", module=module))
    rep = json.loads(out)
    assert rep["mismatches"] == 0
    assert isinstance(rep["rounds"], int) and rep["rounds"] >= 1
    assert rep["seconds"] > 0 and rep["setup_seconds"] > 0
    b = rep["bytes_sent"]
    assert b["alice"] > 0 and b["bob"] > 0 and b["total"] == b["alice"] + b["bob"]
    return rep


@pytest.mark.timeout(120)
def test_bench_cot_json(tmp_path):
    rep = _bench_json(tmp_path, "cot", "--n", "4096")
    assert rep["function"] == "cot" and rep["n"] == 4096 and rep["rounds"] == 2
    # 128 bits of U per OT from BOB, the 32-bit correction per OT from ALICE
    assert rep["bytes_sent"] == {"alice": 4096 * 4, "bob": 4096 * 16, "total": 4096 * 20}
    assert rep["bytes_per_element"] == 20


@pytest.mark.timeout(120)
def test_bench_millionaire_json_via_python_m_sirnn(tmp_path):
    rep = _bench_json(tmp_path, "millionaire", "--n", "1024", "--bw-in", "16", module="sirnn")
    assert rep["function"] == "millionaire" and rep["n"] == 1024 and rep["bw_in"] == 16
    assert rep["rounds"] <= 6  # 2 (leaf OTs) + ⌈log2(16/4)⌉ AND levels


def test_bench_list_and_bad_arguments(tmp_path):
    out = _ok(_sirnn(tmp_path, "bench", "list", module="sirnn"))
    assert re.search(r"^cot\s", out, re.M) and re.search(r"^millionaire\s", out, re.M)
    bad = _sirnn(tmp_path, "frobnicate", module="sirnn")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


# ---- the demo's verdict, in process ----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_session():
    from sirnn.cli.demo import _session
    from sirnn.transport import run_inproc

    return run_inproc(_session, 5)


@pytest.mark.timeout(120)
def test_demo_report_passes_on_a_correct_session(demo_session, capsys):
    from sirnn.cli.demo import _report

    a, b = demo_session
    assert a["result"] is None and b["result"] is not None  # only BOB learns the result
    assert _report(5, a, b, 1.0) == 0
    assert "OK: all 5 secure results match" in capsys.readouterr().out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["relu", "drelu", "cot"])
def test_demo_report_fails_on_a_wrong_result(demo_session, capsys, what):
    from sirnn.cli.demo import _report

    a, b = demo_session
    b = dict(b)
    gt, ge, relu = (r.copy() for r in b["result"])
    if what == "relu":
        relu[2] ^= np.uint64(1)
    elif what == "drelu":
        ge[0] ^= np.uint64(1)
    else:
        b["cot_out"] = b["cot_out"].copy()
        b["cot_out"][123] ^= np.uint64(1)
    b["result"] = [gt, ge, relu]
    assert _report(5, a, b, 1.0) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "OK:" not in out
