"""``sirnn demo``: secure inference of a bundled trained model, both parties on this machine as
two OS processes over loopback TCP.

ALICE (the server) holds the compiled fixed-point program — the model's weights — and BOB (the
client) holds a few bundled test samples of the model's real data set (:mod:`sirnn.data`). They
run one inference session (:mod:`sirnn.compiler.session`: handshake with the program's public
structure, OT set-up, BOB's input secret-shared, every layer on shares, the logits revealed to
BOB only). Each process only ever holds its own data, random-looking shares and OT messages.

The parent process plays referee: it recomputes the logits with the cleartext fixed-point
interpreter (:func:`sirnn.compiler.evaluate_clear`, the same program run in the clear) and prints,
per sample, the true label and the secure, cleartext fixed-point and float predictions, then the
per-layer time, bytes and rounds. The exit code is 1 unless every secure logit equals the
cleartext fixed-point interpreter's, bit for bit.

The default model is :data:`DEFAULT_MODEL` (FastGRNN on spoken-vowel features, like the paper's
speech model); ``--model NAME`` picks another bundled one; ``sirnn demo --math`` runs the math
library's demo instead (:mod:`sirnn.cli.demo_math`: sigmoid and tanh of a batch, with ULP errors).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import ALICE
from ..errors import SirnnError

DEFAULT_MODEL = "fastgrnn_japanese_vowels"  #: the model of a bare ``sirnn demo``


def _model_session(role: int, chan, name: str, n: int | None, ot: str | None = None) -> dict:
    """One party of the demo: ALICE (server) loads only the bundled program (weights), BOB
    (client) only the bundled samples; the session is :mod:`sirnn.compiler.session`'s."""
    from ..compiler.session import client_session, server_session
    from ..data import load_samples, model_path
    from ..ot.warmup import warm_up

    warm_up()  # numba kernels: local, before the session
    if role == ALICE:
        from ..compiler.program import Program

        return {"pid": os.getpid(), "summary": server_session(chan, Program.load(model_path(name)), ot=ot)}
    s = load_samples(name)
    x = s["x"] if n is None else s["x"][:n]
    progress = None
    if sys.stderr.isatty():  # a live progress line on a terminal only (not in logs or pipes)
        from .model import ProgressLine

        progress = ProgressLine(prefix="sirnn demo")
    res = client_session(chan, x, report=True, progress=progress)  # (the server's OT engine)
    if progress is not None:
        progress.done()
    return {"pid": os.getpid(), "output": np.asarray(res.output), "digest": res.digest,
            "seconds": res.seconds, "bytes_sent": res.bytes_sent, "bytes_recv": res.bytes_recv,
            "rounds": res.rounds, "report": res.report, "ot": res.ot}


def run_model_demo(name: str = DEFAULT_MODEL, n: int | None = None, ot: str | None = None) -> int:
    """Secure inference of the bundled model ``name`` on its bundled samples (the first ``n``),
    two processes over loopback, on the OT engine ``ot`` (None: the default); the referee checks
    the secure logits against the cleartext fixed-point interpreter bit for bit (exit 1 on any
    difference)."""
    from ..compiler.runtime import evaluate_clear
    from ..compiler.session import format_report
    from ..data import ABOUT, bundled_models, load_bundled
    from ..protocols.ring import mask, to_signed
    from ..transport.launch import run_two_processes

    if name not in bundled_models():
        print(f"sirnn demo: error: no bundled model {name!r}; bundled: {', '.join(bundled_models())}",
              file=sys.stderr)
        return 2
    if n is not None and n < 1:
        print(f"sirnn demo: error: --n must be at least 1, got {n}", file=sys.stderr)
        return 2
    program, samples = load_bundled(name)
    t0 = time.perf_counter()
    try:
        a, b = run_two_processes(_model_session, name, n, ot, timeout=600.0, channel_timeout=120.0)
    except SirnnError as e:
        print(f"sirnn demo failed: {type(e).__name__}: {e}")
        return 1
    wall = time.perf_counter() - t0
    # the referee: cleartext fixed-point interpreter on the same samples (ring integers)
    x = samples["x"] if n is None else samples["x"][:n]
    y, fl = samples["y"][:len(x)], samples["float_logits"][:len(x)]
    o = program.output_spec
    clear_int = np.asarray(evaluate_clear(program, x, raw=True), np.uint64)
    clear_int = to_signed(clear_int & mask(o.bits), o.bits)
    secure_int = np.round(np.asarray(b["output"], np.float64) * 2.0**o.scale).astype(np.int64)
    bad = int((secure_int != clear_int).sum())
    labels = program.meta.get("classes")

    def lab(i):
        i = int(i)
        return f"{i} ({labels[i]})" if labels and 0 <= i < len(labels) else str(i)

    out = []
    w = out.append
    w(f"sirnn demo: secure inference with the bundled model {name} on {len(x)} of its test "
      "samples, two processes on loopback")
    if name in ABOUT:
        w(f"  model: {ABOUT[name]}")
    w(f"  ALICE (server, pid {a['pid']}) holds the compiled model (weights); BOB (client, pid "
      f"{b['pid']}) holds the samples;\n  BOB alone learns the logits, ALICE learns nothing about the samples")
    w(f"  input {tuple(program.input_spec.shape)} at {program.input_spec.fmt}, output logits "
      f"{o.bits}-bit scale {o.scale}; program digest {b['digest'][:16]}…")
    w("")
    w(f"  {'#':>2} {'label':>12} {'secure':>12} {'fixed (clear)':>14} {'float':>12}  logits bit-equal")
    for i in range(len(x)):
        eq = bool((secure_int[i] == clear_int[i]).all())
        w(f"  {i:>2} {lab(y[i]):>12} {lab(secure_int[i].argmax()):>12} {lab(clear_int[i].argmax()):>14} "
          f"{lab(fl[i].argmax()):>12}  {'yes' if eq else 'NO'}")
    w("")
    w(format_report(b["report"]))
    w(f"secure session (client view): {b['seconds']:.2f} s, {b['bytes_sent'] + b['bytes_recv']:,} "
      f"bytes ({b['bytes_sent']:,} sent, {b['bytes_recv']:,} received), {b['rounds']} rounds, "
      f"OT engine {b['ot']}; "
      f"wall time including process start-up: {wall:.2f} s")
    w("")
    if bad:
        w(f"MISMATCH: {bad} secure logit(s) differ from the cleartext fixed-point interpreter")
        print("\n".join(out))
        return 1
    w(f"OK: all {len(x)} secure logit vectors are identical, bit for bit, to the cleartext "
      "fixed-point interpreter.")
    print("\n".join(out))
    return 0


__all__ = ["DEFAULT_MODEL", "run_model_demo"]
