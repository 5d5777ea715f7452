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
  no evidence for. Each reporter keeps its own counters (`l4[Reporter.SOURCE]`,
  `l4[Reporter.DESTINATION]`), and traffic only one ztunnel reports (`sample.sole`) its own side
  (`l4["sole"]`). A sample with a failure flag (ztunnel sets one only on the closed counter of a
  failed connection) adds its closes to `connections_failed` and to `l4_failures` by side/flag.
- Waypoint request metrics (`L7MetricSample`, unsampled) go to the bucket of their interval's end
  like L4 samples, into the `l7m_*` fields, named through identity as L4 samples are so that the
  three inputs meet on one edge.
- Exemplars per edge bucket: the `EXEMPLARS_PER_KIND` slowest requests and the as many slowest
  failed requests, one per trace, ranked exactly as the store merges them (app/edge/exemplars.py:
  longer first, then the smaller trace id). The same total order on both sides is what makes the
  stored exemplars independent of how requests were split into flushes or across replicas.
- Cardinality: before state is created for a new (bucket, source, target), the guard
  (app/correlate/cardinality.py) may rename either end to a domain group or an overflow node;
  the traffic is still counted, under those names, and counted again in the guard's `overflow_requests` /
  `overflow_samples`.
- Nodes seen: source, target and the `via` waypoint (kind WAYPOINT), per level, first/last seen
  in end-time seconds.
- Trace hops: one per observation that has a trace id (service level ids), into the recent ring;
  the batch carries those of exemplar traces only (app/correlate/kept_traces.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from app.correlate.cardinality import CardinalityGuard
from app.correlate.identity import NodeIdentity
from app.correlate.kept_traces import KeptTraces
from app.domain import Endpoint, L4Sample, L7MetricSample, L7Observation, Level, NodeKind
from app.edge.batch import AggregateBatch, NodeSeen
from app.edge.bucket import EdgeBucket, EdgeKey
from app.edge.exemplars import FAILED, SLOWEST, Offer, floor_ms, keep_best, kept_exemplars
from app.edge.fields import SOLE
from app.edge.recent_hops import HopEntry, RecentHops, trace_hop
from app.edge.sketch import MIN_VALUE_MS, LatencySketch
from app.edge.stats import L4Stats
from app.edge.zones import zone_key
from app.hot_path import IdentityMemo

_NS = 1_000_000_000
_CACHE_MAX = 8192
_ROUTES_MAX = 65536
_SERVICE, _WORKLOAD = Level.SERVICE, Level.WORKLOAD


class _EdgeState:
    __slots__ = ("bucket", "carried", "failed", "slow_floor_ms", "slowest")

    def __init__(self, carried: tuple[list[Offer], list[Offer]] | None = None) -> None:
        self.bucket = EdgeBucket()
        # The exemplars this process already flushed for the same edge bucket (still open):
        # new offers compete with them, and only those that win leave with the next batch.
        self.carried = carried
        slowest, failed = carried if carried is not None else ((), ())
        self.slowest: list[Offer] = list(slowest)  # app/edge/exemplars.py keep_best
        # Shorter than this cannot become a slowest exemplar.
        self.slow_floor_ms = floor_ms(self.slowest)
        self.failed: list[Offer] = list(failed)

    def finish(self) -> EdgeBucket:
        slowest, failed = self.slowest, self.failed
        if self.carried is not None:  # already in the store: not written again
            slowest = [o for o in slowest if o not in self.carried[0]]
            failed = [o for o in failed if o not in self.carried[1]]
        self.bucket.exemplars = [
            *kept_exemplars(SLOWEST, slowest),
            *kept_exemplars(FAILED, failed),
        ]
        return self.bucket


class _Route:
    """What one (bucket, source, target, via) adds to: its edge states and the nodes it touches.

    Built on the first observation of the combination (which also creates or updates the nodes,
    principal included); later observations only widen `first_s`/`last_s`, which are folded into
    the nodes' first/last seen when the routes are flushed (min/max commute, so the result is the
    same as updating every node on every observation).
    """

    __slots__ = (
        "first_s",
        "last_s",
        "late",
        "nodes",
        "overflowed",
        "source",
        "src_id",
        "states",
        "target",
        "tgt_id",
    )

    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        src_id: str,
        tgt_id: str,
        states: tuple[_EdgeState, ...],
        nodes: list[NodeSeen],
        late: bool,
        t: int,
        overflowed: bool,
    ) -> None:
        # Holding the endpoints keeps their ids (part of the route key) from being reused.
        self.source, self.target = source, target
        self.src_id, self.tgt_id = src_id, tgt_id  # service-level node ids, for trace hops
        self.states = states
        self.nodes = nodes
        self.late = late  # the bucket was closed when the route was built (routes die at drain)
        self.first_s = self.last_s = t
        self.overflowed = overflowed  # the guard renamed an end: its requests count as overflow

    def flush(self) -> None:
        first, last = self.first_s, self.last_s
        for seen in self.nodes:
            if first < seen.first_seen_s:
                seen.first_seen_s = first
            if last > seen.last_seen_s:
                seen.last_seen_s = last


class EdgeAggregator:
    def __init__(
        self,
        bucket_s: int,
        clock_s: Callable[[], float] = time.time,
        identity: NodeIdentity | None = None,
        guard: CardinalityGuard | None = None,
        recent_hops: RecentHops | None = None,
    ) -> None:
        # Which hops the store keeps (exemplar traces'); all enter `recent_hops` (none kept: 0).
        self.kept_traces = KeptTraces(
            recent_hops if recent_hops is not None else RecentHops(0), clock_s
        )
        self.guard = guard if guard is not None else CardinalityGuard()
        # L4 samples are named through identity here (L7 observations arrive named by the
        # correlator); its new aliases leave with each batch for the store.
        self.identity = identity if identity is not None else NodeIdentity()
        self._bucket_s = bucket_s
        self._clock_s = clock_s
        self._closed_before_s: int | None = None  # buckets starting earlier are closed
        self._edges: dict[EdgeKey, _EdgeState] = {}
        # Per edge bucket still open: the exemplars (slowest, failed) kept at the last drain.
        self._carried: dict[EdgeKey, tuple[list[Offer], list[Offer]]] = {}
        self._nodes: dict[tuple[str, Level], NodeSeen] = {}
        # (observation, source service id, target service id): a TraceHop is built at
        # drain for each one stored (app/correlate/kept_traces.py).
        self._hops: list[HopEntry] = []
        # endpoint → (service node id, workload node id), by identity: the correlator reuses
        # cached endpoints.
        self._ids: IdentityMemo[Endpoint, tuple[str, str]] = IdentityMemo(_CACHE_MAX)
        # (bucket_start_s, id(source), id(target), via) → _Route; flushed and cleared at drain.
        self._routes: dict[tuple[int, int, int, str], _Route] = {}

    def __len__(self) -> int:
        return len(self._edges) + len(self._hops) + self.identity.new_count

    def bucket_start(self, end_s: float) -> int:
        return int(end_s // self._bucket_s) * self._bucket_s

    # ---- L7 -------------------------------------------------------------------------------------
    def add_l7(self, obs: L7Observation) -> None:
        end_s = obs.end_ns // _NS
        bucket_s = self._bucket_s
        bucket = end_s // bucket_s * bucket_s
        source, target, via = obs.source, obs.target, obs.via
        route = self._routes.get((bucket, id(source), id(target), via))
        if route is None:
            route = self._route(bucket, source, target, via, end_s)
        elif end_s < route.first_s:
            route.first_s = end_s
        elif end_s > route.last_s:
            route.last_s = end_s
        late = obs.late or route.late
        if route.overflowed:
            self.guard.overflow_requests += 1
        duration = obs.duration_ms
        sketch_key = LatencySketch.key(duration) if duration > MIN_VALUE_MS else None
        for state in route.states:
            self._add_l7_edge(state, obs, duration, sketch_key, late)
        if obs.trace_id:
            self._hops.append((obs, route.src_id, route.tgt_id))

    def _route(
        self, bucket: int, sent_source: Endpoint, sent_target: Endpoint, via: str, end_s: int
    ) -> _Route:
        source, target = self.guard.admit(bucket, sent_source, sent_target)
        src_svc, src_wl = self._node_ids(source)
        tgt_svc, tgt_wl = self._node_ids(target)
        states = [self._state(EdgeKey(bucket, _SERVICE, src_svc, tgt_svc))]
        nodes = [
            self._see(source, _SERVICE, src_svc, end_s),
            self._see(target, _SERVICE, tgt_svc, end_s),
        ]
        if source.workload or target.workload:
            states.append(self._state(EdgeKey(bucket, _WORKLOAD, src_wl, tgt_wl)))
            nodes.append(self._see(source, _WORKLOAD, src_wl, end_s))
            nodes.append(self._see(target, _WORKLOAD, tgt_wl, end_s))
        if via:
            nodes += self._see_waypoint(via, end_s)
        closed = self._closed_before_s
        route = _Route(
            sent_source,
            sent_target,
            src_svc,
            tgt_svc,
            tuple(states),
            nodes,
            closed is not None and bucket < closed,
            end_s,
            source is not sent_source or target is not sent_target,
        )
        routes = self._routes
        if len(routes) >= _ROUTES_MAX:
            self._flush_routes()
        routes[(bucket, id(sent_source), id(sent_target), via)] = route
        return route

    def _flush_routes(self) -> None:
        for route in self._routes.values():
            route.flush()
        self._routes.clear()

    def _state(self, key: EdgeKey) -> _EdgeState:
        state = self._edges.get(key)
        if state is None:
            state = self._edges[key] = _EdgeState(self._carried.get(key))
        return state

    @staticmethod
    def _add_l7_edge(
        state: _EdgeState,
        obs: L7Observation,
        duration: float,
        sketch_key: int | None,
        late: bool,
    ) -> None:
        b = state.bucket
        if not b.protocol:
            b.protocol = obs.protocol
        if obs.via and not b.via:
            b.via = obs.via
        b.l7_requests += 1
        b.l7_latency_sum_ms += duration
        b.l7_latency.add_key(sketch_key)  # the bin key computed once per observation
        code = obs.status_code
        if code:
            codes = b.l7_status_codes
            codes[code] = codes.get(code, 0) + 1
        provenance = obs.provenance._value_
        by_provenance = b.l7_provenance
        by_provenance[provenance] = by_provenance.get(provenance, 0) + 1
        if obs.candidates:
            for node, share in obs.candidates:
                b.l7_candidates[node] = b.l7_candidates.get(node, 0.0) + share
        if obs.unpaired:
            b.l7_unpaired += 1
        if obs.evicted:
            b.l7_evicted += 1
        if late:
            b.l7_late += 1
        if obs.trace_id and duration > state.slow_floor_ms:
            state.slow_floor_ms = keep_best(
                state.slowest, (-duration, obs.trace_id, obs.end_ns, code)
            )
        cause = obs.error_cause
        if cause is not None:
            b.l7_errors += 1
            value = cause._value_
            b.l7_errors_by_cause[value] = b.l7_errors_by_cause.get(value, 0) + 1
            if obs.trace_id:
                keep_best(state.failed, (-duration, obs.trace_id, obs.end_ns, code))

    # ---- polled samples (L4 and waypoint request metrics) ---------------------------------------
    def _keys(
        self, sample: L4Sample | L7MetricSample
    ) -> tuple[int, Endpoint, Endpoint, list[EdgeKey]]:
        """(end second, canonical source, canonical target, the edge keys it adds to): the
        service edge always, the workload edge when either end names a workload."""
        end_s = int(sample.end_s)
        bucket = self.bucket_start(end_s)
        canonical = self.identity.canonical
        sent_source, sent_target = canonical(sample.source), canonical(sample.target)
        source, target = self.guard.admit(bucket, sent_source, sent_target)
        if source is not sent_source or target is not sent_target:
            self.guard.overflow_samples += 1
        src_svc, src_wl = self._node_ids(source)
        tgt_svc, tgt_wl = self._node_ids(target)
        keys = [EdgeKey(bucket, Level.SERVICE, src_svc, tgt_svc)]
        if source.workload or target.workload:
            keys.append(EdgeKey(bucket, Level.WORKLOAD, src_wl, tgt_wl))
        return end_s, source, target, keys

    # ---- L4 -------------------------------------------------------------------------------------
    def add_l4(self, sample: L4Sample) -> None:
        end_s, source, target, keys = self._keys(sample)
        reporter = SOLE if sample.sole else str(sample.reporter)
        failed = sample.failed and sample.connections_closed
        for key in keys:
            level, src_id, tgt_id = key.level, key.source, key.target
            b = self._state(key).bucket
            if not b.protocol:
                b.protocol = "tcp"
            if sample.via_waypoint and not b.via:
                b.via = sample.via_waypoint
            counters = b.l4.get(reporter)
            if counters is None:
                counters = b.l4[reporter] = L4Stats()
            counters.connections_opened += sample.connections_opened
            counters.connections_closed += sample.connections_closed
            counters.bytes_sent += sample.bytes_sent
            counters.bytes_received += sample.bytes_received
            if sample.mutual_tls:
                counters.mtls_connections += sample.connections_opened
            if failed:
                counters.connections_failed += sample.connections_closed
                flag = f"{reporter}/{sample.response_flags}"
                b.l4_failures[flag] = b.l4_failures.get(flag, 0) + sample.connections_closed
            if source.principal:
                b.l4_principals.add(source.principal)
            if target.principal:
                b.l4_principals.add(target.principal)
            for z in sample.zones:
                path = zone_key(
                    reporter,
                    z.client_zone,
                    z.waypoint_zone,
                    z.server_zone,
                    via=bool(sample.via_waypoint),
                    estimated=z.estimated,
                )
                b.l4_zone_bytes[path] = b.l4_zone_bytes.get(path, 0) + z.bytes
            self._see(source, level, src_id, end_s)
            self._see(target, level, tgt_id, end_s)
        if sample.via_waypoint:
            self._see_waypoint(sample.via_waypoint, end_s)

    # ---- waypoint request metrics ---------------------------------------------------------------
    def add_l7_metric(self, sample: L7MetricSample) -> None:
        end_s, source, target, keys = self._keys(sample)
        cause = sample.error_cause
        for key in keys:
            b = self._state(key).bucket
            if not b.protocol or b.protocol == "tcp":
                b.protocol = sample.protocol
            if sample.via_waypoint and not b.via:
                b.via = sample.via_waypoint
            b.l7m_requests += sample.requests
            if cause is not None:
                b.l7m_errors += sample.requests
                by_cause = b.l7m_errors_by_cause
                by_cause[cause._value_] = by_cause.get(cause._value_, 0) + sample.requests
            if sample.status_code:
                codes = b.l7m_status_codes
                codes[sample.status_code] = codes.get(sample.status_code, 0) + sample.requests
            b.l7m_bytes_sent += sample.request_bytes
            b.l7m_bytes_received += sample.response_bytes
            b.l7m_latency_sum_ms += sample.latency_sum_ms
            hist = b.l7m_latency_buckets
            for le, n in sample.latency_buckets:
                if n:
                    hist[le] = hist.get(le, 0) + n
            for endpoint, node_id in ((source, key.source), (target, key.target)):
                self._see(endpoint, key.level, node_id, end_s)
        if sample.via_waypoint:
            self._see_waypoint(sample.via_waypoint, end_s)

    # ---- drain ----------------------------------------------------------------------------------
    def drain(self) -> AggregateBatch:
        self._flush_routes()
        kept = self.kept_traces.select(self._hops, self._exemplar_trace_ids())
        batch = AggregateBatch(
            edges={key: state.finish() for key, state in self._edges.items()},
            nodes=self._nodes,
            hops=[trace_hop(obs, source, target) for obs, source, target in kept],
            aliases=self.identity.drain_new(),
            batch_id=uuid.uuid4().hex,
        )
        edges = self._edges
        self._edges, self._nodes, self._hops = {}, {}, []
        closed = self.bucket_start(self._clock_s()) - self._bucket_s
        if self._closed_before_s is None or closed > self._closed_before_s:
            self._closed_before_s = closed
        self._carry(edges, self._closed_before_s)
        return batch

    def _carry(self, edges: dict[EdgeKey, _EdgeState], closed_before_s: int) -> None:
        """Remember the exemplars just flushed for the buckets still open, so that the next
        batch of the same edge bucket holds only the exemplars that beat them.

        The store merges exemplars as a top-N of the union (app/store/exemplars.py), and the
        carried ones are already in it, so it ends with the same rows; what the later flushes
        of a bucket no longer write are the offers that cannot be in its top-N (the exemplar
        rows and, through `kept_traces`, the hops of traces that never become exemplars).
        Bounded by the open buckets' edges; a late bucket is not carried (it is written whole).
        """
        carried = {
            key: pair
            for key, pair in self._carried.items()
            if key.bucket_start_s >= closed_before_s
        }
        for key, state in edges.items():
            if key.bucket_start_s >= closed_before_s and (state.slowest or state.failed):
                carried[key] = (state.slowest, state.failed)
        self._carried = carried

    def _exemplar_trace_ids(self) -> set[bytes]:
        ids: set[bytes] = set()
        for state in self._edges.values():
            for offer in state.slowest:
                ids.add(offer[1])
            for offer in state.failed:
                ids.add(offer[1])
        return ids

    # ---- nodes ----------------------------------------------------------------------------------
    def _node_ids(self, endpoint: Endpoint) -> tuple[str, str]:
        cached = self._ids.get(endpoint)
        if cached is not None:
            return cached
        ids = (endpoint.node_id(Level.SERVICE), endpoint.node_id(Level.WORKLOAD))
        return self._ids.set(endpoint, ids)

    def _see(self, endpoint: Endpoint, level: Level, node_id: str, t: int) -> NodeSeen:
        seen = self._nodes.get((node_id, level))
        if seen is not None:
            if t < seen.first_seen_s:
                seen.first_seen_s = t
            elif t > seen.last_seen_s:
                seen.last_seen_s = t
            if not seen.principal and endpoint.principal:
                seen.principal = endpoint.principal
            if endpoint.kind is NodeKind.GATEWAY:  # recognised after the node was first seen
                seen.kind = NodeKind.GATEWAY
            return seen
        workload = level is Level.WORKLOAD and bool(endpoint.workload)
        seen = self._nodes[(node_id, level)] = NodeSeen(
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
        return seen

    def _see_waypoint(self, via: str, t: int) -> list[NodeSeen]:
        namespace, _, name = via.rpartition("/")
        out: list[NodeSeen] = []
        for level in (Level.SERVICE, Level.WORKLOAD):
            seen = self._nodes.get((via, level))
            if seen is not None:
                if t < seen.first_seen_s:
                    seen.first_seen_s = t
                elif t > seen.last_seen_s:
                    seen.last_seen_s = t
            else:
                seen = self._nodes[(via, level)] = NodeSeen(
                    id=via,
                    level=level,
                    namespace=namespace,
                    name=name,
                    kind=NodeKind.WAYPOINT,
                    first_seen_s=t,
                    last_seen_s=t,
                )
            out.append(seen)
        return out
