"""Which ztunnel series a call increments, with labels exactly as tests/data/ztunnel/README.md.

For each request the simulator derives the series (node, label values) it lands on and whether
meshstitch keeps that series as the edge's L4 evidence (`kept`): one reporter for a direct call
(the source reporter when the caller's ztunnel reports it, else the destination's), the client
leg of a waypoint call, the only reporter of a one-sided (plaintext/outside/egress) call.

Which label carries which name (istio/ztunnel `src/proxy/metrics.rs`, `CommonTrafficLabels::
with_source` / `with_destination` / `with_destination_service`; `src/state/workload.rs`,
`src/state/service.rs`):

* `*_workload` = the workload's `workload_name`, which istiod fills with the owning Deployment's
  name (istio/istio `pilot/pkg/serviceregistry/ambient/workloads.go`, `workloadName(pod)` via
  `GetWorkloadMetaFromPod`);
* `*_canonical_service` **and** `*_app` = `canonical_name` (`CanonicalService(pod labels,
  workload name)`: `service.istio.io/canonical-name`, `app.kubernetes.io/name`, `app`, else the
  workload name; istio/istio `pkg/kube/labels/labels.go`), `*_canonical_revision` **and**
  `*_version` = `canonical_revision` (`service.istio.io/canonical-revision`,
  `app.kubernetes.io/version`, `version`, else `latest`);
* `destination_service` = the Service's `hostname` (FQDN), `destination_service_name` its `name`
  (the Kubernetes Service name), `destination_service_namespace` its namespace; all three
  `unknown` when the client dialled a pod IP (no Service is known).

A connection denied by an L4 AuthorizationPolicy (`Edge.denied`) is opened and closed at once
(istio/ztunnel `src/proxy/metrics.rs`: `ConnectionResultBuilder::build` increments
`connection_opens` with `response_flags="-"`; `record_with_flag` / `record` set the flag before
`connection_close` and `connection_failures`, so the close and the failure land on a second
series that differs only in `response_flags`), with no bytes. The destination's ztunnel flags it
`DENY` (`inbound.rs`, `assert_rbac` → `AuthorizationPolicyDenied`); the caller's ztunnel sees its
HBONE CONNECT answered 401 (`Error::HttpStatus`), which `extract_failure_reason` maps to
`CONNECT`.

A sidecar or gateway caller is not captured, but it opens HBONE to the ambient destination, so
the destination's ztunnel reports it with its mTLS identity (`source_principal` from the TLS
handshake, `with_derived_source`) and `connection_security_policy="mutual_tls"`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.sim.topology import (
    CLUSTER_ID,
    Edge,
    EdgeClass,
    External,
    Service,
    Topology,
    Waypoint,
    Workload,
)

LABEL_NAMES = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_service",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
)
# Printed after LABEL_NAMES by ztunnel ≥ 1.26 (istio/ztunnel `src/proxy/metrics.rs`,
# `LocalityLabels`, flattened at the end of `CommonTrafficLabels`), from the workloads' locality
# that istiod takes from their nodes' `topology.kubernetes.io/region` and `zone` labels. The
# simulator prints them for a zoned topology only.
LOCALITY_NAMES = ("source_region", "source_zone", "destination_region", "destination_zone")
UNKNOWN = "unknown"
# values in LABEL_NAMES order, then LOCALITY_NAMES' on a zoned topology
Labels = tuple[str, ...]

_SOURCE_UNKNOWN = (UNKNOWN,) * 8


@dataclass(frozen=True, slots=True)
class SeriesRef:
    node: str  # the simulated node whose ztunnel prints it
    labels: Labels
    kept: bool  # meshstitch counts this series for the edge


def source_workload_labels(service: Service, workload: Workload) -> tuple[str, ...]:
    return (
        workload.name,
        service.name,
        workload.version,
        service.namespace,
        service.principal if service.speaks_mtls else UNKNOWN,
        service.name,
        workload.version,
        CLUSTER_ID,
    )


def _source_waypoint(waypoint: Waypoint) -> tuple[str, ...]:
    # Canonical name and revision from the waypoint pod's labels (waypoint.yaml:
    # `service.istio.io/canonical-name: .DeploymentName`, `canonical-revision: latest`).
    name = waypoint.name
    return (
        name,
        name,
        "latest",
        waypoint.namespace,
        waypoint.principal,
        name,
        "latest",
        CLUSTER_ID,
    )


def _service_labels(service: Service | None) -> tuple[str, str, str]:
    if service is None:  # pod-addressed: ztunnel knows no Service
        return (UNKNOWN, UNKNOWN, UNKNOWN)
    return (service.host, service.namespace, service.service_name)


def destination_workload_labels(
    service: Service, workload: Workload, pod_addressed: bool = False
) -> tuple[str, ...]:
    return (
        *_service_labels(None if pod_addressed else service),
        workload.name,
        service.name,
        workload.version,
        service.namespace,
        service.principal if service.captured else UNKNOWN,
        service.name,
        workload.version,
        CLUSTER_ID,
    )


def _destination_waypoint(service: Service | None, waypoint: Waypoint) -> tuple[str, ...]:
    name = waypoint.name
    return (
        *_service_labels(service),
        name,
        name,
        "latest",
        waypoint.namespace,
        waypoint.principal,
        name,
        "latest",
        CLUSTER_ID,
    )


def _destination_external(external: External) -> tuple[str, ...]:
    return (external.host, UNKNOWN, external.host, *(UNKNOWN,) * 8)


def _labels(reporter: str, source: tuple[str, ...], dest: tuple[str, ...], mtls: bool) -> Labels:
    return (reporter, *source, *dest, "tcp", "-", "mutual_tls" if mtls else UNKNOWN)


DENIAL_FLAGS = {"source": "CONNECT", "destination": "DENY"}
_FLAGS_AT = LABEL_NAMES.index("response_flags")


def with_flag(labels: Labels, flag: str) -> Labels:
    return (*labels[:_FLAGS_AT], flag, *labels[_FLAGS_AT + 1 :])


def series_for(
    topology: Topology,
    edge: Edge,
    cls: EdgeClass,
    source_workload: Workload | None,
    target_workload: Workload | None,
) -> list[SeriesRef]:
    """The series one call on `edge` between these workloads increments (0, 1 or 2)."""
    source_service = topology.service(edge.source) if source_workload else None
    external = topology.external(edge.target)
    target_service = None if external else topology.service(edge.target)
    mtls = not cls.plaintext
    if source_service is not None and source_workload is not None:
        src = source_workload_labels(source_service, source_workload)
    else:
        src = _SOURCE_UNKNOWN
    if external is not None:
        dst = _destination_external(external)
    else:
        assert target_service is not None and target_workload is not None
        dst = destination_workload_labels(target_service, target_workload, cls.pod_addressed)
    out: list[SeriesRef] = []
    src_node = source_workload.node if source_workload else ""
    dst_node = target_workload.node if target_workload else ""
    waypoint = topology.via_waypoint(edge, cls)
    if waypoint is not None:
        assert source_workload and target_service and target_workload
        intended = None if cls.pod_addressed else target_service
        client_leg = _labels("source", src, _destination_waypoint(intended, waypoint), True)
        server_leg = _labels("destination", _source_waypoint(waypoint), dst, True)
        client_leg += locality(topology, src_node, waypoint.node, waypoint_end="destination")
        server_leg += locality(topology, waypoint.node, dst_node, waypoint_end="source")
        out.append(SeriesRef(source_workload.node, client_leg, kept=True))
        out.append(SeriesRef(target_workload.node, server_leg, kept=False))
        return out
    where = locality(topology, src_node, dst_node)
    if cls.source_reporter and source_workload is not None:
        labels = _labels("source", src, dst, mtls) + where
        out.append(SeriesRef(source_workload.node, labels, kept=True))
    if cls.destination_reporter and target_workload is not None:
        labels = _labels("destination", src, dst, mtls) + where
        out.append(SeriesRef(target_workload.node, labels, kept=not out))
    return out


def locality(
    topology: Topology, source_node: str, destination_node: str, waypoint_end: str = ""
) -> Labels:
    """LOCALITY_NAMES' values for a zoned topology (`unknown` for an end with no workload:
    an outside caller, an external host; and for the `waypoint_end` of a half-edge when the
    topology hides waypoint zones from ztunnel), () otherwise and for a ztunnel that predates
    them (`ztunnel_locality_labels=False`)."""
    if not topology.zoned or not topology.ztunnel_locality_labels:
        return ()
    hidden = "" if topology.waypoint_zone_labels else waypoint_end
    out: list[str] = []
    for end, node in (("source", source_node), ("destination", destination_node)):
        zone = topology.zone_of(node) if node and end != hidden else ""
        out += [topology.region if zone else UNKNOWN, zone or UNKNOWN]
    return tuple(out)
