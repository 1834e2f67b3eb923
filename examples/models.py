"""Float PyTorch models for the sirnn examples (FastGRNN classifiers and an RNNPool face net).

Conventions (shared with ``float_reference.py`` and the saved ``weights.npz`` files):

* Math convention, column vectors: a weight ``W`` of shape ``(out, in)`` is applied as ``W @ x``.
  (The PyTorch code computes ``x @ W.T`` on batches; the stored arrays are ``W`` itself.)
* FastGRNN cell, input ``x`` (D,), state ``h`` (H,)::

      a   = W @ x + U @ h                       # W: (H, D), U: (H, H)
      z   = sigmoid(a + b_z)
      h~  = tanh(a + b_h)
      h'  = (zeta * (1 - z) + nu) * h~ + z * h  # zeta = sigmoid(zeta_raw), nu = sigmoid(nu_raw)

  Low rank (optional, per matrix): ``W = W1 @ W2`` with ``W1`` (H, r_w), ``W2`` (r_w, D), and
  ``U = U1 @ U2`` with ``U1`` (H, r_u), ``U2`` (r_u, H). The initial state is zero.
* :class:`FastGRNNClassifier`: input ``(T, D)`` per sample (batch ``(N, T, D)``), the cell is
  unrolled over the T timesteps from ``h = 0`` and ``logits = fc.weight @ h_T + fc.bias``.
* :class:`RNNPool`: see its docstring; :class:`RNNPoolFaceNet`: conv 3×3/2 → ReLU →
  RNNPool(7×7 patches, stride 6) → flatten (C, i, j) → linear.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "FastGRNNCell",
    "FastGRNNClassifier",
    "RNNPool",
    "RNNPoolFaceNet",
    "named_float_weights",
]


class FastGRNNCell(nn.Module):
    """FastGRNN cell (Kusupati et al. 2018) with optional low-rank W and U.

    Parameters are stored in math convention (``W`` is (H, D)). ``zeta_raw``/``nu_raw`` are
    the trainable pre-sigmoid scalars; :meth:`zeta` and :meth:`nu` give the squashed values.
    Initialisation follows EdgeML: 0.1·N(0, 1) matrices, biases 1, zeta_raw 1, nu_raw -4.
    """

    def __init__(self, input_dim: int, hidden: int, w_rank: int | None = None,
                 u_rank: int | None = None, zeta_init: float = 1.0, nu_init: float = -4.0):
        super().__init__()
        self.input_dim, self.hidden = input_dim, hidden
        self.w_rank, self.u_rank = w_rank, u_rank
        if w_rank is None:
            self.W = nn.Parameter(0.1 * torch.randn(hidden, input_dim))
        else:
            self.W1 = nn.Parameter(0.1 * torch.randn(hidden, w_rank))
            self.W2 = nn.Parameter(0.1 * torch.randn(w_rank, input_dim))
        if u_rank is None:
            self.U = nn.Parameter(0.1 * torch.randn(hidden, hidden))
        else:
            self.U1 = nn.Parameter(0.1 * torch.randn(hidden, u_rank))
            self.U2 = nn.Parameter(0.1 * torch.randn(u_rank, hidden))
        self.b_z = nn.Parameter(torch.ones(hidden))
        self.b_h = nn.Parameter(torch.ones(hidden))
        self.zeta_raw = nn.Parameter(torch.full((1,), float(zeta_init)))
        self.nu_raw = nn.Parameter(torch.full((1,), float(nu_init)))

    def zeta(self) -> torch.Tensor:
        return torch.sigmoid(self.zeta_raw)

    def nu(self) -> torch.Tensor:
        return torch.sigmoid(self.nu_raw)

    def transposed(self) -> dict[str, torch.Tensor]:
        """Transposed matrices computed once per forward (keeps the unrolled ONNX graph small)."""
        t = {}
        if self.w_rank is None:
            t["Wt"] = self.W.t()
        else:
            t["W2t"], t["W1t"] = self.W2.t(), self.W1.t()
        if self.u_rank is None:
            t["Ut"] = self.U.t()
        else:
            t["U2t"], t["U1t"] = self.U2.t(), self.U1.t()
        t["zeta"], t["nu"] = self.zeta(), self.nu()
        return t

    def step(self, x: torch.Tensor, h: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
        wx = x @ t["Wt"] if self.w_rank is None else (x @ t["W2t"]) @ t["W1t"]
        uh = h @ t["Ut"] if self.u_rank is None else (h @ t["U2t"]) @ t["U1t"]
        a = wx + uh
        z = torch.sigmoid(a + self.b_z)
        c = torch.tanh(a + self.b_h)
        return (t["zeta"] * (1.0 - z) + t["nu"]) * c + z * h

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.step(x, h, self.transposed())

    def run(self, xs: list[torch.Tensor] | torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Unroll over a sequence (``xs`` of shape (T, B, D) or a list of (B, D)); return h_T."""
        seq = list(xs) if not isinstance(xs, list) else xs
        if reverse:
            seq = seq[::-1]
        t = self.transposed()
        h = seq[0].new_zeros(seq[0].shape[0], self.hidden)
        for x in seq:
            h = self.step(x, h, t)
        return h

    def arch(self) -> dict:
        return {"type": "fastgrnn_cell", "input_dim": self.input_dim, "hidden": self.hidden,
                "w_rank": self.w_rank, "u_rank": self.u_rank,
                "gate_nonlinearity": "sigmoid", "update_nonlinearity": "tanh"}

    def named_float_weights(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for n in ("W", "W1", "W2", "U", "U1", "U2", "b_z", "b_h"):
            if hasattr(self, n):
                out[f"{prefix}.{n}"] = getattr(self, n).detach().cpu().numpy().astype(np.float32)
        out[f"{prefix}.zeta"] = self.zeta().detach().cpu().numpy().astype(np.float32)
        out[f"{prefix}.nu"] = self.nu().detach().cpu().numpy().astype(np.float32)
        return out


class FastGRNNClassifier(nn.Module):
    """FastGRNN unrolled over T timesteps + linear classifier on the last hidden state.

    Input ``(N, T, D)`` float; output logits ``(N, num_classes)``.
    """

    def __init__(self, input_dim: int, hidden: int, num_classes: int, T: int,
                 w_rank: int | None = None, u_rank: int | None = None):
        super().__init__()
        self.T = T
        self.cell = FastGRNNCell(input_dim, hidden, w_rank, u_rank)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.cell.transposed()
        h = x.new_zeros(x.shape[0], self.cell.hidden)
        for k in range(self.T):
            h = self.cell.step(x[:, k, :], h, t)
        return self.fc(h)

    def arch(self) -> dict:
        c = self.cell
        return {
            "type": "fastgrnn_classifier",
            "input_shape": [self.T, c.input_dim],
            "input_layout": "T,D (batch N,T,D)",
            "T": self.T, "input_dim": c.input_dim, "hidden": c.hidden,
            "num_classes": self.fc.out_features,
            "w_rank": c.w_rank, "u_rank": c.u_rank,
            "gate_nonlinearity": "sigmoid", "update_nonlinearity": "tanh",
            "h0": "zeros",
            "graph": "h_0 = 0; h_t = cell(x_t, h_{t-1}) for t = 1..T; logits = fc.weight @ h_T + fc.bias",
        }

    def named_float_weights(self) -> dict[str, np.ndarray]:
        out = self.cell.named_float_weights("cell")
        out["fc.weight"] = self.fc.weight.detach().numpy().astype(np.float32)
        out["fc.bias"] = self.fc.bias.detach().numpy().astype(np.float32)
        return out


class RNNPool(nn.Module):
    """RNNPool (Saha et al. 2020) applied to k×k patches of a feature map with stride s.

    For one patch ``P`` of shape (C, k, k) (rows i, columns j):

    1. ``rnn1`` (FastGRNN, C → h1) runs along every row (over j = 0..k-1, input ``P[:, i, j]``),
       giving row summaries ``r_i`` (i = 0..k-1), and along every column (over i = 0..k-1,
       input ``P[:, i, j]``), giving column summaries ``c_j``. The same ``rnn1`` weights are
       used for rows and columns.
    2. ``rnn2`` (FastGRNN, h1 → h2; one set of weights shared by all four passes) runs
       forward over r_0..r_{k-1} → ``f_r``, backward over r_{k-1}..r_0 → ``b_r``, forward over
       c_0..c_{k-1} → ``f_c``, backward over c_{k-1}..c_0 → ``b_c``.
    3. The patch output is ``concat(f_r, b_r, f_c, b_c)`` (4·h2 values).

    Each RNN pass starts from h = 0 and keeps only its final state. Over a (N, C, H, W) map,
    patches start at (i·s, j·s) for i < Ho = (H − k)//s + 1, j < Wo = (W − k)//s + 1 (no
    padding); the output is (N, 4·h2, Ho, Wo).
    """

    def __init__(self, in_channels: int, h1: int, h2: int, patch: int, stride: int):
        super().__init__()
        self.in_channels, self.h1, self.h2 = in_channels, h1, h2
        self.patch, self.stride = patch, stride
        self.rnn1 = FastGRNNCell(in_channels, h1)
        self.rnn2 = FastGRNNCell(h1, h2)

    def out_hw(self, H: int, W: int) -> tuple[int, int]:
        return (H - self.patch) // self.stride + 1, (W - self.patch) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        k, s = self.patch, self.stride
        Ho, Wo = self.out_hw(H, W)
        patches = torch.stack(
            [x[:, :, i * s:i * s + k, j * s:j * s + k] for i in range(Ho) for j in range(Wo)], dim=1
        ).reshape(N * Ho * Wo, C, k, k)
        B = patches.shape[0]
        # rows: batch over (patch, row i), sequence over column j; input P[:, :, i, j]
        row_seq = [patches[:, :, :, j].permute(0, 2, 1).reshape(B * k, C) for j in range(k)]
        col_seq = [patches[:, :, i, :].permute(0, 2, 1).reshape(B * k, C) for i in range(k)]
        r = self.rnn1.run(row_seq).reshape(B, k, self.h1)  # r[:, i] = summary of row i
        c = self.rnn1.run(col_seq).reshape(B, k, self.h1)  # c[:, j] = summary of column j
        rs = [r[:, i] for i in range(k)]
        cs = [c[:, j] for j in range(k)]
        out = torch.cat([self.rnn2.run(rs), self.rnn2.run(rs, reverse=True),
                         self.rnn2.run(cs), self.rnn2.run(cs, reverse=True)], dim=1)
        return out.reshape(N, Ho, Wo, 4 * self.h2).permute(0, 3, 1, 2)

    def arch(self) -> dict:
        return {"type": "rnnpool", "in_channels": self.in_channels, "h1": self.h1, "h2": self.h2,
                "patch": self.patch, "stride": self.stride,
                "rnn1": self.rnn1.arch(), "rnn2": self.rnn2.arch(),
                "output_order": "concat(fwd over row summaries, bwd over row summaries, "
                                "fwd over column summaries, bwd over column summaries)"}

    def named_float_weights(self, prefix: str) -> dict[str, np.ndarray]:
        out = self.rnn1.named_float_weights(f"{prefix}.rnn1")
        out.update(self.rnn2.named_float_weights(f"{prefix}.rnn2"))
        return out


class RNNPoolFaceNet(nn.Module):
    """Small RNNPool-based CNN for 25×25 grey images (face vs non-face).

    conv(1→c, 3×3, stride 2, padding 1) → ReLU → (c, 13, 13) → RNNPool(patch 7, stride 6,
    h1, h2) → (4·h2, 2, 2) → flatten in (channel, i, j) order → fc → logits.
    """

    def __init__(self, in_hw: int = 25, conv_channels: int = 8, h1: int = 8, h2: int = 8,
                 patch: int = 7, stride: int = 6, num_classes: int = 2):
        super().__init__()
        self.in_hw = in_hw
        self.conv = nn.Conv2d(1, conv_channels, 3, stride=2, padding=1)
        self.conv_hw = (in_hw + 2 - 3) // 2 + 1
        self.rnnpool = RNNPool(conv_channels, h1, h2, patch, stride)
        ho, wo = self.rnnpool.out_hw(self.conv_hw, self.conv_hw)
        self.pool_hw = (ho, wo)
        self.fc = nn.Linear(4 * h2 * ho * wo, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = self.rnnpool(y)
        return self.fc(y.reshape(y.shape[0], -1))

    def arch(self) -> dict:
        ho, wo = self.pool_hw
        return {
            "type": "rnnpool_facenet",
            "input_shape": [1, self.in_hw, self.in_hw],
            "input_layout": "C,H,W (batch N,C,H,W)",
            "num_classes": self.fc.out_features,
            "layers": [
                {"name": "conv", "op": "conv2d", "in_channels": 1,
                 "out_channels": self.conv.out_channels, "kernel": [3, 3], "stride": [2, 2],
                 "padding": [1, 1], "weight_layout": "O,I,kh,kw",
                 "output_shape": [self.conv.out_channels, self.conv_hw, self.conv_hw]},
                {"name": "relu", "op": "relu"},
                dict(name="rnnpool", op="rnnpool", **self.rnnpool.arch(),
                     output_shape=[4 * self.rnnpool.h2, ho, wo]),
                {"name": "flatten", "op": "flatten", "order": "C,H,W (row-major over (channel, i, j))"},
                {"name": "fc", "op": "linear", "in_features": self.fc.in_features,
                 "out_features": self.fc.out_features},
            ],
        }

    def named_float_weights(self) -> dict[str, np.ndarray]:
        out = {"conv.weight": self.conv.weight.detach().numpy().astype(np.float32),
               "conv.bias": self.conv.bias.detach().numpy().astype(np.float32)}
        out.update(self.rnnpool.named_float_weights("rnnpool"))
        out["fc.weight"] = self.fc.weight.detach().numpy().astype(np.float32)
        out["fc.bias"] = self.fc.bias.detach().numpy().astype(np.float32)
        return out


def named_float_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return model.named_float_weights()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _self_check() -> None:  # pragma: no cover - quick manual sanity check
    torch.manual_seed(0)
    m = FastGRNNClassifier(6, 8, 4, 5, w_rank=3, u_rank=4)
    print(m(torch.randn(2, 5, 6)).shape, count_params(m))
    f = RNNPoolFaceNet()
    print(f(torch.randn(2, 1, 25, 25)).shape, count_params(f), math.prod(f.pool_hw))


if __name__ == "__main__":
    _self_check()
