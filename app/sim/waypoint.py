"""Simulated waypoints: the request metrics a waypoint's Envoy keeps, printed on a loopback
`/stats/prometheus` endpoint as the waypoint pod's agent serves them (port 15020).

Families and labels come from istio/proxy `source/extensions/filters/http/istio_stats/
istio_stats.cc`: a waypoint's listener is `Reporter::ServerGateway`, so every series carries
`reporter="waypoint"`; `istio_requests_total` (counter) and `istio_request_duration_milliseconds`,
`istio_request_bytes`, `istio_response_bytes` (histograms, app/sim/envoy_histogram.py). The
caller is the HBONE peer (`source_*`, named as ztunnel names it: app/sim/ztunnel_series.py), the
destination the chosen backend pod (`destination_workload`, …) and its Service from the cluster's
`istio` metadata (`destination_service` = host, `destination_service_name` = name);
`connection_security_policy` is `mutual_tls` (HBONE has both SANs). `response_code` is the HTTP
status, `grpc_response_status` empty for HTTP, `response_flags` Envoy's short flags. The label
order follows the captures in tests/data/waypoint/README.md, with `source_cluster` and
`destination_cluster` that current releases add.

Not derived from a capture: pod-addressed traffic through a workload waypoint is printed with
`destination_service="unknown"` (no Service cluster metadata), as ztunnel prints it.

Counters only move in `advance` (one call per tick), so a scrape between ticks sees a consistent
interval, as for the simulated ztunnels.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.sim.envoy_histogram import EnvoyHistogram, recorded_ms
from app.sim.topology import CLUSTER_ID, Edge, EdgeClass, Topology, Waypoint
from app.sim.traffic import Request
from app.sim.ztunnel_series import LABEL_NAMES as ZTUNNEL_LABELS
from app.sim.ztunnel_series import destination_workload_labels, source_workload_labels

LABEL_NAMES = (
    "response_code",
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_flags",
    "grpc_response_status",
    "connection_security_policy",
    "source_canonical_service",
    "destination_canonical_service",
    "source_canonical_revision",
    "destination_canonical_revision",
    "source_cluster",
    "destination_cluster",
)
Labels = tuple[str, ...]  # values in LABEL_NAMES order
_SOURCE_NAMES = ZTUNNEL_LABELS[1:9]
_DESTINATION_NAMES = ZTUNNEL_LABELS[9:20]

HISTOGRAMS = (
    ("istio_request_duration_milliseconds", "duration"),
    ("istio_request_bytes", "request_bytes"),
    ("istio_response_bytes", "response_bytes"),
)


def request_labels(topology: Topology, edge: Edge, cls: EdgeClass, request: Request) -> Labels:
    """The label values of the series a waypoint request increments."""
    source = topology.service(edge.source)
    target = topology.service(edge.target)
    assert request.source_workload is not None and request.target_workload is not None
    values = dict(
        zip(_SOURCE_NAMES, source_workload_labels(source, request.source_workload), strict=True)
    )
    destination = destination_workload_labels(target, request.target_workload, cls.pod_addressed)
    values.update(zip(_DESTINATION_NAMES, destination, strict=True))
    values.update(
        response_code=request.status,
        reporter="waypoint",
        request_protocol="http",
        response_flags=request.response_flags,
        grpc_response_status="",
        connection_security_policy="mutual_tls",
        source_cluster=CLUSTER_ID,
        destination_cluster=CLUSTER_ID,
    )
    return tuple(values[name] for name in LABEL_NAMES)


@dataclass(slots=True)
class _Series:
    requests: int = 0
    duration: EnvoyHistogram = field(default_factory=EnvoyHistogram)
    request_bytes: EnvoyHistogram = field(default_factory=EnvoyHistogram)
    response_bytes: EnvoyHistogram = field(default_factory=EnvoyHistogram)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class WaypointProxy:
    """The request metrics one waypoint's Envoy holds."""

    def __init__(self, waypoint: Waypoint) -> None:
        self.waypoint = waypoint
        self._lock = threading.Lock()
        self._series: dict[Labels, _Series] = {}
        self._label_text: dict[Labels, str] = {}

    def advance(self, requests: Iterable[tuple[Labels, Request]]) -> None:
        with self._lock:
            for labels, request in requests:
                series = self._series.get(labels)
                if series is None:
                    series = self._series[labels] = _Series()
                    self._label_text[labels] = ",".join(
                        f'{n}="{_escape(v)}"' for n, v in zip(LABEL_NAMES, labels, strict=True)
                    )
                series.requests += 1
                series.duration.record(recorded_ms(request.duration_ns))
                series.request_bytes.record(request.request_bytes)
                series.response_bytes.record(request.response_bytes)

    def exposition(self) -> str:
        lines = ["# TYPE istio_build gauge", 'istio_build{component="proxy",tag="1.27.0"} 1']
        with self._lock:
            lines.append("# TYPE istio_requests_total counter")
            for labels, series in self._series.items():
                lines.append(
                    f"istio_requests_total{{{self._label_text[labels]}}} {series.requests}"
                )
            for family, attr in HISTOGRAMS:
                lines.append(f"# TYPE {family} histogram")
                for labels, series in self._series.items():
                    histogram: EnvoyHistogram = getattr(series, attr)
                    lines += histogram.lines(family, self._label_text[labels])
        return "\n".join(lines) + "\n"
