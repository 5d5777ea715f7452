"""What the aggregator hands the store: additive edge buckets, nodes seen, exemplars, trace hops.

Every number in an `EdgeBucket` is a sum (or a set union, or a mergeable sketch), so two batches
for the same key — from two flushes or two replicas — merge into the same result in any order.
That is the contract `store/edges.py` relies on for its upserts.

L4 is kept per reporter (`l4["source"]`, `l4["destination"]`): ztunnel on the client's node and
ztunnel on the server's node both report one connection. Readers pick one reporter per edge
(destination when it reported, else source) and keep the other as corroboration; adding both
would double count, and choosing at write time would not be additive across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.correlate.sketch import LatencySketch
from app.domain import EdgeKey, Level, NodeKind

EXEMPLARS_PER_KIND = 3  # slowest and failed exemplars kept per edge bucket


@dataclass(slots=True)
class L4Counters:
    connections_opened: int = 0
    connections_closed: int = 0
    bytes_sent: int = 0  # request bytes, client → server
    bytes_received: int = 0  # response bytes, server → client
    mtls_connections: int = 0  # connections opened with connection_security_policy=mutual_tls

    def merge(self, other: L4Counters) -> None:
        self.connections_opened += other.connections_opened
        self.connections_closed += other.connections_closed
        self.bytes_sent += other.bytes_sent
        self.bytes_received += other.bytes_received
        self.mtls_connections += other.mtls_connections

    @property
    def empty(self) -> bool:
        return not (
            self.connections_opened
            or self.connections_closed
            or self.bytes_sent
            or self.bytes_received
        )


@dataclass(frozen=True, slots=True)
class ExemplarRow:
    kind: str  # slowest | failed
    trace_id: str  # 32 hex digits
    duration_ms: float
    end_ns: int
    status_code: str = ""


@dataclass(slots=True)
class EdgeBucket:
    protocol: str = ""
    via: str = ""  # waypoint node id when the hop was collapsed
    # L7
    l7_requests: int = 0
    l7_errors: int = 0
    l7_errors_by_cause: dict[str, int] = field(default_factory=dict)
    l7_status_codes: dict[str, int] = field(default_factory=dict)
    l7_latency_sum_ms: float = 0.0
    l7_latency: LatencySketch = field(default_factory=LatencySketch)
    l7_provenance: dict[str, int] = field(default_factory=dict)  # Provenance value -> requests
    l7_candidates: dict[str, float] = field(default_factory=dict)  # ambiguous source -> share sum
    l7_unpaired: int = 0
    l7_late: int = 0
    l7_evicted: int = 0
    # L4, per reporter ("source" | "destination")
    l4: dict[str, L4Counters] = field(default_factory=dict)
    l4_principals: set[str] = field(default_factory=set)
    exemplars: list[ExemplarRow] = field(default_factory=list)  # ≤ EXEMPLARS_PER_KIND per kind


@dataclass(slots=True)
class NodeSeen:
    id: str  # namespace/name
    level: Level
    namespace: str
    name: str
    kind: NodeKind
    service: str = ""  # for workloads: their service's node id
    principal: str = ""
    first_seen_s: int = 0
    last_seen_s: int = 0


@dataclass(frozen=True, slots=True)
class TraceHop:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str
    source: str  # service-level node ids
    target: str
    via: str
    start_ns: int
    end_ns: int
    duration_ms: float
    status_code: str = ""
    error_cause: str = ""
    provenance: str = ""


@dataclass(slots=True)
class AggregateBatch:
    edges: dict[EdgeKey, EdgeBucket] = field(default_factory=dict)
    nodes: dict[tuple[str, Level], NodeSeen] = field(default_factory=dict)
    hops: list[TraceHop] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.edges) + len(self.nodes) + len(self.hops)


def choose_l4(per_reporter: dict[str, L4Counters]) -> L4Counters | None:
    """One reporter's view of an edge: destination when it saw traffic, else source."""
    for reporter in ("destination", "source"):
        counters = per_reporter.get(reporter)
        if counters is not None and not counters.empty:
            return counters
    return None
