"""The Google-30-shaped low-rank FastGRNN (``examples/models/fastgrnn_google30_lowrank_untrained``:
SiRNN's Google-30 shape, D=32, H=100, T=99, 30 classes, W rank 16, U rank 35, random weights)
through the command line: ``sirnn compile model.onnx --calib calib_x.npy -o model.sirnn`` in a
subprocess, then the cleartext fixed-point run against the float logits saved with the model;
(slow) ``sirnn serve`` / ``sirnn infer`` on one sample, bit for bit against the cleartext run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

MODEL = Path(__file__).resolve().parent.parent / "examples" / "models" / "fastgrnn_google30_lowrank_untrained"


def _sirnn(*args, cwd, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "sirnn", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"sirnn {' '.join(map(str, args))}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("g30lr")
    out = _sirnn("compile", MODEL / "model.onnx", "--calib", MODEL / "calib_x.npy", "-o", d / "model.sirnn",
                 cwd=d)
    return d / "model.sirnn", out


def test_model_files_describe_the_paper_shape():
    meta = json.loads((MODEL / "model.json").read_text())
    arch = meta["architecture"]
    assert (arch["T"], arch["input_dim"], arch["hidden"], arch["num_classes"]) == (99, 32, 100, 30)
    assert (arch["w_rank"], arch["u_rank"]) == (16, 35)
    assert "DENSE" in meta["description"] and meta["training"]["trained"] is False
    with np.load(MODEL / "weights.npz", allow_pickle=False) as z:
        shapes = {k: z[k].shape for k in z.files if k != "__meta__"}
    assert shapes["cell.W1"] == (100, 16) and shapes["cell.W2"] == (16, 32)
    assert shapes["cell.U1"] == (100, 35) and shapes["cell.U2"] == (35, 100)
    assert "cell.W" not in shapes and "cell.U" not in shapes
    assert np.load(MODEL / "samples_x.npy").shape == (8, 99, 32)
    assert np.load(MODEL / "calib_x.npy").shape == (64, 99, 32)


def test_cli_compile_of_the_onnx_keeps_the_low_rank_factors(compiled):
    from sirnn.compiler import Program

    path, out = compiled
    assert re.search(r"^\s*cell\s+fastgrnn\s+\(100,\)", out, re.M), out
    assert "W1@" in out and "U2@" in out, out
    prog = Program.load(path)
    assert [o.op for o in prog.ops] == ["fastgrnn", "linear"]
    cell = prog.op_params(prog.ops[0])
    assert {k: tuple(p.values.shape) for k, p in cell.items() if k[0] in "WU"} == {
        "W1": (100, 16), "W2": (16, 32), "U1": (100, 35), "U2": (35, 100)}
    assert tuple(prog.input_spec.shape) == (99, 32) and tuple(prog.output_spec.shape) == (30,)


def test_cli_compiled_program_matches_the_float_logits(compiled):
    from sirnn.compiler import Program, evaluate_clear

    prog = Program.load(compiled[0])
    x, want = np.load(MODEL / "samples_x.npy"), np.load(MODEL / "samples_logits.npy")
    got = evaluate_clear(prog, x)
    assert got.shape == want.shape == (8, 30)
    # 16-bit fixed point, output scale 2^-14: measured max error ~2.4e-4 on the calibration set
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert (got.argmax(1) == want.argmax(1)).all()
    assert (got.argmax(1) == np.load(MODEL / "samples_y.npy")).all()


def _serve(path):
    """`sirnn serve PATH --port 0 --max-sessions 1`; returns (process, port, log lines)."""
    proc = subprocess.Popen([sys.executable, "-m", "sirnn", "serve", str(path), "--port", "0",
                             "--max-sessions", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()
    port: list[int] = []

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if m and not port:
                port.append(int(m[1]))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(60) or not port:
        proc.kill()
        proc.wait()
        raise AssertionError("sirnn serve did not start:\n" + "\n".join(lines))
    return proc, port[0], lines


@pytest.mark.slow
@pytest.mark.tcp
@pytest.mark.timeout(300)
def test_cli_serve_infer_equals_cleartext(compiled, tmp_path):
    """One secure inference through `sirnn serve` / `sirnn infer` (two OS processes, loopback)."""
    from sirnn.compiler import Program, evaluate_clear

    path = compiled[0]
    x = np.load(MODEL / "samples_x.npy")[:1]
    np.save(tmp_path / "x.npy", x)
    proc, port, lines = _serve(path)
    try:
        out = _sirnn("infer", "--port", port, "--input", tmp_path / "x.npy", "--json", "--no-progress",
                     cwd=tmp_path, timeout=280)
        assert proc.wait(30) == 0, "\n".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = json.loads(out)
    prog = Program.load(path)
    clear = evaluate_clear(prog, x)
    secure = np.asarray(res["output"], np.float64).reshape(clear.shape)
    assert np.array_equal(secure, clear)
    assert res["digest"] == prog.digest() and res["rounds"] > 99
