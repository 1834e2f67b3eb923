"""The OT engine between two OS processes over TCP (and TLS): every variant on both engines
(Ferret with the b10 set, so that the million-COT batch runs refills in both directions, and
IKNP), checked in the parent; a peer that fails or dies in the middle of an extension; handshake
mismatches in Party.setup.

Few process pairs are started (each costs ~1 s of interpreter start-up): one pair runs every
variant once and its results are shared by many tests through a module-scoped fixture.
The functions starting with ``_`` at module level run inside ``spawn``ed child processes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np
import pytest

from sirnn import ALICE, BOB
from sirnn.errors import HandshakeError, PeerGoneError
from sirnn.protocols.party import Party
from sirnn.transport import run_two_processes

pytestmark = pytest.mark.tcp

PARAMS = {"model": "fastgrnn", "hidden": 100, "bits": {"x": 16, "h": 16}, "scale": 12}
OTHER_PARAMS = dict(PARAMS, scale=13)


@dataclass(frozen=True)
class Spec:
    """One OT batch: ``kind`` run with ``sender`` as OT sender (``both``: cot_both)."""

    name: str
    kind: str  # rot | ot | cot | cot_both | kkot
    sender: int
    n: int
    bits: int
    mshape: tuple = ()
    n_options: int = 2


SPECS = [
    Spec("rot-A-1", "rot", ALICE, 1000, 1),
    Spec("rot-B-64x2", "rot", BOB, 1003, 64, (2,)),
    Spec("rot-A-13x3", "rot", ALICE, 517, 13, (3,)),
    Spec("ot-A-1", "ot", ALICE, 1001, 1),
    Spec("ot-B-64", "ot", BOB, 999, 64),
    Spec("ot-A-20x4", "ot", ALICE, 300, 20, (4,)),
    Spec("cot-A-32x5", "cot", ALICE, 1001, 32, (5,)),
    Spec("cot-B-64x3", "cot", BOB, 777, 64, (3,)),
    Spec("cot-A-1", "cot", ALICE, 64, 1),
    Spec("cot-A-17x2x3", "cot", ALICE, 50, 17, (2, 3)),
    Spec("cot_both-24x2", "cot_both", ALICE, 501, 24, (2,)),
    Spec("cot_both-1M", "cot_both", ALICE, 1_050_000, 3),  # ≥ 10^6 COTs each way
] + [
    Spec(f"kkot-k{k}", "kkot", ALICE if k % 2 else BOB, 300 + k, 3 + 7 * (k % 3),
         (2,) if k in (3, 8) else (), 1 << k)
    for k in range(1, 9)
]
TLS_SPECS = [s for s in SPECS if s.name in ("rot-B-64x2", "ot-A-20x4", "cot-A-32x5", "cot_both-24x2",
                                            "kkot-k1", "kkot-k4", "kkot-k8")]


def _mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def _values(rng, shape, bits):
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64) & _mask(bits)


def _inputs(i: int, s: Spec) -> dict:
    """The batch's inputs, from a seed both processes and the parent know (each party uses only
    its own part; the parent uses them to check the outputs)."""
    rng = np.random.default_rng([20261124, i])
    full = (s.n,) + s.mshape
    d = {"c": rng.integers(0, s.n_options, s.n, dtype=np.uint64)}
    if s.kind in ("ot", "kkot"):
        d["m"] = _values(rng, (s.n, s.n_options) + s.mshape, s.bits)
    if s.kind in ("cot", "cot_both"):
        d["corr"] = _values(rng, full, s.bits)
    if s.kind == "cot_both":
        d["corr2"] = _values(rng, full, s.bits)
        d["c2"] = rng.integers(0, 2, s.n, dtype=np.uint64)
    return d


def _run_spec(party: Party, i: int, s: Spec):
    """This party's side of one batch; returns its output (None for a chosen-message sender)."""
    d = _inputs(i, s)
    ot, sends = party.ot, party.role == s.sender
    if s.kind == "rot":
        return ot.rot_send(s.n, s.bits, s.mshape) if sends else ot.rot_recv(d["c"], s.bits, s.mshape)
    if s.kind == "ot":
        if sends:
            return ot.send(d["m"][:, 0], d["m"][:, 1], s.bits)
        return ot.recv(d["c"], s.bits, s.mshape)
    if s.kind == "cot":
        return ot.cot_send(d["corr"], s.bits) if sends else ot.cot_recv(d["c"], s.bits, s.mshape)
    if s.kind == "cot_both":  # ALICE sends corr to BOB's choice c, BOB sends corr2 to ALICE's c2
        if party.role == ALICE:
            return ot.cot_both(d["corr"], d["c2"], s.bits, s.mshape)
        return ot.cot_both(d["corr2"], d["c"], s.bits, s.mshape)
    if s.kind == "kkot":
        return ot.kkot_send(d["m"], s.bits) if sends else ot.kkot_recv(d["c"], s.n_options, s.bits,
                                                                         s.mshape)
    raise AssertionError(s.kind)


ENGINES = {"ferret": "b10", "iknp": None}  # engine → Ferret parameter set


def _variants(role, chan, specs, mismatch_first: bool, engine: str = "ferret"):
    """Optionally a Party.setup with mismatched parameters first (errors recorded), then a
    matching set-up with OT engine ``engine`` and every batch of ``specs``."""
    result = {"tls": chan.is_tls}
    if mismatch_first:
        before = chan.stats.copy()
        try:
            Party.setup(role, chan, params=PARAMS if role == ALICE else OTHER_PARAMS)
            result["mismatch"] = None
        except HandshakeError as e:
            result["mismatch"] = (type(e).__name__, str(e))
        result["mismatch_stats"] = (chan.stats - before).as_dict()
    before = chan.stats.copy()
    party = Party.setup(role, chan, params=PARAMS, ot=engine, ferret=ENGINES[engine])
    result["setup_stats"] = (chan.stats - before).as_dict()
    result["engine"] = party.ot.kind
    result["peer_role"] = party.peer["role"]
    result["out"] = {s.name: _run_spec(party, SPECS.index(s), s) for s in specs}
    return result


def _die_mid_extension(role, chan, how, report_file):
    """BOB sends the extension matrix U of a large COT batch and then fails (``raise``) or
    vanishes (``exit``, likely before all of U is on the wire); ALICE, in the middle of the
    same two-way COT, records what she gets and how fast (IKNP: the engine with a matrix U)."""
    party = Party.setup(role, chan, params=PARAMS, ot="iknp")
    n = 1 << 18
    rng = np.random.default_rng(role)
    choice = rng.integers(0, 2, n, dtype=np.uint64)
    corr = _values(rng, n, 32)
    if role == BOB:
        party.ot.cot_recv_start(choice, 32)  # U is queued for sending
        if how == "raise":
            raise RuntimeError("BOB fails after sending U")
        os._exit(3)
    t0 = time.monotonic()
    try:
        party.ot.cot_both(corr, choice, 32)
        record = {"error": None}
    except Exception as e:  # noqa: BLE001 - recorded for the parent
        record = {"error": type(e).__name__, "message": str(e)}
    record["seconds"] = time.monotonic() - t0
    with open(report_file, "w") as f:
        json.dump(record, f)
    return record


# ---- checks (in the parent) ----------------------------------------------------------------------
def _sel(choice: np.ndarray, mshape: tuple) -> np.ndarray:
    return choice.reshape((-1,) + (1,) * len(mshape)).astype(bool)


def check_spec(i: int, s: Spec, out_a, out_b) -> None:
    d = _inputs(i, s)
    snd, rcv = (out_a, out_b) if s.sender == ALICE else (out_b, out_a)
    full = (s.n,) + s.mshape
    m = _mask(s.bits)
    if s.kind == "rot":
        m0, m1 = snd
        assert m0.shape == m1.shape == rcv.shape == full
        assert rcv.dtype == np.uint64 and not (rcv & ~m).any()
        np.testing.assert_array_equal(rcv, np.where(_sel(d["c"], s.mshape), m1, m0))
        if s.bits >= 13:  # random messages: the two must (almost) never coincide
            assert np.mean(m0 == m1) < 0.01
    elif s.kind in ("ot", "kkot"):
        assert snd is None
        assert rcv.shape == full
        np.testing.assert_array_equal(rcv, d["m"][np.arange(s.n), d["c"].astype(np.intp)])
    elif s.kind == "cot":
        assert snd.shape == rcv.shape == full
        np.testing.assert_array_equal(rcv, (snd + _sel(d["c"], s.mshape) * d["corr"]) & m)
        if s.bits >= 17:
            assert np.mean(snd == 0) < 0.01  # the sender's x0 is random, not zero
    elif s.kind == "cot_both":
        (x0_a, got_a), (x0_b, got_b) = out_a, out_b
        np.testing.assert_array_equal(got_b, (x0_a + _sel(d["c"], s.mshape) * d["corr"]) & m)
        np.testing.assert_array_equal(got_a, (x0_b + _sel(d["c2"], s.mshape) * d["corr2"]) & m)
    else:
        raise AssertionError(s.kind)


@pytest.fixture(scope="module", params=list(ENGINES))
def tcp_run(request):
    t0 = time.monotonic()
    ra, rb = run_two_processes(_variants, SPECS, True, request.param, timeout=120, channel_timeout=30)
    assert ra["engine"] == rb["engine"] == request.param
    return {"a": ra, "b": rb, "seconds": time.monotonic() - t0, "engine": request.param}


@pytest.fixture(scope="module")
def tls_run():
    ra, rb = run_two_processes(_variants, TLS_SPECS, False, timeout=90, channel_timeout=30,
                               tls=True)
    return {"a": ra, "b": rb}


# ---- tests ---------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("i", range(len(SPECS)), ids=[s.name for s in SPECS])
def test_ot_variant_over_tcp(tcp_run, i):
    s = SPECS[i]
    check_spec(i, s, tcp_run["a"]["out"][s.name], tcp_run["b"]["out"][s.name])


def test_every_ot_variant_and_every_kkot_size_is_covered():
    kinds = {s.kind for s in SPECS}
    assert kinds == {"rot", "ot", "cot", "cot_both", "kkot"}
    assert {s.n_options for s in SPECS if s.kind == "kkot"} == {1 << k for k in range(1, 9)}
    for kind in ("rot", "ot", "cot"):  # both directions of the extension
        assert {s.sender for s in SPECS if s.kind == kind} == {ALICE, BOB}


@pytest.mark.timeout(120)
def test_tcp_session_setup(tcp_run):
    a, b = tcp_run["a"], tcp_run["b"]
    assert not a["tls"] and not b["tls"]
    assert a["peer_role"] == BOB and b["peer_role"] == ALICE
    # handshake (1 round) + base OTs + bootstrap: a few rounds, a few KB each way; Ferret adds
    # IKNP COTs for its first round's base (λ bits each, from the receiver) and the round message
    if tcp_run["engine"] == "ferret":
        from sirnn.ot.ferret import PARAMS as FERRET

        p = FERRET[ENGINES["ferret"]]
        extra = p.base * 16 + p.message_bytes
    else:
        extra = 0
    for st in (a["setup_stats"], b["setup_stats"]):
        assert 1_000 + extra < st["bytes_sent"] < 50_000 + extra
    assert max(a["setup_stats"]["rounds"], b["setup_stats"]["rounds"]) <= 12


@pytest.mark.timeout(120)
def test_party_setup_parameter_mismatch_fails_on_both_sides_before_any_ot(tcp_run):
    for side, peer in (("a", "b"), ("b", "a")):
        r = tcp_run[side]
        assert r["mismatch"] is not None, f"Party.setup with different params succeeded on {side}"
        name, message = r["mismatch"]
        assert name == "HandshakeError"
        assert "public parameters differ" in message
        assert "(values differ for scale)" in message  # names the differing key, and only it
        st = r["mismatch_stats"]  # only the hello went out: no OT message
        assert st["messages_sent"] == 1 and st["bytes_sent"] < 1_000 and st["rounds"] == 1
    # ...and the channel stayed in step: the matching set-up and all batches after it ran


@pytest.mark.timeout(120)
def test_ot_engine_mismatch_fails_at_setup():
    """One party on Ferret, the other on IKNP: a HandshakeError on both sides, before any OT."""
    with pytest.raises(HandshakeError, match="OT engine mismatch"):
        run_two_processes(_mismatched_engines, timeout=60, channel_timeout=20)


def _mismatched_engines(role, chan):
    return Party.setup(role, chan, params=PARAMS, ot="ferret" if role == ALICE else "iknp")


def test_tls_ot_variants(tls_run):
    a, b = tls_run["a"], tls_run["b"]
    assert a["tls"] and b["tls"]
    for s in TLS_SPECS:
        check_spec(SPECS.index(s), s, a["out"][s.name], b["out"][s.name])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["raise", "exit"])
def test_peer_failing_mid_extension_gives_peer_gone_quickly(tmp_path, how):
    report = tmp_path / "alice.json"
    expected = RuntimeError if how == "raise" else PeerGoneError
    t0 = time.monotonic()
    with pytest.raises(expected) as info:
        run_two_processes(_die_mid_extension, how, str(report), timeout=45, channel_timeout=20)
    elapsed = time.monotonic() - t0
    if how == "raise":
        assert "BOB fails after sending U" in str(info.value)
    else:
        assert "BOB (client) process died" in str(info.value) and "exit code 3" in str(info.value)
    assert report.exists(), "ALICE did not finish (hung until the launcher killed her)"
    rec = json.loads(report.read_text())
    assert rec["error"] == "PeerGoneError", rec  # not a timeout, not a success
    assert rec["seconds"] < 5, rec  # far below the 20 s channel timeout
    assert elapsed < 30
