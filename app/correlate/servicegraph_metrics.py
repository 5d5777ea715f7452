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

Counters are cumulative per process (so `rate()` works; several replicas are summed by
Prometheus). Series are capped: past `max_series` new edges are counted under
`client="__overflow__"`, as Tempo does with its cardinality overflow label.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.domain import L7Observation, NodeKind

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

SeriesKey = tuple[str, str, str, str, str]  # client, server, connection_type, client ns, server ns


@dataclass(slots=True)
class SeriesState:
    requests: int = 0
    failed: int = 0
    seconds_sum: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))


def connection_type(obs: L7Observation) -> str:
    if obs.protocol == "db":
        return "database"
    if obs.protocol == "messaging":
        return "messaging_system"
    if NodeKind.EXTERNAL in (obs.source.kind, obs.target.kind) or NodeKind.UNKNOWN in (
        obs.source.kind,
        obs.target.kind,
    ):
        return "virtual_node"
    return ""


class ServiceGraphMetrics:
    def __init__(self, max_series: int = 10_000) -> None:
        self._series: dict[SeriesKey, SeriesState] = {}
        self._max_series = max_series
        self._lock = threading.Lock()

    def observe(self, observations: Sequence[L7Observation]) -> None:
        with self._lock:
            for obs in observations:
                key: SeriesKey = (
                    obs.source.service,
                    obs.target.service,
                    connection_type(obs),
                    obs.source.namespace,
                    obs.target.namespace,
                )
                state = self._series.get(key)
                if state is None:
                    if len(self._series) >= self._max_series:
                        key = (OVERFLOW, OVERFLOW, "", "", "")
                        state = self._series.setdefault(key, SeriesState())
                    else:
                        state = self._series[key] = SeriesState()
                seconds = obs.duration_ms / 1000.0
                state.requests += 1
                state.failed += obs.error_cause is not None
                state.seconds_sum += seconds
                state.bucket_counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1

    def snapshot(self) -> dict[SeriesKey, SeriesState]:
        with self._lock:
            return {
                k: SeriesState(v.requests, v.failed, v.seconds_sum, list(v.bucket_counts))
                for k, v in self._series.items()
            }
