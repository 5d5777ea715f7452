"""A small mesh written through the store, with known answers, for query and API tests."""

from __future__ import annotations

from sqlalchemy import Engine

from app.domain import NodeKind
from app.edge.batch import AggregateBatch, TraceHop
from app.edge.bucket import EdgeBucket
from app.edge.exemplars import Exemplar
from app.edge.stats import L4Stats
from app.store.writer import write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

NOW = 36_000.0  # 10:00 UTC on day 0; the default 15m window holds buckets 35100 … 35940
T0 = 35_100
W = "default/waypoint"
KINDS = {
    "unknown/10.1.2.3": NodeKind.UNKNOWN,
    "unknown/caller-of-x": NodeKind.UNKNOWN,
    "istio-system/ingress": NodeKind.SERVICE,
}
TRACE = "ab" * 16


def _full(latencies: list[float], errors: int = 0) -> EdgeBucket:
    bucket = l7_bucket(latencies, errors=errors)
    bucket.l4 = {"destination": L4Stats(2, 2, 500, 1500, 2)}
    return bucket


def window_batch() -> AggregateBatch:
    edges: dict[tuple[int, str, str], EdgeBucket] = {}
    for i in range(5):
        t = T0 + 60 * i
        edges[(t, "istio-system/ingress", "default/productpage")] = _full([10.0, 20.0, 30.0])
        edges[(t, "default/productpage", "default/reviews")] = _full(
            [5.0] * 20 + [50.0] * 5, errors=5
        )
        edges[(t, "default/reviews", "default/ratings")] = l4_bucket(4, nbytes=10_000, mtls=0)
        # a waypoint span with no known caller, and the only L4 edge into details
        edges[(t, "unknown/10.1.2.3", "default/details")] = l7_bucket(
            [7.0, 9.0], provenance="unattributed", via=W
        )
        edges[(t, "default/productpage", "default/details")] = l4_bucket(1, nbytes=100, via=W)
        # unattributed into x with two L4 candidates (a: 3/4 of the bytes, b: 1/4)
        edges[(t, "unknown/caller-of-x", "default/x")] = l7_bucket([1.0], provenance="unattributed")
        edges[(t, "default/a", "default/x")] = l4_bucket(1, nbytes=300)
        edges[(t, "default/b", "default/x")] = l4_bucket(1, nbytes=100)
    # reporter choice: the source reporter everywhere, the destination once -> destination wins
    edges[(T0, "default/ratings", "default/db")] = l4_bucket(10, nbytes=1000, reporter="source")
    edges[(T0 + 60, "default/ratings", "default/db")] = l4_bucket(
        1, nbytes=7, reporter="destination"
    )
    edges[(T0, "default/ratings", "default/cache")] = l4_bucket(3, nbytes=5, reporter="source")
    out = batch(edges, KINDS)
    key = next(k for k in out.edges if k.target == "default/reviews")
    out.edges[key].exemplars = [Exemplar("failed", TRACE, 50.0, int(T0 * 1e9), "503")]
    out.hops = [
        TraceHop(
            TRACE,
            "1" * 16,
            "",
            "istio-system/ingress",
            "default/productpage",
            "",
            int(T0 * 1e9),
            int((T0 + 1) * 1e9),
            1000.0,
            "200",
            "",
            "paired_spans",
        ),
        TraceHop(
            TRACE,
            "2" * 16,
            "1" * 16,
            "default/productpage",
            "default/reviews",
            W,
            int((T0 + 0.1) * 1e9),
            int((T0 + 0.5) * 1e9),
            400.0,
            "503",
            "http_5xx",
            "parent_span",
        ),
    ]
    return out


def baseline_batch() -> AggregateBatch:
    """The hour before the window: reviews was fast and error-free, productpage called old."""
    edges = {}
    for i in range(30):
        t = T0 - 3600 + 60 * i
        edges[(t, "default/productpage", "default/reviews")] = _full([5.0] * 25)
        edges[(t, "default/productpage", "default/old")] = _full([1.0])
    return batch(edges, KINDS)


def build(engine: Engine) -> None:
    write_batch(engine, baseline_batch())
    write_batch(engine, window_batch())
