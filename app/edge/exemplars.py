"""Exemplar trace ids per edge: the `EXEMPLARS_PER_KIND` slowest requests, and as many slowest
failed ones, one per trace.

One total order ranks them everywhere (`rank`: longer first, then the smaller trace id), in the
aggregator as requests stream in (`TopExemplars`) and wherever stored exemplars are merged
(`top_exemplars`: the store, roll-up reads, attribution). Top-N by a total order is commutative
and associative, so the exemplars kept do not depend on how requests were split into flushes or
across replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXEMPLARS_PER_KIND = 3
SLOWEST, FAILED = "slowest", "failed"


@dataclass(frozen=True, slots=True)
class Exemplar:
    kind: str  # SLOWEST | FAILED
    trace_id: str  # 32 hex digits
    duration_ms: float
    end_ns: int
    status_code: str = ""


def rank(duration_ms: float, trace_id: str | bytes) -> tuple[float, str | bytes]:
    """The exemplar order: ascending rank is better (lowercase hex and bytes order alike)."""
    return (-duration_ms, trace_id)


def top_exemplars(items: Iterable[Exemplar], per_kind: int = EXEMPLARS_PER_KIND) -> list[Exemplar]:
    """The best `per_kind` distinct traces of each kind (a trace's longest, then latest, request)."""
    best: dict[tuple[str, str], Exemplar] = {}
    for item in items:
        key = (item.kind, item.trace_id)
        seen = best.get(key)
        if seen is None or (item.duration_ms, item.end_ns) > (seen.duration_ms, seen.end_ns):
            best[key] = item
    ranked = sorted(best.values(), key=lambda e: (e.kind, *rank(e.duration_ms, e.trace_id)))
    out: list[Exemplar] = []
    counts: dict[str, int] = {}
    for item in ranked:
        if counts.get(item.kind, 0) < per_kind:
            counts[item.kind] = counts.get(item.kind, 0) + 1
            out.append(item)
    return out


# (duration_ms, end_ns, trace_id, status_code): the aggregator's streaming form
Offer = tuple[float, int, bytes, str]


class TopExemplars:
    """`top_exemplars` of one kind as requests stream in, without keeping them all."""

    __slots__ = ("floor_ms", "kept")

    def __init__(self) -> None:
        self.kept: list[Offer] = []
        self.floor_ms = -1.0  # shorter than this cannot be kept (set once full)

    def offer(self, ex: Offer) -> None:
        if ex[0] < self.floor_ms:
            return
        kept = self.kept
        self._place(kept, ex)
        if len(kept) >= EXEMPLARS_PER_KIND:
            self.floor_ms = min([e[0] for e in kept])

    @staticmethod
    def _place(kept: list[Offer], ex: Offer) -> None:
        for i, other in enumerate(kept):
            if other[2] == ex[2]:
                if (ex[0], ex[1]) > (other[0], other[1]):  # a trace's longest (then latest)
                    kept[i] = ex
                return
        if len(kept) < EXEMPLARS_PER_KIND:
            kept.append(ex)
            return
        worst = max(range(len(kept)), key=lambda j: rank(kept[j][0], kept[j][2]))
        if rank(ex[0], ex[2]) < rank(kept[worst][0], kept[worst][2]):
            kept[worst] = ex

    def exemplars(self, kind: str) -> list[Exemplar]:
        ordered = sorted(self.kept, key=lambda e: rank(e[0], e[2]))
        return [Exemplar(kind, e[2].hex(), e[0], e[1], e[3]) for e in ordered]
