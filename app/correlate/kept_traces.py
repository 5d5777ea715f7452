"""Which trace hops a flush stores: those of exemplar traces, whole.

A stored row per span hop was the largest write cost of ingest (bench/ingest.py), yet what
`/traces/{id}` is asked for from the graph is an exemplar: an edge's slowest and failed traces
(app/edge/exemplars.py), which `/triage`, the UI and Grafana link to. So each flush stores

- every hop of the batch whose trace is an exemplar of one of the batch's edge buckets (at either
  level), or was one within the last `pin_s` seconds: a trace's spans arrive within the pairing
  wait, so a trace split across two flushes is stored whole;
- the earlier hops of a trace that has just become an exemplar, from the recent ring (its first
  hops may have been drained before it was the slowest).

Every hop, stored or not, enters the recent ring (app/edge/recent_hops.py), from which
`/traces/{id}` answers any trace this process saw recently. Exemplars merged in the store are a
top-N of the union of the flushes' top-N, so every exemplar the store keeps, on any replica and
after roll-up, has its hops stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from app.edge.recent_hops import HopEntry, RecentHops

PIN_S = 300.0  # a trace stays an exemplar this long after its last flush as one
MAX_PINNED = 100_000  # bound on the traces remembered as exemplars (oldest forgotten first)


class KeptTraces:
    def __init__(
        self,
        recent: RecentHops,
        clock_s: Callable[[], float],
        pin_s: float = PIN_S,
        max_pinned: int = MAX_PINNED,
    ) -> None:
        self.recent = recent
        self._clock_s = clock_s
        self._pin_s, self._max_pinned = pin_s, max_pinned
        self._pinned: dict[bytes, float] = {}  # trace id -> last flush as an exemplar, in order

    def select(self, hops: list[HopEntry], exemplar_ids: Iterable[bytes]) -> list[HopEntry]:
        """The hops to store for a batch, given its hops (in arrival order) and the trace ids of
        its exemplars; then hands the batch's hops to the recent ring."""
        now = self._clock_s()
        pinned = self._pinned
        fresh: set[bytes] = set()
        for trace_id in exemplar_ids:
            if pinned.pop(trace_id, None) is None:
                fresh.add(trace_id)
            pinned[trace_id] = now  # re-inserted: the dict stays in pin order
        self._forget(now)
        earlier = self.recent.entries_of(fresh)  # drained before the trace was an exemplar
        kept = [entry for entry in hops if entry[0].trace_id in pinned]
        self.recent.extend(hops, stored=len(earlier) + len(kept))
        return earlier + kept

    def _forget(self, now: float) -> None:
        pinned, oldest = self._pinned, now - self._pin_s
        while pinned:
            first = next(iter(pinned))
            if len(pinned) <= self._max_pinned and pinned[first] >= oldest:
                return
            del pinned[first]

    def __len__(self) -> int:
        return len(self._pinned)
