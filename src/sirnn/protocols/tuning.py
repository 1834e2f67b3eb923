"""Which protocol parameters a call uses: a *profile* derived from the session's OT engine and the
call's (public) batch size, so both parties derive the same one without a message.

The parameters in question never change a protocol's functionality, only its bytes and rounds:
the millionaires' leaf width and root (:func:`compare.leaf_width`, :func:`compare.root_method`),
where AND triples come from (:func:`compare.rot_triples`), whether a carry is read off a table
(:func:`extend.table_carry`), the wrap method of extensions, truncations and multiplications.

Profiles (the ``ot`` argument of every ``*_cost_bits`` function):

* ``"iknp"``: IKNP/KK13, every OT costs 128 or 256 bits beyond its messages; the parameters of
  protocol version 3 (fewest rounds where that was the trade-off).
* ``"ferret"``: Ferret COTs, an OT costs one choice bit per random OT; the parameters with the
  fewest bytes (tables give way to comparisons, 4-bit leaves, roots by a 1-of-4 OT and a COT,
  triples from random OTs), a few rounds more.
* ``"ferret-lat"``: Ferret costs, every round-relevant choice as on IKNP (so the rounds are
  IKNP's), only the round-neutral ones Ferret's (triples, the two-round root). For batches
  below :data:`BYTES_FIRST_MIN` elements, where a round costs more than the bytes saved: e.g.
  sigmoid 16/12, 4-bit leaves save 214 B per element for 5 rounds (benchmarks/RESULTS.md,
  "Re-tune"); on a 100 Mbit/s link with 20 ms per one-way trip a round is worth 250 kB, the
  bytes of ≈ 5,800 elements; a batch-1 FastGRNN step calls its protocols on ≤ 100 elements.
"""

from __future__ import annotations

PROFILES = ("iknp", "ferret", "ferret-lat")
LATENCY = "ferret-lat"
#: Batches (elements per protocol call) from which Ferret sessions use the fewest-bytes profile.
BYTES_FIRST_MIN = 4096


def profile(party, n: int) -> str:
    """The parameter profile of a protocol call on ``n`` elements in ``party``'s session."""
    kind = party.ot.kind
    if kind == "ferret" and n < BYTES_FIRST_MIN:
        return LATENCY
    return kind


def rule(ot: str) -> str:
    """Whose rules make the round-relevant choices under profile ``ot`` ("iknp" or "ferret")."""
    return "iknp" if ot == LATENCY else ot
