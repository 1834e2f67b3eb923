"""``sirnn demo --math``: the math library on its own, both parties on this machine as two OS
processes over loopback TCP.

BOB (the client) holds a private batch x of real numbers (16-bit fixed point, scale 12); together
with ALICE (the server) he computes σ(x) and tanh(x) with the math library's secure protocols, and
only he learns the results. In one session the parties

0. load the numba kernels (local, timed apart so that no protocol phase pays for it);
1. shake hands (version, roles, public parameters) and set up OT (base OTs + extension bootstrap);
2. run a batch of 2^20 correlated OTs (the raw material of every protocol), to show throughput;
3. secret-share BOB's input;
4. compute sigmoid and 5. tanh on the shares (16-bit outputs, scale 12);
6. reveal the two results to BOB only.

The parent process plays referee: after the session it receives BOB's input and the results,
recomputes both functions with the cleartext fixed-point functionality (the same recipe run by
:class:`~sirnn.protocols.backend.ClearBackend`) and checks that the secure results are identical
to it, bit for bit (exit code 1 if anything differs); it also reports the error against numpy's
float64 σ and tanh in ULPs (units of 2^-12). Neither party's process ever sees the other's data.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import ALICE, BOB
from ..errors import SirnnError

BITS_IN, SCALE_IN = 16, 12  #: BOB's input: a value v stands for v / 2^12
BITS_OUT, SCALE_OUT = 16, 12  #: the outputs of sigmoid and tanh
DEFAULT_N = 4096  #: batch size (the timed batch)
COT_BATCH = 1 << 20  #: correlated OTs in the throughput phase
COT_BITS = 32  #: message length of those OTs
_SEEDS = {ALICE: 0x5EED_A11CE, BOB: 0x5EED_B0B}
_ROWS = 8  #: rows of the result table printed (the first inputs of the batch)
#: BOB's first inputs (the rows shown); the rest of the batch is uniform over the 16-bit domain
_SHOWN = np.array([-6.0, -2.5, -1.0, -0.25, 0.0, 0.5, 1.75, 4.0])

#: the functions of the demo: (name in the phase table, numpy reference)
FUNCTIONS = {
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
}


def _params(n: int) -> dict:
    """The session's public parameters (both parties must agree: checked by the handshake)."""
    return {"app": "demo: sigmoid and tanh of BOB's input", "n": n, "functions": list(FUNCTIONS),
            "bits_in": BITS_IN, "scale_in": SCALE_IN, "bits_out": BITS_OUT, "scale_out": SCALE_OUT,
            "cot_batch": COT_BATCH, "cot_bits": COT_BITS}


def _private_input(n: int) -> np.ndarray:
    """BOB's private fixed-point integers (drawn locally, in his own process)."""
    shown = np.round(_SHOWN[:n] * 2.0**SCALE_IN).astype(np.int64)
    half = 1 << (BITS_IN - 1)
    rest = np.random.default_rng(_SEEDS[BOB]).integers(-half, half, max(n - len(shown), 0))
    return np.concatenate([shown, rest]).astype(np.int64)


def _cot_inputs(role: int):
    """Random inputs of the throughput phase (correlations for ALICE, choice bits for BOB)."""
    from ..protocols.ring import mask

    rng = np.random.default_rng([_SEEDS[role], 1])
    if role == ALICE:
        return rng.integers(0, 2**64, size=COT_BATCH, dtype=np.uint64) & mask(COT_BITS)
    return rng.integers(0, 2, size=COT_BATCH, dtype=np.uint8)


# ---- one party's session (runs in a child process) -----------------------------------------------
def _session(role: int, chan, n: int, ot: str | None = None) -> dict:
    """The whole session of one party on the OT engine ``ot`` (None: the default); returns its
    timings, counters and (for the referee) data."""
    from .. import mathfn
    from ..ot.warmup import warm_up
    from ..protocols.backend import SecureBackend
    from ..protocols.party import Party
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

    x_fixed = _private_input(n) if role == BOB else None  # ALICE holds no private data here
    # 0. load the numba kernels (local, no communication) so no phase below pays for it
    timed("kernel warm-up (local)", warm_up, sync=False)
    # 1. handshake + OT set-up (the handshake is the first message: no barrier before it)
    party = timed("handshake + OT set-up", lambda: Party.setup(role, chan, params=_params(n),
                                                               **({} if ot is None else {"ot": ot})),
                  sync=False)
    # 2. correlated OTs, ALICE sends
    cot_in = _cot_inputs(role)
    if role == ALICE:
        cot_out = timed("2^20 correlated OTs", lambda: party.ot.cot_send(cot_in, COT_BITS))
    else:
        cot_out = timed("2^20 correlated OTs", lambda: party.ot.cot_recv(cot_in, COT_BITS))
    # 3. secret-share BOB's input
    x = timed("share BOB's input", lambda: share_input(
        party, BOB, x_fixed, bits=BITS_IN, scale=SCALE_IN, signed=True, shape=n))
    # 4./5. the math library, on shares
    be = SecureBackend(party)
    ys = [timed(name, lambda f=getattr(mathfn, name): f(be, x, BITS_OUT, SCALE_OUT))
          for name in FUNCTIONS]
    # 6. open to BOB only (one message per function, one round)
    opened = timed("reveal to BOB", lambda: [reveal(party, y, to=BOB) for y in ys])
    return {
        "pid": os.getpid(),
        "ot": party.ot.kind,
        "tls": getattr(chan, "is_tls", False),
        "phases": phases,
        "total": chan.stats.as_dict(),
        "input": x_fixed,  # None for ALICE
        "result": None if role == ALICE else opened,  # ALICE's reveal returns nothing
        "share": ys[0].data[:_ROWS],  # for showing what ALICE holds (uniformly random)
        "cot_in": cot_in,  # ALICE: correlations; BOB: choice bits
        "cot_out": cot_out,  # ALICE: x0; BOB: x0 + c·corr
    }


# ---- the referee (parent process) ----------------------------------------------------------------
def _fmt_bytes(n: int) -> str:
    from ..compiler.session import format_bytes

    return format_bytes(n)


def _check_cot(a: dict, b: dict) -> int:
    """Mismatches of the COT batch: BOB must hold x0 + c·corr."""
    from ..protocols.ring import mask

    corr, x0 = a["cot_in"], a["cot_out"]
    choice, got = b["cot_in"], b["cot_out"]
    want = (x0 + choice.astype(np.uint64) * corr) & mask(COT_BITS)
    return int((got != want).sum())


def _referee(b: dict) -> dict:
    """Per function: the secure result, the cleartext functionality, numpy, ULP errors (signed
    fixed-point integers; ULP = 2^-SCALE_OUT)."""
    from .. import mathfn
    from ..protocols.backend import ClearBackend, clear
    from ..protocols.ring import mask, to_signed

    xi = np.asarray(b["input"], np.int64)
    real_x = xi / 2.0**SCALE_IN
    checks = {}
    for (name, ref), got in zip(FUNCTIONS.items(), b["result"]):
        want = getattr(mathfn, name)(ClearBackend(), clear(xi, BITS_IN, SCALE_IN), BITS_OUT,
                                     SCALE_OUT).data
        secure = to_signed(np.asarray(got, np.uint64) & mask(BITS_OUT), BITS_OUT)
        exact = ref(real_x)
        ulp = np.abs(secure / 2.0**SCALE_OUT - exact) * 2.0**SCALE_OUT
        checks[name] = {"secure": secure, "clear": to_signed(want, BITS_OUT), "numpy": exact,
                        "ulp": ulp, "mismatches": int((np.asarray(got) != want).sum())}
    return checks


def _report(n: int, a: dict, b: dict, wall: float) -> int:
    checks = _referee(b)
    bad = {name: c["mismatches"] for name, c in checks.items()}
    bad["COT"] = _check_cot(a, b)
    x = np.asarray(b["input"]) / 2.0**SCALE_IN
    f = 2.0**SCALE_OUT

    out = []
    w = out.append
    w("sirnn demo --math: secure sigmoid and tanh of BOB's private input, two processes on loopback")
    w(f"  ({n:,} values; input {BITS_IN}-bit fixed point, scale {SCALE_IN}; outputs {BITS_OUT}-bit, "
      f"scale {SCALE_OUT}: 1 ULP = 2^-{SCALE_OUT} = {1 / f:.6f}; OT engine {b['ot']})")
    w("")
    w("Who holds what")
    w(f"  BOB   (client, pid {b['pid']}): private input  x = {_short(x)}")
    w(f"  ALICE (server, pid {a['pid']}): no private data in this demo (the functions and formats")
    w("  are public). Each process only ever holds its own data, random-looking shares and OT")
    w("  messages; BOB alone learns σ(x) and tanh(x).")
    w(f"  ALICE's share of σ(x) (uniformly random to her): {_short(a['share'], hexa=True)}")
    w("")
    w("Results (revealed to BOB; 'clear' = the cleartext fixed-point functionality, recomputed by "
      "the referee;")
    w("         'numpy' = float64; ulp = |secure - numpy| in units of 2^-12)")
    sig, th = checks["sigmoid"], checks["tanh"]
    head = (f"  {'i':>3} {'x':>8} | {'σ secure':>9} {'clear':>9} {'numpy':>9} {'ulp':>5} | "
            f"{'tanh secure':>11} {'clear':>9} {'numpy':>9} {'ulp':>5}")
    w(head)
    w("  " + "-" * (len(head) - 2))
    for i in range(min(n, _ROWS)):
        w(f"  {i:>3} {x[i]:>8.4f} | {sig['secure'][i] / f:>9.6f} {sig['clear'][i] / f:>9.6f} "
          f"{sig['numpy'][i]:>9.6f} {sig['ulp'][i]:>5.2f} | {th['secure'][i] / f:>11.6f} "
          f"{th['clear'][i] / f:>9.6f} {th['numpy'][i]:>9.6f} {th['ulp'][i]:>5.2f}")
    if n > _ROWS:
        w(f"  ... {n - _ROWS:,} more rows (uniform over the 16-bit input domain; all checked)")
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
        total = pa["bytes_sent"] + pb["bytes_sent"]
        if pa["name"].startswith("2^20"):
            w(f"  {'':34s}-> {COT_BATCH / max(sec, 1e-9) / 1e6:.2f} M correlated OTs per s "
              f"({COT_BITS}-bit messages, {total * 8 / COT_BATCH:.0f} bits per OT)")
        elif pa["name"] in checks:
            w(f"  {'':34s}-> {n / max(sec, 1e-9):,.0f} per s, {total / n:,.0f} B per element")
    ta, tb = a["total"], b["total"]
    w(f"  {'whole session (incl. phase syncs)':32s} {'':>9} {_fmt_bytes(ta['bytes_sent']):>12} "
      f"{_fmt_bytes(tb['bytes_sent']):>12} {max(ta['rounds'], tb['rounds']):>6}")
    w(f"  wall time including process start-up: {wall:.2f} s")
    w("")
    w(f"Error vs numpy over the {n:,} values (ULP = 2^-{SCALE_OUT})")
    for name, c in checks.items():
        w(f"  {name:8s} max {c['ulp'].max():.2f} ULP, mean {c['ulp'].mean():.2f} ULP")
    w("")
    if any(bad.values()):
        w("MISMATCH: the secure results differ from the cleartext functionality: "
          + ", ".join(f"{k}: {v}" for k, v in bad.items() if v))
        print("\n".join(out))
        return 1
    w(f"OK: all {n:,} secure σ(x) and tanh(x) are identical to the cleartext fixed-point "
      f"functionality, and all {COT_BATCH:,} correlated OTs are correct.")
    print("\n".join(out))
    return 0


def _short(v: np.ndarray, hexa: bool = False, limit: int = 8) -> str:
    items = [f"0x{int(e):04x}" if hexa else f"{e:.2f}" for e in v[:limit]]
    return "[" + ", ".join(items) + (", ..." if len(v) > limit else "") + "]"


def run_demo(n: int = DEFAULT_N, ot: str | None = None) -> int:
    """Run the demo session with a batch of ``n`` values on the OT engine ``ot`` ("ferret" or
    "iknp"; None: the default); print the report; 0 if all match."""
    from ..transport.launch import run_two_processes

    if n < 1:
        print(f"sirnn demo: --n must be at least 1, got {n}")
        return 2
    t0 = time.perf_counter()
    try:
        a, b = run_two_processes(_session, n, ot, timeout=300.0, channel_timeout=60.0)
    except SirnnError as e:
        print(f"sirnn demo failed: {type(e).__name__}: {e}")
        return 1
    return _report(n, a, b, time.perf_counter() - t0)


__all__ = ["run_demo"]
