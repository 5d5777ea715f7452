"""The graph as the API shows it: nodes and one edge per pair with its L7 and L4 evidence.

Built from merged edge windows (store) and consumed by queries, exports and triage; free of
SQLAlchemy and HTTP. Its stats and exemplars are the edge's own values (app/edge/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain import Coverage, NodeKind
from app.edge.exemplars import Exemplar
from app.edge.stats import L4Stats, L7Stats
from app.edge.zones import ZoneStats

__all__ = ["Exemplar", "Graph", "GraphEdge", "GraphNode", "L4Stats", "L7Stats", "node_from_id"]


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
    zones: ZoneStats | None = None  # L4 bytes by zone path (app/edge/zones.py)

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
    aliases: tuple[str, ...] = ()  # other ids of this node (app/graph/aliases.py)


def node_from_id(node_id: str, kind: NodeKind = NodeKind.SERVICE) -> GraphNode:
    namespace, _, name = node_id.partition("/")
    return GraphNode(node_id, namespace, name or namespace, kind)


MIN_RATE_S = 1.0  # a rate over less than a second of observation says nothing more


def rate_seconds(from_s: float, end_s: float) -> float:
    """What a rate observed from `from_s` to `end_s` divides by (every rate in every answer)."""
    return max(end_s - from_s, MIN_RATE_S)


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: dict[str, GraphNode]
    edges: list[GraphEdge]
    window_start_s: float
    window_end_s: float
    # Where rates start: the observed part of the window (app/graph/window.observed_start);
    # None when the whole window was observed.
    observed_from_s: float | None = None

    @property
    def rate_start_s(self) -> float:
        return self.window_start_s if self.observed_from_s is None else self.observed_from_s

    @property
    def rate_s(self) -> float:
        """Seconds every rate of this graph divides by: the observed part of the window."""
        return rate_seconds(self.rate_start_s, self.window_end_s)

    def rps(self, requests: int) -> float:
        """`requests / self.rate_s`, inlined: called per edge by every JSON answer."""
        start = self.window_start_s if self.observed_from_s is None else self.observed_from_s
        return requests / max(self.window_end_s - start, MIN_RATE_S)
