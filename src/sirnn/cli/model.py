"""``sirnn compile``, ``serve``, ``infer``, ``eval``, ``inspect``: the model pipeline on the
command line (thin wrappers of :mod:`sirnn.compiler`)."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ..errors import InputError, ProgramError, SirnnError


def _err(cmd: str, e: BaseException) -> None:
    print(f"sirnn {cmd}: error: {e}", file=sys.stderr, flush=True)


def _load_array(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"no such {what} file: {path}") from None
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read the {what} {path} as a .npy array: {e}") from None


# ---- compile ------------------------------------------------------------------------------------
def compile_cmd(args) -> int:
    from ..compiler import CompileConfig, compare, compile_model, load_float_model

    try:
        fm = load_float_model(args.model)
        calib = _load_array(args.calib, "calibration data")
        cfg = CompileConfig(act_bits=args.bits, w_bits=args.w_bits, headroom_bits=args.headroom,
                            fuse_tanh=not args.no_fuse_tanh)
        t0 = time.perf_counter()
        prog = compile_model(fm, calib, cfg)
        prog.save(args.output)
        secs = time.perf_counter() - t0
    except SirnnError as e:
        _err("compile", e)
        return 2
    print(prog.summary())
    print(f"wrote {args.output} ({_size(args.output)}) in {secs:.2f} s, calibrated on {len(calib)} samples")
    if args.check:
        x = np.asarray(calib, np.float64)
        x = x if x.shape != fm.input_shape else x[None]
        rep = compare(fm, prog, x[:args.check])
        if "agreement" in rep:
            print(f"fixed point vs float on {rep['samples']} calibration samples: "
                  f"{rep['agreement'] * 100:.2f}% equal predictions")
        else:
            print(f"fixed point vs float on {rep['samples']} calibration samples: max |err| "
                  f"{rep['max_abs_err']:.3g} (output max |y| {rep['max_abs']:.3g})")
        worst = sorted(rep["tensors"].items(), key=lambda kv: -kv[1]["ulp"])[:5]
        for name, t in worst:
            print(f"  {name:24s} max |err| {t['max_abs_err']:.3g} = {t['ulp']:.1f} ULP of "
                  f"({t['format'][0]}, {t['format'][1]}), max |x| {t['max_abs']:.3g}")
    return 0


def _size(path) -> str:
    import os

    n = os.path.getsize(path)
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


# ---- serve ----------------------------------------------------------------------------------------
def serve_cmd(args) -> int:
    from ..compiler import Program, serve

    try:
        prog = Program.load(args.model)
        serve(prog, args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca,
              max_sessions=args.max_sessions, timeout=args.timeout, max_batch=args.max_batch,
              workers=args.workers, queue=args.queue, handshake_timeout=args.handshake_timeout,
              session_timeout=args.session_timeout, min_rate=args.min_rate)
    except SirnnError as e:
        _err("serve", e)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


# ---- infer ----------------------------------------------------------------------------------------
class ProgressLine:
    """Progress of a client session (:class:`~sirnn.compiler.ProgressEvent` s) on stderr, each
    line starting with ``prefix``: one line rewritten in place on a terminal; otherwise a line per
    session step, per op and per ~10% of the timesteps."""

    def __init__(self, stream=None, prefix: str = "sirnn infer"):
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.dirty = False

    def __call__(self, ev) -> None:
        el = time.perf_counter() - self.t0
        if ev.op == "phase":
            text = ev.name
        elif ev.steps:
            every = max(1, ev.steps // 10)
            if not self.tty and ev.step % every and ev.step != ev.steps:
                return
            text = f"[{ev.op_index + 1}/{ev.n_ops}] {ev.name} ({ev.op}): timestep {ev.step}/{ev.steps}"
        else:
            text = f"[{ev.op_index + 1}/{ev.n_ops}] {ev.name} ({ev.op})"
        line = f"{self.prefix}: {text}  {el:.1f} s"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.dirty = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.dirty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def infer_cmd(args) -> int:
    from ..compiler import infer
    from ..compiler.session import format_report

    progress = None if args.no_progress else ProgressLine()
    try:
        x = _load_array(args.input, "input")
        if x.dtype.kind not in "fiub":
            raise InputError(f"the input must be a numeric array, got dtype {x.dtype}")
        try:
            res = infer(args.host, args.port, x, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                        tls_key=args.tls_key, server_hostname=args.server_name,
                        expect_digest=args.expect_digest, report=args.report, progress=progress,
                        timeout=args.timeout, connect_timeout=args.connect_timeout)
        finally:  # clear the progress line before anything else is printed
            if progress:
                progress.done()
    except (InputError, ProgramError) as e:
        _err("infer", e)
        return 2
    except SirnnError as e:
        _err("infer", f"{type(e).__name__}: {e}")
        return 1
    for w in res.warnings:
        print(f"sirnn infer: warning: {w}", file=sys.stderr)
    if args.json:
        out = {"prediction": np.asarray(res.prediction).tolist(), "output": np.asarray(res.output).tolist(),
               "digest": res.digest, "seconds": res.seconds, "queue_seconds": res.queue_seconds,
               "bytes_sent": res.bytes_sent,
               "bytes_recv": res.bytes_recv, "rounds": res.rounds}
        labels = res.label()
        if labels is not res.prediction:
            out["label"] = np.asarray(labels).tolist()
        if res.report is not None:
            out["report"] = res.report
        print(json.dumps(out))
        return 0
    print(f"prediction: {_pred_text(res)}")
    queued = f" after {res.queue_seconds:.2f} s in the server's queue" if res.queue_seconds >= 0.01 else ""
    print(f"({res.seconds:.2f} s{queued}, {res.bytes_sent + res.bytes_recv:,} bytes, {res.rounds} rounds; "
          f"model {res.program.meta.get('name', '')!s} digest {res.digest[:16]}…)")
    if res.report is not None:
        print(format_report(res.report))
    return 0


def _pred_text(res) -> str:
    p = np.asarray(res.prediction)
    lab = res.label()
    if res.program.output_spec.signed:
        return np.array2string(p, precision=4, separator=", ")
    if p.ndim == 0:
        return f"{int(p)}" + (f" ({lab})" if lab is not res.prediction and lab != int(p) else "")
    return ", ".join(f"{int(i)}" + (f" ({lab[k]})" if lab is not res.prediction else "")
                     for k, i in enumerate(p))


# ---- eval / inspect ---------------------------------------------------------------------------------
def eval_cmd(args) -> int:
    from ..compiler import Program, evaluate_clear

    try:
        prog = Program.load(args.model)
        x = _load_array(args.input, "input")
        y = evaluate_clear(prog, x)
    except SirnnError as e:
        _err("eval", e)
        return 2
    print(json.dumps({"output": np.asarray(y).tolist()}) if args.json else f"output: {y}")
    return 0


def inspect_cmd(args) -> int:
    from ..compiler import Program

    try:
        prog = Program.load(args.model)
    except SirnnError as e:
        _err("inspect", e)
        return 2
    if args.json:
        print(json.dumps(prog.describe(), indent=1))
    else:
        print(prog.summary())
    return 0


def add_parsers(sub) -> None:
    c = sub.add_parser("compile", help="float model + calibration data → fixed-point program (.sirnn)")
    c.add_argument("model", help="float model: .onnx (needs the onnx package) or .npz / .json (sirnn float model)")
    c.add_argument("--calib", required=True, metavar="DATA.npy", help="calibration inputs, (N,) + input shape")
    c.add_argument("-o", "--output", required=True, metavar="MODEL.sirnn")
    c.add_argument("--bits", type=int, default=16, help="activation bitwidth (default 16)")
    c.add_argument("--w-bits", type=int, default=16, dest="w_bits", help="weight bitwidth (default 16)")
    c.add_argument("--headroom", type=int, default=1, help="spare integer bits over the calibrated range")
    c.add_argument("--no-fuse-tanh", action="store_true", help="separate σ and tanh calls in the cells")
    c.add_argument("--check", type=int, default=256, metavar="N",
                   help="compare fixed point with float on N calibration samples (0: skip)")
    c.set_defaults(func=compile_cmd)

    s = sub.add_parser("serve", help="serve a compiled model (the server holds the weights)")
    s.add_argument("model", help="compiled program (.sirnn)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True, help="TCP port (0: any free port, printed)")
    s.add_argument("--tls-cert", dest="tls_cert", help="server certificate (PEM) for TLS")
    s.add_argument("--tls-key", dest="tls_key", help="server private key (PEM)")
    s.add_argument("--tls-ca", dest="tls_ca", help="require client certificates signed by this CA")
    s.add_argument("--max-sessions", type=int, dest="max_sessions", help="exit after N sessions")
    s.add_argument("--max-batch", type=int, default=4096, dest="max_batch")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds of client silence before a session is dropped")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"sessions run at once, each in its own process (default: the number of cores, {os.cpu_count()})")
    s.add_argument("--queue", type=int, default=16, metavar="N",
                   help="clients that may wait for a free worker; beyond, a client is told the server is busy "
                        "(default 16)")
    s.add_argument("--handshake-timeout", type=float, default=10.0, dest="handshake_timeout", metavar="SECONDS",
                   help="seconds a new connection has for its TLS handshake and hello (default 10)")
    s.add_argument("--session-timeout", type=float, default=900.0, dest="session_timeout", metavar="SECONDS",
                   help="seconds one session may run once it leaves the queue (default 900)")
    s.add_argument("--min-rate", type=float, default=1024.0, dest="min_rate", metavar="BYTES_PER_S",
                   help="drop a session whose client sends less than this over any 10 s window (default 1024; 0: off)")
    s.set_defaults(func=serve_cmd)

    i = sub.add_parser("infer", help="run one secure inference as the client (holds the input)")
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--input", required=True, metavar="X.npy", help="one sample, or a batch (N,) + input shape")
    i.add_argument("--tls-ca", dest="tls_ca", help="verify the server's certificate against this CA / certificate")
    i.add_argument("--tls-cert", dest="tls_cert", help="client certificate (mutual TLS)")
    i.add_argument("--tls-key", dest="tls_key", help="client private key (mutual TLS)")
    i.add_argument("--server-name", dest="server_name", help="name to check in the server certificate (default: host)")
    i.add_argument("--expect-digest", dest="expect_digest", help="refuse unless the server's program has this digest")
    i.add_argument("--report", action="store_true", help="per-layer table of time, bytes, rounds")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.add_argument("--no-progress", action="store_true", dest="no_progress")
    i.add_argument("--timeout", type=float, default=120.0, help="seconds of server silence before giving up")
    i.add_argument("--connect-timeout", type=float, default=10.0, dest="connect_timeout",
                   help="seconds to keep retrying while the server is not up (default 10)")
    i.set_defaults(func=infer_cmd)

    e = sub.add_parser("eval", help="run a compiled model in the clear (fixed-point interpreter, no security)")
    e.add_argument("model")
    e.add_argument("--input", required=True, metavar="X.npy")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=eval_cmd)

    n = sub.add_parser("inspect", help="show a compiled model's public structure and digest")
    n.add_argument("model")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=inspect_cmd)
