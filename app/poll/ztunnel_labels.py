"""ztunnel series → `L4Sample`: endpoints, bytes direction, reporter, waypoint legs.

What ztunnel prints, read from istio/ztunnel (`src/proxy/metrics.rs`, `src/copy.rs`,
`src/proxy/outbound.rs`, `src/proxy/inbound.rs`) and recorded with examples in
tests/data/ztunnel/README.md:

* Every label is always present; a missing value is the string "unknown" (`DefaultedUnknown`).
* Bytes: `copy_bidirectional(downstream, upstream)` counts downstream → upstream as
  `received_bytes` and upstream → downstream as `sent_bytes`; outbound (reporter=source) has
  downstream = client app, inbound (reporter=destination) has downstream = the client's tunnel.
  So for both reporters `istio_tcp_received_bytes_total` is request bytes (client → server) and
  `istio_tcp_sent_bytes_total` response bytes (Istio's convention, istio/istio#32399).
* `connection_security_policy` is `mutual_tls` or `unknown` (plaintext passthrough).
* Waypoints: for service-addressed traffic with a waypoint, the client's ztunnel dials the
  waypoint (`build_request`: `actual_destination_workload = waypoint.workload`,
  `intended_destination_service = the service`), so the client leg carries the real caller and
  the intended service, with destination_workload/principal = the waypoint. The waypoint opens
  a new connection to the chosen pod, which the server's ztunnel reports inbound with the
  waypoint as source. istio/ztunnel#1128 (open; no `traffic_type` label in the versions read)
  lists a third client → server series: the waypoint Envoy's own stats (reporter="waypoint"),
  which ztunnel never prints. We keep the client leg (the only one naming the caller; one per
  call) and drop legs whose source is a waypoint; other reporters are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.domain import Endpoint, L4Sample, NodeKind, Reporter

UNKNOWN = "unknown"
OPENED = "istio_tcp_connections_opened_total"
CLOSED = "istio_tcp_connections_closed_total"
REQUEST_BYTES = "istio_tcp_received_bytes_total"  # client → server, both reporters
RESPONSE_BYTES = "istio_tcp_sent_bytes_total"  # server → client, both reporters
FAMILIES = (OPENED, CLOSED, REQUEST_BYTES, RESPONSE_BYTES)

# The labels that identify an edge; everything else (app, version, cluster, revision,
# locality, request_protocol) is dropped before grouping.
EDGE_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_canonical_service",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_canonical_service",
    "connection_security_policy",
    "response_flags",
)
_SVC_SUFFIX = ".svc.cluster.local"


def is_traffic_family(name: str) -> bool:
    return name in FAMILIES


def _known(value: str | None) -> str:
    return "" if value is None or value == UNKNOWN else value


def parse_principal(principal: str) -> tuple[str, str]:
    """`spiffe://<td>/ns/<ns>/sa/<sa>` → (ns, sa); ("", "") when not that shape."""
    if not principal.startswith("spiffe://"):
        return "", ""
    parts = principal[len("spiffe://") :].split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
        return parts[2], parts[4]
    return "", ""


@dataclass(frozen=True, slots=True)
class WaypointMatcher:
    """A workload is a waypoint when its name (or its service account) contains "waypoint"
    (Istio names the deployment and service account after the Gateway, `waypoint` by default)
    or is listed in settings.waypoint_workloads (as `name` or `namespace/name`)."""

    extra: frozenset[str] = frozenset()

    @classmethod
    def from_setting(cls, waypoint_workloads: str) -> WaypointMatcher:
        return cls(frozenset(w.strip() for w in waypoint_workloads.split(",") if w.strip()))

    def _is(self, namespace: str, name: str) -> bool:
        return bool(name) and (
            "waypoint" in name or name in self.extra or f"{namespace}/{name}" in self.extra
        )

    def waypoint(self, workload: str, namespace: str, principal: str) -> str:
        """The waypoint's node id `<ns>/<name>`, or "" when this side is not a waypoint."""
        if self._is(namespace, workload):
            return f"{namespace}/{workload}"
        sa_ns, sa = parse_principal(principal)
        if self._is(sa_ns, sa):
            return f"{sa_ns}/{sa}"
        return ""


@dataclass(frozen=True, slots=True)
class Counts:
    opened: int = 0
    closed: int = 0
    request_bytes: int = 0
    response_bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.opened or self.closed or self.request_bytes or self.response_bytes)


def edge_key(labels: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(name, UNKNOWN) for name in EDGE_LABELS)


def _destination_service(labels: Mapping[str, str]) -> tuple[str, str]:
    """(namespace, name) of the destination service; `destination_service="unknown"` (a pod
    IP was dialled) is resolved from the canonical service, the workload, then the principal."""
    name = _known(labels.get("destination_service_name"))
    ns = _known(labels.get("destination_service_namespace"))
    host = _known(labels.get("destination_service"))
    if host.endswith(_SVC_SUFFIX) and not (name and ns):
        host_name, _, host_ns = host[: -len(_SVC_SUFFIX)].partition(".")
        name, ns = name or host_name, ns or host_ns
    wl_ns = _known(labels.get("destination_workload_namespace"))
    if name and (ns or wl_ns):
        return ns or wl_ns, name
    p_ns, p_sa = parse_principal(_known(labels.get("destination_principal")))
    name = name or _known(labels.get("destination_canonical_service"))
    name = name or _known(labels.get("destination_workload")) or p_sa
    return ns or wl_ns or p_ns, name


def source_endpoint(labels: Mapping[str, str], target: Endpoint) -> Endpoint:
    workload = _known(labels.get("source_workload"))
    ns = _known(labels.get("source_workload_namespace"))
    principal = _known(labels.get("source_principal"))
    service = _known(labels.get("source_canonical_service")) or workload
    if service and ns:
        return Endpoint(ns, service, workload, NodeKind.SERVICE, principal)
    p_ns, p_sa = parse_principal(principal)
    if p_sa:
        # An identity without a workload we know: another cluster or trust domain.
        return Endpoint(p_ns, p_sa, "", NodeKind.EXTERNAL, principal)
    # Outside the mesh, nothing named it: one unknown caller per destination, never a shared sink.
    return Endpoint(UNKNOWN, f"caller-of-{target.service}.{target.namespace}", "", NodeKind.UNKNOWN)


def target_endpoint(labels: Mapping[str, str], *, via_waypoint: bool) -> Endpoint:
    principal = _known(labels.get("destination_principal"))
    # On a waypoint's client leg the workload/principal are the waypoint's, not the server's.
    workload = "" if via_waypoint else _known(labels.get("destination_workload"))
    ns, name = _destination_service(labels)
    if via_waypoint:
        principal = ""
    in_mesh = bool(workload or principal or via_waypoint) and bool(ns)
    if name and ns and (in_mesh or _known(labels.get("destination_service")).endswith(_SVC_SUFFIX)):
        return Endpoint(ns, name, workload, NodeKind.SERVICE, principal)
    host = _known(labels.get("destination_service")) or name
    if host:
        return Endpoint("external", host, "", NodeKind.EXTERNAL, principal)
    return Endpoint("external", "unknown-destination", "", NodeKind.UNKNOWN, principal)


def to_sample(
    labels: Mapping[str, str],
    counts: Counts,
    start_s: float,
    end_s: float,
    waypoints: WaypointMatcher,
) -> L4Sample | None:
    """One series' increases as an `L4Sample`, or None for a leg that must not be counted."""
    try:
        reporter = Reporter(labels.get("reporter", ""))
    except ValueError:
        return None  # reporter="waypoint" (Envoy stats) or anything else: not ztunnel's view
    src_wp = waypoints.waypoint(
        _known(labels.get("source_workload")),
        _known(labels.get("source_workload_namespace")),
        _known(labels.get("source_principal")),
    )
    if src_wp:
        return None  # server leg of a waypoint call: its client leg already counted the call
    dst_wp = waypoints.waypoint(
        _known(labels.get("destination_workload")),
        _known(labels.get("destination_workload_namespace")),
        _known(labels.get("destination_principal")),
    )
    target = target_endpoint(labels, via_waypoint=bool(dst_wp))
    if dst_wp and target.service == dst_wp.partition("/")[2]:
        # Addressed to the waypoint itself (no intended service known): not a logical edge.
        return None
    if target.kind is NodeKind.UNKNOWN and target.service == "unknown-destination":
        src = source_endpoint(labels, target)
        target = Endpoint(
            "external", f"unknown-from-{src.namespace}.{src.service}", "", NodeKind.UNKNOWN
        )
    return L4Sample(
        source=source_endpoint(labels, target),
        target=target,
        reporter=reporter,
        start_s=start_s,
        end_s=end_s,
        connections_opened=counts.opened,
        connections_closed=counts.closed,
        bytes_sent=counts.request_bytes,
        bytes_received=counts.response_bytes,
        mutual_tls=labels.get("connection_security_policy") == "mutual_tls",
        response_flags=labels.get("response_flags", "-") or "-",
        via_waypoint=dst_wp,
    )


def to_samples(
    grouped: Iterable[tuple[Mapping[str, str], Counts]],
    start_s: float,
    end_s: float,
    waypoints: WaypointMatcher,
) -> list[L4Sample]:
    out = []
    for labels, counts in grouped:
        if counts:
            sample = to_sample(labels, counts, start_s, end_s, waypoints)
            if sample is not None:
                out.append(sample)
    return out
