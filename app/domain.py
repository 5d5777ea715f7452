"""The nouns every layer shares. Frozen, slotted, and importing nothing from `app`.

Names say which side of the wire a value is on: transports produce `Span` and `L4Sample`,
correlation turns them into `L7Observation`, aggregation into edge buckets (app/edge/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import NamedTuple, Protocol


class SpanKind(IntEnum):
    """OTLP `Span.SpanKind` numbering (opentelemetry/proto/trace/v1/trace.proto)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class NodeKind(StrEnum):
    SERVICE = "service"
    WORKLOAD = "workload"
    WAYPOINT = "waypoint"
    GATEWAY = "gateway"  # an ingress/egress gateway Envoy (node_id `router~…`)
    EXTERNAL = "external"
    UNKNOWN = "unknown"
    # Traffic counted past a cardinality cap (app/correlate/cardinality.py): `<ns>/__overflow__`.
    OVERFLOW = "overflow"


# The name of a namespace's overflow node (`<ns>/__overflow__`, kind OVERFLOW) and the namespace of
# the mesh-wide one (`__overflow__/__overflow__`): app/correlate/cardinality.py.
OVERFLOW_NAME = "__overflow__"


def is_overflow_id(node_id: str) -> bool:
    return node_id.endswith("/" + OVERFLOW_NAME)


class Level(StrEnum):
    SERVICE = "service"
    WORKLOAD = "workload"


class Coverage(StrEnum):
    FULL = "full"
    L4_ONLY = "l4_only"
    L7_ONLY = "l7_only"


class ErrorCause(StrEnum):
    HTTP_5XX = "http_5xx"
    GRPC = "grpc"
    RESPONSE_FLAGS = "response_flags"
    SPAN_STATUS = "span_status"


class Provenance(StrEnum):
    """Why an L7 edge has the source it has, strongest evidence first."""

    PAIRED_SPANS = "paired_spans"  # client span paired with server span (trace id + span ids)
    PARENT_SPAN = "parent_span"  # waypoint span whose parent span names the caller
    PEER_TAGS = "peer_tags"  # waypoint span's istio.source_* tags name the caller (Istio ≥ 1.29)
    PEER_ADDRESS = "peer_address"  # waypoint span's peer.address resolved to a workload
    L4_SINGLE = "l4_single"  # the only L4 edge into the destination in the window
    L4_AMBIGUOUS = "l4_ambiguous"  # several L4 candidates; recorded with their shares
    PEER_ATTRIBUTE = "peer_attribute"  # unpaired span; peer named by peer.service, server.address …
    UNATTRIBUTED = "unattributed"  # no evidence names the caller
    # The waypoint's request metrics name the caller (labels resolved from the HBONE peer); on a
    # graph edge, the requests its unsampled metrics count.
    WAYPOINT_METRICS = "waypoint_metrics"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of an edge. `service` names the node at level service, `workload` at level workload.

    External and unknown peers carry the best evidence available as their name (SPIFFE identity,
    IP, host), never a shared catch-all.
    """

    namespace: str
    service: str
    workload: str = ""
    kind: NodeKind = NodeKind.SERVICE
    principal: str = ""

    def node_id(self, level: Level = Level.SERVICE) -> str:
        if level is Level.WORKLOAD and self.workload:
            return f"{self.namespace}/{self.workload}"
        return f"{self.namespace}/{self.service}"

    def node_kind(self, level: Level = Level.SERVICE) -> NodeKind:
        if self.kind is NodeKind.SERVICE and level is Level.WORKLOAD and self.workload:
            return NodeKind.WORKLOAD
        return self.kind


AttrValue = str | bool | int | float


@dataclass(frozen=True, slots=True)
class Span:
    """An OTLP span reduced to what correlation needs (see ingest/otlp_decode.py)."""

    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    parent_span_id: bytes  # 8 bytes or b""
    kind: SpanKind
    name: str
    start_ns: int
    end_ns: int
    service: str  # resource service.name ("" when absent)
    status_error: bool  # Status.code == STATUS_CODE_ERROR
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    resource: dict[str, AttrValue] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, slots=True)
class L7Observation:
    """One request seen on one edge, after normalization, pairing and attribution."""

    source: Endpoint
    target: Endpoint
    end_ns: int
    duration_ms: float
    trace_id: bytes
    span_id: bytes = b""
    parent_span_id: bytes = b""
    protocol: str = "http"  # http | grpc | tcp | db | messaging
    status_code: str = ""  # "200", "grpc:14", "" when unknown
    error_cause: ErrorCause | None = None
    via: str = ""  # waypoint node id when the hop was collapsed
    provenance: Provenance = Provenance.PAIRED_SPANS
    # For Provenance.L4_AMBIGUOUS: the candidate source node ids and their L4 shares.
    candidates: tuple[tuple[str, float], ...] = ()
    late: bool = False  # ended in a bucket that was already flushed
    unpaired: bool = False  # the peer span never arrived within the pairing wait
    evicted: bool = False  # pushed out of the bounded pairing store before its wait ran out


class AliasSource(StrEnum):
    """Where an alias was learned; the stronger source wins a disagreement (correlate/identity)."""

    SPAN = "span"
    ZTUNNEL = "ztunnel"
    KUBERNETES = "kubernetes"
    SETTING = "setting"


# Which source wins when two disagree on an alias (higher wins; among equals the latest).
ALIAS_PRIORITY = {
    AliasSource.SPAN: 0,
    AliasSource.ZTUNNEL: 1,
    AliasSource.KUBERNETES: 2,
    AliasSource.SETTING: 3,
}


@dataclass(frozen=True, slots=True)
class Alias:
    """`namespace/name` is another name of the canonical service `namespace/service`."""

    namespace: str
    name: str  # a Kubernetes Service name, OTel service.name, workload, pod name or pod IP
    service: str  # the Istio canonical service
    source: AliasSource


class IdentityEvidence(Protocol):
    """What the L4 and Kubernetes inputs tell node identity (implemented by
    app/correlate/identity.NodeIdentity; the inputs know only this)."""

    def learn(self, alias: Alias, *, persist: bool = True) -> bool: ...
    def learn_waypoint(self, namespace: str, workload: str) -> None: ...
    def is_waypoint(self, namespace: str, workload: str) -> bool: ...
    def waypoint_span_zone(self, namespace: str, workload: str) -> str: ...
    def learn_gateway(self, namespace: str, name: str) -> None: ...


class ZtunnelCount(NamedTuple):
    """How many ztunnels (one per node, a DaemonSet) the L4 input sees, and how it counted them:
    `counted_from` states the method, or why `nodes` is None."""

    nodes: int | None
    counted_from: str


NO_L4_INPUT = ZtunnelCount(None, "no L4 input configured: ztunnels not counted")


class Reporter(StrEnum):
    SOURCE = "source"
    DESTINATION = "destination"


class ZoneBytes(NamedTuple):
    """Bytes (both ways) of one sample that took one zone path (app/edge/zones.py); a zone is ""
    when no source named it. `estimated`: the server zone was split in proportion
    (app/poll/zone_split.py)."""

    client_zone: str
    waypoint_zone: str
    server_zone: str
    bytes: int
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class L4Sample:
    """Counter increases of one ztunnel series over one interval, normalised to client → server.

    `bytes_sent` is request bytes (client → server), `bytes_received` response bytes, whatever
    the reporter: ztunnel reports sent/received from its own side (see poll/ztunnel_labels.py).
    """

    source: Endpoint
    target: Endpoint
    reporter: Reporter
    start_s: float
    end_s: float
    connections_opened: int = 0
    connections_closed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    mutual_tls: bool = True
    response_flags: str = "-"
    # True when one side is a waypoint: the correlator collapses A → waypoint → B.
    via_waypoint: str = ""
    # True when no other ztunnel reports this traffic (a waypoint's client leg, a server leg
    # counted from an unknown caller): readers add it to the chosen reporter's view instead of
    # choosing between reporters (app/edge/stats.choose_l4).
    sole: bool = False
    # The sample's bytes by zone path (empty: no zone known for either end).
    zones: tuple[ZoneBytes, ...] = ()

    @property
    def failed(self) -> bool:
        """ztunnel sets a response flag only when the connection failed (DENY, CONNECT, …);
        it does so on the *closed* counter, the opened one always says "-"."""
        return self.response_flags not in ("-", "", "unknown")


# ztunnel's connection-failure flags (istio/ztunnel src/proxy/metrics.rs `ResponseFlags`).
DENIED_FLAGS = frozenset({"DENY", "NETWORK_POLICY"})  # refused by policy
FAILURE_FLAGS = frozenset(
    {
        "DENY",
        "CONNECT",
        "TLS_FAILURE",
        "H2_HANDSHAKE_FAILURE",
        "NETWORK_POLICY",
        "IDENTITY_ERROR",
        "CERT_REVOKED",
    }
)


@dataclass(frozen=True, slots=True)
class L7MetricSample:
    """Increases of one waypoint request-metric label set over one interval (reporter=waypoint):
    unsampled requests of one (caller, destination, response) combination.

    `latency_buckets` holds the histogram's per-bucket (not cumulative) request counts keyed
    by the bucket's upper bound as printed (`le`, "+Inf" last).
    """

    source: Endpoint
    target: Endpoint
    start_s: float
    end_s: float
    requests: int
    protocol: str = "http"  # request_protocol: http | grpc
    status_code: str = ""  # response_code, "grpc:<n>" for gRPC
    error_cause: ErrorCause | None = None
    response_flags: str = "-"
    request_bytes: int = 0
    response_bytes: int = 0
    latency_sum_ms: float = 0.0
    latency_buckets: tuple[tuple[str, int], ...] = ()
    via_waypoint: str = ""  # the reporting waypoint's node id, when known
    mutual_tls: bool = True


# The span attributes correlation reads; the decoder keeps only these (ingest/otlp_decode.py), so
# a span's record stays small whatever the sender attaches. Envoy/Istio waypoint tags first
# (envoyproxy/envoy tracing + Istio custom tags), then OTel semantic conventions, old and new names.
KEPT_SPAN_ATTRIBUTES = frozenset(
    {
        # Envoy / Istio waypoint
        "upstream_cluster",
        "upstream_cluster.name",
        "upstream_address",
        "downstream_cluster",
        "node_id",
        "zone",  # the proxy's own zone (TracerImpl::startSpan; app/correlate/span_zones.py)
        "component",
        "peer.address",
        "response_flags",
        "guid:x-request-id",
        "istio.canonical_service",
        "istio.canonical_revision",
        "istio.namespace",
        "istio.mesh_id",
        # Istio ≥ 1.29 waypoints tag the downstream peer (istio/istio#58348)
        "istio.source_workload",
        "istio.source_namespace",
        "istio.source_canonical_service",
        "istio.destination_workload",
        "istio.destination_namespace",
        "istio.destination_canonical_service",
        "http.method",
        "http.url",
        "http.protocol",
        "http.status_code",
        "grpc.status_code",
        "request_size",
        "response_size",
        # OpenTelemetry semantic conventions (old and new names)
        "http.request.method",
        "http.response.status_code",
        "url.full",
        "server.address",
        "server.port",
        "net.peer.name",
        "net.peer.ip",
        "net.sock.peer.addr",
        "network.peer.address",
        "client.address",
        "peer.service",
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "rpc.grpc.status_code",
        "db.system",
        "db.name",
        "db.namespace",
        "messaging.system",
        "messaging.destination",
        "messaging.destination.name",
        "k8s.namespace.name",
        "service.namespace",
    }
)
KEPT_RESOURCE_ATTRIBUTES = frozenset(
    {
        "service.name",
        "service.namespace",
        "service.version",
        "k8s.namespace.name",
        "k8s.pod.name",
        "k8s.pod.ip",
        "k8s.deployment.name",
        "istio.canonical_service",
        "istio.namespace",
    }
)
