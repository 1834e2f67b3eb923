"""``sirnn demo``: both parties on this machine, as two OS processes over loopback TCP.

BOB (the client) holds a private vector x of real numbers; ALICE (the server) holds a private
threshold vector t (think: the negated bias of a layer). In one session they

0. load the numba kernels (local, timed apart so that no protocol phase pays for it);
1. shake hands (version, roles, public parameters) and set up OT (base OTs + extension bootstrap);
2. run a batch of 2^20 correlated OTs (the raw material of every protocol), to show throughput;
3. secret-share their inputs (16-bit fixed point, scale 12);
4. compare t > x with the millionaires' protocol on their private inputs;
5. compute DReLU(x − t) = 1{x ≥ t} on the shared difference;
6. compute ReLU(x − t) = DReLU(x − t) · (x − t) with a multiplexer;
7. reveal the three results to BOB only.

The parent process plays referee: after the session it receives both parties' inputs and
outputs, recomputes everything in cleartext and checks that the secure results match (exit code 1
if anything differs). Neither party's process ever sees the other's input.

This demo is deliberately small and self-contained; it will be replaced by the math-library demo.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import ALICE, BOB
from ..errors import SirnnError

BITS = 16  #: ring of the fixed-point values
SCALE = 12  #: fixed-point scale: a value v stands for v / 2^12
COT_BATCH = 1 << 20  #: correlated OTs in the throughput phase
COT_BITS = 32  #: message length of those OTs
_SEEDS = {ALICE: 0x5EED_A11CE, BOB: 0x5EED_B0B}
_MAX_ROWS = 16  #: rows of the result table printed


def _params(n: int) -> dict:
    """The session's public parameters (both parties must agree: checked by the handshake)."""
    return {"app": "demo: ReLU(x - t)", "n": n, "bits": BITS, "scale": SCALE,
            "cot_batch": COT_BATCH, "cot_bits": COT_BITS}


def _private_input(role: int, n: int) -> np.ndarray:
    """This party's private real numbers (drawn locally, in its own process)."""
    rng = np.random.default_rng(_SEEDS[role])
    lo, hi = (-2.0, 2.0) if role == ALICE else (-4.0, 4.0)
    return np.round(rng.uniform(lo, hi, n), 2)


def _encode(v: np.ndarray) -> np.ndarray:
    """Real numbers → signed fixed-point integers (int64)."""
    return np.round(v * 2.0**SCALE).astype(np.int64)


def _cot_inputs(role: int):
    """Random inputs of the throughput phase (correlations for ALICE, choice bits for BOB)."""
    from ..protocols.ring import mask

    rng = np.random.default_rng([_SEEDS[role], 1])
    if role == ALICE:
        return rng.integers(0, 2**64, size=COT_BATCH, dtype=np.uint64) & mask(COT_BITS)
    return rng.integers(0, 2, size=COT_BATCH, dtype=np.uint8)


# ---- one party's session (runs in a child process) -----------------------------------------------
def _session(role: int, chan, n: int) -> dict:
    """The whole session of one party; returns its timings, counters and (for the referee) data."""
    from ..ot.warmup import warm_up
    from ..protocols import boolean, compare
    from ..protocols.party import Party
    from ..protocols.ring import U64, mask
    from ..protocols.share import reveal, share_input

    phases: list[dict] = []

    def timed(name: str, fn, sync: bool = True):
        if sync:  # line both parties up (outside the measured window)
            chan.send_bytes(b"go")
            chan.recv_bytes(2)
        before = chan.snapshot()
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        used = chan.stats - before
        phases.append({"name": name, "seconds": seconds, "bytes_sent": used.bytes_sent,
                       "rounds": used.rounds, "synced": sync})
        return out

    mine = _private_input(role, n)
    fixed = _encode(mine)
    # 0. load the numba kernels (local, no communication) so no phase below pays for it
    timed("kernel warm-up (local)", warm_up, sync=False)
    # 1. handshake + OT set-up (the handshake is the first message: no barrier before it)
    party = timed("handshake + OT set-up", lambda: Party.setup(role, chan, params=_params(n)),
                  sync=False)
    # 2. correlated OTs, ALICE sends
    cot_in = _cot_inputs(role)
    if role == ALICE:
        cot_out = timed("2^20 correlated OTs", lambda: party.ot.cot_send(cot_in, COT_BITS))
    else:
        cot_out = timed("2^20 correlated OTs", lambda: party.ot.cot_recv(cot_in, COT_BITS))
    # 3. secret-share the inputs: x (BOB's) and t (ALICE's)
    def share_both():
        # each party sends its own input's share first, then receives: one round in all
        kw = dict(bits=BITS, scale=SCALE, signed=True, shape=n)
        own = share_input(party, role, fixed, **kw)
        other = share_input(party, 1 - role, None, **kw)
        return (own, other) if role == BOB else (other, own)  # (x, t)
    x, t = timed("share inputs", share_both)
    # 4. t > x on the private inputs directly (offset to unsigned: order-preserving)
    offset = 1 << (BITS - 1)
    raw = ((fixed + offset) & int(mask(BITS))).astype(U64)
    gt = timed("compare t > x (millionaires')", lambda: compare.millionaire(party, raw, BITS))
    # 5./6. DReLU and ReLU of the shared difference
    d = x - t
    ge = timed("DReLU(x - t)", lambda: compare.drelu(party, d))
    relu = timed("ReLU(x - t) = MUX", lambda: boolean.select(party, ge, d))
    # 7. open to BOB only (three messages in one round)
    opened = timed("reveal to BOB", lambda: [reveal(party, s, to=BOB) for s in (gt, ge, relu)])
    return {
        "pid": os.getpid(),
        "tls": getattr(chan, "is_tls", False),
        "phases": phases,
        "total": chan.stats.as_dict(),
        "input": mine,
        "result": None if role == ALICE else opened,  # ALICE's reveal returns nothing
        "relu_share": relu.data,  # for showing what ALICE holds (uniformly random)
        "cot_in": cot_in,  # ALICE: correlations; BOB: choice bits
        "cot_out": cot_out,  # ALICE: x0; BOB: x0 + c·corr
    }


# ---- the referee (parent process) ----------------------------------------------------------------
def _fmt_bytes(n: int) -> str:
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _check_cot(a: dict, b: dict) -> int:
    """Mismatches of the COT batch: BOB must hold x0 + c·corr."""
    from ..protocols.ring import mask

    corr, x0 = a["cot_in"], a["cot_out"]
    choice, got = b["cot_in"], b["cot_out"]
    want = (x0 + choice.astype(np.uint64) * corr) & mask(COT_BITS)
    return int((got != want).sum())


def _report(n: int, a: dict, b: dict, wall: float) -> int:
    from ..protocols.ring import to_signed

    x, t = b["input"], a["input"]
    xi, ti = _encode(x), _encode(t)
    clear_gt = (ti > xi).astype(np.uint64)
    clear_ge = (xi >= ti).astype(np.uint64)
    clear_relu = np.maximum(xi - ti, 0)
    sec_gt, sec_ge, sec_relu_ring = b["result"]
    sec_relu = to_signed(sec_relu_ring, BITS)
    bad = {"t > x": int((sec_gt != clear_gt).sum()), "x >= t": int((sec_ge != clear_ge).sum()),
           "ReLU": int((sec_relu != clear_relu).sum()), "COT": _check_cot(a, b)}

    out = []
    w = out.append
    w(f"sirnn demo: secure ReLU(x - t) between two processes on loopback "
      f"({n} values, {BITS}-bit fixed point, scale {SCALE})")
    w("")
    w("Who holds what")
    w(f"  BOB   (client, pid {b['pid']}): private input  x = {_short(x)}")
    w(f"  ALICE (server, pid {a['pid']}): private thresholds t = {_short(t)}")
    w("  Each party's process only ever holds its own input, random-looking shares and OT")
    w("  messages. BOB alone learns the results: [t > x], [x >= t] and ReLU(x - t).")
    w(f"  ALICE's share of ReLU(x - t) (uniformly random to her): "
      f"{_short(a['relu_share'], hexa=True)}")
    w("")
    w("Results (revealed to BOB; the cleartext column is the referee's recomputation)")
    head = (f"  {'i':>3} {'x (BOB)':>8} {'t (ALICE)':>9} | {'t > x':>5} {'clear':>5} | "
            f"{'x >= t':>6} {'clear':>5} | {'ReLU(x-t)':>10} {'clear':>10}")
    w(head)
    w("  " + "-" * (len(head) - 2))
    for i in range(min(n, _MAX_ROWS)):
        w(f"  {i:>3} {x[i]:>8.2f} {t[i]:>9.2f} | {int(sec_gt[i]):>5} {int(clear_gt[i]):>5} | "
          f"{int(sec_ge[i]):>6} {int(clear_ge[i]):>5} | {sec_relu[i] / 2**SCALE:>10.4f} "
          f"{clear_relu[i] / 2**SCALE:>10.4f}")
    if n > _MAX_ROWS:
        w(f"  ... {n - _MAX_ROWS} more rows (all checked)")
    w("")
    w("Phases (time: the slower party; bytes: protocol payload each party sent)")
    w("  (set-up starts without a barrier, so its time is the party that started last)")
    w(f"  {'phase':32s} {'time':>9} {'ALICE sent':>12} {'BOB sent':>12} {'rounds':>6}")
    for pa, pb in zip(a["phases"], b["phases"]):
        local = pa["bytes_sent"] + pb["bytes_sent"] == 0
        # phases start in step after a barrier; set-up (no barrier: the handshake must be the
        # first message) is timed by the party that started last, who never waited for the other
        both = (pa["seconds"], pb["seconds"])
        sec = max(both) if pa["synced"] or local else min(both)
        w(f"  {pa['name']:32s} {sec * 1e3:>7.1f}ms {_fmt_bytes(pa['bytes_sent']):>12} "
          f"{_fmt_bytes(pb['bytes_sent']):>12} {max(pa['rounds'], pb['rounds']):>6}")
        if pa["name"].startswith("2^20"):
            per = (pa["bytes_sent"] + pb["bytes_sent"]) * 8 / COT_BATCH
            w(f"  {'':34s}-> {COT_BATCH / max(sec, 1e-9) / 1e6:.2f} M correlated OTs per s "
              f"({COT_BITS}-bit messages, {per:.0f} bits per OT)")
    ta, tb = a["total"], b["total"]
    w(f"  {'whole session (incl. phase syncs)':32s} {'':>9} {_fmt_bytes(ta['bytes_sent']):>12} "
      f"{_fmt_bytes(tb['bytes_sent']):>12} {max(ta['rounds'], tb['rounds']):>6}")
    w(f"  wall time including process start-up: {wall:.2f} s")
    w("")
    if any(bad.values()):
        w("MISMATCH: the secure results differ from the cleartext: "
          + ", ".join(f"{k}: {v}" for k, v in bad.items() if v))
        print("\n".join(out))
        return 1
    w(f"OK: all {n} secure results match the cleartext, and all {COT_BATCH:,} correlated OTs "
      "are correct.")
    print("\n".join(out))
    return 0


def _short(v: np.ndarray, hexa: bool = False, limit: int = 8) -> str:
    items = [f"0x{int(e):04x}" if hexa else f"{e:.2f}" for e in v[:limit]]
    return "[" + ", ".join(items) + (", ..." if len(v) > limit else "") + "]"


def run_demo(n: int = 8) -> int:
    """Run the demo session with ``n`` values; print the report; 0 if every result matches."""
    from ..transport.launch import run_two_processes

    if n < 1:
        print(f"sirnn demo: --n must be at least 1, got {n}")
        return 2
    t0 = time.perf_counter()
    try:
        a, b = run_two_processes(_session, n, timeout=120.0, channel_timeout=30.0)
    except SirnnError as e:
        print(f"sirnn demo failed: {type(e).__name__}: {e}")
        return 1
    return _report(n, a, b, time.perf_counter() - t0)


__all__ = ["run_demo"]
