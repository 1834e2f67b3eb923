"""Train the float example models on CPU and write the artefacts the sirnn compiler consumes.

Usage (from the repository root, after ``pip install -e '.[train]'``)::

    python examples/train.py                      # all models -> examples/models/<name>/
    python examples/train.py --only fastgrnn_basic_motions --out /tmp/models

For every model, ``<out>/<name>/`` holds:

``weights.npz``
    float32 arrays named as documented in ``models.py`` / ``float_reference.py`` (e.g.
    ``cell.W``, ``cell.U`` or ``cell.W1``/``cell.W2``/``cell.U1``/``cell.U2`` for low rank,
    ``cell.b_z``, ``cell.b_h``, ``cell.zeta``, ``cell.nu`` (already squashed through the
    sigmoid, shape (1,)), ``fc.weight`` (C, H), ``fc.bias`` (C,); the RNNPool net uses
    ``conv.*``, ``rnnpool.rnn1.*``, ``rnnpool.rnn2.*``, ``fc.*``). The extra entry
    ``__meta__`` is a 0-d unicode array holding the JSON of ``model.json`` (readable with
    ``np.load(..., allow_pickle=False)``), so the file describes itself.
``model.json``
    architecture, conventions, weight index (name → shape, meaning), data set and
    preprocessing, float accuracies, training settings, file list.
``calib_x.npy``
    calibration inputs: up to 64 training inputs (float32, shape (n, *input_shape)).
``samples_x.npy``, ``samples_y.npy``, ``samples_logits.npy``
    16 test inputs, their true labels (int64) and the float model's logits (float32).
``model.onnx``
    the float model exported with ``torch.onnx.export`` (TorchScript exporter, opset 17, the
    recurrence unrolled over time; static batch 1: input ``x`` (1, *input_shape), output
    ``logits`` (1, C)); initializers keep the PyTorch parameter names, transposed weights
    folded by the exporter are renamed ``<param>.T``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402
import float_reference  # noqa: E402
from models import FastGRNNClassifier, RNNPoolFaceNet, count_params  # noqa: E402
from sirnn.compiler.torch_export import name_folded_initializers  # noqa: E402

FORMAT_VERSION = 1
N_CALIB = 64
N_SAMPLES = 16
OPSET = 17

# name -> configuration. "dataset": None means no data (cost model with random weights).
CONFIGS: dict[str, dict] = {
    "fastgrnn_basic_motions": dict(
        dataset="basic_motions", model="fastgrnn", hidden=16, epochs=150, lr=1e-2, batch=20, seed=0),
    "fastgrnn_japanese_vowels": dict(
        dataset="japanese_vowels", model="fastgrnn", hidden=32, epochs=60, lr=1e-2, batch=32, seed=0),
    "fastgrnn_lowrank_japanese_vowels": dict(
        dataset="japanese_vowels", model="fastgrnn", hidden=32, w_rank=6, u_rank=8,
        epochs=60, lr=1e-2, batch=32, seed=0),
    "rnnpool_lfw_faces": dict(
        dataset="lfw_faces", model="rnnpool_facenet", conv_channels=8, h1=16, h2=16,
        epochs=60, lr=1e-2, batch=25, seed=0),
    "fastgrnn_google30_untrained": dict(
        dataset=None, model="fastgrnn", input_dim=32, T=99, hidden=100, num_classes=30, seed=0),
    # SiRNN's Google-30 model: the EzPC SIRNN README trains it with EdgeML's
    # ``fastcell_example.py -id 32 -hd 100 -rW 16 -rU 35 -sW 0.2 -sU 0.2``.
    "fastgrnn_google30_lowrank_untrained": dict(
        dataset=None, model="fastgrnn", input_dim=32, T=99, hidden=100, num_classes=30,
        w_rank=16, u_rank=35, seed=0,
        description="Shape of SiRNN's Google-30 FastGRNN (EzPC SIRNN README: EdgeML fastcell_example.py "
                    "-id 32 -hd 100 -rW 16 -rU 35 -sW 0.2 -sU 0.2): input 32, hidden 100, low-rank "
                    "W = W1 @ W2 (rank 16) and U = U1 @ U2 (rank 35), 99 timesteps, 30 classes. "
                    "Untrained random weights (no data set offline). EdgeML's -sW/-sU give the fraction "
                    "of entries kept non-zero by hard thresholding (0.2: 80% of W1, W2, U1, U2 zeroed); "
                    "the weights here are DENSE: sirnn's protocols multiply dense matrices (a sparsity "
                    "pattern would not change the cost), so no sparsity is imposed."),
    # SiRNN's Industrial-72 sensor RNN (paper Table IV): shape facts and stand-ins in INDUSTRIAL72_SOURCES
    "fastgrnn_industrial72_untrained": dict(
        dataset=None, model="fastgrnn", input_dim=72, T=7, hidden=64, num_classes=2, seed=0,
        description="Shape of SiRNN's Industrial-72 FastGRNN (a sensor RNN: readings from a bat, feedback "
                    "on the shot; the data set is private): hidden 64 and 7 timesteps (LLAMA's "
                    "Industrial-72 benchmark runs Sigmoid and TanH on 1x64 values 7 times); the input "
                    "features per timestep (72) and the 2 classes are documented stand-ins, full-rank W "
                    "and U. Untrained random weights.",
        data_note="Industrial-72-shaped cost model (7 timesteps x 72 features, hidden 64, 2 classes) "
                  "with untrained weights; calib/samples are N(0,1) inputs (numpy default_rng(seed)); "
                  "samples_y are the float model's own predictions"),
}

# Where each shape fact of the paper-shaped models comes from (written into model.json "sources").
INDUSTRIAL72_SOURCES = {
    "hidden 64": "github:mpc-msri/EzPC FSS/benchmarks/industrial.ezpc (LLAMA's Industrial-72 benchmark, "
                 "'only Sigmoid and Tanh' per FSS/README.md): Sigmoid(1, 64, ...) and TanH(1, 64, ...) on "
                 "int64_al[64] arrays, i.e. the FastGRNN gate and update non-linearities of 64 hidden units",
    "T = 7 timesteps": "same file: the two calls sit in `for i=[0:7]` (7 iterations, one per timestep); "
                       "consistent with the paper's 23.8 MB at batch 1 against Google-30's 0.45 GB for "
                       "99 timesteps of hidden 100",
    "cell: FastGRNN, sigmoid gate, tanh update": "EzPC SIRNN/README.md (SIRNN runs FastGRNN models "
                                                 "quantised by SeeDot); industrial.ezpc's Sigmoid/TanH pair",
    "input features per timestep = 72": "NOT FOUND in EzPC or EdgeML (the data set is private); stand-in: "
                                        "72, the number in the data set's name (an assumption)",
    "classes = 2": "NOT FOUND; stand-in (the argmax over the classes costs little either way)",
    "full rank W, U": "NOT FOUND (no rank flags published for Industrial-72); stand-in: full rank",
}
GOOGLE30_SOURCES = {
    "input 32, hidden 100, W rank 16, U rank 35, 20 % non-zero weights":
        "github:mpc-msri/EzPC SIRNN/README.md: SIRNN's Google-30 model is trained with EdgeML's "
        "`fastcell_example.py -id 32 -hd 100 -rW 16 -rU 35 -sU 0.2 -sW 0.2`",
    "T = 99 timesteps, 30 classes, argmax output":
        "github:mpc-msri/EzPC FSS/benchmarks/google30.ezpc (the Google-30 benchmark in EzPC): client "
        "input X int64_al[3168*1] = 99 x 32, `for i=[0:99]` over the timesteps, FC int64_al[100*30], "
        "ArgMax(1, 30, ...); its W1 32x16, W2 16x100, U1 100x35, U2 35x100 (row vectors) are our "
        "W2.T, W1.T, U2.T, U1.T",
    "dense weights": "stand-in: sirnn multiplies dense matrices (the sparsity pattern would not change "
                     "its cost); the weights are random (Google-30 is not available offline)",
}

SOURCES = {"fastgrnn_industrial72_untrained": INDUSTRIAL72_SOURCES,
           "fastgrnn_google30_lowrank_untrained": GOOGLE30_SOURCES}


def write_sources(d: Path, title: str, sources: dict[str, str]) -> None:
    """``d/SOURCES.md``: each shape fact of a paper-shaped model and where it comes from."""
    lines = [f"# {title}: where each shape fact comes from", "",
             "Generated with the model (also in `model.json` under `\"sources\"`); NOT FOUND marks a stand-in.", "",
             "| fact | source (repository, file: what it says) |", "| --- | --- |"]
    lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in sources.items()]
    (d / "SOURCES.md").write_text("\n".join(lines) + "\n")

WEIGHT_MEANING = {
    "W": "input matrix (H, D), applied as W @ x",
    "W1": "low-rank input factor (H, r_w); W = W1 @ W2",
    "W2": "low-rank input factor (r_w, D); W = W1 @ W2",
    "U": "recurrent matrix (H, H), applied as U @ h",
    "U1": "low-rank recurrent factor (H, r_u); U = U1 @ U2",
    "U2": "low-rank recurrent factor (r_u, H); U = U1 @ U2",
    "b_z": "gate bias (H,)",
    "b_h": "update bias (H,)",
    "zeta": "sigmoid(zeta_raw), shape (1,), already squashed",
    "nu": "sigmoid(nu_raw), shape (1,), already squashed",
    "weight": "linear: (out, in), y = weight @ x + bias; conv: (O, I, kh, kw)",
    "bias": "bias (out,)",
}

CONVENTIONS = {
    "matrices": "math convention, column vectors: a weight of shape (out, in) is applied as W @ x",
    "fastgrnn": "a = W x + U h; z = sigmoid(a + b_z); h~ = tanh(a + b_h); "
                "h' = (zeta (1 - z) + nu) * h~ + z * h; h_0 = 0",
    "low_rank": "W = W1 @ W2, U = U1 @ U2 when the factors are present instead of W / U",
    "reference_implementation": "examples/float_reference.py (numpy)",
}


def build_model(cfg: dict, ds: datasets.Dataset | None) -> nn.Module:
    torch.manual_seed(cfg["seed"])
    if cfg["model"] == "fastgrnn":
        if ds is not None:
            T, D = ds.input_shape
            C = ds.num_classes
        else:
            T, D, C = cfg["T"], cfg["input_dim"], cfg["num_classes"]
        return FastGRNNClassifier(D, cfg["hidden"], C, T, cfg.get("w_rank"), cfg.get("u_rank"))
    if cfg["model"] == "rnnpool_facenet":
        return RNNPoolFaceNet(in_hw=ds.input_shape[-1], conv_channels=cfg["conv_channels"],
                              h1=cfg["h1"], h2=cfg["h2"], num_classes=ds.num_classes)
    raise ValueError(cfg["model"])


@torch.no_grad()
def logits_of(model: nn.Module, X: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(X[i:i + batch])).numpy() for i in range(0, len(X), batch)]
    return np.concatenate(out).astype(np.float32)


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    return float((logits_of(model, X).argmax(1) == y).mean())


def train(model: nn.Module, ds: datasets.Dataset, cfg: dict, budget_s: float | None) -> dict:
    g = torch.Generator().manual_seed(cfg["seed"])
    Xtr, ytr = torch.from_numpy(ds.X_train), torch.from_numpy(ds.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.time()
    epochs_run = 0
    for epoch in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(Xtr), generator=g)
        total = 0.0
        for i in range(0, len(Xtr), cfg["batch"]):
            idx = perm[i:i + cfg["batch"]]
            opt.zero_grad()
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        epochs_run = epoch + 1
        if epoch % 10 == 0 or epoch == cfg["epochs"] - 1:
            print(f"  epoch {epoch:3d} loss {total / len(Xtr):.4f} "
                  f"train acc {accuracy(model, ds.X_train, ds.y_train):.3f} ({time.time() - t0:.0f}s)",
                  flush=True)
        if budget_s and time.time() - t0 > budget_s:
            print(f"  time budget {budget_s:.0f}s reached after {epochs_run} epochs", flush=True)
            break
    return {"optimizer": "Adam", "lr": cfg["lr"], "schedule": "cosine", "batch": cfg["batch"],
            "epochs_planned": cfg["epochs"], "epochs_run": epochs_run, "grad_clip_norm": 1.0,
            "seed": cfg["seed"], "seconds": round(time.time() - t0, 1),
            "loss": "cross entropy", "model_selection": "none (last epoch)"}


def weight_index(weights: dict[str, np.ndarray]) -> dict:
    idx = {}
    for k, v in weights.items():
        leaf = k.rsplit(".", 1)[-1]
        idx[k] = {"shape": list(v.shape), "dtype": str(v.dtype), "meaning": WEIGHT_MEANING.get(leaf, "")}
    return idx


def export_onnx(model: nn.Module, samples: np.ndarray, path: Path) -> dict:
    """Export with a static batch of 1 (secure inference runs one input at a time)."""
    import warnings

    import onnx
    from onnx.reference import ReferenceEvaluator

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(samples[:1].copy()),), str(path), dynamo=False,
                          opset_version=OPSET, input_names=["x"], output_names=["logits"],
                          do_constant_folding=True)
    m = onnx.load(str(path))
    name_folded_initializers(m, model)  # readable names (cell.W.T) for folded constants
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    ev = ReferenceEvaluator(m)
    got = np.concatenate([ev.run(None, {"x": samples[i:i + 1]})[0] for i in range(len(samples))])
    ref = logits_of(model, samples)
    ops: dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"file": path.name,
            "exporter": f"torch.onnx.export (TorchScript exporter, dynamo=False), torch {torch.__version__}",
            "opset": OPSET, "input": "x", "input_shape": [1, *samples.shape[1:]], "output": "logits",
            "batch": "static 1", "nodes": len(m.graph.node), "op_counts": dict(sorted(ops.items())),
            "initializers": [i.name for i in m.graph.initializer],
            "initializer_notes": "names are the PyTorch parameter names; '<p>.T' is the transpose of "
                                 "parameter <p> (folded by the exporter); zeta/nu appear as "
                                 "Sigmoid(<cell>.zeta_raw) / Sigmoid(<cell>.nu_raw)",
            "checked_with": "onnx.reference.ReferenceEvaluator on samples_x",
            "max_abs_diff_vs_torch": float(np.abs(got - ref).max())}


def run_one(name: str, cfg: dict, out_root: Path, budget_s: float | None) -> dict:
    print(f"== {name}", flush=True)
    ds = datasets.load(cfg["dataset"]) if cfg["dataset"] else None
    model = build_model(cfg, ds)
    arch = model.arch()
    rng = np.random.default_rng(cfg["seed"])
    if ds is not None:
        print(f"  {ds.summary()}")
        training = train(model, ds, cfg, budget_s)
        acc = {"train": accuracy(model, ds.X_train, ds.y_train),
               "test": accuracy(model, ds.X_test, ds.y_test),
               "n_train": int(len(ds.y_train)), "n_test": int(len(ds.y_test))}
        calib_idx = np.sort(rng.permutation(len(ds.X_train))[:N_CALIB])
        calib = ds.X_train[calib_idx]
        s_idx = np.sort(rng.permutation(len(ds.X_test))[:N_SAMPLES])
        sx, sy = ds.X_test[s_idx], ds.y_test[s_idx]
        data = {"name": ds.name, "source": ds.source, "classes": ds.classes,
                "preprocessing": ds.preprocessing,
                "calib": f"{len(calib)} training inputs, training indices {calib_idx.tolist()}",
                "samples": f"{len(sy)} test inputs, test indices {s_idx.tolist()}"}
    else:
        training = {"trained": False, "init": "EdgeML-style random init (0.1*N(0,1) matrices, "
                    "biases 1, zeta_raw 1, nu_raw -4; fc: PyTorch default)", "seed": cfg["seed"]}
        acc = None
        shape = tuple(arch["input_shape"])
        calib = rng.standard_normal((N_CALIB, *shape)).astype(np.float32)
        sx = rng.standard_normal((8, *shape)).astype(np.float32)
        sy = logits_of(model, sx).argmax(1).astype(np.int64)
        data = {"name": None, "synthetic": True,
                "note": cfg.get("data_note",
                                "Google-30-shaped cost model (99 timesteps x 32 log-mel features, hidden "
                                "100, 30 classes) with untrained weights; calib/samples are N(0,1) inputs "
                                "(numpy default_rng(seed)); samples_y are the float model's own predictions"),
                "classes": [str(i) for i in range(arch["num_classes"])]}
    slogits = logits_of(model, sx)

    d = out_root / name
    d.mkdir(parents=True, exist_ok=True)
    weights = model.named_float_weights()
    onnx_info = export_onnx(model, sx, d / "model.onnx")
    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        **({"description": cfg["description"]} if "description" in cfg else {}),
        **({"sources": SOURCES[name]} if name in SOURCES else {}),
        "architecture": arch,
        "conventions": CONVENTIONS,
        "weights": weight_index(weights),
        "num_parameters": count_params(model),
        "data": data,
        "float_accuracy": acc,
        "training": training,
        "onnx": onnx_info,
        "files": {
            "weights.npz": "float32 weights + __meta__ (this JSON), np.savez_compressed",
            "model.json": "this JSON",
            "calib_x.npy": f"calibration inputs {list(calib.shape)} float32",
            "samples_x.npy": f"test inputs {list(sx.shape)} float32",
            "samples_y.npy": f"labels {list(sy.shape)} int64",
            "samples_logits.npy": f"float model logits {list(slogits.shape)} float32",
            "model.onnx": "ONNX export of the float model",
        },
        "torch_version": torch.__version__,
    }
    meta_json = json.dumps(meta, indent=1)
    np.savez_compressed(d / "weights.npz", __meta__=np.array(meta_json), **weights)
    (d / "model.json").write_text(meta_json + "\n")
    if name in SOURCES:
        write_sources(d, name, SOURCES[name])
    np.save(d / "calib_x.npy", calib.astype(np.float32))
    np.save(d / "samples_x.npy", sx.astype(np.float32))
    np.save(d / "samples_y.npy", sy.astype(np.int64))
    np.save(d / "samples_logits.npy", slogits.astype(np.float32))

    # check the self-describing npz against the numpy reference implementation
    w2, meta2 = float_reference.load_weights(d / "weights.npz")
    np_logits = float_reference.forward(w2, meta2, sx)
    np_err = float(np.abs(np_logits - slogits).max())
    if np_err > 1e-3:
        raise RuntimeError(f"{name}: numpy reference disagrees with torch (max abs {np_err:.2e})")
    sizes = {p.name: p.stat().st_size for p in sorted(d.iterdir())}
    if acc:
        print(f"  float accuracy: train {acc['train']:.4f}  test {acc['test']:.4f}")
    print(f"  params {meta['num_parameters']}, onnx nodes {onnx_info['nodes']} "
          f"(|onnx - torch| {onnx_info['max_abs_diff_vs_torch']:.1e}), |numpy - torch| {np_err:.1e}")
    print(f"  wrote {d}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()), flush=True)
    return {"name": name, "accuracy": acc, "params": meta["num_parameters"], "sizes": sizes,
            "seconds": training.get("seconds")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="models to train (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "models", help="output root (default examples/models)")
    ap.add_argument("--budget", type=float, default=None,
                    help="optional training time cap per model in seconds (stops early: results then "
                         "depend on machine speed; default: run the fixed number of epochs)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest for these tiny sequential models)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [run_one(n, CONFIGS[n], args.out, args.budget) for n in (args.only or CONFIGS)]
    print("\nsummary:")
    for r in results:
        a = r["accuracy"]
        accs = f"train {a['train']:.4f} test {a['test']:.4f}" if a else "untrained (cost model)"
        print(f"  {r['name']:36s} params {r['params']:6d}  {accs}  "
              f"dir {sum(r['sizes'].values()) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
