"""Argument parsing of the ``sirnn`` command: one-line errors, defaults in the help, and the
checked value types every option uses (a user's mistake is one line on stderr, never a
traceback)."""

from __future__ import annotations

import argparse
import sys


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: …)" after an option's help when it has a meaningful default (not for
    flags, nor for options whose absence means "not given")."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or "%(default)" in (action.help or "") or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit code 2), naming the command
    and pointing at its ``--help``, instead of the usage block followed by the error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr, flush=True)
        sys.exit(2)


def add_command(sub, name: str, summary: str, description: str | None = None) -> Parser:
    """A subcommand with its one-line ``summary`` (in ``sirnn --help``) and a ``description``
    (in ``sirnn NAME --help``; default: the summary)."""
    return sub.add_parser(name, help=summary, description=description or summary[:1].upper() + summary[1:] + ".",
                          formatter_class=HelpFormatter)


# ---- value types (argparse calls them; a ValueError/ArgumentTypeError becomes a one-line error) ----
def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def int_range(lo: int | None, hi: int | None, must: str):
    """A type accepting integers in [lo, hi] (either end may be open); ``must`` completes
    "must be …" in the error."""

    def parse(text: str) -> int:
        v = _int(text)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {must}, got {v}")
        return v

    return parse


positive_int = int_range(1, None, "a positive integer")
nonneg_int = int_range(0, None, "a non-negative integer")
bitwidth = int_range(1, 64, "a bitwidth in 1..64")
port = int_range(1, 65535, "a TCP port in 1..65535")
listen_port = int_range(0, 65535, "a TCP port in 0..65535 (0: any free port)")


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return v


def hex_digest(text: str) -> str:
    t = text.strip().lower()
    if len(t) != 64 or any(c not in "0123456789abcdef" for c in t):
        raise argparse.ArgumentTypeError(f"expected a SHA-256 digest (64 hex digits, see `sirnn "
                                         f"inspect`), got {text[:80]!r}")
    return t



#: :data:`sirnn.ot.engine.KINDS` and ``DEFAULT_KIND``, repeated here so that parsing the command line
#: does not import the OT engine (half a second); tests/test_serve_ot.py checks they agree
OT_KINDS, OT_DEFAULT = ("ferret", "iknp"), "iknp"
#: help text of ``--ot`` (``sirnn bench``, ``serve``, ``infer``, ``demo``)
OT_HELP = ("OT engine: silent Ferret COTs (fewer bytes; for real networks) or IKNP/KK13 extension "
           "(faster on loopback)")


def add_ot_option(p, default: str | None, extra: str = "") -> None:
    """``--ot {ferret,iknp}`` on the parser ``p`` (``extra``: appended to the help)."""
    p.add_argument("--ot", choices=OT_KINDS, default=default, help=OT_HELP + extra)


__all__ = ["Parser", "HelpFormatter", "add_command", "int_range", "positive_int", "nonneg_int",
           "bitwidth", "port", "listen_port", "positive_float", "nonneg_float",
           "hex_digest", "add_ot_option", "OT_KINDS", "OT_DEFAULT"]
