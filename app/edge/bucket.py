"""The edge bucket: everything seen on one edge `source → target` in one time bucket.

Every number in an `EdgeBucket` is a sum (or a set union, or a mergeable sketch), so two buckets
for the same key — from two flushes or two replicas — merge into the same result in any order
(app/edge/merge.py). That is the contract the store's upserts and roll-ups rely on. Its fields
are declared in app/edge/fields.py; the dataclass below must list the same attributes (a test
checks it).

L4 is kept per reporter (`l4[Reporter.SOURCE]`, `l4[Reporter.DESTINATION]`, and `l4["sole"]` for
traffic only one ztunnel sees, app/edge/fields.py): ztunnel on the
client's node and ztunnel on the server's node both report one connection. Readers pick one
reporter per edge (`choose_l4`) and keep the other as corroboration; adding both would double
count, and choosing at write time would not be additive across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from app.domain import Level
from app.edge.exemplars import Exemplar
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats


class EdgeKey(NamedTuple):
    """An edge bucket's key, in stored column order (store/edges.py `bound_key` binds the level
    as its plain string)."""

    bucket_start_s: int
    level: Level
    source: str  # node id
    target: str  # node id


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
    # L4, per reporter
    l4: dict[str, L4Stats] = field(default_factory=dict)
    l4_principals: set[str] = field(default_factory=set)
    l4_failures: dict[str, int] = field(default_factory=dict)  # "<side>/<flag>" -> connections
    # L7 from waypoint request metrics (unsampled)
    l7m_requests: int = 0
    l7m_errors: int = 0
    l7m_errors_by_cause: dict[str, int] = field(default_factory=dict)
    l7m_status_codes: dict[str, int] = field(default_factory=dict)
    l7m_bytes_sent: int = 0
    l7m_bytes_received: int = 0
    l7m_latency_sum_ms: float = 0.0
    l7m_latency_buckets: dict[str, int] = field(default_factory=dict)  # le -> requests
    # "<side>|<client zone>|<waypoint zone>|<server zone>|<x|e>" -> bytes (app/edge/zones.py)
    l4_zone_bytes: dict[str, int] = field(default_factory=dict)
    # Not merged with the bucket: exemplars have their own top-N (app/edge/exemplars.py).
    exemplars: list[Exemplar] = field(default_factory=list)

    @property
    def has_l7(self) -> bool:
        """Any L7 evidence: requests (spans or waypoint metrics) or counted losses."""
        return bool(
            self.l7_requests
            or self.l7m_requests
            or self.l7_unpaired
            or self.l7_late
            or self.l7_evicted
        )
