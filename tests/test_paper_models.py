"""The paper-shaped models of ``examples/`` (``train.py``'s Industrial-72 FastGRNN and
``paper_models.py``'s Heads network): the saved artefacts describe the shapes their sources give,
Industrial-72 compiles through the CLI and runs in fixed point close to its float logits, and the
Heads generator rebuilds the saved float output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parent.parent
IND = ROOT / "examples" / "models" / "fastgrnn_industrial72_untrained"
HEADS = ROOT / "examples" / "models" / "rnnpool_heads_untrained"


def test_industrial72_shape_and_sources():
    meta = json.loads((IND / "model.json").read_text())
    arch = meta["architecture"]
    assert (arch["T"], arch["hidden"], arch["input_dim"], arch["num_classes"]) == (7, 64, 72, 2)
    src = meta["sources"]
    assert "industrial.ezpc" in src["hidden 64"] and "for i=[0:7]" in src["T = 7 timesteps"]
    assert src["input features per timestep = 72"].startswith("NOT FOUND")


def test_industrial72_compiles_from_onnx_through_the_cli(tmp_path):
    from sirnn.compiler import Program, evaluate_clear

    out = tmp_path / "ind.sirnn"
    proc = subprocess.run([sys.executable, "-m", "sirnn", "compile", str(IND / "model.onnx"), "--calib",
                           str(IND / "calib_x.npy"), "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    prog = Program.load(out)
    assert [op.op for op in prog.ops] == ["fastgrnn", "linear"] and prog.ops[0].attrs["hidden"] == 64
    x = np.load(IND / "samples_x.npy").astype(np.float64)
    fixed = np.asarray(evaluate_clear(prog, x))
    assert np.abs(fixed - np.load(IND / "samples_logits.npy")).max() < 0.01


def test_heads_artefacts_describe_the_face2_network():
    meta = json.loads((HEADS / "model.json").read_text())
    arch = meta["architecture"]
    assert arch["input_shape"] == [1, 240, 320]
    assert (arch["rnnpool"]["patch"], arch["rnnpool"]["stride"], arch["rnnpool"]["h1"], arch["rnnpool"]["h2"]) == (8, 4, 16, 16)
    assert arch["mbconv_setting"] == [[2, 32, 4, 1], [2, 32, 4, 1], [2, 96, 3, 2], [2, 128, 3, 1]]
    assert meta["onnx"]["output_shape"] == [1, 18000]
    assert all("github:" in v or v.startswith(("NOT", "stand-in")) for v in meta["sources"].values())
    assert np.load(HEADS / "calib_x.npy").shape == (2, 1, 240, 320)
    assert np.load(HEADS / "samples_logits.npy").shape == (1, 18000)


def test_heads_generator_rebuilds_the_saved_output():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "examples"))
    from models import count_params
    from paper_models import IN_HW, HeadsFront, HeadsNet, synthetic_images

    torch.manual_seed(0)
    net = HeadsNet().eval()
    front = HeadsFront(net)
    assert front.patches(IN_HW) == 29 * 39 and front.patches((40, 48)) == 4 * 5
    meta = json.loads((HEADS / "model.json").read_text())
    assert count_params(net) == meta["num_parameters"] == 338_538
    x = synthetic_images(1, 1)
    assert np.array_equal(x, np.load(HEADS / "samples_x.npy"))
    assert np.array_equal(synthetic_images(2, 0), np.load(HEADS / "calib_x.npy"))
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    assert np.allclose(y, np.load(HEADS / "samples_logits.npy"), rtol=1e-4, atol=1e-4)
