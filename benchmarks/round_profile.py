#!/usr/bin/env python
"""Round profile: which sub-protocol puts how many rounds on the critical path.

    PYTHONPATH=src python benchmarks/round_profile.py [--n 64] [--json FILE] [--only sigmoid,step]

Runs sigmoid, tanh, exp (x ≤ 0), rsqrt (16-bit, scale 12 → 16/12) and one FastGRNN time step
(D = 32, H = 100 as in Google-30, full rank and W rank 16 / U rank 35) between two parties in
this process, with every :class:`~sirnn.protocols.backend.Backend` call recorded. Rounds are the
channel's message depth (a Lamport clock: see :mod:`sirnn.transport.channel`), so the rounds a
call adds to the critical path are ``D_i − D_{i−1}``, where D_i is the deeper of the two parties'
depths when call i returns; the contributions add up to the total exactly. A call that starts
with a message in the flight the previous call ended with adds fewer rounds than it costs alone.

Each call is labelled ``section / caller:operation`` (section: the FastGRNN step's meter
section; caller: the recipe function that called the Backend). Bytes are both parties' per call.
Rounds and bytes do not depend on n (nor on the inputs); n only sets the batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sirnn import PROTOCOL_VERSION  # noqa: E402
from sirnn.mathfn import nexp, rsqrt, sigmoid, tanh  # noqa: E402
from sirnn.nn import rnn  # noqa: E402
from sirnn.protocols.backend import SecureBackend  # noqa: E402
from sirnn.protocols.party import Party  # noqa: E402
from sirnn.protocols.ring import from_int, mask  # noqa: E402
from sirnn.protocols.share import Share  # noqa: E402
from sirnn.transport import ThreadedPair  # noqa: E402


class ProfilingBackend:
    """A SecureBackend whose interactive calls are recorded (name, depth after, bytes sent)."""

    def __init__(self, be: SecureBackend):
        self._be = be
        self.role = be.role
        self.party = be.party
        self.calls: list[tuple[str, int, int]] = []
        self.section = ""

    def __getattr__(self, name):
        attr = getattr(self._be, name)
        if name.startswith("_") or not callable(attr) or name in ("public", "public_bits"):
            return attr

        def call(*args, **kw):
            caller = sys._getframe(1).f_code.co_name
            out = attr(*args, **kw)
            st = self.party.chan.stats
            label = (self.section + " / " if self.section else "") + f"{caller}:{name}"
            self.calls.append((label, st.rounds, st.bytes_sent))
            return out
        return call


class SectionMeter:
    """A meter stand-in for the cell's ``meter`` argument: names the current section only (no
    fresh rounds, so the depths stay those of the real run)."""

    def __init__(self, pbe: ProfilingBackend):
        self.pbe = pbe

    def section(self, name: str):
        pbe = self.pbe

        class _Ctx:
            def __enter__(self):
                pbe.section = name

            def __exit__(self, *exc):
                pbe.section = ""
        return _Ctx()


def _share_pair(rng, x_int, bits, scale):
    x = from_int(x_int, bits, True)
    x0 = rng.integers(0, 2**63, size=x.shape, dtype=np.uint64) & mask(bits)
    return [Share(x0, bits, scale, True, 0), Share((x - x0) & mask(bits), bits, scale, True, 1)]


def profile(pair: ThreadedPair, recipe) -> dict:
    """Run recipe(profiling backend) on both sides from a fresh round; combine the records."""
    def side(p):
        p.chan.snapshot()
        base = (p.chan.stats.rounds, p.chan.stats.bytes_sent)
        pbe = ProfilingBackend(SecureBackend(p))
        recipe(pbe, p.role)
        return base, pbe.calls

    (ba, ca), (bb, cb) = pair.run(side)
    assert [c[0] for c in ca] == [c[0] for c in cb]
    base_r = max(ba[0], bb[0])
    prev_r, prev_ba, prev_bb = base_r, ba[1], bb[1]
    rows = []
    for (name, ra, sa), (_, rb, sb) in zip(ca, cb):
        d = max(ra, rb)
        rows.append({"call": name, "rounds": d - prev_r, "bytes": (sa - prev_ba) + (sb - prev_bb)})
        prev_r, prev_ba, prev_bb = d, sa, sb
    return {"rounds": prev_r - base_r, "bytes": (prev_ba - ba[1]) + (prev_bb - bb[1]), "calls": rows}


def summarise(res: dict, n: int) -> list[dict]:
    """Merge consecutive calls with the same label; bytes per element."""
    out = []
    for r in res["calls"]:
        if out and out[-1]["call"] == r["call"]:
            out[-1]["rounds"] += r["rounds"]
            out[-1]["bytes"] += r["bytes"]
            out[-1]["count"] += 1
        else:
            out.append(dict(r, count=1))
    for r in out:
        r["bytes_per_elem"] = round(r["bytes"] / n, 2)
    return out


def math_cases(n: int, rng):
    x = rng.integers(-(1 << 15), (1 << 15) - 1, n, endpoint=True)
    xneg = -np.abs(x)
    xpos = np.clip(np.abs(x), 1, (1 << 15) - 1)
    return {
        "sigmoid": (x, lambda be, s: sigmoid(be, s, 16, 12)),
        "tanh": (x, lambda be, s: tanh(be, s, 16, 12)),
        "exp": (xneg, lambda be, s: nexp(be, s, 16, 12)),
        "rsqrt": (xpos, lambda be, s: rsqrt(be, s, 16, 12)),
    }


def fastgrnn_case(lowrank, rng, T: int = 1):
    D, H = 32, 100
    w = dict(b_z=rng.normal(0, 0.5, H), b_h=rng.normal(0, 0.5, H), zeta=0.9, nu=0.06)
    if lowrank:
        w.update(W1=rng.normal(0, 0.3, (H, 16)), W2=rng.normal(0, 0.3, (16, D)),
                 U1=rng.normal(0, 0.3, (H, 35)), U2=rng.normal(0, 0.2, (35, H)))
    else:
        w.update(W=rng.normal(0, 0.2, (H, D)), U=rng.normal(0, 0.1, (H, H)))
    cell = rnn.FastGRNNCell.from_float(w)
    xs = rnn.CellFormats().x.encode(np.clip(rng.normal(0, 1, (T, D, 1)), -4, 4))
    return cell, xs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="batch of the math functions (default 64)")
    ap.add_argument("--T", type=int, default=2, help="time steps of the FastGRNN runs (default 2)")
    ap.add_argument("--json", help="write the profile here")
    ap.add_argument("--ot", choices=("ferret", "iknp"), default=None, help="OT engine (default: the library's)")
    ap.add_argument("--only", help="comma-separated subset of sigmoid,tanh,exp,rsqrt,step,step_lowrank")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    rng = np.random.default_rng(13)
    ot = {} if args.ot is None else {"ot": args.ot}
    pair = ThreadedPair(lambda role, chan: Party.setup(role, chan, seed=bytes([3 + role]) * 16, **ot))
    report = {"protocol_version": PROTOCOL_VERSION, "ot": pair.contexts[0].ot.kind,
              "functions": {}}
    try:
        for name, (x, fn) in math_cases(args.n, rng).items():
            if only and name not in only:
                continue
            sh = _share_pair(rng, x, 16, 12)
            res = profile(pair, lambda be, role, sh=sh, fn=fn: fn(be, sh[role]))
            report["functions"][name] = {"config": "16/12 -> 16/12", "n": args.n, "rounds": res["rounds"],
                                         "bytes_per_elem": round(res["bytes"] / args.n, 2),
                                         "calls": summarise(res, args.n)}
        for name, low in (("step", False), ("step_lowrank", True)):
            if only and name not in only:
                continue
            cell, xs = fastgrnn_case(low, rng, args.T)
            spec = cell.spec()
            sh = _share_pair(rng, xs, 16, 12)

            def recipe(be, role, sh=sh, cell=cell, spec=spec):
                c = cell if role == 0 else spec
                x = sh[role]
                return rnn.rnn_over_time(be, c, x, meter=SectionMeter(be))
            res = profile(pair, recipe)
            calls = summarise(res, 1)
            report["functions"][name] = {
                "config": f"FastGRNN D=32 H=100{' W rank 16 U rank 35' if low else ''}, batch 1, T={args.T}",
                "T": args.T, "rounds": res["rounds"], "rounds_per_step": res["rounds"] / args.T,
                "bytes": res["bytes"], "calls": calls}
    finally:
        for ch in pair.channels:
            ch.close()
    for name, r in report["functions"].items():
        print(f"\n== {name}: {r['rounds']} rounds" + (f" ({r['rounds_per_step']:.1f} per step)" if "T" in r else "")
              + (f", {r['bytes_per_elem']} B/elem" if "bytes_per_elem" in r else f", {r['bytes']} B"))
        for c in r["calls"]:
            print(f"  {c['rounds']:3d}  {c['call']}" + (f" ×{c['count']}" if c["count"] > 1 else "")
                  + (f"  {c['bytes_per_elem']} B/elem" if "bytes_per_elem" in r else f"  {c['bytes']} B"))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
