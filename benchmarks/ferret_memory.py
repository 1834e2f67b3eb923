#!/usr/bin/env python
"""Resident memory of a session's OT set-up and of one benchmark, per party, on both engines.

    PYTHONPATH=src python benchmarks/ferret_memory.py [BENCH] [--n 65536]

Two processes over loopback (as ``sirnn bench``): each loads the kernels, runs ``Party.setup``
and then the benchmark ``BENCH`` (a ``sirnn bench`` case, default exp), and reads its own
``VmRSS`` / ``VmHWM`` (MiB, /proc/self/status) after each step.
"""

from __future__ import annotations

import argparse


def _mib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _session(role, chan, ot: str, bench: str, n: int) -> dict:
    from sirnn.cli.bench import bench_params
    from sirnn.cli.benchmath import CASES
    from sirnn.ot.warmup import warm_up
    from sirnn.protocols.party import Party

    warm_up()
    out = {"warm-up": (_mib("VmRSS"), _mib("VmHWM"))}
    opts = {**CASES[bench].defaults, "n": n, "ot": ot}
    party = Party.setup(role, chan, params=bench_params(bench, opts), ot=ot)
    out["set-up"] = (_mib("VmRSS"), _mib("VmHWM"))
    CASES[bench].run(party, CASES[bench].inputs(role, opts), opts)
    out[bench] = (_mib("VmRSS"), _mib("VmHWM"))
    return out


def main() -> None:
    from sirnn.transport.launch import run_two_processes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", nargs="?", default="exp")
    ap.add_argument("--n", type=int, default=65536)
    a = ap.parse_args()
    for ot in ("iknp", "ferret"):
        alice, bob = run_two_processes(_session, ot, a.bench, a.n, timeout=600.0)
        for name, r in (("ALICE", alice), ("BOB", bob)):
            print(f"{ot:6s} {name:5s} " + ", ".join(f"after {k}: RSS {v[0]} / peak {v[1]} MiB" for k, v in r.items()))


if __name__ == "__main__":
    main()
