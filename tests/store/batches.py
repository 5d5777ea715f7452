"""Aggregate batches for storage and query tests."""

from __future__ import annotations

from app.domain import Level, NodeKind
from app.edge.batch import AggregateBatch, NodeSeen
from app.edge.bucket import EdgeBucket, EdgeKey
from app.edge.exemplars import Exemplar
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats


def l7_bucket(
    latencies_ms: list[float],
    errors: int = 0,
    provenance: str = "paired_spans",
    via: str = "",
    exemplars: tuple[Exemplar, ...] = (),
    principals: tuple[str, ...] = (),
) -> EdgeBucket:
    sketch = LatencySketch()
    sketch.add_all(latencies_ms)
    n = len(latencies_ms)
    return EdgeBucket(
        protocol="http",
        via=via,
        l7_requests=n,
        l7_errors=errors,
        l7_errors_by_cause={"http_5xx": errors} if errors else {},
        l7_status_codes={"200": n - errors, **({"503": errors} if errors else {})},
        l7_latency_sum_ms=sum(latencies_ms),
        l7_latency=sketch,
        l7_provenance={provenance: n},
        l7_unpaired=1,
        exemplars=list(exemplars),
        l4_principals=set(principals),
    )


def l4_bucket(
    opened: int,
    nbytes: int = 1000,
    reporter: str = "destination",
    mtls: int | None = None,
    via: str = "",
    principals: tuple[str, ...] = (),
) -> EdgeBucket:
    counters = L4Stats(
        connections_opened=opened,
        connections_closed=opened,
        bytes_sent=nbytes,
        bytes_received=2 * nbytes,
        mtls_connections=opened if mtls is None else mtls,
    )
    return EdgeBucket(
        protocol="tcp", via=via, l4={reporter: counters}, l4_principals=set(principals)
    )


def node(
    node_id: str, kind: NodeKind = NodeKind.SERVICE, first: int = 0, last: int = 0
) -> NodeSeen:
    namespace, _, name = node_id.partition("/")
    return NodeSeen(
        node_id, Level.SERVICE, namespace, name, kind, first_seen_s=first, last_seen_s=last
    )


def batch(
    edges: dict[tuple[int, str, str], EdgeBucket],
    kinds: dict[str, NodeKind] | None = None,
    level: Level = Level.SERVICE,
) -> AggregateBatch:
    """Edges keyed (bucket_start_s, source, target); every endpoint becomes a node seen then."""
    out = AggregateBatch()
    for (bucket_s, source, target), bucket in edges.items():
        out.edges[EdgeKey(bucket_s, level, source, target)] = bucket
        for node_id in (source, target):
            kind = (kinds or {}).get(node_id, NodeKind.SERVICE)
            seen = out.nodes.get((node_id, level))
            first = min(seen.first_seen_s, bucket_s) if seen else bucket_s
            last = max(seen.last_seen_s, bucket_s + 59) if seen else bucket_s + 59
            n = node(node_id, kind, first, last)
            n.level = level
            out.nodes[(node_id, level)] = n
    return out
