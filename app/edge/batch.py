"""What the aggregator hands the store on each flush: edge buckets, nodes seen, trace hops and
the aliases identity learned."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain import Alias, Level, NodeKind
from app.edge.bucket import EdgeBucket, EdgeKey


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
    aliases: list[Alias] = field(default_factory=list)  # learned since the last flush
    # Unique per drained batch (the aggregator sets it); the store records it with the batch's
    # rows, so writing the same batch again is a no-op. "" = no id, always added.
    batch_id: str = ""

    def __len__(self) -> int:
        return len(self.edges) + len(self.nodes) + len(self.hops) + len(self.aliases)
