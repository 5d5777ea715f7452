"""Trace hops of the recent past, in memory: what `/traces/{id}` answers for a trace the store
does not keep.

The store keeps the hops of exemplar traces only (app/correlate/kept_traces.py): a stored row per
span was the largest write cost of ingest. Every hop still passes through here, the last
`max_hops` of them (`MESHSTITCH_RECENT_TRACE_HOPS`), so any trace seen recently by this process
can be looked at. Each entry is the aggregator's own `(observation, source id, target id)` tuple,
so keeping it costs a reference, and a `TraceHop` is built only for a hop that is asked for or
stored.

One process's memory: with several replicas, a recent trace that is not an exemplar is found only
on the replica that received it (the OpenTelemetry Collector's `loadbalancing` exporter by trace
id, which pairing needs anyway, sends all of a trace to one replica).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from app.domain import L7Observation
from app.edge.batch import TraceHop
from app.hot_path import fast_constructor

# What the aggregator keeps per hop: the observation and its service-level source and target ids.
HopEntry = tuple[L7Observation, str, str]


_new_hop = fast_constructor(TraceHop)


def trace_hop(obs: L7Observation, source: str, target: str) -> TraceHop:
    """The `TraceHop` of an observation (built without the frozen dataclass's `__init__`)."""
    end_ns, duration_ms, cause = obs.end_ns, obs.duration_ms, obs.error_cause
    return _new_hop(
        obs.trace_id.hex(),
        obs.span_id.hex(),
        obs.parent_span_id.hex(),
        source,
        target,
        obs.via,
        end_ns - int(duration_ms * 1e6),
        end_ns,
        duration_ms,
        obs.status_code,
        cause._value_ if cause is not None else "",
        obs.provenance._value_,
    )


class RecentHops:
    """The last `max_hops` hops handed in (0: none kept). Added to by the ingest worker, read by
    request threads; both take the lock, briefly (a read copies the references, then scans)."""

    def __init__(self, max_hops: int) -> None:
        self.max_hops = max_hops
        self._entries: deque[HopEntry] = deque(maxlen=max(max_hops, 0))
        self._lock = threading.Lock()
        self.added = 0  # hops handed in since start (dropped ones included)
        self.stored = 0  # hops the flushes that handed them in wrote to the store

    def extend(self, entries: list[HopEntry], stored: int = 0) -> None:
        """Hand in a flush's hops, of which its batch stores `stored` (counted only)."""
        self.stored += stored
        if not entries:
            return
        with self._lock:
            self.added += len(entries)
            if self.max_hops > 0:
                self._entries.extend(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> list[HopEntry]:
        with self._lock:
            return list(self._entries)

    def entries_of(self, trace_ids: set[bytes] | frozenset[bytes]) -> list[HopEntry]:
        """The kept entries of these traces (raw 16-byte ids), oldest first."""
        if not trace_ids or not self._entries:
            return []
        return [entry for entry in self.snapshot() if entry[0].trace_id in trace_ids]

    def hops(self, trace_id: bytes) -> list[TraceHop]:
        """The kept hops of one trace, as the store would answer them."""
        return [trace_hop(*entry) for entry in self.entries_of({trace_id})]


def merge_hops(stored: Iterable[TraceHop], recent: Iterable[TraceHop]) -> list[TraceHop]:
    """Stored and recent hops of one trace, one per span id (the stored one wins: the same span),
    in the store's order (start, end, span id)."""
    by_span = {hop.span_id: hop for hop in recent}
    by_span.update({hop.span_id: hop for hop in stored})
    return sorted(by_span.values(), key=lambda h: (h.start_ns, h.end_ns, h.span_id))
