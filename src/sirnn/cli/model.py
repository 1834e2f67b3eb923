"""``sirnn compile``, ``serve``, ``infer``, ``eval``, ``inspect``: the model pipeline on the
command line (thin wrappers of :mod:`sirnn.compiler`)."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ..errors import InputError, ParameterError, SirnnError
from ..transport.peerdata import peer_text


def _err(cmd: str, e: BaseException) -> None:
    print(f"sirnn {cmd}: error: {e}", file=sys.stderr, flush=True)


def _load_array(path: str, what: str) -> np.ndarray:
    """A numeric array from a .npy file; anything else is an InputError (one line)."""
    from ..compiler.program import load_array

    return load_array(path, what, InputError)


def _load_inputs(path: str, what: str):
    """The arrays of a model's inputs: a .npy file (a model with one input), or an .npz with one
    array per input name (a dict); anything else is an InputError (one line)."""
    from ..compiler.program import load_arrays

    return load_arrays(path, what, InputError)


def _n_samples(x) -> int:
    v = next(iter(x.values())) if isinstance(x, dict) else x
    return len(v)


def _save_outputs(path: str, y) -> None:
    """Outputs to a file: .npy (one output) or .npz (one array per output name)."""
    if isinstance(y, dict):
        if not path.lower().endswith(".npz"):
            raise InputError(f"the model has {len(y)} outputs {list(y)}: save them to an .npz, not {path}")
        np.savez(path, **{k: np.asarray(v) for k, v in y.items()})
    elif path.lower().endswith(".npz"):
        raise InputError(f"the model has one output: save it to a .npy, not {path}")
    else:
        np.save(path, np.asarray(y))


def _outputs_json(y):
    return {k: np.asarray(v).tolist() for k, v in y.items()} if isinstance(y, dict) else np.asarray(y).tolist()


def _outputs_text(y) -> str:
    if not isinstance(y, dict):
        return f"output: {y}"
    return "\n".join(f"output {k}: {np.array2string(np.asarray(v), precision=4, separator=', ')}"
                     for k, v in y.items())


# ---- compile ------------------------------------------------------------------------------------
def compile_cmd(args) -> int:
    from ..compiler import CompileConfig, compare, compile_model, load_float_model

    try:
        fm = load_float_model(args.model, **({} if args.batch_axis == "auto" else
                                              {"batch_axis": None if args.batch_axis == "none" else 0}))
        calib = _load_inputs(args.calib, "calibration data")
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
    print(f"wrote {args.output} ({_size(args.output)}) in {secs:.2f} s, calibrated on "
          f"{prog.meta.get('calibration_samples', '?')} samples")
    if args.check:
        from ..compiler.calibrate import _as_calib

        x = _as_calib(calib, fm)  # batch-leading
        n = args.check if prog.fixed_batch is None else max(1, args.check // prog.fixed_batch) * prog.fixed_batch
        x = {t: np.moveaxis(v[:n], 0, fm.batch_axes.get(t, 0)) for t, v in x.items()} if isinstance(x, dict) else x[:n]
        rep = compare(fm, prog, x)
        if "agreement" in rep:
            print(f"fixed point vs float on {rep['samples']} calibration samples: "
                  f"{rep['agreement'] * 100:.2f}% equal predictions")
        else:
            for name, r in rep.get("outputs", {prog.output: rep}).items():
                who = "" if len(prog.outputs) == 1 else f" {name}"
                if "agreement" in r:
                    print(f"fixed point vs float on {rep['samples']} calibration samples{who}: "
                          f"{r['agreement'] * 100:.2f}% equal predictions")
                else:
                    print(f"fixed point vs float on {rep['samples']} calibration samples{who}: max |err| "
                          f"{r['max_abs_err']:.3g} (output max |y| {r['max_abs']:.3g})")
        worst = sorted(rep["tensors"].items(), key=lambda kv: -kv[1]["ulp"])[:5]
        for name, t in worst:
            print(f"  {name:24s} max |err| {t['max_abs_err']:.3g} = {t['ulp']:.1f} ULP of "
                  f"({t['format'][0]}, {t['format'][1]}), max |x| {t['max_abs']:.3g}")
    return 0


def _size(path) -> str:
    import os

    n = os.path.getsize(path)
    return f"{n / 1000:.1f} KB" if n >= 1000 else f"{n} B"


# ---- serve ----------------------------------------------------------------------------------------
def serve_cmd(args) -> int:
    from ..compiler import Program, serve

    try:
        prog = Program.load(args.model)
        serve(prog, args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca,
              max_sessions=args.max_sessions, timeout=args.timeout, max_batch=args.max_batch,
              workers=args.workers, queue=args.queue, handshake_timeout=args.handshake_timeout,
              session_timeout=args.session_timeout, min_rate=args.min_rate, ot=args.ot)
    except SirnnError as e:
        _err("serve", e)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


#: help text of ``--net`` (``sirnn bench`` and ``sirnn infer``)
NET_HELP = ("emulate a network between the parties (a relay in its own process): e.g. rtt=40ms,bw=100mbit; fields "
            "rtt, delay (one way), delay_up, delay_down, bw, up, down (up = client to server); rates in "
            "bit/kbit/mbit/gbit or B/KB/MB/GB per second; presets lan (0.8 ms, 377 MB/s), wan (40 ms, "
            "100 Mbit/s)")


def net_profile_arg(text: str):
    """argparse type of ``--net``: a :class:`~sirnn.transport.netem.NetworkProfile`."""
    import argparse

    from ..transport.netem import NetworkProfile

    try:
        return NetworkProfile.parse(text)
    except SirnnError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ---- infer ----------------------------------------------------------------------------------------
class ProgressLine:
    """Progress of a client session (:class:`~sirnn.compiler.ProgressEvent` s) on stderr, each
    line starting with ``prefix``: position, percent, time, ETA and bytes so far
    (:func:`sirnn.compiler.progress.progress_text`). On a terminal one line rewritten in place;
    otherwise a line per session step, per op and per ~10% of the timesteps. ``as_json=True``: one
    JSON object per event instead (the :class:`~sirnn.compiler.progress.ProgressClock` record),
    for programs."""

    def __init__(self, stream=None, prefix: str = "sirnn infer", as_json: bool = False):
        from ..compiler.progress import ProgressClock

        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.json = as_json
        self.tty = not as_json and bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = ProgressClock()
        self.dirty = False

    def __call__(self, ev) -> None:
        from ..compiler.progress import progress_text

        rec = self.clock(ev)
        if self.json:
            self.stream.write(json.dumps(rec) + "\n")
            self.stream.flush()
            return
        if ev.steps and not self.tty:
            every = max(1, ev.steps // 10)
            if ev.step % every and ev.step != ev.steps:
                return
        line = f"{self.prefix}: {progress_text(rec)}"
        if self.tty:  # one line, cut to the terminal's width (a wrapped line could not be rewritten)
            import shutil

            self.stream.write("\r\x1b[2K" + line[:shutil.get_terminal_size().columns - 1])
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

    progress = None if args.no_progress else ProgressLine(as_json=args.json)
    try:
        if args.plot:
            from .plots import require_matplotlib

            require_matplotlib()  # fail before the session, not after it
        x = _load_inputs(args.input, "input")
        try:
            res = infer(args.host, args.port, x, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                        tls_key=args.tls_key, server_hostname=args.server_name,
                        expect_digest=args.expect_digest, report=args.report or bool(args.plot), progress=progress,
                        timeout=args.timeout, connect_timeout=args.connect_timeout, net=args.net, ot=args.ot,
                        on_wait=lambda line: print(f"sirnn infer: {line}", file=sys.stderr, flush=True))
        finally:  # clear the progress line before anything else is printed
            if progress:
                progress.done()
    except ParameterError as e:  # a bad input, program, file or option: the user's to fix
        _err("infer", e)
        return 2
    except SirnnError as e:
        _err("infer", f"{type(e).__name__}: {e}")
        return 1
    for w in res.warnings:
        print(f"sirnn infer: warning: {w}", file=sys.stderr)
    if args.plot:
        from .plots import plot_report

        try:
            plot_report(res.report, args.plot, title=f"{res.program.meta.get('name', 'model')}, batch "
                                                      f"{_n_samples(x) if res.batched else 1}")
        except InputError as e:
            _err("infer", e)
            return 2
        print(f"sirnn infer: wrote {args.plot}", file=sys.stderr)
    if args.save:
        try:
            _save_outputs(args.save, res.output)
        except (InputError, OSError) as e:
            _err("infer", e)
            return 2
    several = isinstance(res.output, dict)
    classes = not several and not res.program.output_spec.signed  # an argmax model: a class index
    if args.json:
        out = {**({"prediction": np.asarray(res.prediction).tolist()} if classes else {}),
               "output": _outputs_json(res.output), "digest": res.digest, "seconds": res.seconds,
               "queue_seconds": res.queue_seconds, "bytes_sent": res.bytes_sent,
               "bytes_recv": res.bytes_recv, "rounds": res.rounds, "ot": res.ot}
        labels = res.label()
        if labels is not res.prediction:
            out["label"] = np.asarray(labels).tolist()
        if res.report is not None:
            out["report"] = res.report
        print(json.dumps(out))
        return 0
    print(_outputs_text(res.output) if several else f"{'prediction' if classes else 'output'}: {_pred_text(res)}")
    queued = f" after {res.queue_seconds:.2f} s in the server's queue" if res.queue_seconds >= 0.01 else ""
    print(f"({res.seconds:.2f} s{queued}, {res.bytes_sent + res.bytes_recv:,} bytes, {res.rounds} rounds, OT "
          f"engine {res.ot}; model {peer_text(res.program.meta.get('name', ''))} digest {res.digest[:16]}…)")
    if res.report is not None:
        print(format_report(res.report))
    return 0


def _pred_text(res) -> str:
    """The prediction with its labels; labels come from the server's program, so they are printed
    escaped (no control characters reach the terminal)."""
    p = np.asarray(res.prediction)
    lab = res.label()
    if res.program.output_spec.signed:
        return np.array2string(p, precision=4, separator=", ")
    if p.ndim == 0:
        return f"{int(p)}" + (f" ({peer_text(lab)})" if lab is not res.prediction and lab != int(p) else "")
    return ", ".join(f"{int(i)}" + (f" ({peer_text(lab[k])})" if lab is not res.prediction else "")
                     for k, i in enumerate(p))


# ---- eval / inspect ---------------------------------------------------------------------------------
def eval_cmd(args) -> int:
    from ..compiler import Program, evaluate_clear

    try:
        prog = Program.load(args.model)
        x = _load_inputs(args.input, "input")
        y = evaluate_clear(prog, x)
        if args.save:
            _save_outputs(args.save, y)
    except (SirnnError, OSError) as e:
        _err("eval", e)
        return 2
    print(json.dumps({"output": _outputs_json(y)}) if args.json else _outputs_text(y))
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
        print(_batch_text(prog))
    return 0


def _batch_text(prog) -> str:
    """How the client shapes its inputs: each input's per-sample shape, and whether that is the
    model's input without its batch axis (and where that axis goes) or (a fully static ONNX
    input) the whole input; for several inputs or outputs one line per tensor."""
    fixed = "" if prog.fixed_batch is None else f" (exactly N = {prog.fixed_batch}: per-sample sequence lengths)"
    if len(prog.inputs) == 1 and len(prog.outputs) == 1 and not prog.batch_axes:
        shape = tuple(prog.input_spec.shape)
        if prog.meta.get("batch_axis", 0) is None:
            return (f"batch: none — the model's input is one sample of shape {shape} (static shape); "
                    f"send {shape}, or a stack (N,) + {shape} to run several")
        return f"batch: axis 0 — send one sample {shape} or a batch (N,) + {shape}{fixed}"
    static = prog.meta.get("batch_axis", 0) is None

    def with_batch(t):
        shape, b = tuple(prog.tensors[t].shape), prog.batch_axis(t)
        return "(" + ", ".join(str(d) for d in shape[:b] + ("N",) + shape[b:]) + ")"

    head = "none — every input is one sample of its static shape (or a stack (N, ...))" if static else "per tensor, below"
    lines = [f"batch: {head}{fixed}; inputs by name (an .npz with one array per input):"]
    for t in prog.inputs:
        lines.append(f"  input  {t}: one sample {tuple(prog.tensors[t].shape)} or a batch {with_batch(t)}"
                     f" (batch axis {prog.batch_axis(t)})")
    for t in prog.outputs:
        lines.append(f"  output {t}: {tuple(prog.tensors[t].shape)} per sample, a batch {with_batch(t)}"
                     f" (batch axis {prog.batch_axis(t)})")
    return "\n".join(lines)


def add_parsers(sub) -> None:
    from .args import OT_DEFAULT, add_command, add_ot_option, bitwidth, hex_digest, listen_port, nonneg_int, port, nonneg_float, positive_float, positive_int

    c = add_command(sub, "compile", "float model + calibration data → fixed-point program (.sirnn)",
                    "Compile a float model (ONNX, or sirnn's float IR as .npz/.json) with calibration "
                    "data into a fixed-point program: one .sirnn file holding the public structure and "
                    "the server's integer weights (loads with numpy only).")
    c.add_argument("model", help="float model: .onnx (needs the onnx package) or .npz / .json (sirnn float model)")
    c.add_argument("--calib", required=True, metavar="DATA.npy",
                   help="calibration inputs, (N,) + input shape; several inputs: an .npz with one array per "
                        "input name (each with its batch axis where the model has it)")
    c.add_argument("-o", "--output", required=True, metavar="MODEL.sirnn", help="the program file to write")
    c.add_argument("--bits", type=bitwidth, default=16, help="activation bitwidth")
    c.add_argument("--w-bits", type=bitwidth, default=16, dest="w_bits", help="weight bitwidth")
    c.add_argument("--headroom", type=nonneg_int, default=1, help="spare integer bits over the calibrated range")
    c.add_argument("--no-fuse-tanh", action="store_true", help="separate σ and tanh calls in the cells")
    c.add_argument("--batch-axis", choices=["auto", "none", "0"], default="auto", dest="batch_axis",
                   help="ONNX: is the input's first axis a batch (0) or is the input one sample (none)? "
                        "auto (default): a symbolic or size-1 first axis is the batch, a fully static "
                        "shape is one sample")
    c.add_argument("--check", type=nonneg_int, default=256, metavar="N",
                   help="compare fixed point with float on N calibration samples (0: skip)")
    c.set_defaults(func=compile_cmd)

    s = add_command(sub, "serve", "serve a compiled model (the server holds the weights)",
                    "Serve a compiled model: each connecting client runs one secure inference session "
                    "(handshake, public program, OT set-up, the layers on secret shares; the client "
                    "alone learns the output). Sessions are logged on stderr. On a network, require "
                    "client certificates (--tls-cert, --tls-key, --tls-ca): see the README's threat model.")
    s.add_argument("model", help="compiled program (.sirnn)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    s.add_argument("--port", type=listen_port, required=True, help="TCP port (0: any free port, printed)")
    s.add_argument("--tls-cert", dest="tls_cert", metavar="CERT.pem", help="server certificate (PEM) for TLS")
    s.add_argument("--tls-key", dest="tls_key", metavar="KEY.pem", help="server private key (PEM)")
    s.add_argument("--tls-ca", dest="tls_ca", metavar="CA.pem", help="require client certificates signed by this CA (mutual TLS)")
    s.add_argument("--max-sessions", type=positive_int, dest="max_sessions", metavar="N",
                   help="exit after N sessions (default: serve until interrupted)")
    s.add_argument("--max-batch", type=positive_int, default=4096, dest="max_batch", metavar="N",
                   help="largest batch of samples a client may send in one session")
    s.add_argument("--timeout", type=positive_float, default=120.0, metavar="SECONDS",
                   help="seconds of client silence before a session is dropped")
    s.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help=f"sessions run at once, each in its own process (default: the number of cores, {os.cpu_count()})")
    s.add_argument("--queue", type=nonneg_int, default=16, metavar="N",
                   help="clients that may wait for a free worker; beyond, a client is told the server is busy")
    s.add_argument("--handshake-timeout", type=positive_float, default=10.0, dest="handshake_timeout", metavar="SECONDS",
                   help="seconds a new connection has for its TLS handshake and hello")
    s.add_argument("--session-timeout", type=positive_float, default=900.0, dest="session_timeout", metavar="SECONDS",
                   help="seconds one session may run once it leaves the queue")
    s.add_argument("--min-rate", type=nonneg_float, default=1024.0, dest="min_rate", metavar="BYTES_PER_S",
                   help="drop a session whose client sends less than this over any 10 s window (0: off)")
    add_ot_option(s, OT_DEFAULT, "; announced to each client")
    s.set_defaults(func=serve_cmd)

    i = add_command(sub, "infer", "run one secure inference as the client (holds the input)",
                    "Connect to a sirnn server and run one secure inference on a private input (one "
                    "sample or a batch): the client learns the model's output, the server learns "
                    "nothing about the input. Exit code 2 for a bad input or program, 1 for a failed "
                    "connection or session.")
    i.add_argument("--host", default="127.0.0.1", help="the server's address")
    i.add_argument("--port", type=port, required=True, help="the server's TCP port")
    i.add_argument("--input", required=True, metavar="X.npy", help="one sample, or a batch (N,) + input shape; "
                   "several inputs: an .npz with one array per input name (see `sirnn inspect`)")
    i.add_argument("--save", metavar="Y.npy", help="also write the output to this file (.npy; several outputs: "
                                                 ".npz, one array per output name)")
    i.add_argument("--tls-ca", dest="tls_ca", metavar="CA.pem", help="verify the server's certificate against this CA / certificate (enables TLS)")
    i.add_argument("--tls-cert", dest="tls_cert", metavar="CERT.pem", help="client certificate (mutual TLS)")
    i.add_argument("--tls-key", dest="tls_key", metavar="KEY.pem", help="client private key (mutual TLS)")
    i.add_argument("--server-name", dest="server_name", metavar="NAME", help="name to check in the server certificate (default: the host)")
    i.add_argument("--expect-digest", dest="expect_digest", type=hex_digest, metavar="SHA256",
                   help="refuse unless the server's program has this digest (see `sirnn inspect`)")
    i.add_argument("--report", action="store_true", help="per-layer table of time, bytes, rounds")
    i.add_argument("--plot", metavar="FILE.png", help="draw the per-layer time, bytes and rounds (implies "
                                                     "--report's measurements; needs matplotlib: the plot extra)")
    i.add_argument("--json", action="store_true",
                   help="print one JSON object (and the progress events as JSON lines on stderr)")
    i.add_argument("--no-progress", action="store_true", dest="no_progress",
                   help="no progress display (default: layer, step, percent, ETA and bytes on stderr)")
    i.add_argument("--net", type=net_profile_arg, metavar="PROFILE",
                   help=NET_HELP.replace("between the parties (a relay", "to the server (a local relay"))
    i.add_argument("--timeout", type=positive_float, default=120.0, metavar="SECONDS",
                   help="seconds of server silence before giving up")
    i.add_argument("--connect-timeout", type=positive_float, default=10.0, dest="connect_timeout", metavar="SECONDS",
                   help="seconds to keep retrying while nobody listens at the address")
    add_ot_option(i, None, " (default: the one the server announces; a different one fails the session)")
    i.set_defaults(func=infer_cmd)

    e = add_command(sub, "eval", "run a compiled model in the clear (fixed-point interpreter, no security)",
                    "Run a compiled model on an input in the clear with the fixed-point interpreter: "
                    "the output equals the secure session's bit for bit (no security: one process "
                    "holds both the weights and the input).")
    e.add_argument("model", help="compiled program (.sirnn)")
    e.add_argument("--input", required=True, metavar="X.npy", help="one sample, or a batch (N,) + input shape; "
                   "several inputs: an .npz with one array per input name (see `sirnn inspect`)")
    e.add_argument("--save", metavar="Y.npy", help="also write the output to this file (.npy; several outputs: "
                                                 ".npz, one array per output name)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=eval_cmd)

    n = add_command(sub, "inspect", "show a compiled model's public structure and digest",
                    "Show a compiled model's public structure (what a client sees: ops, shapes, "
                    "fixed-point formats, parameter sizes; no weights) and its digest.")
    n.add_argument("model", help="compiled program (.sirnn)")
    n.add_argument("--json", action="store_true", help="print the public description as JSON")
    n.set_defaults(func=inspect_cmd)
