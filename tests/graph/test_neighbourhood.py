from __future__ import annotations

import pytest

from app.domain import Coverage
from app.graph.model import GraphEdge
from app.graph.neighbourhood import Direction, blast_radius, neighbourhood
from tests.graph.fixtures import bookinfo, l4, l7

EDGES = bookinfo().edges


def fetch_from(edges: list[GraphEdge]):  # type: ignore[no-untyped-def]
    calls: list[tuple[frozenset[str], bool]] = []

    def fetch(nodes: set[str], outgoing: bool) -> list[GraphEdge]:
        calls.append((frozenset(nodes), outgoing))
        return [e for e in edges if (e.source if outgoing else e.target) in nodes]

    return fetch, calls


def ids(edges: list[GraphEdge]) -> set[str]:
    return {e.id for e in edges}


@pytest.mark.parametrize(
    ("direction", "depth", "expected"),
    [
        (
            Direction.DOWNSTREAM,
            1,
            {"default/productpage->default/details", "default/productpage->default/reviews"},
        ),
        (
            Direction.DOWNSTREAM,
            2,
            {
                "default/productpage->default/details",
                "default/productpage->default/reviews",
                "default/reviews->default/ratings",
            },
        ),
        (Direction.UPSTREAM, 1, {"istio-system/ingress->default/productpage"}),
        (Direction.UPSTREAM, 5, {"istio-system/ingress->default/productpage"}),
        (
            Direction.BOTH,
            1,
            {
                "istio-system/ingress->default/productpage",
                "default/productpage->default/details",
                "default/productpage->default/reviews",
            },
        ),
    ],
)
def test_neighbourhood_follows_direction_and_depth(
    direction: Direction, depth: int, expected: set[str]
) -> None:
    fetch, _ = fetch_from(EDGES)
    assert ids(neighbourhood(["default/productpage"], depth, direction, fetch)) == expected


def test_neighbourhood_fetches_only_the_frontier_and_stops_early() -> None:
    fetch, calls = fetch_from(EDGES)
    neighbourhood(["default/ratings"], 10, Direction.DOWNSTREAM, fetch)
    assert calls == [
        (frozenset({"default/ratings"}), True),
        (frozenset({"external/mysql.example.com"}), True),
    ]


def test_neighbourhood_survives_cycles() -> None:
    cyclic = [GraphEdge("ns/a", "ns/b", l7=l7(1)), GraphEdge("ns/b", "ns/a", l7=l7(1))]
    fetch, calls = fetch_from(cyclic)
    assert ids(neighbourhood(["ns/a"], 10, Direction.DOWNSTREAM, fetch)) == {
        "ns/a->ns/b",
        "ns/b->ns/a",
    }
    assert len(calls) == 2


def test_blast_radius_ranks_nearest_then_busiest() -> None:
    upstream = [
        GraphEdge("ns/a", "ns/db", l7=l7(10)),
        GraphEdge("ns/b", "ns/db", l7=l7(500)),
        GraphEdge("ns/c", "ns/b", l4=l4(3)),
        GraphEdge("ns/d", "ns/c", l7=l7(1)),
    ]
    radius = blast_radius("ns/db", upstream)
    assert [(d.node, d.distance) for d in radius] == [
        ("ns/b", 1),
        ("ns/a", 1),
        ("ns/c", 2),
        ("ns/d", 3),
    ]
    assert radius[0].requests == 500
    assert radius[2].bytes == 3000


def test_blast_radius_of_an_isolated_service_is_empty() -> None:
    assert blast_radius("ns/nobody", EDGES) == []


@pytest.mark.parametrize(
    ("edge", "coverage", "plaintext"),
    [
        (GraphEdge("a/x", "a/y", l7=l7(5), l4=l4(1)), Coverage.FULL, False),
        (GraphEdge("a/x", "a/y", l4=l4(4, mtls=3)), Coverage.L4_ONLY, True),
        (GraphEdge("a/x", "a/y", l7=l7(5)), Coverage.L7_ONLY, False),
        (GraphEdge("a/x", "a/y", l7=l7(0), l4=l4(2)), Coverage.L4_ONLY, False),
    ],
)
def test_coverage_classes(edge: GraphEdge, coverage: Coverage, plaintext: bool) -> None:
    assert edge.coverage is coverage
    assert edge.plaintext is plaintext
