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
  which ztunnel never prints. How the two legs become one edge is app/poll/half_edges.py.
* Names: a destination pod's node is its canonical service (`destination_canonical_service` in
  `destination_workload_namespace`), and the series teaches identity that the Service name
  (`destination_service_name`) and the workload are aliases of it (`aliases_of`). On a waypoint's
  client leg the destination workload is the waypoint, so only the Service name is known there:
  the aggregator resolves it through identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.domain import Alias, AliasSource, Endpoint, NodeKind

UNKNOWN = "unknown"
OPENED = "istio_tcp_connections_opened_total"
CLOSED = "istio_tcp_connections_closed_total"
REQUEST_BYTES = "istio_tcp_received_bytes_total"  # client → server, both reporters
RESPONSE_BYTES = "istio_tcp_sent_bytes_total"  # server → client, both reporters
FAMILIES = (OPENED, CLOSED, REQUEST_BYTES, RESPONSE_BYTES)

# The labels that name the reporter and both ends of a call; Istio's waypoint request metrics
# carry the same ones (poll/waypoint_labels.py).
ENDPOINT_LABELS = (
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
)
# The labels that identify an edge's series; everything else (app, version, cluster, revision,
# request_protocol) is dropped before grouping. The zones are kept (absent before ztunnel 1.26:
# app/poll/zone_split.py), so each zone path stays its own series.
EDGE_LABELS = (
    *ENDPOINT_LABELS,
    "connection_security_policy",
    "response_flags",
    "source_zone",
    "destination_zone",
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
class Counts:
    opened: int = 0
    closed: int = 0
    request_bytes: int = 0
    response_bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.opened or self.closed or self.request_bytes or self.response_bytes)


def label_key(labels: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    """The values of `names` in order (`unknown` where absent): a grouping key."""
    return tuple(labels.get(name, UNKNOWN) for name in names)


def edge_key(labels: Mapping[str, str]) -> tuple[str, ...]:
    return label_key(labels, EDGE_LABELS)


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
    return unknown_caller_of(target)


def unknown_caller_of(target: Endpoint) -> Endpoint:
    """Outside the mesh, nothing named it: one unknown caller per destination, never a sink."""
    return Endpoint(UNKNOWN, f"caller-of-{target.service}.{target.namespace}", "", NodeKind.UNKNOWN)


def target_endpoint(labels: Mapping[str, str], *, via_waypoint: bool) -> Endpoint:
    principal = _known(labels.get("destination_principal"))
    # On a waypoint's client leg the workload/principal are the waypoint's, not the server's.
    workload = "" if via_waypoint else _known(labels.get("destination_workload"))
    ns, name = _destination_service(labels)
    canonical = "" if via_waypoint else _known(labels.get("destination_canonical_service"))
    wl_ns = _known(labels.get("destination_workload_namespace"))
    if workload and canonical and wl_ns:
        return Endpoint(wl_ns, canonical, workload, NodeKind.SERVICE, principal)
    if via_waypoint:
        principal = ""
    in_mesh = bool(workload or principal or via_waypoint) and bool(ns)
    if name and ns and (in_mesh or _known(labels.get("destination_service")).endswith(_SVC_SUFFIX)):
        return Endpoint(ns, name, workload, NodeKind.SERVICE, principal)
    host = _known(labels.get("destination_service")) or name
    if host:
        return Endpoint("external", host, "", NodeKind.EXTERNAL, principal)
    return Endpoint("external", "unknown-destination", "", NodeKind.UNKNOWN, principal)


def aliases_of(labels: Mapping[str, str], *, destination: bool) -> list[Alias]:
    """What one series says about names: the workload and (for a destination pod) the Service
    name are aliases of the canonical service, in the workload's namespace."""
    side = "destination" if destination else "source"
    ns = _known(labels.get(f"{side}_workload_namespace"))
    canonical = _known(labels.get(f"{side}_canonical_service"))
    if not ns or not canonical:
        return []
    out = []
    workload = _known(labels.get(f"{side}_workload"))
    if workload:
        out.append(Alias(ns, workload, canonical, AliasSource.ZTUNNEL))
    if destination:
        name = _known(labels.get("destination_service_name"))
        svc_ns = _known(labels.get("destination_service_namespace")) or ns
        if name and svc_ns == ns:
            out.append(Alias(ns, name, canonical, AliasSource.ZTUNNEL))
    return out
