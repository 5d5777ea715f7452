"""Tempo-compatible service-graph series from correlated L7 observations.

Grafana's built-in service graph (Tempo datasource → Prometheus) reads
`traces_service_graph_request_total`, `..._request_failed_total` and
`..._request_server_seconds_{bucket,sum,count}` labelled exactly `client`, `server`,
`connection_type` (grafana public/app/plugins/datasource/tempo/graphTransform.ts). We also emit
`..._request_client_seconds` like Tempo and the OTel servicegraph connector. Both histograms
hold the latency the mesh observed for the request (the waypoint span, or the paired spans'
duration): meshstitch keeps one latency per request. `client`/`server` are service names, with
`client_service_namespace`/`server_service_namespace` for Grafana's "include namespace" option.
L4-only edges carry no requests, so they appear in none of these series.

A waypoint call whose caller is not instrumented reaches this observer unattributed (the graph
attributes it at query time from the L4 edges into the destination). So that Grafana's service
graph names the same caller, the observer applies the same rule to the L4 samples it sees: when
exactly one L4 caller reaches the destination through that waypoint, the unknown caller's series
are relabelled to it — once, for good (the mapping is sticky so counters stay monotonic; the
unknown-caller series then goes stale, and the caller's series jumps by what was counted before).

Exact counts: when waypoint request metrics (`L7MetricSample`, unsampled) reach a series, that
series switches to them for good: from then on it adds the metrics' requests, failures, latency
sum and histogram instead of span counts (spans are sampled). The switch keeps the counters
monotonic (what spans counted before stays; Prometheus' `rate()` sees the exact rate from the
next scrape on). The metrics' histogram (Istio's millisecond buckets) is re-binned into the
buckets below by each Istio bucket's upper bound (a request is counted in the first bucket that
holds that bound), so bucket counts are exact at the bounds both sets share (10 ms, 50 ms,
100 ms, 1 s, 5 s, 10 s) and conservative (later) elsewhere.

Counters are cumulative per process (so `rate()` works; several replicas are summed by
Prometheus). Series are capped: past `max_series` new edges are counted in one overflow series,
exposed as Tempo's metrics-generator does when it reaches `max_active_series`: every label
replaced by `metric_overflow="true"` (grafana/tempo modules/generator/registry). The cap follows
from the exposition budget in samples (`max_series_for`, setting `metrics_max_samples`): each
series is 40 samples (two counters, two histograms of 17 buckets, sum and count).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from app.domain import L4Sample, L7MetricSample, L7Observation, NodeKind, Provenance
from app.rules.histogram_bound import le_bound

# The OTel Collector servicegraph connector's default buckets, in seconds (2 ms … 15 s).
BUCKETS_S = (
    0.002,
    0.004,
    0.006,
    0.008,
    0.01,
    0.05,
    0.1,
    0.2,
    0.4,
    0.8,
    1.0,
    1.4,
    2.0,
    5.0,
    10.0,
    15.0,
)
OVERFLOW = "__overflow__"
OVERFLOW_KEY = (OVERFLOW, OVERFLOW, "", "", "")
SAMPLES_PER_SERIES = 2 + 2 * (len(BUCKETS_S) + 1 + 2)
# Samples of /metrics left for meshstitch's own families (pipeline, poller targets, caps, WAL).
SELF_METRICS_RESERVE = 2_000


def max_series_for(max_samples: int) -> int:
    """Service-graph series that fit `max_samples` beside the self-metrics and the overflow
    series."""
    return max(1, (max_samples - SELF_METRICS_RESERVE) // SAMPLES_PER_SERIES - 1)


SeriesKey = tuple[str, str, str, str, str]  # client, server, connection_type, client ns, server ns
K = TypeVar("K")


@dataclass(slots=True)
class SeriesState:
    requests: int = 0
    failed: int = 0
    seconds_sum: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))


def _state(series: dict[K, SeriesState], key: K) -> SeriesState:
    """`series[key]`, made on first use: `setdefault` built a state (and its bucket list) on
    every call, for every span of a series that already existed or had overflowed."""
    state = series.get(key)
    if state is None:
        state = series[key] = SeriesState()
    return state


def connection_type(obs: L7Observation) -> str:
    return _connection_type(obs.source.kind, obs.target.kind, obs.protocol)


def _connection_type(source: NodeKind, target: NodeKind, protocol: str) -> str:
    if protocol == "db":
        return "database"
    if protocol == "messaging":
        return "messaging_system"
    kinds = (source, target)
    if NodeKind.EXTERNAL in kinds or NodeKind.UNKNOWN in kinds:
        return "virtual_node"
    return ""


# How long an L4 caller stays a candidate for attribution after it was last seen.
CANDIDATE_HORIZON_S = 900.0
MAX_TRACKED_DESTINATIONS = 50_000

# (destination node id, waypoint node id) -> (caller service, caller namespace) -> last seen (s)
CallerIndex = dict[tuple[str, str], dict[tuple[str, str], float]]
# (unknown client, server, server namespace, waypoint) -> the caller it was resolved to
Resolution = tuple[str, str]


class ServiceGraphMetrics:
    def __init__(self, max_series: int = 10_000) -> None:
        self._series: dict[SeriesKey, SeriesState] = {}
        # Calls whose caller is not known yet, per waypoint (two waypoints into one destination
        # resolve separately); exported merged under the unknown caller's labels.
        self._pending: dict[tuple[SeriesKey, str], SeriesState] = {}
        self._max_series = max_series
        self._lock = threading.Lock()
        self._l4_callers: CallerIndex = {}
        self._resolved: dict[tuple[str, str, str, str], Resolution] = {}
        self._exact: set[SeriesKey] = set()  # series counted from waypoint metrics
        # What spans had counted on a series when it switched to metrics: the metrics count those
        # requests again, so their first increments pay this back instead of being added.
        self._credit: dict[SeriesKey, SeriesState] = {}

    def observe_metrics(self, samples: Sequence[L7MetricSample]) -> None:
        """Waypoint request metrics (pipeline metric observer): exact counts for their series."""
        with self._lock:
            for sample in samples:
                key: SeriesKey = (
                    sample.source.service,
                    sample.target.service,
                    _connection_type(sample.source.kind, sample.target.kind, sample.protocol),
                    sample.source.namespace,
                    sample.target.namespace,
                )
                state = self._series.get(key)
                if state is None:
                    if len(self._series) + len(self._pending) >= self._max_series:
                        state = self._overflow()
                    else:
                        state = self._series[key] = SeriesState()
                        self._exact.add(key)
                elif key not in self._exact:
                    self._exact.add(key)
                    if state.requests:
                        self._credit[key] = _copy(state)
                increment = _from_metric(sample)
                credit = self._credit.get(key)
                if credit is not None:
                    _pay_back(increment, credit)
                    if credit.requests <= 0:
                        del self._credit[key]
                _merge(state, increment)

    def observe(self, observations: Sequence[L7Observation]) -> None:
        with self._lock:
            for obs in observations:
                key, pending_via = self._key(obs)
                if key in self._exact:
                    continue  # counted exactly from the waypoint's metrics
                full = len(self._series) + len(self._pending) >= self._max_series
                if pending_via and not full:
                    state = _state(self._pending, (key, pending_via))
                elif pending_via:  # full: an existing pending series, else the overflow
                    state = self._pending.get((key, pending_via)) or self._overflow()
                else:
                    state = self._series.get(key) or (
                        self._overflow() if full else _state(self._series, key)
                    )
                _count(state, obs)

    def _overflow(self) -> SeriesState:
        # Tempo's cardinality-overflow convention: one series absorbs what no longer fits.
        return _state(self._series, OVERFLOW_KEY)

    def observe_l4(self, samples: Sequence[L4Sample]) -> None:
        """Learn which callers reach a destination through a waypoint (pipeline L4 observer)."""
        with self._lock:
            touched: set[tuple[str, str]] = set()
            for sample in samples:
                if not sample.via_waypoint or sample.source.kind is not NodeKind.SERVICE:
                    continue
                where = (sample.target.node_id(), sample.via_waypoint)
                callers = self._l4_callers.get(where)
                if callers is None:
                    if len(self._l4_callers) >= MAX_TRACKED_DESTINATIONS:
                        continue
                    callers = self._l4_callers[where] = {}
                caller = (sample.source.service, sample.source.namespace)
                callers[caller] = max(callers.get(caller, 0.0), sample.end_s)
                touched.add(where)
            for key, via in list(self._pending):
                where = (f"{key[4]}/{key[1]}", via)
                if where in touched and (single := self._single_caller(where)) is not None:
                    self._resolve(key, via, single)

    def _key(self, obs: L7Observation) -> tuple[SeriesKey, str]:
        """The series for `obs`, and the waypoint when its caller is still unknown."""
        key: SeriesKey = (
            obs.source.service,
            obs.target.service,
            connection_type(obs),
            obs.source.namespace,
            obs.target.namespace,
        )
        if not (
            obs.via
            and obs.provenance is Provenance.UNATTRIBUTED
            and obs.source.kind is NodeKind.UNKNOWN
        ):
            return key, ""
        resolved: Resolution | None = self._resolved.get((key[0], key[1], key[4], obs.via))
        if resolved is None:
            single = self._single_caller((obs.target.node_id(), obs.via))
            if single is None:
                return key, obs.via
            resolved = self._resolve(key, obs.via, single)
        return (resolved[0], key[1], "", resolved[1], key[4]), ""

    def _single_caller(self, where: tuple[str, str]) -> Resolution | None:
        callers = self._l4_callers.get(where)
        if not callers:
            return None
        newest = max(callers.values())
        recent = [c for c, seen in callers.items() if seen >= newest - CANDIDATE_HORIZON_S]
        return recent[0] if len(recent) == 1 else None

    def _resolve(self, key: SeriesKey, via: str, caller: Resolution) -> Resolution:
        """Relabel an unknown caller's calls through `via` to `caller`, for good."""
        if len(self._resolved) >= MAX_TRACKED_DESTINATIONS:
            # Pod IPs churn; a forgotten mapping is found again from the L4 index when needed.
            self._resolved.clear()
        self._resolved[(key[0], key[1], key[4], via)] = caller
        counted = self._pending.pop((key, via), None)
        if counted is not None:
            target_key: SeriesKey = (caller[0], key[1], "", caller[1], key[4])
            if target_key not in self._exact:  # an exact series already counted these calls
                _merge(_state(self._series, target_key), counted)
        return caller

    def snapshot(self) -> dict[SeriesKey, SeriesState]:
        with self._lock:
            out = {
                k: SeriesState(v.requests, v.failed, v.seconds_sum, list(v.bucket_counts))
                for k, v in self._series.items()
            }
            for (key, _via), state in self._pending.items():
                _merge(_state(out, key), state)
            return out


def _count(state: SeriesState, obs: L7Observation) -> None:
    seconds = obs.duration_ms / 1000.0
    state.requests += 1
    state.failed += obs.error_cause is not None
    state.seconds_sum += seconds
    state.bucket_counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1


def _from_metric(sample: L7MetricSample) -> SeriesState:
    state = SeriesState(
        requests=sample.requests,
        failed=sample.requests if sample.error_cause is not None else 0,
        seconds_sum=sample.latency_sum_ms / 1000.0,
    )
    for le, n in sample.latency_buckets:
        state.bucket_counts[bisect.bisect_left(BUCKETS_S, le_bound(le) / 1000.0)] += n
    return state


def _copy(state: SeriesState) -> SeriesState:
    return SeriesState(state.requests, state.failed, state.seconds_sum, list(state.bucket_counts))


def _pay_back(increment: SeriesState, credit: SeriesState) -> None:
    """Take from `increment` what spans already counted (`credit`), keeping both consistent:
    requests and histogram buckets fall by the same amount (same buckets first)."""
    paid = min(increment.requests, credit.requests)
    if paid <= 0:
        return
    share = paid / increment.requests
    increment.requests -= paid
    credit.requests -= paid
    failed = min(increment.failed, credit.failed)
    increment.failed -= failed
    credit.failed -= failed
    seconds = min(increment.seconds_sum * share, credit.seconds_sum)
    increment.seconds_sum -= seconds
    credit.seconds_sum -= seconds
    left = paid
    buckets, owed = increment.bucket_counts, credit.bucket_counts
    for i in range(len(buckets)):  # same buckets first
        take = min(buckets[i], owed[i], left)
        buckets[i] -= take
        owed[i] -= take
        left -= take
    for i in range(len(buckets)):  # then wherever the metrics put them
        take = min(buckets[i], left)
        buckets[i] -= take
        left -= take


def _merge(into: SeriesState, other: SeriesState) -> None:
    into.requests += other.requests
    into.failed += other.failed
    into.seconds_sum += other.seconds_sum
    for i, n in enumerate(other.bucket_counts):
        into.bucket_counts[i] += n
