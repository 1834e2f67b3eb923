"""The ``sirnn`` command line."""

from __future__ import annotations

import argparse
import sys


def _bench(args) -> int:
    from .bench import format_report, run_bench

    opts = {"n": args.n, "N": args.N, "bits": args.bits, "bw_in": args.bw_in, "scale_in": args.scale_in,
            "bw_out": args.bw_out, "scale_out": args.scale_out, "seed": args.seed, "dump": args.dump,
            "ot": args.ot}
    for kv in args.opt or []:
        k, _, v = kv.partition("=")
        opts[k.replace("-", "_")] = int(v) if v.lstrip("-").isdigit() else v
    rep = run_bench(args.function, opts, tls=args.tls)
    print(format_report(rep, args.json))
    return 1 if rep.get("mismatches") else 0


def _precision(args) -> int:
    from .precision import format_precision, precision_report

    rep = precision_report(args.function, args.bw_in, args.scale_in, args.bw_out, args.scale_out, args.seed)
    print(format_precision(rep, args.json))
    return 0


def _demo(args) -> int:
    if args.math:
        if args.model is not None:
            print("sirnn demo: --math and --model exclude each other")
            return 2
        from .demo_math import DEFAULT_N, run_demo

        return run_demo(DEFAULT_N if args.n is None else args.n)
    from .demo import DEFAULT_MODEL, run_model_demo

    return run_model_demo(args.model or DEFAULT_MODEL, n=args.n)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sirnn", description="Secure two-party RNN inference (SiRNN).")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="secure inference of a bundled trained model, both parties as two "
                                     "local processes; prints the predictions and what it cost")
    d.add_argument("--model", default=None, metavar="NAME",
                   help="the bundled model (default fastgrnn_japanese_vowels; also "
                        "fastgrnn_basic_motions, fastgrnn_lowrank_japanese_vowels, rnnpool_lfw_faces)")
    d.add_argument("--n", type=int, default=None,
                   help="the number of bundled test samples (default all); with --math: the batch "
                        "size (default 4096; the first 8 values are shown)")
    d.add_argument("--math", action="store_true",
                   help="instead: the math library's demo (secure sigmoid and tanh of a batch, "
                        "with ULP errors and OT throughput)")
    d.set_defaults(func=_demo)

    pr = sub.add_parser("precision", help="ULP error of a math function over all (or 10^6) inputs")
    pr.add_argument("function", help="exp, sigmoid, tanh, ...")
    pr.add_argument("--bw-in", type=int, dest="bw_in", default=16)
    pr.add_argument("--scale-in", type=int, dest="scale_in", default=12)
    pr.add_argument("--bw-out", type=int, dest="bw_out", default=16)
    pr.add_argument("--scale-out", type=int, dest="scale_out", default=12)
    pr.add_argument("--seed", type=int, default=1)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=_precision)

    b = sub.add_parser("bench", help="microbenchmark one protocol between two processes (loopback)")
    b.add_argument("function", help="benchmark name (see `sirnn bench list`)")
    b.add_argument("--n", type=int, help="batch size")
    b.add_argument("--N", type=int, help="1-of-N OT: N")
    b.add_argument("--bits", type=int, help="OT message bits")
    b.add_argument("--bw-in", type=int, dest="bw_in")
    b.add_argument("--scale-in", type=int, dest="scale_in")
    b.add_argument("--bw-out", type=int, dest="bw_out")
    b.add_argument("--scale-out", type=int, dest="scale_out")
    b.add_argument("--seed", type=int)
    b.add_argument("--opt", action="append", metavar="KEY=VALUE", help="block-specific option")
    b.add_argument("--dump", metavar="FILE.npz", help="math functions: save inputs and outputs")
    b.add_argument("--ot", choices=("ferret", "iknp"), default=None,
                   help="OT engine: silent Ferret COTs or IKNP/KK13 extension (default iknp)")
    b.add_argument("--tls", action="store_true", help="run over mutual TLS")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_bench)

    from .model import add_parsers

    add_parsers(sub)  # compile, serve, infer, eval, inspect
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "function", None) == "list":
        from .benchmath import CASES

        for name, case in sorted(CASES.items()):
            print(f"{name:14s} {case.help}")
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
