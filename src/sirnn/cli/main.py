"""The ``sirnn`` command line."""

from __future__ import annotations

import argparse
import sys

from ..errors import SirnnError, TransportError
from .args import OT_DEFAULT, Parser, add_command, add_ot_option, bitwidth, int_range, nonneg_int, positive_int


def _bench(args) -> int:
    from .bench import format_report, run_bench

    opts = {"n": args.n, "N": args.N, "bits": args.bits, "bw_in": args.bw_in, "scale_in": args.scale_in,
            "bw_out": args.bw_out, "scale_out": args.scale_out, "seed": args.seed, "dump": args.dump,
            "ot": args.ot}
    for k, v in args.opt or []:
        opts[k] = v
    rep = run_bench(args.function, opts, tls=args.tls, net=args.net)
    print(format_report(rep, args.json))
    return 1 if rep.get("mismatches") else 0


def _precision(args) -> int:
    from ..errors import InputError
    from .precision import format_precision, precision_report

    arrays = {} if args.plot else None
    try:
        if args.plot:
            from .plots import plot_precision, require_matplotlib

            require_matplotlib()  # before the work, not after
        rep = precision_report(args.function, args.bw_in, args.scale_in, args.bw_out, args.scale_out, args.seed,
                               arrays=arrays)
        if args.plot:
            plot_precision(rep, arrays, args.plot)
    except InputError as e:
        print(f"sirnn precision: error: {e}", file=sys.stderr)
        return 2
    print(format_precision(rep, args.json))
    if args.plot and not args.json:
        print(f"wrote {args.plot}")
    return 0


def _demo(args) -> int:
    if args.math:
        if args.model is not None:
            print("sirnn demo: error: --math and --model exclude each other", file=sys.stderr)
            return 2
        from .demo_math import DEFAULT_N, run_demo

        return run_demo(DEFAULT_N if args.n is None else args.n, ot=args.ot)
    from .demo import DEFAULT_MODEL, run_model_demo

    return run_model_demo(args.model or DEFAULT_MODEL, n=args.n, ot=args.ot)


def build_parser() -> argparse.ArgumentParser:
    from .. import PROTOCOL_VERSION, __version__

    ap = Parser(prog="sirnn", description="Secure two-party inference of recurrent neural networks "
                "(after SiRNN, Rathee et al., IEEE S&P 2021): a server holds a model, a client an "
                "input; the client learns the prediction and nothing else, the server nothing.")
    ap.add_argument("--version", action="version",
                    version=f"sirnn {__version__} (wire protocol version {PROTOCOL_VERSION})")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    d = add_command(sub, "demo", "secure inference of a bundled trained model, both parties as two "
                                 "local processes; prints the predictions and what it cost",
                    "Secure inference of a bundled trained model: ALICE (server, the weights) and BOB "
                    "(client, a few test samples) run as two OS processes over loopback; prints the "
                    "predictions next to the cleartext fixed-point and float ones, then time, bytes "
                    "and rounds per layer. Exit code 1 unless the secure logits equal the cleartext "
                    "fixed-point ones bit for bit.")
    d.add_argument("--model", default=None, metavar="NAME",
                   help="the bundled model (default fastgrnn_japanese_vowels; also "
                        "fastgrnn_basic_motions, fastgrnn_lowrank_japanese_vowels, rnnpool_lfw_faces)")
    d.add_argument("--n", type=positive_int, default=None,
                   help="the number of bundled test samples (default all); with --math: the batch "
                        "size (default 4096; the first 8 values are shown)")
    d.add_argument("--math", action="store_true",
                   help="instead: the math library's demo (secure sigmoid and tanh of a batch, "
                        "with ULP errors and OT throughput)")
    add_ot_option(d, OT_DEFAULT)
    d.set_defaults(func=_demo)

    pr = add_command(sub, "precision", "ULP error of a math function over all (or 10^6) inputs",
                     "ULP error of a math function's fixed-point functionality (what the secure "
                     "protocol computes bit for bit) against float64: all 2^16 inputs of a 16-bit "
                     "configuration, 10^6 random ones for wider inputs.")
    pr.add_argument("function", help="the math function: exp, sigmoid, tanh, ... (see `sirnn bench list`)")
    pr.add_argument("--bw-in", type=bitwidth, dest="bw_in", default=16, help="input bitwidth (1..64)")
    pr.add_argument("--scale-in", type=nonneg_int, dest="scale_in", default=12, help="input scale (fraction bits)")
    pr.add_argument("--bw-out", type=bitwidth, dest="bw_out", default=16, help="output bitwidth (1..64)")
    pr.add_argument("--scale-out", type=nonneg_int, dest="scale_out", default=12, help="output scale (fraction bits)")
    pr.add_argument("--seed", type=nonneg_int, default=1, help="seed of the random inputs (wide inputs only)")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.add_argument("--plot", metavar="FILE.png", help="draw the function and its ULP error over the inputs "
                                                      "(needs matplotlib: the plot extra)")
    pr.set_defaults(func=_precision)

    from .model import NET_HELP, net_profile_arg

    b = add_command(sub, "bench", "microbenchmark one protocol between two processes (loopback)",
                    "Run one protocol between two OS processes over loopback: seconds, bytes per "
                    "party, rounds, and mismatches against the cleartext functionality. Both "
                    "parties derive their inputs from a common seed (a benchmark harness, not a "
                    "deployment). Options left out take the benchmark's own defaults.")
    b.add_argument("function", help="benchmark name (`sirnn bench list` names them all)")
    b.add_argument("--n", type=positive_int, help="batch size")
    b.add_argument("--N", type=int_range(2, 1 << 16, "in 2..65536"), help="1-of-N OT: N")
    b.add_argument("--bits", type=bitwidth, help="OT message bits")
    b.add_argument("--bw-in", type=bitwidth, dest="bw_in", help="input bitwidth")
    b.add_argument("--scale-in", type=nonneg_int, dest="scale_in", help="input scale")
    b.add_argument("--bw-out", type=bitwidth, dest="bw_out", help="output bitwidth")
    b.add_argument("--scale-out", type=nonneg_int, dest="scale_out", help="output scale")
    b.add_argument("--seed", type=nonneg_int, help="seed of both parties' inputs")
    b.add_argument("--opt", action="append", metavar="KEY=VALUE", type=_key_value,
                   help="a block-specific option (repeatable)")
    b.add_argument("--dump", metavar="FILE.npz", help="math functions: save inputs and outputs")
    add_ot_option(b, None, f" (default {OT_DEFAULT})")
    b.add_argument("--tls", action="store_true", help="run over mutual TLS")
    b.add_argument("--net", type=net_profile_arg, metavar="PROFILE", help=NET_HELP)
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_bench)

    from .model import add_parsers

    add_parsers(sub)  # compile, serve, infer, eval, inspect
    return ap


def _key_value(text: str) -> tuple[str, int | str]:
    k, eq, v = text.partition("=")
    if not eq or not k.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return k.strip().replace("-", "_"), int(v) if v.lstrip("-").isdigit() else v


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "function", None) == "list":
        from .benchmath import CASES

        for name, case in sorted(CASES.items()):
            print(f"{name:14s} {case.help}")
        return 0
    try:
        return args.func(args)
    except SirnnError as e:  # a user's mistake the command did not catch itself: one line
        print(f"sirnn {args.cmd}: error: {_one_line(e)}", file=sys.stderr)
        return 1 if isinstance(e, TransportError) else 2
    except OSError as e:  # e.g. an output file in a folder that does not exist
        print(f"sirnn {args.cmd}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sirnn {args.cmd}: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
