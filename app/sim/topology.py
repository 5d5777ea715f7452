"""The simulated ambient mesh: services, workloads, waypoints and the calls between them.

Wire facts follow tests/data/ztunnel/README.md and tests/data/otlp/README.md. What each call
leaves behind is decided here, once, by `classify`:

* **via waypoint**: an HTTP call from a *captured* (ambient-enrolled) caller to a captured service
  that a waypoint serves. Uncaptured callers and callers outside the mesh bypass the waypoint.
* **L4 evidence**: ztunnel sees the call when either end is captured (source reporter on the
  caller's node, destination reporter on the server's node; a waypoint call prints a client leg and
  a server leg). **Plaintext** when there is L4 evidence and either end is not captured (ztunnel
  prints `connection_security_policy="unknown"`).
* **L7 evidence**: the waypoint span, or a CLIENT span of an instrumented caller paired with the
  SERVER span of an instrumented server. TCP services (databases) and external hosts carry none.

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

    name: str
    version: str
    node: str
    ip: str
    pod: str


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    workloads: tuple[Workload, ...]
    service_account: str
    port: int = 9080
    protocol: Literal["http", "tcp"] = "http"
    instrumented: bool = False  # emits CLIENT and SERVER spans, propagates traceparent
    captured: bool = True  # enrolled in ambient: its traffic goes through ztunnel
    waypoint: str = ""  # name of the waypoint (in the same namespace) serving it; "" = none

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    @property
    def principal(self) -> str:
        return spiffe(self.namespace, self.service_account)

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
    name: str = "waypoint"  # deployment, Gateway and service account name

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def principal(self) -> str:
        return spiffe(self.namespace, self.name)


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


@dataclass(frozen=True, slots=True)
class EdgeClass:
    """What a call on an edge leaves on the wire (see the module docstring)."""

    protocol: Literal["http", "tcp"]
    via: str  # waypoint id or ""
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
    _by_id: dict[str, Service] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({s.id: s for s in self.services})

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
        via = ""
        if protocol == "http" and target is not None and target.waypoint and source_captured:
            via = f"{target.namespace}/{target.waypoint}" if target_captured else ""
        client_spans = server_spans = False
        if protocol == "http" and target is not None:
            source_instrumented = source is not None and source.instrumented
            if via or (source_instrumented and target.instrumented):
                client_spans = source_instrumented
                server_spans = target.instrumented
        has_l7 = bool(via) or (client_spans and server_spans)
        has_l4 = source_captured or target_captured
        if has_l7 and has_l4:
            coverage = Coverage.FULL
        elif has_l4:
            coverage = Coverage.L4_ONLY
        else:
            coverage = Coverage.L7_ONLY
        return EdgeClass(
            protocol=protocol,
            via=via,
            source_reporter=source_captured,
            destination_reporter=target_captured,
            client_spans=client_spans,
            server_spans=server_spans,
            coverage=coverage,
            plaintext=has_l4 and not (source_captured and target_captured),
        )

    def iter_classified(self) -> Iterator[tuple[Edge, EdgeClass]]:
        for edge in self.edges:
            yield edge, self.classify(edge)
