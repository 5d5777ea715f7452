"""The edge bucket's fields, declared once: what each holds, how two values merge, where it is
stored. The bucket's stored columns (store/tables.py), the upsert's column lists and row encoder
(store/edges.py), and every merge (app/edge/merge.py) are derived from `EDGE_FIELDS`, so a new
counter is one line here plus its migration.

L4 counters are kept per reporter (ztunnel on the client's node and on the server's both report
one connection; readers use one reporter, never the sum: `choose_l4`), so each L4 counter is one
field per side, stored as `l4_<side>_<counter>`. A third side, `sole`, holds traffic that only
one ztunnel can report (a waypoint's client leg, a server leg counted from an unknown caller):
readers add it to the chosen reporter's view.

L7 has two sources: `l7_*` from spans (sampled) and `l7m_*` from waypoint request metrics
(unsampled). Readers take counts from the metrics when an edge has any (app/edge/stats.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from app.domain import Reporter


class Merge(Enum):
    ADD = "add"  # counters: the sum
    MAX = "max"  # protocol, via: the larger string (a choice that does not depend on order)
    ADD_MAP = "add_map"  # count maps: per-key sums
    SKETCH = "sketch"  # latency sketch: bin-wise sums
    UNION = "union"  # principals: the set union


class Stored(Enum):
    """The stored column's type (store/tables.py maps each to SQL)."""

    INT = "int"
    FLOAT = "float"
    SHORT_TEXT = "short_text"  # ≤ 16 characters
    NODE_ID = "node_id"  # ≤ 512 characters
    JSON_MAP = "json_map"
    JSON_LIST = "json_list"
    BLOB = "blob"  # nullable


# The L4 counters of one reporter (`L4Stats` fields).
L4_COUNTERS = (
    "connections_opened",
    "connections_closed",
    "bytes_sent",  # request bytes, client → server
    "bytes_received",  # response bytes, server → client
    "mtls_connections",  # connections opened with connection_security_policy=mutual_tls
    "connections_failed",  # closed with a failure flag (DENY, CONNECT, …)
)
# Traffic only one ztunnel reports (not a reporter of ztunnel's: a side of the bucket).
SOLE = "sole"
# The stored name of each side's L4 columns: src_ from the client's ztunnel, dst_ the server's,
# one_ for traffic only one of them can see.
STORED_SIDE: dict[str, str] = {Reporter.SOURCE: "src", Reporter.DESTINATION: "dst", SOLE: "one"}


@dataclass(frozen=True, slots=True)
class EdgeField:
    attr: str  # EdgeBucket attribute (for L4: the L4Stats attribute)
    merge: Merge
    stored: Stored
    column: str = ""  # defaults to attr
    reporter: str | None = None  # L4 fields: whose counters (bucket.l4[side])
    shown: str = ""  # L7 fields shown on a graph edge: the `L7Stats` attribute

    @property
    def name(self) -> str:
        return self.column or self.attr


def _l4(reporter: str) -> tuple[EdgeField, ...]:
    side = STORED_SIDE[reporter]
    return tuple(
        EdgeField(c, Merge.ADD, Stored.INT, f"l4_{side}_{c}", reporter) for c in L4_COUNTERS
    )


# In stored column order.
EDGE_FIELDS: tuple[EdgeField, ...] = (
    EdgeField("protocol", Merge.MAX, Stored.SHORT_TEXT),
    EdgeField("via", Merge.MAX, Stored.NODE_ID),  # waypoint node id when the hop was collapsed
    # L7
    EdgeField("l7_requests", Merge.ADD, Stored.INT, shown="requests"),
    EdgeField("l7_errors", Merge.ADD, Stored.INT, shown="errors"),
    # ErrorCause -> requests
    EdgeField("l7_errors_by_cause", Merge.ADD_MAP, Stored.JSON_MAP, shown="errors_by_cause"),
    EdgeField("l7_status_codes", Merge.ADD_MAP, Stored.JSON_MAP, shown="status_codes"),
    EdgeField("l7_latency_sum_ms", Merge.ADD, Stored.FLOAT, shown="latency_sum_ms"),
    EdgeField("l7_latency", Merge.SKETCH, Stored.BLOB, "l7_latency_sketch"),
    EdgeField("l7_provenance", Merge.ADD_MAP, Stored.JSON_MAP),  # Provenance -> requests
    EdgeField("l7_candidates", Merge.ADD_MAP, Stored.JSON_MAP),  # ambiguous source -> share sum
    EdgeField("l7_unpaired", Merge.ADD, Stored.INT, shown="unpaired"),
    EdgeField("l7_late", Merge.ADD, Stored.INT, shown="late"),
    EdgeField("l7_evicted", Merge.ADD, Stored.INT, shown="evicted"),
    # L4, per side
    *_l4(Reporter.SOURCE),
    *_l4(Reporter.DESTINATION),
    EdgeField("l4_principals", Merge.UNION, Stored.JSON_LIST),
    # L4 failed connections by side and flag: "<side>/<flag>" -> connections
    EdgeField("l4_failures", Merge.ADD_MAP, Stored.JSON_MAP),
    *_l4(SOLE),
    # L7 from waypoint request metrics (unsampled)
    EdgeField("l7m_requests", Merge.ADD, Stored.INT),
    EdgeField("l7m_errors", Merge.ADD, Stored.INT),
    EdgeField("l7m_errors_by_cause", Merge.ADD_MAP, Stored.JSON_MAP),
    EdgeField("l7m_status_codes", Merge.ADD_MAP, Stored.JSON_MAP),
    EdgeField("l7m_bytes_sent", Merge.ADD, Stored.INT),  # request bytes
    EdgeField("l7m_bytes_received", Merge.ADD, Stored.INT),  # response bytes
    EdgeField("l7m_latency_sum_ms", Merge.ADD, Stored.FLOAT),
    # histogram upper bound `le` as printed -> requests in that bucket (not cumulative)
    EdgeField("l7m_latency_buckets", Merge.ADD_MAP, Stored.JSON_MAP),
    # L4 bytes by zone path: "<side>|<client zone>|<waypoint zone>|<server zone>|<x|e>" -> bytes
    # both ways (app/edge/zones.py)
    EdgeField("l4_zone_bytes", Merge.ADD_MAP, Stored.JSON_MAP),
)
