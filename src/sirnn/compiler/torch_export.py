"""PyTorch → ONNX with the settings the sirnn ONNX importer expects (needs ``torch`` and ``onnx``,
both imported lazily; neither is a dependency of sirnn).

:func:`export_onnx` wraps ``torch.onnx.export`` with:

* ``dynamo=False`` — the TorchScript exporter: it unrolls Python loops over timesteps (a custom
  cell such as FastGRNN becomes the per-step graph :mod:`~sirnn.compiler.onnx_import` fuses back
  into one ``fastgrnn`` op) and maps ``torch.nn.LSTM`` / ``GRU`` to the ONNX LSTM / GRU ops;
* ``opset_version=17``;
* a **fixed batch of 1** (``example_input[:1]``, no dynamic axes): secure inference runs one input
  at a time and the importer's model is per sample;
* constant folding on, one input named ``x`` and one output named ``logits`` by default;
* initializers the exporter folds anonymously (``onnx::MatMul_123``, e.g. ``x @ W.t()``) renamed
  after the parameter they come from (``cell.W.T`` for a transpose, ``cell.W`` for a copy), so the
  imported float model's op names read like the PyTorch module's (``cell``, ``fc``).

With ``check=True`` (default) the file is imported back with
:func:`~sirnn.compiler.onnx_import.load_onnx` and its float forward pass compared with the PyTorch
module on ``example_input``; a mismatch (or an unsupported construct) raises
:class:`~sirnn.errors.ProgramError` right away rather than at compile time.

Example::

    from sirnn.compiler.torch_export import export_onnx
    export_onnx(model, x_calib[:1], "model.onnx")       # then: sirnn compile model.onnx ...
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import ProgramError

__all__ = ["export_onnx", "name_folded_initializers", "OPSET"]

OPSET = 17


def name_folded_initializers(m, model) -> dict:
    """Give the exporter's anonymous folded constants (``onnx::MatMul_123``) readable names: the
    parameter they equal (``cell.W``), or ``<param>.T`` when they equal its transpose. Returns
    the renames and applies them to the graph in place."""
    from onnx import numpy_helper

    params = {n: p.detach().cpu().numpy() for n, p in model.named_parameters()}
    renames, taken = {}, {i.name for i in m.graph.initializer}
    for init in m.graph.initializer:
        if not init.name.startswith("onnx::"):
            continue
        arr = numpy_helper.to_array(init)
        for n, p in params.items():
            for cand, val in ((n, p), (f"{n}.T", p.T if p.ndim == 2 else None)):
                if val is not None and cand not in taken and arr.shape == val.shape and np.array_equal(arr, val):
                    renames[init.name] = cand
                    taken.add(cand)
                    break
            if init.name in renames:
                break
    for init in m.graph.initializer:
        init.name = renames.get(init.name, init.name)
    for node in m.graph.node:
        for k, name in enumerate(node.input):
            if name in renames:
                node.input[k] = renames[name]
    return renames


def export_onnx(model, example_input, path, *, input_name: str = "x", output_name: str = "logits",
                opset: int = OPSET, check: bool = True, atol: float = 1e-4) -> str:
    """Export ``model`` (a ``torch.nn.Module``) to ONNX at ``path`` for :func:`load_onnx`.

    ``example_input``: one sample with its batch axis, (1, ...) — a larger batch is cut to its
    first sample; a numpy array or a tensor. Returns the path written."""
    try:
        import torch
    except ImportError:
        raise ProgramError("export_onnx needs PyTorch (pip install torch)") from None
    try:
        import onnx
    except ImportError:
        raise ProgramError("export_onnx needs the onnx package (pip install onnx)") from None
    path = os.fspath(path)
    x = example_input if isinstance(example_input, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(np.asarray(example_input, np.float32)))
    if x.ndim < 1 or x.shape[0] < 1:
        raise ProgramError(f"example_input must have a leading batch axis, got shape {tuple(x.shape)}")
    x = x[:1].float()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                              input_names=[input_name], output_names=[output_name],
                              do_constant_folding=True)
        m = onnx.load(path)
        if name_folded_initializers(m, model):
            onnx.save(m, path)
        onnx.checker.check_model(m)
        if check:
            from .onnx_import import load_onnx

            fm = load_onnx(path)
            with torch.no_grad():
                want = model(x).detach().cpu().numpy().astype(np.float64)
            got = fm.run(x.numpy().astype(np.float64))
            if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=1e-4):
                err = np.abs(got - want).max() if got.shape == want.shape else f"shapes {got.shape} vs {want.shape}"
                raise ProgramError(f"{path}: the imported float model disagrees with the PyTorch module "
                                   f"(max |difference| {err})")
    finally:
        model.train(was_training)
    return path
