"""L7 observations and L4 samples → additive edge buckets (`AggregateBatch`) for the store.

Implements `app.pipeline.Aggregator`. Every observation is added at both levels: `service`
always, `workload` when either endpoint carries a workload (an endpoint without one appears at
workload level under its service node id, so no edge is missing from the workload graph).

- Buckets are keyed by END time: `bucket_start = floor(end_s / bucket_s) * bucket_s`, never by
  arrival or flush time.
- Late: each `drain()` at clock time T closes every bucket that started before
  `(floor(T / bucket_s) - 1) * bucket_s`: the current bucket stays open and the previous one gets a
  full bucket of grace for spans still waiting in the pairing store. An observation that lands in
  a closed bucket is still added (buckets are additive) and counted in `l7_late`.
- L4 samples go to the bucket of their interval's END (`end_s`), whole: a poll interval is much
  shorter than a bucket, and splitting counters across buckets would assume a uniform rate we have
  no evidence for. Each reporter keeps its own counters (`l4["source"]`, `l4["destination"]`).
- Exemplars per edge bucket: the `EXEMPLARS_PER_KIND` slowest requests, and among failed requests
  the first (earliest end) plus the `EXEMPLARS_PER_KIND - 1` most recent.
- Nodes seen: source, target and the `via` waypoint (kind WAYPOINT), per level, first/last seen
  in end-time seconds. One `TraceHop` per observation that has a trace id (service level ids).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.correlate.buckets import (
    EXEMPLARS_PER_KIND,
    AggregateBatch,
    EdgeBucket,
    ExemplarRow,
    L4Counters,
    NodeSeen,
    TraceHop,
)
from app.domain import EdgeKey, Endpoint, L4Sample, L7Observation, Level, NodeKind

_NS = 1_000_000_000
_CACHE_MAX = 8192
# (duration_ms, end_ns, trace_id, status_code)
_Exemplar = tuple[float, int, bytes, str]


class _EdgeState:
    __slots__ = ("bucket", "failed_first", "failed_recent", "slow_floor_ms", "slowest")

    def __init__(self) -> None:
        self.bucket = EdgeBucket()
        self.slowest: list[_Exemplar] = []
        self.slow_floor_ms = -1.0  # a request must be slower than this to become an exemplar
        self.failed_first: _Exemplar | None = None
        self.failed_recent: list[_Exemplar] = []

    def offer_slowest(self, ex: _Exemplar) -> None:
        slowest = self.slowest
        if len(slowest) < EXEMPLARS_PER_KIND:
            slowest.append(ex)
        else:
            i = min(range(len(slowest)), key=lambda j: slowest[j][0])
            slowest[i] = ex
        if len(slowest) >= EXEMPLARS_PER_KIND:
            self.slow_floor_ms = min(e[0] for e in slowest)

    def offer_failed(self, ex: _Exemplar) -> None:
        first = self.failed_first
        if first is None:
            self.failed_first = ex
            return
        if ex[1] < first[1]:
            self.failed_first, ex = ex, first
        recent, keep = self.failed_recent, EXEMPLARS_PER_KIND - 1
        if len(recent) < keep:
            recent.append(ex)
        elif keep > 0:
            i = min(range(len(recent)), key=lambda j: recent[j][1])
            if ex[1] > recent[i][1]:
                recent[i] = ex

    def finish(self) -> EdgeBucket:
        rows = [
            ExemplarRow("slowest", ex[2].hex(), ex[0], ex[1], ex[3])
            for ex in sorted(self.slowest, key=lambda e: -e[0])
        ]
        failed = [self.failed_first] if self.failed_first is not None else []
        failed += sorted(self.failed_recent, key=lambda e: -e[1])
        rows += [ExemplarRow("failed", ex[2].hex(), ex[0], ex[1], ex[3]) for ex in failed]
        self.bucket.exemplars = rows
        return self.bucket


class EdgeAggregator:
    def __init__(self, bucket_s: int, clock_s: Callable[[], float] = time.time) -> None:
        self._bucket_s = bucket_s
        self._clock_s = clock_s
        self._closed_before_s: int | None = None  # buckets starting earlier are closed
        # (bucket_start_s, level, source id, target id): plain tuples on the hot path, EdgeKey at drain
        self._edges: dict[tuple[int, Level, str, str], _EdgeState] = {}
        self._nodes: dict[tuple[str, Level], NodeSeen] = {}
        self._hops: list[TraceHop] = []
        # id(endpoint) → (endpoint, service node id, workload node id); holding the endpoint keeps
        # its id from being reused while cached. The correlator reuses cached endpoints.
        self._ids: dict[int, tuple[Endpoint, str, str]] = {}

    def __len__(self) -> int:
        return len(self._edges) + len(self._hops)

    def bucket_start(self, end_s: float) -> int:
        return int(end_s // self._bucket_s) * self._bucket_s

    # ---- L7 -------------------------------------------------------------------------------------
    def add_l7(self, obs: L7Observation) -> None:
        end_s = obs.end_ns // _NS
        bucket = end_s // self._bucket_s * self._bucket_s
        late = obs.late or (self._closed_before_s is not None and bucket < self._closed_before_s)
        source, target = obs.source, obs.target
        _, src_svc, src_wl = self._node_ids(source)
        _, tgt_svc, tgt_wl = self._node_ids(target)
        self._add_l7_edge((bucket, Level.SERVICE, src_svc, tgt_svc), obs, late)
        self._see(source, Level.SERVICE, src_svc, end_s)
        self._see(target, Level.SERVICE, tgt_svc, end_s)
        if source.workload or target.workload:
            self._add_l7_edge((bucket, Level.WORKLOAD, src_wl, tgt_wl), obs, late)
            self._see(source, Level.WORKLOAD, src_wl, end_s)
            self._see(target, Level.WORKLOAD, tgt_wl, end_s)
        if obs.via:
            self._see_waypoint(obs.via, end_s)
        if obs.trace_id:
            cause = obs.error_cause
            self._hops.append(
                TraceHop(
                    trace_id=obs.trace_id.hex(),
                    span_id=obs.span_id.hex(),
                    parent_span_id=obs.parent_span_id.hex(),
                    source=src_svc,
                    target=tgt_svc,
                    via=obs.via,
                    start_ns=obs.end_ns - int(obs.duration_ms * 1e6),
                    end_ns=obs.end_ns,
                    duration_ms=obs.duration_ms,
                    status_code=obs.status_code,
                    error_cause=cause.value if cause is not None else "",
                    provenance=obs.provenance.value,
                )
            )

    def _add_l7_edge(
        self, key: tuple[int, Level, str, str], obs: L7Observation, late: bool
    ) -> None:
        state = self._edges.get(key)
        if state is None:
            state = self._edges[key] = _EdgeState()
        b = state.bucket
        if not b.protocol:
            b.protocol = obs.protocol
        if obs.via and not b.via:
            b.via = obs.via
        b.l7_requests += 1
        duration = obs.duration_ms
        b.l7_latency_sum_ms += duration
        b.l7_latency.add(duration)
        code = obs.status_code
        if code:
            b.l7_status_codes[code] = b.l7_status_codes.get(code, 0) + 1
        provenance = obs.provenance.value
        b.l7_provenance[provenance] = b.l7_provenance.get(provenance, 0) + 1
        for node, share in obs.candidates:
            b.l7_candidates[node] = b.l7_candidates.get(node, 0.0) + share
        if obs.unpaired:
            b.l7_unpaired += 1
        if obs.evicted:
            b.l7_evicted += 1
        if late:
            b.l7_late += 1
        if obs.trace_id and duration > state.slow_floor_ms:
            state.offer_slowest((duration, obs.end_ns, obs.trace_id, code))
        if obs.error_cause is not None:
            b.l7_errors += 1
            cause = obs.error_cause.value
            b.l7_errors_by_cause[cause] = b.l7_errors_by_cause.get(cause, 0) + 1
            if obs.trace_id:
                state.offer_failed((duration, obs.end_ns, obs.trace_id, code))

    # ---- L4 -------------------------------------------------------------------------------------
    def add_l4(self, sample: L4Sample) -> None:
        end_s = int(sample.end_s)
        bucket = self.bucket_start(end_s)
        source, target = sample.source, sample.target
        _, src_svc, src_wl = self._node_ids(source)
        _, tgt_svc, tgt_wl = self._node_ids(target)
        keys = [((bucket, Level.SERVICE, src_svc, tgt_svc), Level.SERVICE, src_svc, tgt_svc)]
        if source.workload or target.workload:
            keys.append(((bucket, Level.WORKLOAD, src_wl, tgt_wl), Level.WORKLOAD, src_wl, tgt_wl))
        reporter = sample.reporter.value
        for key, level, src_id, tgt_id in keys:
            state = self._edges.get(key)
            if state is None:
                state = self._edges[key] = _EdgeState()
            b = state.bucket
            if not b.protocol:
                b.protocol = "tcp"
            if sample.via_waypoint and not b.via:
                b.via = sample.via_waypoint
            counters = b.l4.get(reporter)
            if counters is None:
                counters = b.l4[reporter] = L4Counters()
            counters.connections_opened += sample.connections_opened
            counters.connections_closed += sample.connections_closed
            counters.bytes_sent += sample.bytes_sent
            counters.bytes_received += sample.bytes_received
            if sample.mutual_tls:
                counters.mtls_connections += sample.connections_opened
            if source.principal:
                b.l4_principals.add(source.principal)
            if target.principal:
                b.l4_principals.add(target.principal)
            self._see(source, level, src_id, end_s)
            self._see(target, level, tgt_id, end_s)
        if sample.via_waypoint:
            self._see_waypoint(sample.via_waypoint, end_s)

    # ---- drain ----------------------------------------------------------------------------------
    def drain(self) -> AggregateBatch:
        batch = AggregateBatch(
            edges={EdgeKey(*key): state.finish() for key, state in self._edges.items()},
            nodes=self._nodes,
            hops=self._hops,
        )
        self._edges, self._nodes, self._hops = {}, {}, []
        closed = self.bucket_start(self._clock_s()) - self._bucket_s
        if self._closed_before_s is None or closed > self._closed_before_s:
            self._closed_before_s = closed
        return batch

    # ---- nodes ----------------------------------------------------------------------------------
    def _node_ids(self, endpoint: Endpoint) -> tuple[Endpoint, str, str]:
        cached = self._ids.get(id(endpoint))
        if cached is not None and cached[0] is endpoint:
            return cached
        entry = (endpoint, endpoint.node_id(Level.SERVICE), endpoint.node_id(Level.WORKLOAD))
        if len(self._ids) >= _CACHE_MAX:
            self._ids.clear()
        self._ids[id(endpoint)] = entry
        return entry

    def _see(self, endpoint: Endpoint, level: Level, node_id: str, t: int) -> None:
        seen = self._nodes.get((node_id, level))
        if seen is not None:
            if t < seen.first_seen_s:
                seen.first_seen_s = t
            elif t > seen.last_seen_s:
                seen.last_seen_s = t
            if not seen.principal and endpoint.principal:
                seen.principal = endpoint.principal
            return
        workload = level is Level.WORKLOAD and bool(endpoint.workload)
        self._nodes[(node_id, level)] = NodeSeen(
            id=node_id,
            level=level,
            namespace=endpoint.namespace,
            name=endpoint.workload if workload else endpoint.service,
            kind=endpoint.node_kind(level),
            service=endpoint.node_id(Level.SERVICE) if workload else "",
            principal=endpoint.principal,
            first_seen_s=t,
            last_seen_s=t,
        )

    def _see_waypoint(self, via: str, t: int) -> None:
        namespace, _, name = via.rpartition("/")
        for level in (Level.SERVICE, Level.WORKLOAD):
            seen = self._nodes.get((via, level))
            if seen is not None:
                if t < seen.first_seen_s:
                    seen.first_seen_s = t
                elif t > seen.last_seen_s:
                    seen.last_seen_s = t
                continue
            self._nodes[(via, level)] = NodeSeen(
                id=via,
                level=level,
                namespace=namespace,
                name=name,
                kind=NodeKind.WAYPOINT,
                first_seen_s=t,
                last_seen_s=t,
            )
