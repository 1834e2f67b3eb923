"""Regenerate the ONNX conformance zoo (tests/onnx_zoo/): small everyday PyTorch models exported
by both torch exporters, with calibration and test inputs.

    PYTHONPATH=src python tests/onnx_zoo/make_models.py [--only NAME ...]

Needs torch (and onnx, onnxscript for the dynamo exporter); the tests that read the zoo
(tests/test_onnx_zoo.py) need only onnx and onnxruntime. Every model has random weights (fixed
seeds) and is tiny (a few hundred parameters, sequences of 5–8 steps) so that the secure runs stay
cheap. Per model directory:

* ``ts.onnx`` — ``torch.onnx.export(..., dynamo=False)`` (TorchScript), dynamic batch axis unless
  the model is a static-shape one; opset 17 (``ts13.onnx``: opset 13 for a few models, where
  LayerNorm is decomposed and must be fused back; ``ts18.onnx``: opset 18, reduction axes as
  inputs); ``dynamo.onnx`` is opset 20;
* ``dynamo.onnx`` — torch 2.x's default exporter (``dynamo=True``), dynamic batch where the model
  has one; ``external`` models keep their weights in ``dynamo.onnx.data`` (ONNX external data);
* ``calib.npy`` (64 samples) and ``test.npy`` (8 samples), drawn from the model's input
  distribution; test samples are kept only when the float model's top-2 logit margin is at least
  5 % of the logits' spread (so that "same argmax" is a meaningful check at a 2 % error bound);
* ``models.json`` (zoo root): name, description, exporters, batch axis, file names;
* models with several inputs or outputs (:data:`MULTI`: initial states as inputs, (logits, h_n)
  outputs, ``sequence_lens`` from ``pack_padded_sequence``) have ``calib.npz`` / ``test.npz`` (one
  array per input name, the batch on the input's batch axis) and list their ``inputs`` and
  ``outputs`` in ``models.json``; a static-batch model (``fixed_batch``) is imported with the
  ``load`` options (``batch_axis=0``) and runs exactly that many samples at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent

try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the generator needs torch, the tests do not
    sys.exit("make_models.py needs torch (pip install torch onnx onnxscript)")


# ---------------------------------------------------------------------------------------------
# the models
# ---------------------------------------------------------------------------------------------
class SeqHead(nn.Module):
    """A recurrent layer over (N, T, D) → a pooled feature → Linear."""

    def __init__(self, rnn, pool="last", feat=None, K=4, norm=None):
        super().__init__()
        self.rnn, self.pool = rnn, pool
        H = rnn.hidden_size * (2 if rnn.bidirectional else 1)
        self.norm = norm
        self.att = nn.Linear(H, 1) if pool == "attention" else None
        self.fc = nn.Linear(feat or H, K)

    def forward(self, x):
        y = self.rnn(x)[0]
        if self.pool == "last":
            f = y[:, -1]
        elif self.pool == "mean":
            f = y.mean(1)
        elif self.pool == "max":
            f = y.amax(1)
        elif self.pool == "attention":
            a = torch.softmax(self.att(y), dim=1)
            f = (a * y).sum(1)
        else:  # "hn": the final states of every direction and layer, concatenated
            h = self.rnn(x)[1]
            h = h[0] if isinstance(h, tuple) else h
            f = h.transpose(0, 1).reshape(x.shape[0], -1)
        if self.norm is not None:
            f = self.norm(f)
        return self.fc(f)


class LNSeq(nn.Module):
    """LayerNorm over the features of every timestep, then a GRU."""

    def __init__(self, D=6, H=8, K=4):
        super().__init__()
        self.ln, self.rnn, self.fc = nn.LayerNorm(D), nn.GRU(D, H, batch_first=True), nn.Linear(H, K)

    def forward(self, x):
        return self.fc(self.rnn(self.ln(x))[0][:, -1])


class ConvRNN(nn.Module):
    """Conv1d front-end on (N, C, T) audio features → (N, T', C') → GRU / LSTM."""

    def __init__(self, C=5, OC=6, H=8, K=4, cell="gru", bn=False, pool=True, pad_mode=None):
        super().__init__()
        self.pad_mode = pad_mode
        self.conv = nn.Conv1d(C, OC, 3, padding=0 if pad_mode else 1)
        self.bn = nn.BatchNorm1d(OC) if bn else None
        self.pool = nn.MaxPool1d(2) if pool else None
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(OC, H, batch_first=True)
        self.fc = nn.Linear(H, K)

    def forward(self, x):
        if self.pad_mode:
            x = F.pad(x, (1, 1), mode=self.pad_mode)
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        y = F.relu(y)
        if self.pool is not None:
            y = self.pool(y)
        return self.fc(self.rnn(y.transpose(1, 2))[0][:, -1])


class CRNN(nn.Module):
    """Conv2d on (N, 1, H, W) images → the columns as a sequence → GRU."""

    def __init__(self, H=8, W=8, OC=3, Hd=8, K=4):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(1, OC, 3, padding=1), nn.MaxPool2d(2)
        self.rnn, self.fc = nn.GRU(OC * (H // 2), Hd, batch_first=True), nn.Linear(Hd, K)

    def forward(self, x):
        y = self.pool(F.relu(self.conv(x)))            # (N, OC, H/2, W/2)
        n, c, h, w = y.shape
        seq = y.permute(0, 3, 1, 2).reshape(n, w, c * h)  # columns as timesteps
        return self.fc(self.rnn(seq)[0][:, -1])


class STFTMag(nn.Module):
    """|STFT| front-end: a Conv1d with a fixed DFT basis (cos and sin rows), squared, summed,
    square root → LSTM over the frames."""

    def __init__(self, n_fft=8, hop=4, H=6, K=4):
        super().__init__()
        k = np.arange(n_fft // 2 + 1)[:, None]
        t = np.arange(n_fft)[None]
        win = np.hanning(n_fft + 1)[:-1]
        basis = np.concatenate([np.cos(2 * np.pi * k * t / n_fft) * win, -np.sin(2 * np.pi * k * t / n_fft) * win])
        self.register_buffer("basis", torch.tensor(basis[:, None, :], dtype=torch.float32))
        self.hop, self.nb = hop, n_fft // 2 + 1
        self.rnn, self.fc = nn.LSTM(self.nb, H, batch_first=True), nn.Linear(H, K)

    def forward(self, x):                                # (N, 1, L) waveform
        s = F.conv1d(x, self.basis, stride=self.hop)     # (N, 2·nb, frames)
        re, im = s[:, :self.nb], s[:, self.nb:]
        mag = torch.sqrt(re * re + im * im + 1e-3)
        return self.fc(self.rnn(mag.transpose(1, 2))[0][:, -1])


class SensorCNN(nn.Module):
    """Conv1d → ReLU → Conv1d → global average pooling → Linear (a sensor classifier)."""

    def __init__(self, C=3, K=4, act="relu"):
        super().__init__()
        self.c1, self.c2, self.fc = nn.Conv1d(C, 6, 3, padding=1), nn.Conv1d(6, 6, 3, dilation=2, padding=2), nn.Linear(6, K)
        self.act = {"relu": nn.ReLU(), "leaky": nn.LeakyReLU(0.1), "hardswish": nn.Hardswish()}[act]

    def forward(self, x):
        y = self.act(self.c2(self.act(self.c1(x))))
        return self.fc(F.adaptive_avg_pool1d(y, 1).flatten(1))


class DSCNN(nn.Module):
    """Depthwise-separable CNN keyword spotter on (N, 1, T, F) MFCC-like features."""

    def __init__(self, K=4):
        super().__init__()
        self.c0 = nn.Conv2d(1, 4, 3, stride=1, padding=1)
        self.bn0 = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(4, 6, 1)
        self.bn1 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, K)

    def forward(self, x):
        y = F.relu(self.bn0(self.c0(x)))
        y = F.relu(self.bn1(self.pw(self.dw(y))))
        return self.fc(F.avg_pool2d(y, (8, 6)).flatten(1))


class StaticFrames(nn.Module):
    """One utterance of static shape (T, D) (no batch axis) → LSTM / GRU → Linear."""

    def __init__(self, D=6, H=6, K=4, cell="lstm"):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(D, H)
        self.fc = nn.Linear(H, K)

    def forward(self, x):                                # (T, D)
        return self.fc(self.rnn(x)[0][-1])


class MLP(nn.Module):
    """Flatten → Linear → activation(s) → Linear (→ softmax)."""

    def __init__(self, D=12, K=4, acts=("relu",), softmax=False):
        super().__init__()
        self.l1, self.l2, self.softmax = nn.Linear(D, 10), nn.Linear(10, K), softmax
        table = {"relu": nn.ReLU(), "hardswish": nn.Hardswish(), "leaky": nn.LeakyReLU(0.2), "prelu": nn.PReLU(10),
                 "hardsigmoid": nn.Hardsigmoid(), "relu6": nn.ReLU6(), "softplus": nn.Softplus(), "tanh": nn.Tanh(),
                 "silu": nn.SiLU(), "elu_free_sigmoid": nn.Sigmoid()}
        self.acts = nn.Sequential(*[table[a] for a in acts])

    def forward(self, x):
        y = self.l2(self.acts(self.l1(x.flatten(1))))
        return torch.softmax(y, -1) if self.softmax else y


class LearnedH0(nn.Module):
    """GRU with a learned initial state (an nn.Parameter expanded over the batch)."""

    def __init__(self, D=4, H=6, K=4):
        super().__init__()
        self.rnn, self.fc = nn.GRU(D, H, batch_first=True), nn.Linear(H, K)
        self.h0 = nn.Parameter(torch.randn(1, 1, H) * 0.5)

    def forward(self, x):
        return self.fc(self.rnn(x, self.h0.expand(1, x.shape[0], -1).contiguous())[0][:, -1])


class ResidualGRU(nn.Module):
    """GRU output plus a linear projection of its input (a residual over two tensors), then
    InstanceNorm-free mean pooling."""

    def __init__(self, D=4, H=6, K=4):
        super().__init__()
        self.rnn, self.proj, self.fc = nn.GRU(D, H, batch_first=True), nn.Linear(D, H), nn.Linear(H, K)

    def forward(self, x):
        y = self.rnn(x)[0] + self.proj(x)
        return self.fc(torch.tanh(y).mean(1))


class InstNormConv(nn.Module):
    """Conv1d → InstanceNorm1d (affine) → ReLU → GRU."""

    def __init__(self, C=4, H=6, K=4):
        super().__init__()
        self.conv, self.norm = nn.Conv1d(C, 6, 3, padding=1), nn.InstanceNorm1d(6, affine=True)
        self.rnn, self.fc = nn.GRU(6, H, batch_first=True), nn.Linear(H, K)

    def forward(self, x):
        y = F.relu(self.norm(self.conv(x)))
        return self.fc(self.rnn(y.transpose(1, 2))[0][:, -1])


class GroupNormConv(nn.Module):
    """Conv1d → GroupNorm (2 groups) → ReLU → mean over time → Linear."""

    def __init__(self, C=4, K=4):
        super().__init__()
        self.conv, self.norm, self.fc = nn.Conv1d(C, 6, 3, padding=1), nn.GroupNorm(2, 6), nn.Linear(6, K)

    def forward(self, x):
        return self.fc(F.relu(self.norm(self.conv(x))).mean(-1))


class L2Embed(nn.Module):
    """LSTM → Linear embedding → L2 normalisation (a speaker-embedding style head)."""

    def __init__(self, D=4, H=6, E=5):
        super().__init__()
        self.rnn, self.fc = nn.LSTM(D, H, batch_first=True), nn.Linear(H, E)

    def forward(self, x):
        return F.normalize(self.fc(self.rnn(x)[0][:, -1]), dim=-1)


class DotAttention(nn.Module):
    """LSTM states attended by their last state (scores = Y·h_T, a tensor × tensor MatMul)."""

    def __init__(self, D=4, H=6, K=4):
        super().__init__()
        self.rnn, self.fc = nn.LSTM(D, H, batch_first=True), nn.Linear(H, K)

    def forward(self, x):
        y = self.rnn(x)[0]                                # (N, T, H)
        q = y[:, -1:, :]                                  # (N, 1, H)
        a = torch.softmax(torch.matmul(q, y.transpose(1, 2)) / 2.0, dim=-1)  # (N, 1, T)
        return self.fc(torch.matmul(a, y)[:, 0])


class GRUState(nn.Module):
    """nn.GRU called with (x, h0), both graph inputs, returning (logits, h_n): a model that carries
    its recurrent state across calls (issue 10: initial states as inputs, several outputs)."""

    def __init__(self, D=4, H=6, K=4):
        super().__init__()
        self.rnn, self.fc = nn.GRU(D, H, batch_first=True), nn.Linear(H, K)

    def forward(self, x, h0):
        y, h = self.rnn(x, h0)
        return self.fc(y[:, -1]), h


class LSTMState(nn.Module):
    """nn.LSTM called with (x, (h0, c0)) returning (y, (h, c)): every LSTM output a graph output."""

    def __init__(self, D=4, H=5):
        super().__init__()
        self.rnn = nn.LSTM(D, H, batch_first=True)

    def forward(self, x, h0, c0):
        y, (h, c) = self.rnn(x, (h0, c0))
        return y, h, c


class PackedGRU(nn.Module):
    """A bidirectional GRU over a padded batch of fixed lengths (pack_padded_sequence: ONNX
    ``sequence_lens`` < T, per sample, a static batch), mean over time of the padded output →
    Linear, and the final states."""

    def __init__(self, lens=(5, 3, 2), D=4, H=5, K=4):
        super().__init__()
        self.rnn, self.fc = nn.GRU(D, H, batch_first=True, bidirectional=True), nn.Linear(2 * H, K)
        self.register_buffer("lens", torch.tensor(lens))

    def forward(self, x):
        p = nn.utils.rnn.pack_padded_sequence(x, self.lens, batch_first=True, enforce_sorted=True)
        y, h = self.rnn(p)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.fc(y.mean(1)), h


def _rnn(kind, D, H, **kw):
    return {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](D, H, batch_first=True, **kw)


#: name → (description, constructor, input shape per sample (or the full static shape), static?,
#:         extra exports)
ZOO = {
    "lstm_last": ("LSTM, last state → Linear", lambda: SeqHead(_rnn("lstm", 4, 8)), (6, 4), False, ()),
    "gru_last": ("GRU, last state → Linear", lambda: SeqHead(_rnn("gru", 4, 8)), (6, 4), False, ()),
    "rnn_tanh": ("Elman RNN (tanh)", lambda: SeqHead(_rnn("rnn", 4, 8)), (6, 4), False, ()),
    "rnn_relu": ("Elman RNN (relu)", lambda: SeqHead(_rnn("rnn", 4, 6, nonlinearity="relu")), (6, 4), False, ()),
    "lstm_stacked": ("2-layer LSTM", lambda: SeqHead(_rnn("lstm", 4, 6, num_layers=2)), (6, 4), False, ()),
    "gru_stacked": ("2-layer GRU", lambda: SeqHead(_rnn("gru", 4, 6, num_layers=2)), (6, 4), False, ()),
    "bilstm_mean": ("bidirectional LSTM, mean over time", lambda: SeqHead(_rnn("lstm", 4, 5, bidirectional=True), "mean"),
                    (6, 4), False, ()),
    "bigru_mean": ("bidirectional GRU, mean over time (issue 10)", lambda: SeqHead(_rnn("gru", 8, 6, bidirectional=True), "mean"),
                   (8, 8), False, ("ts18",)),
    "bigru_hn": ("bidirectional 2-layer GRU, final states of all directions",
                 lambda: SeqHead(_rnn("gru", 4, 5, bidirectional=True, num_layers=2), "hn", feat=20), (6, 4), False, ()),
    "lstm_max": ("LSTM, max over time", lambda: SeqHead(_rnn("lstm", 4, 6), "max"), (6, 4), False, ("ts18",)),
    "lstm_layernorm": ("LSTM → LayerNorm → Linear (issue 10)",
                       lambda: SeqHead(_rnn("lstm", 8, 6), norm=nn.LayerNorm(6)), (8, 8), False, ("ts13",)),
    "layernorm_gru": ("LayerNorm per timestep → GRU", lambda: LNSeq(), (6, 6), False, ("ts13",)),
    "gru_attention": ("GRU, softmax attention pooling over time (issue 10)",
                      lambda: SeqHead(_rnn("gru", 8, 6), "attention"), (8, 8), False, ()),
    "lstm_dot_attention": ("LSTM, dot-product attention by the last state", lambda: DotAttention(), (6, 4), False, ()),
    "conv1d_gru": ("Conv1d + MaxPool front-end on audio features → GRU", lambda: ConvRNN(), (5, 10), False, ()),
    "conv1d_bn_lstm": ("Conv1d + BatchNorm → LSTM", lambda: ConvRNN(cell="lstm", bn=True, pool=False), (5, 8), False, ()),
    "reflectpad_conv_gru": ("reflect padding → Conv1d → GRU", lambda: ConvRNN(pad_mode="reflect", pool=False),
                            (5, 8), False, ()),
    "crnn_image": ("CRNN: Conv2d + MaxPool on images, columns → GRU", lambda: CRNN(), (1, 8, 8), False, ()),
    "stft_lstm": ("|STFT| front-end (fixed DFT basis conv, square, sqrt) → LSTM", lambda: STFTMag(), (1, 36), False, ()),
    "sensor_cnn": ("sensor classifier: Conv1d, dilated Conv1d, global average pool", lambda: SensorCNN(),
                   (3, 12), False, ()),
    "sensor_cnn_leaky": ("sensor classifier with LeakyReLU", lambda: SensorCNN(act="leaky"), (3, 12), False, ()),
    "kws_dscnn": ("keyword spotter: depthwise-separable CNN, BatchNorm, average pool", lambda: DSCNN(),
                  (1, 8, 6), False, ()),
    "kws_gru_static": ("keyword spotter on one utterance of static shape (T, D) → GRU",
                       lambda: StaticFrames(cell="gru"), (8, 6), True, ()),
    "frames_lstm_static": ("audio frames of static shape (T, D) → LSTM (issue 10: no batch axis)",
                           lambda: StaticFrames(), (10, 6), True, ()),
    "mlp_hardswish_softmax": ("MLP with Hardswish, softmax output", lambda: MLP(acts=("hardswish",), softmax=True),
                              (3, 4), False, ()),
    "mlp_leaky_prelu": ("MLP with LeakyReLU and PReLU", lambda: MLP(acts=("leaky", "prelu")), (3, 4), False, ()),
    "mlp_hardsigmoid_relu6": ("MLP with ReLU6 and Hardsigmoid", lambda: MLP(acts=("relu6", "hardsigmoid")),
                              (3, 4), False, ()),
    "mlp_softplus_silu": ("MLP with Softplus and SiLU", lambda: MLP(acts=("softplus", "silu")), (3, 4), False, ()),
    "gru_learned_h0": ("GRU with a learned initial state", lambda: LearnedH0(), (6, 4), False, ()),
    "residual_gru": ("GRU + linear residual of the input, tanh, mean", lambda: ResidualGRU(), (6, 4), False, ()),
    "instnorm_conv_gru": ("Conv1d → InstanceNorm1d → GRU", lambda: InstNormConv(), (4, 8), False, ()),
    "lstm_l2_embedding": ("LSTM → Linear → L2 normalisation", lambda: L2Embed(), (6, 4), False, ()),
    "gru_external_data": ("GRU with its weights in ONNX external data (model.onnx.data)",
                          lambda: SeqHead(_rnn("gru", 4, 8)), (6, 4), False, ("external",)),
    # (append new models here: the seed of a model is 100 + its position)
    "groupnorm_conv": ("Conv1d → GroupNorm → ReLU → mean over time", lambda: GroupNormConv(), (4, 8), False, ()),
}


#: models with several inputs or outputs (issue 10): name → (description, constructor, inputs
#: [(name, per-sample shape, batch axis, scale of the random values)], outputs {name: batch axis}, batch (None:
#: dynamic; an int: a static batch of that size, imported with batch_axis=0))
MULTI = {
    "gru_h0_io": ("nn.GRU called with (x, h0), returning (logits, h_n)", lambda: GRUState(),
                  [("x", (6, 4), 0, 1.0), ("h0", (1, 6), 1, 0.5)], {"y": 0, "hn": 1}, None),
    "lstm_state_io": ("nn.LSTM called with (x, (h0, c0)), returning (y, (h, c))", lambda: LSTMState(),
                      [("x", (6, 4), 0, 1.0), ("h0", (1, 5), 1, 0.5), ("c0", (1, 5), 1, 0.5)],
                      {"y": 0, "hn": 1, "cn": 1}, None),
    "bigru_packed_lens": (("bidirectional GRU over a padded batch of lengths 5, 3, 2 (pack_padded_sequence: "
                           "sequence_lens < T), mean → Linear, and h_n"), lambda: PackedGRU(),
                          [("x", (5, 4), 0, 1.0)], {"y": 0, "hn": 1}, 3),
}


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def _export(model, x, path: Path, dynamo: bool, static: bool, opset: int | None = None, external: bool = False):
    kw = {"input_names": ["x"], "output_names": ["y"], "dynamo": dynamo}
    if opset:
        kw["opset_version"] = opset
    if not static:
        if dynamo:
            kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}}
        else:
            kw["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    if dynamo:
        kw["external_data"] = external
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), **kw)
    if not external and Path(str(path) + ".data").exists():
        import onnx  # fold stray external data back in: the zoo files are self-contained

        m = onnx.load(str(path))
        os.remove(str(path) + ".data")
        onnx.save(m, str(path))


def _inputs(rng, shape, n):
    return rng.normal(0, 1, (n,) + tuple(shape)).astype(np.float32)


def build(name: str, entry, seed: int) -> dict:
    desc, ctor, shape, static, extra = entry
    torch.manual_seed(seed)
    model = ctor().eval()
    with torch.no_grad():  # non-trivial BatchNorm / norm statistics and PReLU slopes
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, (nn.LayerNorm, nn.InstanceNorm1d, nn.GroupNorm)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    d = ROOT / name
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    calib = _inputs(rng, shape, 64)
    pool = _inputs(rng, shape, 64)
    with torch.no_grad():
        if static:
            out = np.stack([model(torch.from_numpy(p)).numpy() for p in pool])
        else:
            out = model(torch.from_numpy(pool)).numpy()
    out = out.reshape(len(pool), -1)
    top = np.sort(out, axis=1)
    margin = (top[:, -1] - top[:, -2]) / max(float(np.ptp(out)), 1e-9)
    test = pool[margin >= 0.05][:8]
    np.save(d / "calib.npy", calib)
    np.save(d / "test.npy", test)
    x = torch.from_numpy(calib[0] if static else calib[:2])
    files = {}
    extra_ts = [(e, False, int(e[2:])) for e in extra if e.startswith("ts")]  # e.g. ts13: opset 13
    for tag, dyn, opset in [("ts", False, 17), ("dynamo", True, None)] + extra_ts:
        ext = dyn and "external" in extra
        try:
            _export(model, x, d / f"{tag}.onnx", dyn, static, opset, external=ext)
            files[tag] = f"{tag}.onnx"
        except Exception as e:  # noqa: BLE001 - record which exporter cannot export the model
            print(f"  {name} {tag}: export failed: {type(e).__name__}: {str(e)[:200]}")
    return {"name": name, "description": desc, "static": static, "input_shape": list(shape), "files": files,
            "external_data": "external" in extra, "test_samples": int(len(test))}


def _export_multi(model, xs: dict, outputs, path: Path, dynamo: bool, static: bool, axes: dict):
    kw = {"input_names": list(xs), "output_names": list(outputs), "dynamo": dynamo}
    if not static:
        if dynamo:
            b = torch.export.Dim("batch", min=1, max=1024)
            kw["dynamic_shapes"] = {k: {axes[k]: b} for k in xs}
        else:
            kw["dynamic_axes"] = {k: {b: "batch"} for k, b in list(axes.items()) + list(outputs.items())}
    else:
        kw["opset_version"] = 17
    if not dynamo:
        kw["opset_version"] = 17
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(torch.from_numpy(v) for v in xs.values()), str(path), **kw)
    if Path(str(path) + ".data").exists():
        import onnx

        m = onnx.load(str(path))
        os.remove(str(path) + ".data")
        onnx.save(m, str(path))


def _run_torch(model, xs: dict, specs, out_axes, batch) -> list:
    """The model's outputs on xs (batch-leading per input), batch-leading, as numpy arrays, run
    in batches of ``batch`` (a static batch) or at once."""
    n = len(next(iter(xs.values())))
    step = batch or n
    outs = []
    with torch.no_grad():
        for i in range(0, n, step):
            args = [torch.from_numpy(np.moveaxis(xs[k][i:i + step], 0, b)) for k, _, b, _ in specs]
            o = model(*args)
            outs.append([t.numpy() for t in (o if isinstance(o, tuple) else (o,))])
    res = []
    for j, b in enumerate(out_axes):
        res.append(np.concatenate([np.moveaxis(o[j], b, 0) for o in outs]))
    return res


def build_multi(name: str, entry, seed: int) -> dict:
    """A model with several inputs / outputs: calib.npz and test.npz (one array per input name,
    each with its batch on the input's batch axis); test samples kept when every output's top-2
    margin (over the sample's flattened output) is at least 5 % of that output's spread."""
    desc, ctor, specs, outputs, batch = entry
    torch.manual_seed(seed)
    model = ctor().eval()
    d = ROOT / name
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)

    def draw(n):
        return {k: (rng.normal(0, 1, (n,) + tuple(shape)) * sc).astype(np.float32) for k, shape, _, sc in specs}

    calib, pool = draw(63 if batch else 64), draw(3 * 256 if batch else 256)
    outs = _run_torch(model, pool, specs, list(outputs.values()), batch)
    keep = np.ones(len(outs[0]), bool)
    for o in outs:
        f = o.reshape(len(o), -1)
        top = np.sort(f, axis=1)
        keep &= (top[:, -1] - top[:, -2]) / max(float(np.ptp(f)), 1e-9) >= 0.05
    if batch:  # whole batches only (each position has its own sequence length)
        keep = np.repeat(keep.reshape(-1, batch).all(1), batch)
        idx = np.flatnonzero(keep)[:2 * batch]
    else:
        idx = np.flatnonzero(keep)[:8]
    test = {k: v[idx] for k, v in pool.items()}
    axes = {k: b for k, _, b, _ in specs}
    np.savez(d / "calib.npz", **{k: np.moveaxis(v, 0, axes[k]) for k, v in calib.items()})
    np.savez(d / "test.npz", **{k: np.moveaxis(v, 0, axes[k]) for k, v in test.items()})
    ex = {k: np.moveaxis(v[:batch or 2], 0, axes[k]) for k, v in calib.items()}
    files = {}
    for tag, dyn in (("ts", False), ("dynamo", True)):
        try:
            _export_multi(model, ex, outputs, d / f"{tag}.onnx", dyn, batch is not None, axes)
            files[tag] = f"{tag}.onnx"
        except Exception as e:  # noqa: BLE001 - record which exporter cannot export the model
            print(f"  {name} {tag}: export failed: {type(e).__name__}: {str(e)[:200]}")
    return {"name": name, "description": desc, "static": False, "input_shape": list(specs[0][1]),
            "inputs": [{"name": k, "shape": list(shape), "batch_axis": b} for k, shape, b, _ in specs],
            "outputs": [{"name": k, "batch_axis": b} for k, b in outputs.items()], "files": files, "external_data": False, "test_samples": len(idx),
            **({"fixed_batch": batch, "load": {"batch_axis": 0}} if batch else {})}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="regenerate only these models")
    args = ap.parse_args(argv)
    index_path = ROOT / "models.json"
    index = {m["name"]: m for m in json.loads(index_path.read_text())} if index_path.exists() else {}
    for k, (name, entry) in enumerate(ZOO.items()):
        if args.only and name not in args.only:
            continue
        print(f"{name} ...", flush=True)
        index[name] = build(name, entry, seed=100 + k)
    for k, (name, entry) in enumerate(MULTI.items()):
        if args.only and name not in args.only:
            continue
        print(f"{name} ...", flush=True)
        index[name] = build_multi(name, entry, seed=200 + k)
    index = {n: index[n] for n in list(ZOO) + list(MULTI) if n in index}
    index_path.write_text(json.dumps(list(index.values()), indent=1) + "\n")
    print(f"{len(index)} models, {sum(len(m['files']) for m in index.values())} ONNX files → {ROOT}")


if __name__ == "__main__":
    main()
