"""The graph as the API shows it: nodes and one edge per pair with its L7 and L4 evidence.

Built from merged edge windows (store) and consumed by queries, exports and triage; free of
SQLAlchemy and HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain import Coverage, NodeKind


@dataclass(frozen=True, slots=True)
class Exemplar:
    kind: str  # slowest | failed
    trace_id: str
    duration_ms: float
    end_ns: int
    status_code: str = ""


@dataclass(frozen=True, slots=True)
class L7Stats:
    requests: int
    errors: int
    errors_by_cause: dict[str, int]
    status_codes: dict[str, int]
    latency_sum_ms: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    unpaired: int = 0
    late: int = 0
    evicted: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class L4Stats:
    connections_opened: int
    connections_closed: int
    bytes_sent: int
    bytes_received: int
    mtls_connections: int
    principals: tuple[str, ...] = ()

    @property
    def mtls_share(self) -> float | None:
        return self.mtls_connections / self.connections_opened if self.connections_opened else None

    @property
    def has_traffic(self) -> bool:
        return bool(self.connections_opened or self.bytes_sent or self.bytes_received)


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    protocol: str = ""
    via: str = ""
    l7: L7Stats | None = None
    l4: L4Stats | None = None
    provenance: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, float] = field(default_factory=dict)
    exemplars: tuple[Exemplar, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def coverage(self) -> Coverage:
        has_l7 = self.l7 is not None and self.l7.requests > 0
        has_l4 = self.l4 is not None and self.l4.has_traffic
        if has_l7 and has_l4:
            return Coverage.FULL
        return Coverage.L7_ONLY if has_l7 else Coverage.L4_ONLY

    @property
    def plaintext(self) -> bool:
        """Any L4 connection on this edge without mutual TLS."""
        return self.l4 is not None and self.l4.connections_opened > self.l4.mtls_connections


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    namespace: str
    name: str
    kind: NodeKind = NodeKind.SERVICE


def node_from_id(node_id: str, kind: NodeKind = NodeKind.SERVICE) -> GraphNode:
    namespace, _, name = node_id.partition("/")
    return GraphNode(node_id, namespace, name or namespace, kind)


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: dict[str, GraphNode]
    edges: list[GraphEdge]
    window_start_s: float
    window_end_s: float

    @property
    def window_s(self) -> float:
        return max(self.window_end_s - self.window_start_s, 1e-9)

    def rps(self, requests: int) -> float:
        return requests / self.window_s
