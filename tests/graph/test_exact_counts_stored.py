"""Waypoint request metrics, sampled spans and ztunnel L4 written through the store (SQLite and
PostgreSQL) and read back as one edge: exact counts, the sampling share, the latency bound, L4
failures; span-only edges say the configured or observed sampling rate."""

from __future__ import annotations

from sqlalchemy import Engine

from app.correlate.aggregate import EdgeAggregator
from app.domain import Endpoint, L4Sample, L7MetricSample, L7Observation, Level, Reporter
from app.graph.edge_json import edge_json
from app.graph.queries import GraphQueries
from app.graph.window import Window
from app.store.schema import upgrade
from app.store.writer import write_batch

T = 36_000
PP = Endpoint("default", "productpage", "productpage-v1")
REVIEWS = Endpoint("default", "reviews", "reviews-v1")
RATINGS = Endpoint("default", "ratings", "ratings-v1")
DB = Endpoint("default", "db", "db-v1")


def _store(engine: Engine) -> None:
    agg = EdgeAggregator(bucket_s=60, clock_s=lambda: T + 600)
    for i in range(3):  # three sampled spans of 300 requests, one per minute
        agg.add_l7(L7Observation(PP, REVIEWS, (T + 60 * i + 5) * 10**9, 42.0, bytes([i + 1]) * 16))
    for i in range(3):
        agg.add_l7_metric(
            L7MetricSample(
                PP,
                REVIEWS,
                T + 60 * i,
                T + 60 * i + 15,
                requests=100,
                status_code="200",
                request_bytes=1000,
                latency_sum_ms=4000.0,
                latency_buckets=(("25", 10), ("50", 90)),
                via_waypoint="default/waypoint",
            )
        )
    # a span-only edge: 2 spans, no waypoint metrics
    for i in range(2):
        agg.add_l7(L7Observation(REVIEWS, RATINGS, (T + 7) * 10**9, 5.0, bytes([9 + i]) * 16))
    common = {"start_s": T, "end_s": T + 15}
    agg.add_l4(L4Sample(PP, REVIEWS, Reporter.SOURCE, connections_opened=5, sole=True, **common))  # type: ignore[arg-type]
    agg.add_l4(L4Sample(REVIEWS, DB, Reporter.DESTINATION, connections_opened=4, **common))  # type: ignore[arg-type]
    agg.add_l4(
        L4Sample(
            REVIEWS,
            DB,
            Reporter.DESTINATION,
            connections_closed=4,
            response_flags="DENY",
            **common,  # type: ignore[arg-type]
        )
    )
    upgrade(engine)
    write_batch(engine, agg.drain())


def _edges(queries: GraphQueries) -> dict[str, dict]:  # type: ignore[type-arg]
    graph = queries.graph(Window(T, T + 600), Level.SERVICE, service="default/reviews", depth=1)
    return {e.id: edge_json(e, graph) for e in graph.edges}


def test_one_edge_with_exact_counts_sampling_share_bound_and_failures(engine: Engine) -> None:
    _store(engine)
    edges = _edges(GraphQueries(engine, 60))
    reviews = edges["default/productpage->default/reviews"]
    l7 = reviews["l7"]
    assert (l7["requests"], l7["counts_from"], l7["exact"], l7["spans"]) == (
        300,
        "metrics",
        True,
        3,
    )
    assert l7["sampling_share"] == 0.01 and l7["bytes_sent"] == 3000
    assert l7["status_codes"] == {"200": 300}
    assert l7["latency_ms"]["bounds"]["p99"] == [25.0, 50.0]
    assert 25.0 <= l7["latency_ms"]["p99"] <= 50.0
    assert reviews["coverage"] == "full" and reviews["l4"]["connections_opened"] == 5
    assert reviews["provenance"]["evidence"]["waypoint_metrics"] == 300
    denied = edges["default/reviews->default/db"]
    assert denied["l4"]["connections_failed"] == 4 and denied["l4"]["failures"] == {"DENY": 4}
    # span-only: sampled, at the share observed on the edges that have metrics
    ratings = edges["default/reviews->default/ratings"]["l7"]
    assert (ratings["counts_from"], ratings["requests"], ratings["sampling_share"]) == (
        "spans",
        2,
        0.01,
    )


def test_a_configured_sampling_rate_wins_over_the_observed_share(engine: Engine) -> None:
    _store(engine)
    edges = _edges(GraphQueries(engine, 60, sampling_rate=0.1))
    assert edges["default/reviews->default/ratings"]["l7"]["sampling_share"] == 0.1
    assert edges["default/productpage->default/reviews"]["l7"]["sampling_share"] == 0.01
