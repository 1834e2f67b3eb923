"""Small float models for the compiler and serving tests (random weights, fixed seeds)."""

import numpy as np

from nnhelp import fastgrnn_weights
from sirnn.compiler import FloatModel, FloatOp


def fastgrnn_model(T=4, D=4, H=8, K=3, lowrank=None, sequence=False, seed=1):
    """FastGRNN → linear → argmax (lowrank: (rW, rU); sequence: classify the flattened h_1..h_T)."""
    rng = np.random.default_rng(seed)
    w = fastgrnn_weights(rng, D, H, lowrank)
    ops = [FloatOp("fastgrnn", "x", "h", w, {"sequence": sequence}, name="rnn")]
    feat = "h"
    if sequence:
        ops.append(FloatOp("flatten", "h", "hf", name="flat"))
        feat = "hf"
    n_in = T * H if sequence else H
    ops += [FloatOp("linear", feat, "logits", dict(W=rng.normal(0, 1, (K, n_in)), b=rng.normal(0, 0.1, K)),
                    name="fc"),
            FloatOp("argmax", "logits", "y", name="pred")]
    return FloatModel(ops, "x", (T, D), "y", meta={"name": "tiny-fastgrnn", "labels": ["yes", "no", "up"][:K]})


def cnn_model(C=1, S=6, OC=3, K=4, seed=2):
    """conv2d (3×3, pad 1) → relu → maxpool 2 → flatten → linear → argmax."""
    rng = np.random.default_rng(seed)
    n = OC * (S // 2) ** 2
    ops = [FloatOp("conv2d", "x", "c", dict(W=rng.normal(0, 0.5, (OC, C, 3, 3)), b=rng.normal(0, 0.1, OC)),
                   {"stride": 1, "padding": 1}, name="conv"),
           FloatOp("relu", "c", "r", name="relu"),
           FloatOp("maxpool2d", "r", "m", attrs={"kernel": 2}, name="pool"),
           FloatOp("flatten", "m", "f", name="flat"),
           FloatOp("linear", "f", "logits", dict(W=rng.normal(0, 0.3, (K, n)), b=rng.normal(0, 0.1, K)), name="fc"),
           FloatOp("argmax", "logits", "y", name="pred")]
    return FloatModel(ops, "x", (C, S, S), "y", meta={"name": "tiny-cnn"})


def plumbing_model(seed=3):
    """Every elementwise and plumbing op, ending in a real-valued output."""
    rng = np.random.default_rng(seed)
    ops = [FloatOp("linear", "x", "a", dict(W=rng.normal(0, 0.6, (6, 5)), b=rng.normal(0, 0.2, 6)), name="lin"),
           FloatOp("tanh", "a", "t", name="tanh"),
           FloatOp("sigmoid", "a", "s", name="sig"),
           FloatOp("mul", ["t", "s"], "m", name="mul"),
           FloatOp("add", ["m", "a"], "p", name="add"),
           FloatOp("mul", "p", "q", dict(y=rng.normal(0, 1.5, 6)), name="scale"),
           FloatOp("add", "q", "u", dict(y=rng.normal(0, 0.5, (1, 6))), name="shift"),
           FloatOp("transpose", "u", "v", attrs={"perm": [1, 0]}, name="tr"),
           FloatOp("reshape", "v", "w", attrs={"shape": [3, -1]}, name="rs"),
           FloatOp("slice", "w", "z", attrs={"axis": 1, "start": 1, "stop": 7, "step": 2}, name="sl"),
           FloatOp("slice", "t", "t3", attrs={"axis": 1, "start": 0, "stop": 3}, name="tsl"),
           FloatOp("concat", ["z", "t3"], "k", attrs={"axis": 0}, name="cat"),
           FloatOp("relu", "k", "y", name="relu")]
    return FloatModel(ops, "x", (4, 5), "y", meta={"name": "plumbing"})


def lstm_model(T=2, D=3, H=4, seed=4):
    rng = np.random.default_rng(seed)
    w = dict(W_ih=rng.normal(0, 0.4, (4 * H, D)), W_hh=rng.normal(0, 0.4, (4 * H, H)),
             b_ih=rng.normal(0, 0.3, 4 * H), b_hh=rng.normal(0, 0.3, 4 * H))
    ops = [FloatOp("lstm", "x", "h", w, name="lstm"),
           FloatOp("linear", "h", "y", dict(W=rng.normal(0, 1, (2, H))), name="fc")]
    return FloatModel(ops, "x", (T, D), "y")


def gru_model(T=2, D=3, H=4, seed=5):
    rng = np.random.default_rng(seed)
    w = dict(W_ih=rng.normal(0, 0.4, (3 * H, D)), W_hh=rng.normal(0, 0.4, (3 * H, H)),
             b_ih=rng.normal(0, 0.3, 3 * H), b_hh=rng.normal(0, 0.3, 3 * H))
    ops = [FloatOp("gru", "x", "hs", w, {"sequence": True}, name="gru"),
           FloatOp("slice", "hs", "h", attrs={"axis": 0, "start": -1}, name="last"),
           FloatOp("flatten", "h", "hf", name="flat"),
           FloatOp("linear", "hf", "y", dict(W=rng.normal(0, 1, (2, H)), b=np.zeros(2)), name="fc")]
    return FloatModel(ops, "x", (T, D), "y")


def inputs(fm, n, seed=0, sd=1.0):
    return np.random.default_rng(seed).normal(0, sd, (n,) + fm.input_shape)


def tiny_compiled(directory):
    """The small FastGRNN classifier compiled and saved as ``directory/tiny.sirnn``: (program, path)."""
    from sirnn.compiler import compile_model

    fm = fastgrnn_model(T=4)
    prog = compile_model(fm, inputs(fm, 64))
    path = directory / "tiny.sirnn"
    prog.save(path)
    return prog, path


class ServedInThread:
    """``with ServedInThread(program) as port:`` — :func:`sirnn.compiler.serve` for one session in
    a thread of this process (unit tests of the CLI client; the server's log is discarded)."""

    def __init__(self, program, sessions: int = 1):
        import threading

        from sirnn.compiler import serve

        self._up = threading.Event()
        self._port = None
        self._thread = threading.Thread(target=serve, args=(program,), daemon=True, kwargs=dict(
            port=0, max_sessions=sessions, log=lambda m: None, on_listening=self._listening))

    def _listening(self, host, port):
        self._port = port
        self._up.set()

    def __enter__(self) -> int:
        self._thread.start()
        if not self._up.wait(30):
            raise TimeoutError("the server did not start listening")
        return self._port

    def __exit__(self, *exc):
        self._thread.join(30)
