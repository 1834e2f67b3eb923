"""The bundled trained models (``sirnn.data``) and ``sirnn demo --model NAME`` (two OS processes
over loopback: secure logits must equal the cleartext fixed-point interpreter bit for bit)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

TRAINED = ["fastgrnn_basic_motions", "fastgrnn_japanese_vowels",
           "fastgrnn_lowrank_japanese_vowels", "rnnpool_lfw_faces"]


def test_the_four_trained_models_are_bundled_with_samples():
    from sirnn.compiler import evaluate_clear
    from sirnn.data import bundled_models, load_bundled

    assert bundled_models() == TRAINED
    for name in TRAINED:
        program, s = load_bundled(name)
        assert program.has_values
        n = len(s["y"])
        assert 1 <= n <= 8 and s["x"].shape == (n,) + tuple(program.input_spec.shape)
        assert s["float_logits"].shape == (n, program.output_spec.shape[-1])
        fixed = evaluate_clear(program, s["x"])
        # on the bundled samples the fixed-point program predicts what the float model predicts
        assert (fixed.argmax(1) == s["float_logits"].argmax(1)).all(), name


def test_unknown_bundled_model_is_a_clear_error():
    from sirnn.data import load_bundled

    with pytest.raises(KeyError, match="bundled"):
        load_bundled("no_such_model")


@pytest.mark.tcp
@pytest.mark.timeout(60)
def test_model_demo_secure_equals_cleartext(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sirnn.cli.main", "demo", "--model",
                           "fastgrnn_japanese_vowels", "--n", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=55)
    assert proc.returncode == 0, f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    rows = re.findall(r"^\s+(\d)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+yes$",
                      out, re.M)
    assert len(rows) == 2, out
    for _, label, secure, clear, flt in rows:
        assert secure == clear
    assert re.search(r"^cell\s+fastgrnn\s", out, re.M) and re.search(r"^fc\s+linear\s", out, re.M)
    assert re.search(r"^total\s+[\d.]+ms\s+[\d.]+ MB\s+\d+$", out, re.M), out
    assert "OK: all 2 secure logit vectors are identical" in out


@pytest.mark.tcp
@pytest.mark.timeout(90)
def test_bare_sirnn_demo_is_the_default_model_on_all_its_samples(tmp_path):
    """The README quickstart's ``sirnn demo``: the default bundled model, every bundled sample;
    the secure prediction is printed next to the true label, fixed-point and float predictions."""
    from sirnn.cli.demo import DEFAULT_MODEL
    from sirnn.data import ABOUT, load_samples

    proc = subprocess.run([sys.executable, "-m", "sirnn", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=85)
    assert proc.returncode == 0, f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    s = load_samples(DEFAULT_MODEL)
    assert f"bundled model {DEFAULT_MODEL} on {len(s['y'])} of its test samples" in out
    assert ABOUT[DEFAULT_MODEL] in out
    rows = re.findall(r"^\s+(\d)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+(\d+) \(\S+\)\s+yes$",
                      out, re.M)
    assert [int(r[0]) for r in rows] == list(range(len(s["y"])))
    for i, label, secure, clear, flt in rows:
        assert int(label) == s["y"][int(i)] and secure == clear
        assert int(flt) == s["float_logits"][int(i)].argmax()
    assert re.search(r"secure session \(client view\): [\d.]+ s, [\d,]+ bytes .*, \d+ rounds", out)
    assert f"OK: all {len(s['y'])} secure logit vectors are identical" in out


def test_demo_math_and_model_exclude_each_other(capsys):
    from sirnn.cli.main import main

    assert main(["demo", "--math", "--model", "rnnpool_lfw_faces"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_model_demo_rejects_an_unknown_model(capsys):
    from sirnn.cli.main import main

    assert main(["demo", "--model", "nope"]) == 2
    assert "no bundled model" in capsys.readouterr().err


def test_model_demo_exits_1_when_a_secure_logit_differs(monkeypatch, capsys):
    """The referee's verdict, in process: a fake session whose first logit is off by one ULP."""
    import sirnn.transport.launch as launch
    from sirnn.cli.demo import run_model_demo
    from sirnn.compiler import evaluate_clear
    from sirnn.data import load_bundled

    name = "rnnpool_lfw_faces"
    program, s = load_bundled(name)
    out = np.array(evaluate_clear(program, s["x"][:2]))
    out[0, 0] += 2.0 ** -program.output_spec.scale
    rep = {"layers": [{"layer": "fc", "op": "linear", "seconds": 0.1, "bytes": 10, "rounds": 1}],
           "total": {"seconds": 0.1, "bytes": 10, "bytes_sent": 5, "bytes_recv": 5, "rounds": 1}}
    fake_b = {"pid": 2, "output": out, "digest": "0" * 64, "seconds": 0.1, "bytes_sent": 5,
              "bytes_recv": 5, "rounds": 1, "report": rep, "ot": "iknp"}
    monkeypatch.setattr(launch, "run_two_processes", lambda *a, **k: ({"pid": 1}, fake_b))
    assert run_model_demo(name, n=2) == 1
    text = capsys.readouterr().out
    assert "MISMATCH: 1 secure logit(s) differ" in text and re.search(r"\sNO$", text, re.M)
