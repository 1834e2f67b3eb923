"""Every user mistake on the command line is one line on stderr (exit code 2, or 1 for a failed
connection), never a traceback; every command and option is documented; ``--version``."""

import argparse
import json
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from sirnn import PROTOCOL_VERSION, __version__
from sirnn.cli.main import build_parser, main
from sirnn.data import model_path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-errors")
    good = model_path("fastgrnn_japanese_vowels")
    data = bytearray(open(good, "rb").read())
    data[len(data) // 3] ^= 0x10
    (d / "flipped.sirnn").write_bytes(bytes(data))
    (d / "text.npy").write_text("1, 2, 3\n")
    (d / "broken.json").write_text("{broken")
    (d / "incomplete.json").write_text('{"format": "sirnn-float-model"}')
    (d / "junk.npz").write_text("junk")
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.savez(d / "arrays.npz", a=np.zeros(3))
    np.savez(d / "strs.npz", s=np.array(["a", "b"]))
    np.save(d / "x.npy", np.zeros((29, 12)))
    np.save(d / "wrong.npy", np.zeros((3, 3)))
    np.save(d / "huge.npy", np.full((29, 12), 1e30))
    with zipfile.ZipFile(d / "bomb.sirnn", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("program.json", "w", force_zip64=True) as f:
            for _ in range(80):
                f.write(b" " * (1 << 20))
    return {"good": str(good), **{p.stem: str(p) for p in d.iterdir()}}


BAD = [
    [], ["frobnicate"], ["--port", "1"],
    ["demo", "--n", "0"], ["demo", "--n", "x"], ["demo", "--model", "nosuch"], ["demo", "--math", "--model", "m"],
    ["precision", "tanh", "--bw-in", "70"], ["precision", "tanh", "--bw-out", "0"],
    ["precision", "tanh", "--scale-in", "-1"], ["precision", "nosuch"], ["precision", "tanh", "--seed", "x"],
    ["bench", "sigmoid", "--n", "0"], ["bench", "sigmoid", "--n", "-5"], ["bench", "kkot", "--N", "1"],
    ["bench", "sigmoid", "--bw-in", "65"], ["bench", "sigmoid", "--opt", "noequals"], ["bench", "nosuch"],
    ["bench", "sigmoid", "--n", "1e3"],
    ["compile", "nosuch.onnx", "--calib", "{x}", "-o", "o.sirnn"],
    ["compile", "{text}", "--calib", "{text}", "-o", "o.sirnn"],
    ["compile", "{broken}", "--calib", "{x}", "-o", "o.sirnn"], ["compile", "{incomplete}", "--calib", "{x}", "-o", "o.sirnn"],
    ["compile", "{junk}", "--calib", "{x}", "-o", "o.sirnn"],
    ["compile", "m.onnx", "--calib", "{x}", "-o", "o.sirnn", "--bits", "65"],
    ["compile", "m.onnx", "--calib", "{x}", "-o", "o.sirnn", "--check", "-1"],
    ["compile", "m.onnx", "--calib", "{x}"],
    ["serve", "{good}", "--port", "99999"], ["serve", "{good}", "--port", "-1"], ["serve", "{good}", "--port", "http"],
    ["serve", "{good}", "--port", "0", "--max-batch", "0"], ["serve", "{good}", "--port", "0", "--timeout", "0"],
    ["serve", "{good}", "--port", "0", "--timeout", "nan"], ["serve", "{good}", "--port", "0", "--max-sessions", "-1"],
    ["serve", "{flipped}", "--port", "0"], ["serve", "{bomb}", "--port", "0"], ["serve", "nosuch.sirnn", "--port", "0"],
    ["serve", "{good}", "--port", "0", "--tls-cert", "nosuch.pem"], ["serve", "{good}", "--port", "0", "--tls-key", "k.pem"],
    ["infer", "--port", "99999", "--input", "{x}"], ["infer", "--port", "0", "--input", "{x}"],
    ["infer", "--port", "5000", "--input", "{text}"], ["infer", "--port", "5000", "--input", "nosuch.npy"],
    ["infer", "--port", "5000", "--input", "{objects}"], ["infer", "--port", "5000", "--input", "{strings}"],
    ["infer", "--port", "5000", "--input", "{junk}"],
    ["infer", "--port", "5000", "--input", "{strs}"], ["infer", "--port", "5000", "--input", "{x}", "--expect-digest", "abc"],
    ["infer", "--port", "5000", "--input", "{x}", "--timeout", "-3"],
    ["infer", "--port", "5000", "--input", "{x}", "--connect-timeout", "inf"],
    ["infer", "--port", "5000", "--input", "{x}", "--tls-ca", "nosuch.pem"],
    ["eval", "{flipped}", "--input", "{x}"], ["eval", "{good}", "--input", "{text}"], ["eval", "{good}", "--input", "{wrong}"],
    ["eval", "{good}", "--input", "{huge}"], ["eval", "{good}", "--input", "{arrays}"], ["eval", "{bomb}", "--input", "{x}"],
    ["inspect", "{text}"], ["inspect", "{bomb}"], ["inspect", "nosuch.sirnn"], ["inspect", "{flipped}"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) or "(none)" for a in BAD])
def test_a_user_mistake_is_one_line_on_stderr(argv, files, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main([a.format(**files) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert rc in (1, 2), (rc, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("sirnn"), err


def test_no_traceback_from_the_real_command(files):
    """The same in a separate process (what a user sees), for a damaged model and a bad port."""
    for argv in (["inspect", files["flipped"]], ["serve", files["good"], "--port", "99999"]):
        r = subprocess.run([sys.executable, "-m", "sirnn", *argv], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "damaged" in subprocess.run([sys.executable, "-m", "sirnn", "inspect", files["flipped"]],
                                       capture_output=True, text=True, timeout=60).stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"sirnn {__version__} (wire protocol version {PROTOCOL_VERSION})"


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("no subcommands")


def test_every_command_and_option_is_documented():
    ap = build_parser()
    sub = _subparsers(ap)
    summaries = {a.dest: a.help for a in sub._choices_actions}
    assert set(summaries) == set(sub.choices)
    for name, p in sub.choices.items():
        assert summaries[name] and p.description and len(p.description) > 20, name
        for action in p._actions:
            assert action.help, f"sirnn {name} {action.option_strings or action.dest} has no help"
        text = " ".join(p.format_help().split())
        for action in p._actions:  # a default that matters is shown
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
                assert f"default: {action.default}" in text or "default" in action.help, (name, action.dest)


def test_infer_waits_visibly_then_gives_up_in_one_line(files, capsys):
    with socket.socket() as s:  # a port where nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        rc = main(["infer", "--port", str(port), "--input", files["x"], "--connect-timeout", "0.5",
                   "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 2, err
    assert err[0].startswith(f"sirnn infer: waiting for server at 127.0.0.1:{port}…")
    assert err[1].startswith("sirnn infer: error:") and "could not connect" in err[1]


def test_infer_calls_raw_outputs_output_not_prediction(tmp_path, capsys, monkeypatch):
    """A model without argmax returns real values: `infer` prints them as the output."""
    import sirnn.compiler
    from modelhelp import inputs, plumbing_model
    from sirnn.compiler import compile_model, evaluate_clear
    from sirnn.compiler.session import InferenceResult

    fm = plumbing_model()
    prog = compile_model(fm, inputs(fm, 32))
    x = inputs(fm, 1, seed=9)[0]
    np.save(tmp_path / "x.npy", x)
    y = evaluate_clear(prog, x)

    def fake_infer(host, port, x, **kw):  # the session itself is tested in test_serve
        return InferenceResult(y, y, False, prog.digest(), prog.public(), 0.1, 10, 10, 3)

    monkeypatch.setattr(sirnn.compiler, "infer", fake_infer)
    assert main(["infer", "--port", "1", "--input", str(tmp_path / "x.npy"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("output: [[") and "prediction" not in out
    assert main(["infer", "--port", "1", "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert "prediction" not in rep and np.allclose(rep["output"], y)


def test_labels_from_the_server_reach_the_terminal_escaped(tmp_path, capsys, monkeypatch):
    """A (deviating) server's class labels and model name cannot move the cursor or forge lines."""
    import sirnn.compiler
    from modelhelp import fastgrnn_model, inputs
    from sirnn.compiler import Program, compile_model
    from sirnn.compiler.session import InferenceResult

    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 32))
    d = prog.public().describe()
    d["meta"] = {"name": "tiny\x1b]0;owned\x07", "labels": ["café", "\x1b[2Kno\nfake line", "up"]}
    public = Program.from_dict(d, None)
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4)))

    def fake_infer(host, port, x, **kw):
        return InferenceResult(np.array([0, 1]), np.array([0, 1]), True, public.digest(), public, 0.1, 1, 1, 1)

    monkeypatch.setattr(sirnn.compiler, "infer", fake_infer)
    assert main(["infer", "--port", "1", "--input", str(tmp_path / "x.npy"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and len(out.strip().splitlines()) == 2
    assert out.startswith("prediction: 0 (café), 1 ('\\x1b[2Kno\\nfake line')")
    d["meta"] = {"labels": {"0": "a dict, not a list"}}  # ignored, not a crash
    public = Program.from_dict(d, None)
    assert main(["infer", "--port", "1", "--input", str(tmp_path / "x.npy"), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("prediction: 0, 1\n")
