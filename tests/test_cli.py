"""The ``sirnn`` command line: ``demo --math`` and ``bench`` run as real subprocesses (each starts two
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


# a result row: i, x | σ secure, clear, numpy, ulp | tanh secure, clear, numpy, ulp
_NUM = r"\s+(-?\d+\.\d+)"
_ROW = re.compile(r"^\s+(\d+)" + _NUM + r" \|" + _NUM * 4 + r" \|" + _NUM * 4 + "$", re.M)


@pytest.mark.timeout(120)
def test_math_demo_runs_and_the_secure_result_matches_the_cleartext(tmp_path):
    out = _ok(_sirnn(tmp_path, "demo", "--math"))
    assert ("OK: all 4,096 secure σ(x) and tanh(x) are identical to the cleartext fixed-point "
            "functionality") in out
    assert "all 1,048,576 correlated OTs are correct" in out
    assert "MISMATCH" not in out
    from sirnn.cli.args import OT_DEFAULT

    assert f"OT engine {OT_DEFAULT})" in out
    # who holds what is stated
    assert re.search(r"BOB\s+\(client, pid \d+\): private input", out)
    assert re.search(r"ALICE \(server, pid \d+\): no private data", out)
    assert "BOB alone learns σ(x) and tanh(x)" in out
    # the first 8 values shown: secure next to the cleartext functionality (equal) and numpy
    rows = _ROW.findall(out)
    assert [int(r[0]) for r in rows] == list(range(8))
    assert "4,088 more rows" in out
    for _, x, *vals in rows:
        x = float(x)
        s, s_clear, s_np, s_ulp, t, t_clear, t_np, t_ulp = map(float, vals)
        assert s == s_clear and t == t_clear
        assert s_np == pytest.approx(1 / (1 + np.exp(-x)), abs=1e-6)
        assert t_np == pytest.approx(np.tanh(x), abs=1e-6)
        assert abs(s - s_np) <= 2 * 2**-12 and abs(t - t_np) <= 2 * 2**-12
        assert s_ulp == pytest.approx(abs(s - s_np) * 2**12, abs=0.01)
        assert t_ulp == pytest.approx(abs(t - t_np) * 2**12, abs=0.01)
    # a report per phase: time, bytes per party, rounds; the throughputs
    for phase in ("handshake + OT set-up", "2^20 correlated OTs", "share BOB's input", "sigmoid",
                  "tanh", "reveal to BOB"):
        assert re.search(r"^\s+" + re.escape(phase) + r"\s+[\d.]+ms\s+[\d.,]+ [KM]?B\s+"
                         r"[\d.,]+ [KM]?B\s+\d+$", out, re.M), phase
    assert re.search(r"-> [\d.]+ M correlated OTs per s", out)
    assert len(re.findall(r"-> [\d,]+ per s, [\d,]+ B per element", out)) == 2
    assert re.search(r"share BOB's input\s+\S+\s+0 B\s+[\d.]+ KB\s+1$", out, re.M)  # BOB only
    assert re.search(r"reveal to BOB\s+\S+\s+[\d.]+ KB\s+0 B\s+1$", out, re.M)  # one way, one round
    # max ULP error vs numpy over the whole batch
    for name in ("sigmoid", "tanh"):
        m = re.search(rf"^\s+{name}\s+max ([\d.]+) ULP, mean ([\d.]+) ULP$", out, re.M)
        assert m and float(m[1]) <= 4 and float(m[2]) <= float(m[1])


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
@pytest.mark.parametrize("engine", ["ferret", "iknp"])
def test_bench_cot_json(tmp_path, engine):
    rep = _bench_json(tmp_path, "cot", "--n", "4096", "--ot", engine)
    assert rep["function"] == "cot" and rep["n"] == 4096 and rep["rounds"] == 2 and rep["ot"] == engine
    # the 32-bit correction per OT from ALICE; from BOB 128 bits of U per OT (IKNP) or its
    # choice flip, 1 bit per OT (Ferret, whose COTs come from the set-up: offline)
    bob = 4096 * 16 if engine == "iknp" else 4096 // 8
    assert rep["bytes_sent"] == {"alice": 4096 * 4, "bob": bob, "total": 4096 * 4 + bob}
    assert rep["bytes_per_element"] == (4096 * 4 + bob) / 4096
    assert rep["online"]["bytes"] == 4096 * 4 + bob and rep["offline"]["refill_bytes"] == 0
    # set-up: base OTs (+ IKNP COTs for Ferret's first round and its message); offline bytes
    assert rep["offline"]["bytes"] > (2_000_000 if engine == "ferret" else 1_000)


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
_N = 40  # 8 shown rows and 32 more


@pytest.fixture(scope="module")
def demo_session():
    from sirnn.cli.demo_math import _session
    from sirnn.transport import run_inproc

    return run_inproc(_session, _N)


@pytest.mark.timeout(120)
def test_demo_report_passes_on_a_correct_session(demo_session, capsys):
    from sirnn.cli.demo_math import _report

    a, b = demo_session
    assert a["result"] is None and a["input"] is None  # ALICE learns nothing and holds no input
    assert b["result"] is not None and len(b["input"]) == _N
    assert _report(_N, a, b, 1.0) == 0
    out = capsys.readouterr().out
    assert f"OK: all {_N} secure σ(x) and tanh(x) are identical" in out
    assert len(_ROW.findall(out)) == 8


@pytest.mark.timeout(120)
def test_math_demo_honours_ot(tmp_path):
    """``demo --math --ot ferret`` runs on Ferret: both parties say so, the results still match,
    and the 2^20 correlated OTs cost their 32-bit messages plus a choice bit, not IKNP's 128 bits."""
    from sirnn.cli.demo_math import _report, _session
    from sirnn.transport import run_inproc

    a, b = run_inproc(_session, _N, "ferret")
    assert a["ot"] == b["ot"] == "ferret"
    cot = [next(p for p in r["phases"] if p["name"].startswith("2^20")) for r in (a, b)]
    assert cot[0]["bytes_sent"] == 4 << 20 and cot[1]["bytes_sent"] == 1 << 17  # no refill in this batch
    assert _report(_N, a, b, 1.0) == 0
    out = _ok(_sirnn(tmp_path, "demo", "--math", "--ot", "ferret", "--n", "16"))
    assert "OT engine ferret)" in out and "OK: all 16 secure" in out
    assert re.search(r"-> [\d.]+ M correlated OTs per s \(32-bit messages, 33 bits per OT\)", out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what, index", [("sigmoid", 2), ("tanh", 5), ("tanh", 37), ("COT", 123)])
def test_demo_report_fails_on_a_wrong_result(demo_session, capsys, what, index):
    """One flipped bit anywhere (in a shown row or not) makes the demo fail."""
    from sirnn.cli.demo_math import _report

    a, b = demo_session
    b = dict(b)
    sig, th = (r.copy() for r in b["result"])
    if what == "COT":
        b["cot_out"] = b["cot_out"].copy()
        b["cot_out"][index] ^= np.uint64(1)
    else:
        (sig if what == "sigmoid" else th)[index] ^= np.uint64(1)
    b["result"] = [sig, th]
    assert _report(_N, a, b, 1.0) == 1
    out = capsys.readouterr().out
    assert "OK:" not in out
    assert re.search(rf"^MISMATCH: .*\b{what}: 1$", out, re.M)


# ---- bench: the options are part of the handshake ---------------------------------------------------
def _setup_with(role, chan, params_by_role):
    from sirnn.protocols.party import Party

    return Party.setup(role, chan, params=params_by_role[role]).peer is not None


@pytest.mark.timeout(120)
def test_bench_params_cover_the_options_but_not_seed_or_dump():
    from sirnn.cli.bench import bench_params
    from sirnn.errors import HandshakeError
    from sirnn.transport import run_inproc

    opts = {"n": 4096, "bw_in": 16, "scale_in": 12, "seed": 1, "dump": None}
    same = bench_params("sigmoid", opts)
    assert same == bench_params("sigmoid", {**opts, "seed": 7, "dump": "out.npz"})
    assert "seed" not in same["opts"] and "dump" not in same["opts"] and same["opts"]["n"] == 4096
    assert run_inproc(_setup_with, {ALICE: same, BOB: same}) == (True, True)
    for other in (bench_params("tanh", opts), bench_params("sigmoid", {**opts, "n": 4095}),
                  bench_params("sigmoid", {**opts, "extra": 1})):
        with pytest.raises(HandshakeError):
            run_inproc(_setup_with, {ALICE: same, BOB: other})
