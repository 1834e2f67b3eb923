#!/usr/bin/env python
"""CPU time of Ferret rounds in one process (no channel, no threads): the COT generator alone.

    PYTHONPATH=src python benchmarks/ferret_rounds.py [b10 b11 b12 b13] [--rounds 4]

Per parameter set: seed both ends with random base COTs, run one warm-up round, then time
``--rounds`` rounds of the sender and of the receiver with ``time.process_time`` (CPU seconds,
robust to a shared machine) and report COTs per CPU second and the LPN encoder's share.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sirnn.ot.aes import PRG, CRHash
from sirnn.ot.ferret import PARAMS, FerretReceiver, FerretSender, bootstrap_receiver, bootstrap_sender, ggm_send, lpn_encode


class _Pipe:
    def __init__(self):
        self.frames = []

    def send_bytes(self, payload):
        self.frames.append(bytes(payload))

    def recv_bytes(self, nbytes=None, what=""):
        return self.frames.pop(0)


def measure(name: str, rounds: int) -> dict:
    p = PARAMS[name]
    prg = PRG(b"ferret-rounds-bm")
    s, q, c = prg.uint64(2), prg.uint64((p.base, 2)), prg.bits(p.base)
    delta, keys = bootstrap_sender(q, s)
    pipe = _Pipe()
    snd = FerretSender(pipe, p, delta, keys, PRG(bytes(16)))
    rcv = FerretReceiver(pipe, p, bootstrap_receiver(q ^ (c.astype(np.uint64)[:, None] * s), c))
    snd.run_round()
    rcv.run_round()
    t0 = time.process_time()
    for _ in range(rounds):
        snd.run_round()
    t1 = time.process_time()
    for _ in range(rounds):
        rcv.run_round()
    t2 = time.process_time()
    leaves, _ = ggm_send(CRHash(), delta, prg.uint64((p.t, 2)), p.depth)
    t3 = time.process_time()
    lpn_encode(leaves.reshape(p.n, 2), np.ascontiguousarray(keys[:p.k]))
    t4 = time.process_time()
    send, recv = (t1 - t0) / rounds, (t2 - t1) / rounds
    return {"params": name, "usable": p.usable, "bits_per_cot": p.bits_per_cot, "sender_cpu_s": send,
            "receiver_cpu_s": recv, "sender_cot_per_s": p.usable / send, "receiver_cot_per_s": p.usable / recv,
            "lpn_cpu_s": t4 - t3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", default=["b10", "b11", "b12"])
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    for name in a.sets:
        r = measure(name, a.rounds)
        print(f"{name}: {r['usable']:,} COTs/round, {r['bits_per_cot']:.2f} bits/COT; sender {r['sender_cpu_s']:.3f} s "
              f"CPU/round = {r['sender_cot_per_s'] / 1e6:.1f} M COT/s, receiver {r['receiver_cpu_s']:.3f} s = "
              f"{r['receiver_cot_per_s'] / 1e6:.1f} M COT/s; LPN encoding {r['lpn_cpu_s']:.3f} s")


if __name__ == "__main__":
    main()
