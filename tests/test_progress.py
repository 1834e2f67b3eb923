"""Progress of a session: work estimates, the clock (percent, ETA, bytes), the client's display
(text and JSON lines) and the server's rate-limited log lines."""

import io
import json

import numpy as np
import pytest

from sirnn.cli.model import ProgressLine
from sirnn.compiler import ProgressEvent, compile_model
from sirnn.compiler.progress import ProgressClock, ProgressLog, progress_text
from sirnn.compiler.runtime import NONLINEAR_WORK, op_work
from modelhelp import fastgrnn_model, inputs


def _ev(done, step=0, steps=0, nbytes=0, op="fastgrnn"):
    return ProgressEvent(0, 2, "rnn", op, step, steps, done, nbytes)


def test_op_work_counts_macs_and_nonlinear_elements():
    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 16))
    w = {op.op: op_work(prog, op) for op in prog.ops}
    cell = next(op for op in prog.ops if op.op == "fastgrnn")
    D, H = prog.tensors[cell.inputs[0]].shape[1], cell.attrs["hidden"]
    assert w["fastgrnn"] == 4 * (H * D + H * H + NONLINEAR_WORK * 2 * H)
    fc = next(op for op in prog.ops if op.op == "linear")
    assert w["linear"] == prog.op_params(fc)["W"].shape[0] * H
    assert w["fastgrnn"] > w["linear"] > 0


def test_clock_eta_from_the_work_done_since_the_program_started(monkeypatch):
    import sirnn.compiler.progress as mod

    now = [100.0]
    monkeypatch.setattr(mod.time, "perf_counter", lambda: now[0])
    clock = ProgressClock()
    now[0] = 105.0  # 5 s of set-up: not part of the program's rate
    rec = clock(ProgressEvent(-1, 0, "OT set-up", "phase", bytes=1000))
    assert rec["eta_seconds"] is None and rec["seconds"] == 5.0 and rec["bytes"] == 1000
    assert clock(_ev(0.0))["eta_seconds"] is None
    now[0] = 107.0  # 2 s for 25 % → 6 s left
    rec = clock(_ev(0.25, 25, 100, 5 << 20))
    assert rec["percent"] == 25.0 and rec["eta_seconds"] == 6.0 and rec["step"] == 25
    assert progress_text(rec) == "[1/2] rnn (fastgrnn): timestep 25/100  25%  7.0 s, ETA 6.0 s, 5.24 MB"  # 5 · 2^20 B in MB = 10^6 B


def test_client_json_progress_lines():
    buf = io.StringIO()
    show = ProgressLine(buf, as_json=True)
    show(ProgressEvent(-1, 0, "OT set-up", "phase", bytes=10))
    for t in range(1, 5):
        show(_ev(t / 5, t, 4, 100 * t))
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert len(recs) == 5 and all(r["event"] == "progress" for r in recs)
    assert recs[0]["name"] == "OT set-up" and "step" not in recs[0]
    assert [r["step"] for r in recs[1:]] == [1, 2, 3, 4] and [r["bytes"] for r in recs[1:]] == [100, 200, 300, 400]
    assert recs[-1]["percent"] == 80.0 and recs[-1]["eta_seconds"] is not None


def test_server_log_a_line_per_tenth_and_none_for_short_sessions():
    lines = []
    log = ProgressLog(lines.append, "session 7: ", min_gap=0.0)
    for d in np.linspace(0, 1, 101):
        log(_ev(float(d)))
    assert len(lines) == 10 and all(ln.startswith("session 7: [1/2] rnn (fastgrnn)") for ln in lines)
    assert [ln.split("  ")[1] for ln in lines] == [f"{p}%" for p in range(10, 101, 10)]
    quiet = []
    log = ProgressLog(quiet.append, "session 8: ")  # default: at most one line per 5 s
    for d in np.linspace(0, 1, 101):
        log(_ev(float(d)))
    assert quiet == []


@pytest.mark.timeout(120)
def test_infer_json_streams_progress_events(tmp_path, capsys):
    """`sirnn infer --json`: one JSON progress object per event on stderr, the result on stdout."""
    from modelhelp import ServedInThread

    from sirnn.cli.main import main

    fm = fastgrnn_model(T=4)
    np.save(tmp_path / "x.npy", inputs(fm, 1, seed=3)[0])
    with ServedInThread(compile_model(fm, inputs(fm, 64))) as port:
        assert main(["infer", "--port", str(port), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    cap = capsys.readouterr()
    result = json.loads(cap.out)
    events = [json.loads(line) for line in cap.err.splitlines()]
    assert all(e["event"] == "progress" for e in events)
    assert [e["name"] for e in events if e["op"] == "phase"] == ["handshake + program", "OT set-up", "share input",
                                                                 "reveal output"]
    steps = [e["step"] for e in events if e["op"] == "fastgrnn"]
    assert steps == [0, 1, 2, 3, 4]
    total = result["bytes_sent"] + result["bytes_recv"]
    assert events[-1]["percent"] == 100.0 and 0 <= total - events[-1]["bytes"] < 1000  # all but the reveal
    assert [e["bytes"] for e in events] == sorted(e["bytes"] for e in events)
