"""`sirnn infer --plot` and `sirnn precision --plot`: the pictures are written, and a missing
matplotlib is a one-line error."""

import sys

import pytest

from sirnn.cli.plots import plot_precision, plot_report, require_matplotlib
from sirnn.cli.precision import precision_report
from sirnn.errors import InputError

PNG = b"\x89PNG\r\n\x1a\n"


def _report():
    rows = [{"layer": "OT set-up", "op": "-", "seconds": 0.1, "bytes": 15000, "rounds": 4},
            {"layer": "rnn", "op": "fastgrnn", "seconds": 2.5, "bytes": 80 << 20, "rounds": 434},
            {"layer": "fc", "op": "linear", "seconds": 0.01, "bytes": 38000, "rounds": 10},
            {"layer": "reveal output", "op": "-", "seconds": 0.0, "bytes": 4, "rounds": 0}]
    return {"layers": rows, "total": {"seconds": 2.61, "bytes": sum(r["bytes"] for r in rows),
                                      "bytes_sent": 1, "bytes_recv": 2, "rounds": 448}}


def test_report_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.png"
    plot_report(_report(), out, title="model, batch 1")
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_precision_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    arrays = {}
    rep = precision_report("sigmoid", 12, 8, 12, 8, arrays=arrays)
    assert len(arrays["x"]) == rep["count"] and arrays["ulp"].max() == rep["max_ulp"]
    out = tmp_path / "sigmoid.png"
    plot_precision(rep, arrays, out)
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_missing_matplotlib_is_a_clear_error(monkeypatch, capsys, tmp_path):
    from sirnn.cli.main import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(InputError, match=r"^--plot needs matplotlib: pip install 'sirnn\[plot\]'"):
        require_matplotlib()
    assert main(["precision", "sigmoid", "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sirnn precision: error: --plot needs matplotlib: pip install 'sirnn[plot]' (or matplotlib>=3.8)"]
    assert not (tmp_path / "p.png").exists()


def test_unwritable_plot_path_is_a_clear_error(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(InputError, match="cannot write the plot"):
        plot_report(_report(), tmp_path / "no" / "such" / "dir" / "r.png")


@pytest.mark.timeout(120)
def test_infer_plot_from_the_cli(tmp_path, capsys):
    """`sirnn infer --plot FILE` against a server (a thread here) writes the per-layer picture."""
    pytest.importorskip("matplotlib")
    import numpy as np
    from modelhelp import ServedInThread, fastgrnn_model, inputs

    from sirnn.cli.main import main
    from sirnn.compiler import compile_model

    fm = fastgrnn_model(T=4)
    np.save(tmp_path / "x.npy", inputs(fm, 1, seed=3)[0])
    out = tmp_path / "infer.png"
    with ServedInThread(compile_model(fm, inputs(fm, 64))) as port:
        assert main(["infer", "--port", str(port), "--input", str(tmp_path / "x.npy"), "--plot", str(out),
                     "--no-progress"]) == 0
    assert out.read_bytes().startswith(PNG)
    cap = capsys.readouterr()
    assert f"wrote {out}" in cap.err and "rnn" in cap.out and "total" in cap.out
