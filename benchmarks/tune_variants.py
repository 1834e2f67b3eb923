#!/usr/bin/env python
"""Ferret parameter variants: bytes per element and rounds of the math functions (16/12 → 16/12)
under alternative protocol parameters (the measurement behind ``sirnn.protocols.tuning``'s
"ferret" profile).

    PYTHONPATH=src python benchmarks/tune_variants.py [--n 16384] [--only exp,sigmoid]

Two parties in this process on the Ferret engine; each variant swaps one choice of the "ferret"
profile (the functionality is the same in every variant: tests/test_tuning.py):

* ``ferret``: the profile as shipped (4-bit leaves by fewest bits, kk4 roots, triples from random
  OTs, comparisons instead of carry tables);
* ``root-and`` / ``root-kk8``: the millionaire's root by AND + B2A (fewest bytes, a round more)
  or by the 1-of-8 OT of the IKNP profile;
* ``leaf-iknp``: IKNP's leaf widths (fewest levels); ``leaf-min3`` / ``leaf-min5``: the fewest
  bits over m = 3..8 / 5..8 instead of 4..8;
* ``triples-16``: AND triples from 1-of-16 OTs as on IKNP;
* ``ferret-lat``: the profile small batches get (every round-relevant choice as on IKNP).

Bytes are online (Ferret refill rounds excluded), both parties; rounds as in round_profile.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from round_profile import _share_pair, math_cases, profile

from sirnn.protocols import compare, tuning
from sirnn.protocols.party import Party
from sirnn.transport import ThreadedPair

_ROOT, _LEAF, _ROT = compare.root_method, compare.leaf_width, compare.rot_triples


def _leaf_rule(widths):
    def lw(bits, stop=1, ot="iknp"):
        if ot != "ferret" or bits <= compare.LEAF_BITS:
            return _LEAF(bits, stop, ot)
        if widths == "iknp":
            return _LEAF(bits, stop, "iknp")
        ws = [m for m in widths if m <= max(bits, widths[0])]
        return min(ws, key=lambda m: (compare._tree_cost_bits(bits, m, False, stop, ot),
                                      compare._levels(-(-bits // m), stop), m))
    return lw


def _root_rule(root):
    def rm(bits, k, ot="iknp"):
        if ot == "ferret" and root in dict(compare._root_candidates(bits, k, ot)):
            return root
        return _ROOT(bits, k, ot)
    return rm


VARIANTS = {
    "ferret": {},
    "root-and": {"root": "and"},
    "root-kk8": {"root": "kk8"},
    "leaf-iknp": {"leaf": "iknp"},
    "leaf-min3": {"leaf": range(3, 9)},
    "leaf-min5": {"leaf": range(5, 9)},
    "triples-16": {"rot": False},
    "ferret-lat": {"latency": True},
}


def apply(root=None, leaf=None, rot=None, latency=False):
    compare.root_method = _root_rule(root) if root else _ROOT
    compare.leaf_width = _leaf_rule(leaf) if leaf else _LEAF
    compare.rot_triples = (lambda ot: False) if rot is False else _ROT
    tuning.BYTES_FIRST_MIN = 1 << 62 if latency else 4096


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384, help="batch (≥ 4096: the bytes-first profile)")
    ap.add_argument("--only", help="comma-separated subset of sigmoid,tanh,exp,rsqrt")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([3 + role]) * 16, ot="ferret"))
    rng = np.random.default_rng(13)
    try:
        print(f"{'variant':11s} {'function':8s} {'B/elem':>9s} {'rounds':>6s} {'CPU s':>6s}")
        for vname, kw in VARIANTS.items():
            apply(**kw)
            for name, (x, fn) in math_cases(args.n, rng).items():
                if only and name not in only:
                    continue
                sh = _share_pair(rng, x, 16, 12)
                t0 = time.process_time()
                off0 = sum(c.ot.offline["bytes_sent"] for c in pair.contexts)
                res = profile(pair, lambda be, role, sh=sh, fn=fn: fn(be, sh[role]))
                off = sum(c.ot.offline["bytes_sent"] for c in pair.contexts) - off0
                print(f"{vname:11s} {name:8s} {(res['bytes'] - off) / args.n:9.1f} {res['rounds']:6d} "
                      f"{time.process_time() - t0:6.2f}", flush=True)
    finally:
        apply()
        for ch in pair.channels:
            ch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
