"""``sirnn bench``: run one protocol between two OS processes over loopback and report JSON.

Each benchmark is a :class:`Case` in :mod:`sirnn.cli.benchcases`: ``inputs`` builds a party's
inputs locally (untimed, no communication: both parties derive the cleartext from a common seed,
which is fine for a benchmark and lets the parent check the output), ``run`` is the timed protocol,
and ``check`` counts outputs that differ from the cleartext functionality.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ParameterError
from ..ot.engine import DEFAULT_KIND
from ..ot.warmup import warm_up
from ..protocols.party import Party
from ..transport.launch import proc_status_kb, run_two_processes
from ..transport.netem import NetworkProfile


@dataclass
class Case:
    name: str
    inputs: Callable[[int, dict], Any]  # (role, opts) -> this party's inputs
    run: Callable[[Party, Any, dict], Any]  # timed; returns this party's output
    check: Callable[[dict, Any, Any], dict]  # (opts, out_alice, out_bob) -> {"mismatches": k, ...}
    defaults: dict = field(default_factory=dict)
    help: str = ""


#: options that do not change what runs between the parties (excluded from the handshake)
_LOCAL_OPTS = ("seed", "dump")


def bench_params(name: str, opts: dict) -> dict:
    """The benchmark's public parameters, checked by the handshake: parties running different
    benchmarks or options fail at :meth:`Party.setup` instead of desynchronising later."""
    return {"bench": name, "opts": {k: v for k, v in opts.items() if k not in _LOCAL_OPTS}}


def _party_main(role: int, chan, name: str, opts: dict) -> dict:
    from .benchmath import CASES

    case = CASES[name]
    warmup_seconds = warm_up()
    t0 = time.perf_counter()
    party = Party.setup(role, chan, params=bench_params(name, opts), ot=opts.get("ot", DEFAULT_KIND),
                        ferret=opts.get("ferret"))
    setup_seconds = time.perf_counter() - t0
    setup_bytes = chan.stats.bytes_sent
    inputs = case.inputs(role, opts)
    chan.send_bytes(b"go")  # line up both parties before the clock starts
    chan.recv_bytes(2)
    before = chan.snapshot()
    off0 = party.ot.offline
    t1, c1 = time.perf_counter(), time.process_time()
    out = case.run(party, inputs, opts)
    seconds, cpu_seconds = time.perf_counter() - t1, time.process_time() - c1
    used = chan.stats - before
    off1 = party.ot.offline
    refill = {k: off1[k] - off0[k] for k in off0}  # COT rounds run during the protocol
    return {"seconds": seconds, "setup_seconds": setup_seconds, "warmup_seconds": warmup_seconds, "bytes_sent": used.bytes_sent,
            "cpu_seconds": cpu_seconds, "rounds": used.rounds, "messages": used.messages_sent, "setup_bytes": setup_bytes,
            "refill_seconds": refill["seconds"], "refill_bytes": refill["bytes_sent"],
            "peak_rss_kb": proc_status_kb("VmHWM"), "out": out}


def run_bench(name: str, opts: dict, *, tls: bool = False, timeout: float = 1800.0,
              net: NetworkProfile | str | None = None) -> dict:
    """Run benchmark ``name`` with options ``opts``; returns the JSON-ready report. ``net``: an
    emulated network between the parties (:mod:`sirnn.transport.netem`), else plain loopback."""
    from .benchmath import CASES

    net = NetworkProfile.of(net)
    if name not in CASES:
        raise ParameterError(f"unknown benchmark {name!r}; choose from: {', '.join(sorted(CASES))}")
    case = CASES[name]
    full = {**case.defaults, **{k: v for k, v in opts.items() if v is not None}}
    full.setdefault("ot", DEFAULT_KIND)
    a, b = run_two_processes(_party_main, name, full, timeout=timeout, tls=tls, net=net)
    checked = case.check(full, a.pop("out"), b.pop("out"))
    n = full.get("n", 1)
    total = a["bytes_sent"] + b["bytes_sent"]
    refill_bytes = a["refill_bytes"] + b["refill_bytes"]
    refill_seconds = max(a["refill_seconds"], b["refill_seconds"])
    seconds = max(a["seconds"], b["seconds"])
    return {
        "function": name,
        "n": n,
        **{k: v for k, v in full.items() if k != "n"},
        "seconds": max(a["seconds"], b["seconds"]),
        # CPU time of the busier party's process (all its threads): robust to a shared machine
        "cpu_seconds": max(a["cpu_seconds"], b["cpu_seconds"]),
        "setup_seconds": max(a["setup_seconds"], b["setup_seconds"]),
        "warmup_seconds": max(a["warmup_seconds"], b["warmup_seconds"]),
        "bytes_sent": {"alice": a["bytes_sent"], "bob": b["bytes_sent"], "total": total},
        "net": None if net is None else str(net),
        "bytes_per_element": total / n if n else None,
        "rounds": max(a["rounds"], b["rounds"]),
        "throughput_per_s": n / max(a["seconds"], b["seconds"], 1e-12),
        "tls": tls,
        # each party process's resident high-water mark (KiB, Linux /proc VmHWM; None elsewhere):
        # Python, numpy, numba, the OT buffers, inputs and outputs
        "peak_rss_kb": {"alice": a["peak_rss_kb"], "bob": b["peak_rss_kb"]},
        # input-independent work (OT set-up, Ferret rounds) apart from the input-dependent rest:
        # offline = set-up + COT rounds run during the protocol (refills); online = the rest
        "offline": {"seconds": max(a["setup_seconds"], b["setup_seconds"]) + refill_seconds,
                    "bytes": a["setup_bytes"] + b["setup_bytes"] + refill_bytes,
                    "refill_seconds": refill_seconds, "refill_bytes": refill_bytes},
        "online": {"seconds": seconds - refill_seconds, "bytes": total - refill_bytes,
                   "bytes_per_element": (total - refill_bytes) / n if n else None},
        **checked,
    }


def format_report(rep: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(rep)
    lines = [f"{rep['function']}: n = {rep['n']} (OT: {rep.get('ot', DEFAULT_KIND)})",
             f"  time      {rep['seconds']:.3f} s (set-up {rep['setup_seconds']:.3f} s, "
             f"kernel warm-up {rep['warmup_seconds']:.3f} s), "
             f"{rep['throughput_per_s']:,.0f} per s",
             f"  bytes     {rep['bytes_sent']['total']:,} ({rep['bytes_per_element']:.1f} per element; "
             f"ALICE {rep['bytes_sent']['alice']:,}, BOB {rep['bytes_sent']['bob']:,})",
             f"  rounds    {rep['rounds']}",
             f"  offline   {rep['offline']['seconds']:.3f} s, {rep['offline']['bytes']:,} bytes (set-up and "
             f"COT refills); online {rep['online']['seconds']:.3f} s, {rep['online']['bytes']:,} bytes"]
    if rep.get("net"):
        lines.append(f"  network   {rep['net']} (emulated by a relay)")
    extra = {k: v for k, v in rep.items() if k in ("mismatches", "max_ulp", "mean_ulp")}
    if extra:
        lines.append("  check     " + ", ".join(f"{k} = {v}" for k, v in extra.items()))
    return "\n".join(lines)
