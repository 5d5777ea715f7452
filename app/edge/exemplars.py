"""Exemplar trace ids per edge: the `EXEMPLARS_PER_KIND` slowest requests, and as many slowest
failed ones, one per trace.

One total order ranks them everywhere (`rank`: longer first, then the smaller trace id), in the
aggregator as requests stream in (`keep_best`) and wherever stored exemplars are merged
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


# The aggregator's streaming form of one request: (-duration_ms, trace_id, end_ns, status_code).
# Ascending tuple order is `rank` order (trace ids kept are distinct, so the first two decide).
Offer = tuple[float, bytes, int, str]


def keep_best(kept: list[Offer], offer: Offer) -> float:
    """Keep in `kept` the `EXEMPLARS_PER_KIND` best offers by `rank`, one per trace (a trace's
    longest, then latest, request): `top_exemplars` as requests stream in, without keeping them
    all. Lists, not objects: the aggregator keeps two per edge bucket on its hot path.

    Returns `floor_ms(kept)`: once full, a request shorter than that cannot enter."""
    trace_id = offer[1]
    for i, other in enumerate(kept):
        if other[1] == trace_id:
            if offer[0] < other[0] or (offer[0] == other[0] and offer[2] > other[2]):
                kept[i] = offer
            return floor_ms(kept)
    if len(kept) < EXEMPLARS_PER_KIND:
        kept.append(offer)
        return floor_ms(kept)
    worst = max(kept)
    if offer < worst:
        kept[kept.index(worst)] = offer
        worst = max(kept)
    return -worst[0]


def floor_ms(kept: list[Offer]) -> float:
    """Once `kept` is full, a request shorter than this cannot enter it (-1 before)."""
    return -max(kept)[0] if len(kept) >= EXEMPLARS_PER_KIND else -1.0


def kept_exemplars(kind: str, kept: list[Offer]) -> list[Exemplar]:
    """The kept offers as exemplars of `kind`, best first."""
    return [Exemplar(kind, o[1].hex(), -o[0], o[2], o[3]) for o in sorted(kept)]
