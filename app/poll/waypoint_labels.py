"""Waypoint request metrics → `L7MetricSample`: the unsampled L7 counts of each edge.

What a waypoint prints (Envoy's Istio stats filter, served by the waypoint pod's agent on
`:15020/stats/prometheus`; shape recorded from captures in tests/data/waypoint/README.md):

* `istio_requests_total` (counter), `istio_request_duration_milliseconds` (histogram: `_bucket`
  with cumulative `le` buckets, `_sum`, `_count`), `istio_request_bytes` and
  `istio_response_bytes` (histograms; their `_sum` is the bytes), all with `reporter="waypoint"`.
  Sidecars print the same families with `reporter="source"|"destination"`: those are not the
  waypoint's view and are ignored here (a sidecar's spans still arrive over OTLP).
* Labels name the caller as ztunnel does (`source_workload`, `source_workload_namespace`,
  `source_canonical_service`, `source_principal` — the client is resolved from the HBONE peer)
  and the chosen backend pod (`destination_workload`, `destination_canonical_service`, …) with
  the Service (`destination_service`, `destination_service_name`, …), plus `request_protocol`,
  `response_code`, `grpc_response_status`, `response_flags`, `connection_security_policy`.
  Missing values are `unknown` (a request with no route names no destination workload).
* Endpoints are built with ztunnel's rules (poll/ztunnel_labels.py, the server leg's reading:
  the destination workload is the real server), so a waypoint metric, the ztunnel half-edges and
  the spans land on one edge through the same node identity.

Error cause: app/rules/error_cause.py, the order spans follow too (`response_flags` other than
`-`/`DI`/`unknown`, then a non-zero `grpc_response_status`, then a 5xx `response_code`). The
status code is `grpc:<n>` when a gRPC status is present, else the HTTP code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.domain import Endpoint, ErrorCause, IdentityEvidence, L7MetricSample, NodeKind
from app.poll.ztunnel_labels import (
    ENDPOINT_LABELS,
    UNKNOWN,
    aliases_of,
    label_key,
    source_endpoint,
    target_endpoint,
)
from app.rules.error_cause import first_error_cause
from app.rules.histogram_bound import le_bound

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
REQUEST_BYTES = "istio_request_bytes"
RESPONSE_BYTES = "istio_response_bytes"
DURATION_BUCKET = f"{DURATION}_bucket"
DURATION_SUM = f"{DURATION}_sum"
REQUEST_BYTES_SUM = f"{REQUEST_BYTES}_sum"
RESPONSE_BYTES_SUM = f"{RESPONSE_BYTES}_sum"
# The series read (the `_count`s repeat istio_requests_total).
FAMILIES = (REQUESTS, DURATION_BUCKET, DURATION_SUM, REQUEST_BYTES_SUM, RESPONSE_BYTES_SUM)
WAYPOINT_REPORTER = "waypoint"

# The labels that identify an edge and its outcome; the rest (app, version, revision, cluster,
# locality, Prometheus' own job/instance/pod) is dropped before grouping.
EDGE_LABELS = (
    *ENDPOINT_LABELS,
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)


def is_waypoint_family(name: str) -> bool:
    return name in FAMILIES


def edge_key(labels: Mapping[str, str]) -> tuple[str, ...]:
    return label_key(labels, EDGE_LABELS)


@dataclass(slots=True)
class MetricIncrease:
    """One label set's increases over one interval, summed over its series."""

    labels: Mapping[str, str]
    start_s: float
    requests: float = 0.0
    latency_sum_ms: float = 0.0
    request_bytes: float = 0.0
    response_bytes: float = 0.0
    cumulative: dict[str, float] = field(default_factory=dict)  # le -> increase of the bucket

    def add(self, name: str, labels: Mapping[str, str], delta: float) -> None:
        if name == REQUESTS:
            self.requests += delta
        elif name == DURATION_BUCKET:
            le = labels.get("le", "")
            if le:
                self.cumulative[le] = self.cumulative.get(le, 0.0) + delta
        elif name == DURATION_SUM:
            self.latency_sum_ms += delta
        elif name == REQUEST_BYTES_SUM:
            self.request_bytes += delta
        elif name == RESPONSE_BYTES_SUM:
            self.response_bytes += delta


def group(
    increases: Iterable[tuple[str, Mapping[str, str], float]], start_s: float
) -> list[MetricIncrease]:
    """(metric name, labels, increase) of one target or query → one entry per edge label set;
    only `reporter="waypoint"` series."""
    acc: dict[tuple[str, ...], MetricIncrease] = {}
    for name, labels, delta in increases:
        if labels.get("reporter") != WAYPOINT_REPORTER:
            continue
        key = edge_key(labels)
        entry = acc.get(key)
        if entry is None:
            entry = acc[key] = MetricIncrease(
                {k: v for k, v in labels.items() if k != "le"}, start_s
            )
        entry.add(name, labels, delta)
    return list(acc.values())


def per_bucket(cumulative: Mapping[str, float]) -> tuple[tuple[str, int], ...]:
    """Cumulative `le` increases → per-bucket request counts (never negative), by bound."""
    out, below = [], 0
    for le in sorted(cumulative, key=le_bound):
        total = max(below, round(cumulative[le]))
        if total > below:
            out.append((le, total - below))
        below = total
    return tuple(out)


def outcome(labels: Mapping[str, str]) -> tuple[str, ErrorCause | None]:
    """(status code string, error cause or None) of one label set."""
    code = labels.get("response_code", "")
    code = "" if code in (UNKNOWN, "0") else code
    grpc = labels.get("grpc_response_status", "")
    grpc = "" if grpc == UNKNOWN else grpc
    status = f"grpc:{grpc}" if grpc else code
    flags = labels.get("response_flags", "-")
    cause = first_error_cause(
        "" if flags == UNKNOWN else flags,
        grpc_failed=bool(grpc) and grpc != "0",
        http_status=int(code) if code.isdigit() else None,
    )
    return status, cause


def _target(labels: Mapping[str, str], source: Endpoint | None = None) -> Endpoint:
    target = target_endpoint(labels, via_waypoint=False)
    if target.kind is NodeKind.UNKNOWN and target.service == "unknown-destination":
        # No route: the waypoint named no destination; one node per caller, never a sink.
        src = source or source_endpoint(labels, target)
        target = Endpoint(
            "external", f"unknown-from-{src.namespace}.{src.service}", "", NodeKind.UNKNOWN
        )
    return target


def to_metric_samples(
    entries: Iterable[MetricIncrease],
    end_s: float,
    identity: IdentityEvidence,
    via: str = "",
) -> list[L7MetricSample]:
    """One interval's grouped increases as samples; every label set teaches identity its names."""
    out = []
    for entry in entries:
        requests = round(entry.requests)
        if requests <= 0:
            continue
        labels = entry.labels
        for destination in (False, True):
            for alias in aliases_of(labels, destination=destination):
                identity.learn(alias)
        target = _target(labels)
        source = source_endpoint(labels, target)
        status, cause = outcome(labels)
        protocol = labels.get("request_protocol", "http")
        out.append(
            L7MetricSample(
                source=source,
                target=target,
                start_s=entry.start_s,
                end_s=end_s,
                requests=requests,
                protocol=protocol if protocol in ("http", "grpc") else "http",
                status_code=status,
                error_cause=cause,
                response_flags=labels.get("response_flags", "-") or "-",
                request_bytes=max(0, round(entry.request_bytes)),
                response_bytes=max(0, round(entry.response_bytes)),
                latency_sum_ms=max(0.0, entry.latency_sum_ms),
                latency_buckets=per_bucket(entry.cumulative),
                via_waypoint=via,
                mutual_tls=labels.get("connection_security_policy") == "mutual_tls",
            )
        )
    return out
