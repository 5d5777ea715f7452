"""The simulated ambient mesh: services, workloads, waypoints and the calls between them.

Wire facts follow tests/data/ztunnel/README.md, tests/data/otlp/README.md and
../shared/reference/istio-ambient.md; app/sim/istio.py, ztunnel_series.py and envoy_spans.py cite
the istio/istio, istio/ztunnel and envoyproxy/envoy files behind each label and tag. What each
call leaves behind is decided here, once, by `classify`:

* **Names.** `Service.name` is the Istio canonical service (pod label
  `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`:
  istio/istio `pkg/kube/labels/labels.go`, `CanonicalService`), the node id meshstitch must show.
  `k8s_service` is the Kubernetes Service selecting the pods (its FQDN is `host`, what ztunnel
  prints as `destination_service` and Envoy names in `upstream_cluster`), `otel_service_name` the
  OTel `service.name` an instrumented app sets. Both default to the canonical name.
* **via waypoint**: an HTTP call from a *captured* (ambient-enrolled) caller to a captured service
  that a waypoint serves (`waypoint`), or, for an edge with `address="pod"`, to a pod that a
  workload waypoint serves (`workload_waypoint`, Gateway label `istio.io/waypoint-for: workload`).
  Uncaptured callers, sidecars, gateways and callers outside the mesh bypass waypoints (gateways
  use one only with the `istio.io/ingress-use-waypoint` label, istio/istio
  `pilot/pkg/serviceregistry/ambient/services.go`, which the simulator does not model).
* **L4 evidence**: ztunnel sees the call when either end is captured (source reporter on the
  caller's node, destination reporter on the server's node; a waypoint call prints a client leg and
  a server leg). Sidecars and gateways are not captured, but they speak HBONE/mTLS to an ambient
  pod, so only the destination's ztunnel reports, with mTLS. **Plaintext** when there is L4
  evidence and either end speaks no mTLS (ztunnel prints `connection_security_policy="unknown"`).
* **L7 evidence**: the waypoint span; a gateway's or sidecar's Envoy spans (`envoy`); or a CLIENT
  span of an instrumented caller paired with the SERVER span of an instrumented server. TCP
  services (databases) and external hosts carry none. An edge from a gateway also stands for the
  request that reached the gateway: its SERVER span names the outside client by `peer.address`
  (`client_ip`), so the truth has a second, `l7_only` edge `unknown/<client_ip>` → gateway.

Coverage is `full` (L7 and L4), `l4_only` (the blind spot) or `l7_only` (two uncaptured,
instrumented workloads). `validate` enforces the invariants that make the truth decidable for a
correlator that only sees the wire (see `validate`'s docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from app.domain import Coverage  # the product's vocabulary; the sim decides each edge's on its own

TRUST_DOMAIN = "cluster.local"
CLUSTER_ID = "Kubernetes"
# Edge source for callers outside the mesh (ztunnel knows no workload for their IP).
OUTSIDE = "outside"


def spiffe(namespace: str, service_account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True, slots=True)
class Workload:
    """One deployment with one pod (`<svc>-<version>`), placed on a simulated node."""

    name: str  # the Deployment name (ztunnel `*_workload`)
    version: str
    node: str
    ip: str
    pod: str


Envoy = Literal["", "sidecar", "gateway"]


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str  # Istio canonical service: the node id's name
    workloads: tuple[Workload, ...]
    service_account: str
    port: int = 9080
    protocol: Literal["http", "tcp"] = "http"
    instrumented: bool = False  # emits CLIENT and SERVER spans, propagates traceparent
    captured: bool = True  # enrolled in ambient: its traffic goes through ztunnel
    waypoint: str = ""  # name of the waypoint (in the same namespace) serving it; "" = none
    k8s_service: str = ""  # Kubernetes Service name; "" = the canonical name
    otel_service_name: str = ""  # the app's OTel `service.name`; "" = the canonical name
    envoy: Envoy = ""  # an Envoy outside ambient: "sidecar"-injected pods or an ingress "gateway"
    workload_waypoint: str = ""  # workload waypoint serving its pods (pod-addressed traffic)

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def service_name(self) -> str:
        return self.k8s_service or self.name

    @property
    def app_name(self) -> str:
        return self.otel_service_name or self.name

    @property
    def host(self) -> str:
        return f"{self.service_name}.{self.namespace}.svc.cluster.local"

    @property
    def principal(self) -> str:
        return spiffe(self.namespace, self.service_account)

    @property
    def speaks_mtls(self) -> bool:
        """ztunnel, a sidecar and a gateway all originate mTLS (HBONE to ambient pods)."""
        return self.captured or bool(self.envoy)

    @property
    def kind(self) -> str:
        return "gateway" if self.envoy == "gateway" else "service"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Names other than the canonical one that the wire uses for this service."""
        names = {self.service_name, self.app_name} - {self.name}
        return tuple(f"{self.namespace}/{n}" for n in sorted(names))

    def workload(self, name: str) -> Workload:
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(f"{self.id} has no workload {name}")


@dataclass(frozen=True, slots=True)
class Waypoint:
    namespace: str
    node: str
    ip: str
    pod: str
    # Gateway name. The Deployment and its service account carry it too (istio/istio
    # `manifests/charts/istio-control/istio-discovery/files/waypoint.yaml`: `name:
    # {{.DeploymentName}}`, `serviceAccountName: {{.ServiceAccount}}`, pod label
    # `service.istio.io/canonical-name: .DeploymentName`; `GetDefaultName` in
    # `pilot/pkg/config/kube/gatewaycommon/gateway_utils.go` adds no class suffix for waypoints).
    name: str = "waypoint"
    waypoint_for: Literal["service", "workload"] = "service"  # Gateway label istio.io/waypoint-for

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def service_account(self) -> str:
        return self.name

    @property
    def principal(self) -> str:
        return spiffe(self.namespace, self.service_account)


@dataclass(frozen=True, slots=True)
class External:
    """A host outside the mesh (traffic leaving the mesh; TLS, so opaque TCP to ztunnel)."""

    host: str
    port: int = 443

    @property
    def id(self) -> str:
        return f"external/{self.host}"


@dataclass(frozen=True, slots=True)
class Edge:
    """Traffic from `source` (a service id or OUTSIDE) to `target` (a service id or external host).

    `rate_rps` is requests per second for HTTP, queries per second for TCP. Latency is lognormal
    with the given median and sigma (of the underlying normal).
    """

    source: str
    target: str
    rate_rps: float
    latency_median_ms: float = 10.0
    latency_sigma: float = 0.5
    error_rate: float = 0.0
    not_found_rate: float = 0.0  # 404s: not errors
    source_workloads: tuple[str, ...] = ()  # which caller workloads call; () = all
    requests_per_connection: int = 10
    request_bytes: int = 400  # mean, client -> server
    response_bytes: int = 1800  # mean, server -> client
    path: str = "/"
    address: Literal["service", "pod"] = "service"  # what the caller dials: the Service or a pod IP
    client_ip: str = ""  # from a gateway: the outside client that sent the request to it
    # An L4 AuthorizationPolicy at the destination's ztunnel denies every connection
    # (istio/ztunnel `src/proxy/inbound.rs`, `assert_rbac` → `AuthorizationPolicyDenied`): no
    # request reaches the server, so the edge has no L7; see ztunnel_series.py for what it prints.
    denied: bool = False


@dataclass(frozen=True, slots=True)
class EdgeClass:
    """What a call on an edge leaves on the wire (see the module docstring)."""

    protocol: Literal["http", "tcp"]
    via: str  # waypoint id or ""
    pod_addressed: bool  # the caller dialled a pod IP: ztunnel prints destination_service=unknown
    source_envoy: Envoy  # the caller is a sidecar or gateway Envoy writing its own spans
    target_sidecar: bool  # the server's sidecar writes an inbound SERVER span
    source_reporter: bool  # the caller's ztunnel prints a reporter="source" series
    destination_reporter: bool  # the server's ztunnel prints a reporter="destination" series
    client_spans: bool
    server_spans: bool
    coverage: Coverage
    plaintext: bool


@dataclass(frozen=True, slots=True)
class Topology:
    services: tuple[Service, ...]
    edges: tuple[Edge, ...]
    waypoints: tuple[Waypoint, ...] = ()
    externals: tuple[External, ...] = ()
    nodes: tuple[str, ...] = ()
    # (node, zone): the node's `topology.kubernetes.io/zone` label; empty: a cluster without
    # zones, whose ztunnels print no locality labels (as ztunnel before 1.26).
    node_zones: tuple[tuple[str, str], ...] = ()
    # False: ztunnel prints `unknown` as a waypoint end's zone, and no node topology is served, so
    # only the zone tag of the waypoint's own spans names its zone (app/sim/zoned.py).
    waypoint_zone_labels: bool = True
    # False: ztunnel prints no locality labels at all (before Istio 1.26, istio/ztunnel#1441),
    # so every zone must come from node topology (app/sim/kubernetes.py) or waypoint spans.
    ztunnel_locality_labels: bool = True
    region: str = "sim-region-1"  # every node's `topology.kubernetes.io/region`
    _by_id: dict[str, Service] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({s.id: s for s in self.services})

    @property
    def zoned(self) -> bool:
        return bool(self.node_zones)

    def zone_of(self, node: str) -> str:
        """The node's zone, "" when it has none."""
        return dict(self.node_zones).get(node, "")

    def service(self, service_id: str) -> Service:

        return self._by_id[service_id]

    def has_service(self, service_id: str) -> bool:
        return service_id in self._by_id

    def external(self, host: str) -> External | None:
        return next((e for e in self.externals if e.host == host), None)

    def waypoint(self, namespace: str, name: str) -> Waypoint:
        for w in self.waypoints:
            if w.namespace == namespace and w.name == name:
                return w
        raise KeyError(f"no waypoint {namespace}/{name}")

    def via_waypoint(self, edge: Edge, cls: EdgeClass) -> Waypoint | None:
        if not cls.via:
            return None
        namespace, name = cls.via.split("/", 1)
        return self.waypoint(namespace, name)

    def caller_workloads(self, edge: Edge) -> tuple[Workload, ...]:
        if edge.source == OUTSIDE:
            return ()
        source = self.service(edge.source)
        if not edge.source_workloads:
            return source.workloads
        return tuple(source.workload(name) for name in edge.source_workloads)

    def source_node_id(self, edge: Edge) -> str:
        """The node id meshstitch names the caller with (tests/data/ztunnel/README.md case d)."""
        if edge.source == OUTSIDE:
            target = self.service(edge.target)
            return f"unknown/caller-of-{target.name}.{target.namespace}"
        return edge.source

    def ingress_edge_ids(self, edge: Edge) -> tuple[str, str] | None:
        """`(unknown/<client ip>, gateway)` for an edge leaving a gateway, else None."""
        if edge.source == OUTSIDE or self.service(edge.source).envoy != "gateway":
            return None
        return f"unknown/{edge.client_ip}", edge.source

    def target_node_id(self, edge: Edge) -> str:
        external = self.external(edge.target)
        return external.id if external else edge.target

    def classify(self, edge: Edge) -> EdgeClass:
        source = None if edge.source == OUTSIDE else self.service(edge.source)
        external = self.external(edge.target)
        target = None if external else self.service(edge.target)
        source_captured = source is not None and source.captured
        target_captured = target is not None and target.captured
        protocol: Literal["http", "tcp"] = "tcp" if target is None else target.protocol
        http = protocol == "http" and target is not None
        pod_addressed = edge.address == "pod"
        via = ""
        if http and target is not None and source_captured and target_captured:
            name = target.workload_waypoint if pod_addressed else target.waypoint
            via = f"{target.namespace}/{name}" if name else ""
        source_envoy: Envoy = source.envoy if http and source is not None else ""
        target_sidecar = http and target is not None and target.envoy == "sidecar"
        proxy_spans = bool(via or source_envoy or target_sidecar)
        client_spans = server_spans = False
        if http and target is not None:
            source_instrumented = source is not None and source.instrumented
            if proxy_spans or (source_instrumented and target.instrumented):
                client_spans = source_instrumented
                server_spans = target.instrumented
        if edge.denied:
            via, source_envoy, target_sidecar, proxy_spans = "", "", False, False
            client_spans = server_spans = False
        has_l7 = proxy_spans or (client_spans and server_spans)
        has_l4 = source_captured or target_captured
        if has_l7 and has_l4:
            coverage = Coverage.FULL
        elif has_l4:
            coverage = Coverage.L4_ONLY
        else:
            coverage = Coverage.L7_ONLY
        both_mtls = (
            source is not None and source.speaks_mtls and target is not None and target.speaks_mtls
        )
        return EdgeClass(
            protocol=protocol,
            via=via,
            pod_addressed=pod_addressed,
            source_envoy=source_envoy,
            target_sidecar=target_sidecar,
            source_reporter=source_captured,
            destination_reporter=target_captured,
            client_spans=client_spans,
            server_spans=server_spans,
            coverage=coverage,
            plaintext=has_l4 and not both_mtls,
        )

    def iter_classified(self) -> Iterator[tuple[Edge, EdgeClass]]:
        for edge in self.edges:
            yield edge, self.classify(edge)
