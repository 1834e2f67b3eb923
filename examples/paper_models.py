"""The SiRNN paper's Heads network (MBConv blocks + RNNPool, head detection on SCUT-Head) at full
size, untrained, exported to ONNX (the Industrial-72 and Google-30 shapes are FastGRNN
classifiers: ``train.py --only fastgrnn_industrial72_untrained fastgrnn_google30_lowrank_untrained``).

Usage (from the repository root, with the ``train`` extra: torch, onnx)::

    python examples/paper_models.py                    # -> examples/models/rnnpool_heads_untrained/
    python examples/paper_models.py --out /tmp/models --calib 16

Architecture (every fact with its source in :data:`HEADS_SOURCES`; written into ``model.json``):
a 240×320 grey image (QVGA monochrome) → ConvBNReLU6(1→4, 3×3, stride 2, pad 1) → 120×160×4 →
RNNPool(8×8 patches, stride 4, rnn1 4→16, rnn2 16→16 both directions) → 29×39×64 → replicate pad
(bottom, right) → 30×40×64 → 14 MBConv blocks (MobileNetV2 inverted residuals, expansion 2:
4 × 32 ch, 4 × 32 ch, 3 × 96 ch with the first at stride 2, 3 × 128 ch) with L2Norm (per-channel
scale 10, 8, 5) taps after blocks 4, 8 and 11 and the raw output of block 14 → four S3FD-style
detection heads (3×3 convs: location 4 channels; confidence 2 channels, the first head 3+1 with a
max over the 3 background scores) → one vector of 18000 values: the confidences then the
locations, each head flattened in (y, x, channel) order, as SeeDot's ``answer`` of the face-2
model.

The weights are random (the data set is not available offline): BatchNorm keeps PyTorch's
defaults (the exporter folds it into the convolutions); the RNNPool cells use EdgeML's RNNPool
initial ζ, ν (sigmoid(100) = 1, sigmoid(−100) ≈ 0). Inputs: synthetic grey images (smooth random
blobs plus noise, pixel values 0..255 minus 117: SeeDot's declared input range is [−117, 137]).

Artefacts (``examples/models/rnnpool_heads_untrained/``): ``model.json`` (architecture, sources,
ONNX summary), ``calib_x.npy`` (a few synthetic images, float32 (n, 1, 240, 320)),
``samples_x.npy`` / ``samples_logits.npy`` (one image and the float model's output), and
``model.onnx`` (TorchScript exporter, opset 17, static batch 1, input ``x``, output ``logits``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import RNNPool, count_params  # noqa: E402
from train import write_sources  # noqa: E402

OPSET = 17
IN_HW = (240, 320)

_FACE2_SD = "github:microsoft/EdgeML (branch sirnn) tools/SeeDot/seedot/compiler/input/rnnpool-face-2.sd"
_QVGA_PY = "github:microsoft/EdgeML examples/pytorch/vision/Face_Detection/models/RPool_Face_QVGA_monochrome.py"

#: where each shape fact of the Heads network comes from
HEADS_SOURCES = {
    "the model is EdgeML's face-2 (RPool_Face_QVGA_monochrome) on SCUT-Head Part B":
        "github:microsoft/EdgeML (branch sirnn, the branch EzPC's SIRNN/README.md checks out) "
        "tools/SeeDot/faceDetection.md: 'face-2 ... subsets of the SCUT Head Part B dataset ... face-2 "
        "corresponds to the model RPool_Face_QVGA_monochrome'; github:mpc-msri/EzPC FSS/README.md lists "
        "'Heads (only Reciprocal Square Root) heads1/2/3.ezpc', whose Sqrt sizes 1200, 1200, 300 "
        "(FSS/benchmarks/heads{1,2,3}.ezpc) are face-2's three L2Norm taps at 30x40, 30x40, 15x20 "
        "(face-4 has a different layout)",
    "input 240x320x1 (grey QVGA), values in [-117, 137]":
        f"{_FACE2_SD}: `let X = (76800, 1) in [-117.0, 137.0]`, reshaped to (1, 240, 320, 1)",
    "ConvBNReLU6(1 -> 4, 3x3, stride 2, pad 1)":
        f"{_QVGA_PY}: `self.conv = ConvBNReLU(1, 4, stride=2)` (Conv2d no bias, BatchNorm2d, ReLU6); "
        f"{_FACE2_SD}: conv2d(Xt, CBR1F (1,3,3,1,4), s 2, p 1) then a per-channel scale + bias and relu6",
    "RNNPool: 8x8 patches, stride 4, rnn1 4 -> 16, rnn2 16 -> 16 (bidirectional, shared)":
        f"{_QVGA_PY}: `nn.Unfold(kernel_size=(8,8), stride=(4,4))`, `RNNPool(8, 8, 16, 16, 4)` "
        "(github:microsoft/EdgeML pytorch/edgeml_pytorch/graph/rnnpool.py: RNNPool(nRows, nCols, "
        "nHiddenDims, nHiddenDimsBiDir, inputDims), FastGRNN cells with zetaInit=100, nuInit=-100); "
        f"{_FACE2_SD}: W1 (16, 4), U1 (16, 16), W2 (16, 16), U2 (16, 16), 29 x 39 patches of 8x8x4 at "
        "4*patchX, 4*patchY, output rnnOutput [1, 30, 40, 64]",
    "replicate padding 29x39 -> 30x40":
        f"{_QVGA_PY}: `F.pad(x, (0,1,0,1), mode='replicate')`; {_FACE2_SD}: rnnOutput row 29 := row 28, "
        "column 39 := column 38",
    "14 MBConv blocks, expansion 2: 4 x 32, 4 x 32, 3 x 96 (first stride 2), 3 x 128":
        f"{_QVGA_PY}: MobileNetV2 inverted_residual_setting [[2,32,4,1],[2,32,4,1],[2,96,3,2],[2,128,3,1]], "
        "input_channel 64, InvertedResidual = 1x1 ConvBNReLU6 expand, 3x3 depthwise ConvBNReLU6, 1x1 "
        "conv + BN, residual iff stride 1 and in == out; "
        f"{_FACE2_SD}: L0F1 (1,1,1,64,128), L0F2 (128,3,3,1,1), L0F3 (1,1,1,128,32), ..., L8 stride 2 "
        "(32 -> 96), L11F3 (1,1,1,192,128), L13F3 (1,1,1,256,128)",
    "L2Norm taps after blocks 4, 8, 11 (scales 10, 8, 5)":
        f"{_QVGA_PY}: L2Norm(32, 10), L2Norm(32, 8), L2Norm(96, 5) applied after mob[0:4], mob[4:8], "
        "mob[8:11]; github:microsoft/EdgeML examples/pytorch/vision/Face_Detection/layers/modules/l2norm.py: "
        "x / (sqrt(sum over channels x^2) + 1e-10) * weight; "
        f"{_FACE2_SD}: conv2d(normaliseL2(M3), normW1 (32,1,1,1,1), g 32) etc.",
    "detection heads: 3x3 convs, loc 4 ch; conf 3+1 ch (max over 3) then 2 ch; on 32, 32, 96, 128 ch":
        f"{_QVGA_PY}: multibox(): loc Conv2d(c, 4, 3, padding=1), conf Conv2d(32, 3 + (2-1)) then "
        "Conv2d(c, 2); forward(): torch.max(conf_x[:, 0:3]) concatenated with conf_x[:, 3:]; "
        f"{_FACE2_SD}: conf0w (1,3,3,32,4), conf1w (1,3,3,32,2), conf2w (1,3,3,96,2), conf3w (1,3,3,128,2), "
        "loc*w (..., 4), argmax over CNraw[..., 0:3]",
    "output: 18000 values, confidences then locations, each (y, x, ch)-flattened":
        f"{_FACE2_SD}: `answer = init([1, 18000])`: CN0 (2400), CN1 (2400), CN2 (600), CN3 (600), LC0 "
        "(4800), LC1 (4800), LC2 (1200), LC3 (1200), NHWC reshapes; the paper's Heads counts heads from "
        "these (the prior boxes and NMS run on the client's cleartext output)",
    "weights": "NOT AVAILABLE (SCUT-Head is not reachable offline): random init, BatchNorm defaults "
               "(mean 0, var 1, weight 1, bias 0), convs kaiming_normal(fan_out) as MobileNetV2",
    "input images": "stand-in: synthetic grey images (smooth random blobs plus noise), 0..255 minus 117",
}


class ConvBNReLU6(nn.Sequential):
    """k×k convolution (no bias) → BatchNorm → ReLU6 (MobileNetV2's basic block)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class MBConv(nn.Module):
    """MobileNetV2 inverted residual: 1×1 expand (×t) → 3×3 depthwise (stride s) → 1×1 project
    (+ BN, no activation); the input is added back iff s = 1 and the channel counts agree."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 2):
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(ConvBNReLU6(cin, hidden, 1), ConvBNReLU6(hidden, hidden, 3, stride, hidden),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class L2Norm(nn.Module):
    """x / (‖x‖₂ over the channels + 1e-10) · weight (per channel)."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x):
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * self.weight.view(1, -1, 1, 1)


#: MobileNetV2 settings (expansion t, channels c, blocks n, first stride s) and the L2Norm taps
MBCONV_SETTING = ((2, 32, 4, 1), (2, 32, 4, 1), (2, 96, 3, 2), (2, 128, 3, 1))
TAPS = ((4, 32, 10.0), (8, 32, 8.0), (11, 96, 5.0))   # (after block, channels, L2Norm scale)


class HeadsNet(nn.Module):
    """The face-2 / RPool_Face_QVGA_monochrome head detector (see the module docstring)."""

    def __init__(self, h1: int = 16, h2: int = 16, patch: int = 8, stride: int = 4):
        super().__init__()
        self.conv = ConvBNReLU6(1, 4, 3, 2)
        self.rnnpool = RNNPool(4, h1, h2, patch, stride)
        for cell in (self.rnnpool.rnn1, self.rnnpool.rnn2):  # EdgeML's RNNPool: zetaInit 100, nuInit -100
            cell.zeta_raw.data.fill_(100.0)
            cell.nu_raw.data.fill_(-100.0)
        blocks, cin = [], 4 * h2
        for t, c, n, s in MBCONV_SETTING:
            for i in range(n):
                blocks.append(MBConv(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.ModuleList(blocks)
        self.norms = nn.ModuleList(L2Norm(c, sc) for _, c, sc in TAPS)
        src = [c for _, c, _ in TAPS] + [cin]
        self.loc = nn.ModuleList(nn.Conv2d(c, 4, 3, padding=1) for c in src)
        self.conf = nn.ModuleList(nn.Conv2d(c, 4 if i == 0 else 2, 3, padding=1) for i, c in enumerate(src))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        y = self.rnnpool(self.conv(x))
        y = F.pad(y, (0, 1, 0, 1), mode="replicate")
        sources, taps = [], {after: k for k, (after, _, _) in enumerate(TAPS)}
        for i, block in enumerate(self.blocks):
            y = block(y)
            if i + 1 in taps:
                sources.append(self.norms[taps[i + 1]](y))
        sources.append(y)
        confs, locs = [], []
        for i, s in enumerate(sources):
            c = self.conf[i](s)
            if i == 0:  # max-out background: the max of the 3 background scores, then the head score
                c = torch.cat([c[:, 0:3].amax(dim=1, keepdim=True), c[:, 3:]], dim=1)
            confs.append(c.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
            locs.append(self.loc[i](s).permute(0, 2, 3, 1).reshape(x.shape[0], -1))
        return torch.cat(confs + locs, dim=1)

    def arch(self) -> dict:
        return {"type": "rnnpool_heads", "input_shape": [1, *IN_HW], "input_layout": "C,H,W (batch N,C,H,W)",
                "conv": "ConvBNReLU6(1->4, 3x3, stride 2, pad 1)", "rnnpool": self.rnnpool.arch(),
                "pad": "replicate (0, 1, 0, 1): 29x39 -> 30x40",
                "mbconv_setting": [list(s) for s in MBCONV_SETTING], "mbconv_in_channels": 64,
                "l2norm_taps": [list(t) for t in TAPS],
                "heads": {"loc": [[m.in_channels, m.out_channels] for m in self.loc],
                          "conf": [[m.in_channels, m.out_channels] for m in self.conf]},
                "output": "18000 = conf (2400 + 2400 + 600 + 600) then loc (4800 + 4800 + 1200 + 1200), "
                          "each head's map flattened in (y, x, channel) order"}


class HeadsFront(nn.Module):
    """The part of Heads that today's importer compiles, for cost estimates: the first conv (its
    ReLU6 as ReLU: the importer has no Clip yet) and the RNNPool, flattened; the weights are
    ``net``'s. On an input of any size (H, W ≥ 18)."""

    def __init__(self, net: HeadsNet):
        super().__init__()
        self.conv, self.bn, self.rnnpool = net.conv[0], net.conv[1], net.rnnpool

    def forward(self, x):
        return self.rnnpool(torch.relu(self.bn(self.conv(x)))).reshape(x.shape[0], -1)

    def patches(self, hw: tuple[int, int]) -> int:
        h, w = ((v + 1) // 2 for v in hw)  # the stride-2 conv (3x3, pad 1)
        ho, wo = self.rnnpool.out_hw(h, w)
        return ho * wo


def export_front(path: Path, hw: tuple[int, int], n_calib: int = 2, seed: int = 0) -> tuple[np.ndarray, int]:
    """Export :class:`HeadsFront` (the seeded Heads weights) for ``hw`` inputs to ``path``;
    returns calibration images (crops of the synthetic ones) and its number of RNNPool patches."""
    torch.manual_seed(seed)
    front = HeadsFront(HeadsNet()).eval()
    calib = synthetic_images(n_calib, seed)[:, :, :hw[0], :hw[1]].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(front, (torch.from_numpy(calib[:1]),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["logits"], do_constant_folding=True)
    return calib, front.patches(hw)


def export_heads_crop(out_dir: Path, hw: tuple[int, int], n_calib: int = 2, seed: int = 0) -> int:
    """The whole Heads network (the seeded weights of :func:`build_heads`) exported for ``hw``
    inputs (a top-left crop of the synthetic images; H, W ≥ 18) into ``out_dir``: ``model.onnx``,
    ``calib_x.npy`` (``n_calib`` crops), ``samples_x.npy`` (the first). For cost scaling: every
    layer is convolutional, so bytes and time scale with the image area (the RNNPool with its
    patches). Returns the number of RNNPool patches."""
    torch.manual_seed(seed)
    net = HeadsNet().eval()
    calib = synthetic_images(n_calib, seed)[:, :, :hw[0], :hw[1]].copy()
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(calib[:1]),), str(out_dir / "model.onnx"), dynamo=False,
                          opset_version=OPSET, input_names=["x"], output_names=["logits"],
                          do_constant_folding=True)
    np.save(out_dir / "calib_x.npy", calib)
    np.save(out_dir / "samples_x.npy", calib[:1])
    return HeadsFront(net).patches(hw)


def synthetic_images(n: int, seed: int) -> np.ndarray:
    """``n`` grey 240×320 images: 12 Gaussian blobs of random size and brightness on a random
    gradient, plus pixel noise, clipped to 0..255, minus 117 (float32, (n, 1, 240, 320))."""
    rng = np.random.default_rng(seed)
    H, W = IN_HW
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    out = np.empty((n, 1, H, W), np.float32)
    for k in range(n):
        g = rng.uniform(-1, 1, 3)
        img = 128 + 60 * (g[0] * yy / H + g[1] * xx / W) + 20 * g[2]
        for _ in range(12):
            cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(8, 60)
            img += rng.uniform(-90, 90) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += rng.normal(0, 6, img.shape)
        out[k, 0] = np.clip(np.round(img), 0, 255) - 117.0
    return out


def _op_counts(m) -> dict:
    ops: dict[str, int] = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return dict(sorted(ops.items()))


def build_heads(out_root: Path, n_calib: int, seed: int = 0, write_onnx: bool = True) -> dict:
    import onnx
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(seed)
    model = HeadsNet().eval()
    calib = synthetic_images(n_calib, seed)
    sample = synthetic_images(1, seed + 1)
    with torch.no_grad():
        logits = model(torch.from_numpy(sample)).numpy()
    d = out_root / "rnnpool_heads_untrained"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(sample),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["logits"], do_constant_folding=True)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    got = ReferenceEvaluator(m).run(None, {"x": sample})[0]
    onnx_info = {"file": path.name, "exporter": f"torch.onnx.export (TorchScript, dynamo=False), torch "
                 f"{torch.__version__}", "opset": OPSET, "input": "x", "input_shape": [1, 1, *IN_HW],
                 "output": "logits", "output_shape": list(logits.shape), "batch": "static 1",
                 "nodes": len(m.graph.node), "op_counts": _op_counts(m), "bytes": path.stat().st_size,
                 "max_abs_diff_vs_torch": float(np.abs(got - logits).max()),
                 "checked_with": "onnx.reference.ReferenceEvaluator on samples_x"}
    meta = {"format_version": 1, "name": d.name,
            "description": "Shape of SiRNN's Heads network (paper Table IV: head detection on SCUT-Head "
                           "with MBConv blocks and RNNPool): EdgeML's face-2 / RPool_Face_QVGA_monochrome at "
                           "full size (240x320 grey input, 18000 outputs), untrained random weights",
            "architecture": model.arch(), "sources": HEADS_SOURCES, "num_parameters": count_params(model),
            "data": {"name": None, "synthetic": True,
                     "note": synthetic_images.__doc__.split("\n\n")[0].replace("\n", " ")},
            "training": {"trained": False, "seed": seed}, "onnx": onnx_info,
            "files": {"model.json": "this JSON", "calib_x.npy": f"calibration inputs {list(calib.shape)} float32",
                      "samples_x.npy": f"test input {list(sample.shape)} float32",
                      "samples_logits.npy": f"float model output {list(logits.shape)} float32",
                      "model.onnx": "ONNX export of the float model (regenerate: python examples/paper_models.py)"},
            "torch_version": torch.__version__}
    (d / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    write_sources(d, d.name, HEADS_SOURCES)
    np.save(d / "calib_x.npy", calib)
    np.save(d / "samples_x.npy", sample)
    np.save(d / "samples_logits.npy", logits.astype(np.float32))
    if not write_onnx:
        path.unlink()
    print(f"wrote {d}: {meta['num_parameters']:,} parameters, ONNX {onnx_info['nodes']} nodes "
          f"({onnx_info['bytes'] / 2**20:.1f} MB), |onnx - torch| {onnx_info['max_abs_diff_vs_torch']:.1e}")
    print("ONNX ops:", ", ".join(f"{k} {v}" for k, v in onnx_info["op_counts"].items()))
    return meta


def importer_gaps(onnx_path) -> dict:
    """What sirnn's ONNX importer has no handler for in ``onnx_path``: op types outside
    :func:`sirnn.compiler.onnx_import.registry.supported_ops`, with counts (the importer names
    only the unsupported nodes and stops; this counts them all)."""
    import onnx

    from sirnn.compiler.onnx_import.registry import supported_ops

    known = set(supported_ops())
    gaps: dict[str, int] = {}
    for n in onnx.load(str(onnx_path)).graph.node:
        if n.op_type != "Constant" and n.op_type not in known:
            gaps[n.op_type] = gaps.get(n.op_type, 0) + 1
    return dict(sorted(gaps.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "models", help="output root (default examples/models)")
    ap.add_argument("--calib", type=int, default=2, help="number of synthetic calibration images (default 2)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    build_heads(args.out, args.calib)
    gaps = importer_gaps(args.out / "rnnpool_heads_untrained" / "model.onnx")
    print("op types without an ONNX importer handler (folded when their inputs are constants, else refused):",
          ", ".join(f"{k} x{v}" for k, v in gaps.items()) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
