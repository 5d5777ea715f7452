from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.api.schemas import CoverageOut, EdgesOut, ServicesOut, TraceOut, TriageOut
from app.domain import Coverage, Level, NodeKind
from app.edge.sketch import LatencySketch
from app.graph.neighbourhood import Direction
from app.graph.queries import GraphQueries, UnknownNode
from app.graph.window import Window
from tests.graph.scenario import NOW, T0, TRACE, W, build

WINDOW = Window(NOW - 900, NOW)


@pytest.fixture
def queries(engine: Engine) -> GraphQueries:
    build(engine)
    return GraphQueries(engine, 60)


def _pairs(edges: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(e.source, e.target) for e in edges}


def test_downstream_walk_finds_the_attributed_edge(queries: GraphQueries) -> None:
    graph = queries.graph(
        WINDOW, Level.SERVICE, service="ingress", depth=2, direction=Direction.DOWNSTREAM
    )
    assert _pairs(graph.edges) == {
        ("istio-system/ingress", "default/productpage"),
        ("default/productpage", "default/reviews"),
        ("default/productpage", "default/details"),
    }
    details = next(e for e in graph.edges if e.target == "default/details")
    assert details.coverage is Coverage.FULL and details.via == W
    assert details.provenance == {"l4_single": 10}
    assert details.l7 is not None and details.l7.requests == 10
    expected = LatencySketch()
    expected.add_all([7.0, 9.0] * 5)
    assert details.l7.p99_ms == expected.quantile(0.99)
    assert "unknown/10.1.2.3" not in graph.nodes


def test_upstream_walk_attributes_too(queries: GraphQueries) -> None:
    graph = queries.graph(
        WINDOW, Level.SERVICE, service="default/details", direction=Direction.UPSTREAM
    )
    (edge,) = graph.edges
    assert (edge.source, edge.provenance) == ("default/productpage", {"l4_single": 10})


def test_several_candidates_stay_on_the_unknown_node(queries: GraphQueries) -> None:
    graph = queries.graph(WINDOW, Level.SERVICE, service="x", direction=Direction.UPSTREAM)
    unknown = next(e for e in graph.edges if e.source == "unknown/caller-of-x")
    assert unknown.provenance == {"l4_ambiguous": 5}
    assert unknown.candidates == {"default/a": 0.75, "default/b": 0.25}
    assert graph.nodes["unknown/caller-of-x"].kind is NodeKind.UNKNOWN


def test_window_merge_is_exact_and_carries_exemplars(queries: GraphQueries) -> None:
    graph = queries.graph(WINDOW, Level.SERVICE, service="reviews", direction=Direction.UPSTREAM)
    (edge,) = graph.edges
    assert edge.l7 is not None and (edge.l7.requests, edge.l7.errors) == (125, 25)
    expected = LatencySketch()
    expected.add_all(([5.0] * 20 + [50.0] * 5) * 5)
    assert (edge.l7.p50_ms, edge.l7.p99_ms) == (expected.quantile(0.5), expected.quantile(0.99))
    assert edge.l4 is not None and edge.l4.connections_opened == 10
    assert [e.trace_id for e in edge.exemplars] == [TRACE]


def test_the_destination_reporter_is_chosen_over_the_whole_window(queries: GraphQueries) -> None:
    graph = queries.graph(WINDOW, Level.SERVICE, service="ratings", direction=Direction.DOWNSTREAM)
    by_target = {e.target: e for e in graph.edges}
    db, cache = by_target["default/db"].l4, by_target["default/cache"].l4
    assert db is not None and cache is not None
    assert db.connections_opened == 1  # destination's view, though the source reported more
    assert cache.connections_opened == 3  # no destination report: the source's


def test_bucket_range_leaves_out_buckets_before_the_window(queries: GraphQueries) -> None:
    shifted = Window(T0 + 1, NOW)  # the T0 bucket starts before the window
    graph = queries.graph(shifted, Level.SERVICE, service="reviews", direction=Direction.UPSTREAM)
    (edge,) = graph.edges
    assert edge.l7 is not None and edge.l7.requests == 100


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("reviewz", "default/reviews"),
        ("default/reveiws", "default/reviews"),
        ("nothing-like-it", None),
    ],
)
def test_unknown_names_suggest_the_closest(
    queries: GraphQueries, name: str, suggestion: str | None
) -> None:
    with pytest.raises(UnknownNode) as caught:
        queries.graph(WINDOW, Level.SERVICE, service=name)
    assert caught.value.name == name
    if suggestion is None:
        assert caught.value.suggestions == []
    else:
        assert suggestion in caught.value.suggestions


def test_coverage_filter_and_namespace_graph(queries: GraphQueries) -> None:
    blind = queries.graph(WINDOW, Level.SERVICE, coverage=Coverage.L4_ONLY)
    assert ("default/reviews", "default/ratings") in _pairs(blind.edges)
    assert all(e.coverage is Coverage.L4_ONLY for e in blind.edges)
    system = queries.graph(WINDOW, Level.SERVICE, namespace="istio-system")
    assert _pairs(system.edges) == {("istio-system/ingress", "default/productpage")}


def test_listings_match_their_schemas(queries: GraphQueries) -> None:
    services = ServicesOut.model_validate(queries.services(WINDOW, Level.SERVICE, None))
    reviews = next(s for s in services.services if s.id == "default/reviews")
    assert reviews.error_rate_in == 0.2 and reviews.coverage == {"full": 1, "l4_only": 1}
    edges = EdgesOut.model_validate(queries.edges(WINDOW, Level.SERVICE, None, None, 0.0, 2))
    assert [e.id for e in edges.edges] == [
        "default/productpage->default/reviews",
        "istio-system/ingress->default/productpage",
    ]
    few = queries.edges(WINDOW, Level.SERVICE, "default", Coverage.FULL, 0.1, 100)
    assert {e["id"] for e in few["edges"]} == {"default/productpage->default/reviews"}
    coverage = CoverageOut.model_validate(queries.coverage(WINDOW, None, 10))
    assert coverage.blind_spots[0].edge == "default/reviews->default/ratings"
    assert coverage.blind_bytes < coverage.total_bytes
    assert coverage.l7_coverage_by_bytes is not None and 0 < coverage.l7_coverage_by_bytes < 1


def test_triage_compares_with_the_baseline(queries: GraphQueries) -> None:
    out = TriageOut.model_validate(queries.triage("productpage", WINDOW, 3600, 2))
    kinds = {(f.kind, f.edge) for f in out.findings}
    assert ("error_rate_regression", "default/productpage->default/reviews") in kinds
    assert ("latency_regression", "default/productpage->default/reviews") in kinds
    assert ("vanished_edge", "default/productpage->default/old") in kinds
    assert ("plaintext_link", "default/reviews->default/ratings") in kinds
    assert out.findings[0].severity == "critical"


def test_trace_hops_carry_l4_and_dark_hops(queries: GraphQueries) -> None:
    out = TraceOut.model_validate(queries.trace(TRACE))
    assert [h.span_id for h in out.hops] == ["1" * 16, "2" * 16]
    assert out.hops[1].l4 is not None and out.hops[1].l4.connections_opened == 2
    assert out.hops[1].via == W and out.hops[0].error_cause is None
    assert {d.id for d in out.dark_hops} >= {"default/reviews->default/ratings"}
    assert all(d.coverage == "l4_only" for d in out.dark_hops)
    assert queries.trace("cd" * 16) is None


def test_grafana_series_and_events(queries: GraphQueries) -> None:
    ids = {"default/productpage->default/reviews", "default/productpage->default/details"}
    rate = queries.edge_series(WINDOW, Level.SERVICE, ids, "edge_request_rate")
    assert len(rate["default/productpage->default/reviews"]) == 15
    assert rate["default/productpage->default/reviews"][0] == (T0 * 1000, 25 / 60)
    assert rate["default/productpage->default/details"][0] == (T0 * 1000, 2 / 60)  # attributed
    assert rate["default/productpage->default/reviews"][-1] == ((NOW - 60) * 1000, 0.0)
    p99 = queries.edge_series(WINDOW, Level.SERVICE, ids, "edge_latency_p99")
    assert p99["default/productpage->default/reviews"][-1][1] is None
    events = queries.edge_events(WINDOW, Level.SERVICE, ids)
    titles = {e["title"] for e in events}
    assert "new edge default/productpage->default/details" in titles
    assert any(t.startswith("default/productpage->default/reviews errors") for t in titles)


def test_node_list_by_kind(queries: GraphQueries) -> None:
    unknown = queries.node_list(WINDOW, "unknown")
    assert {n.id for n in unknown} == {"unknown/10.1.2.3", "unknown/caller-of-x"}
    assert "default/reviews" in {n.id for n in queries.node_list(WINDOW, None)}
    assert queries.node_list(WINDOW, "workload") == []
