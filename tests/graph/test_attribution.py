from __future__ import annotations

import pytest

from app.domain import Coverage
from app.graph.attribution import attribute, merge_l7_approx, sum_l7
from app.graph.model import GraphEdge
from tests.graph.fixtures import l4, l7

B, W = "default/reviews", "default/waypoint"
U, U2 = "unknown/10.1.2.3", "unknown/caller-of-reviews"


def unattributed(source: str = U, requests: int = 10, via: str = W) -> GraphEdge:
    return GraphEdge(source, B, "http", via, l7=l7(requests), provenance={"unattributed": requests})


def l4_edge(source: str, connections: int = 4, nbytes: int = 1000, via: str = W) -> GraphEdge:
    return GraphEdge(source, B, "tcp", via, l4=l4(connections, nbytes=nbytes))


CASES = {
    "single candidate takes the requests": (
        [unattributed(), l4_edge("default/productpage")],
        {("default/productpage", B): ({"l4_single": 10}, {}, Coverage.FULL)},
    ),
    "several candidates stay ambiguous with byte shares": (
        [unattributed(), l4_edge("default/a", nbytes=300), l4_edge("default/b", nbytes=100)],
        {
            (U, B): (
                {"l4_ambiguous": 10},
                {"default/a": 0.75, "default/b": 0.25},
                Coverage.L7_ONLY,
            ),
            ("default/a", B): ({}, {}, Coverage.L4_ONLY),
            ("default/b", B): ({}, {}, Coverage.L4_ONLY),
        },
    ),
    "connections decide when no bytes were counted": (
        [unattributed(), l4_edge("default/a", 3, nbytes=0), l4_edge("default/b", 1, nbytes=0)],
        {
            (U, B): (
                {"l4_ambiguous": 10},
                {"default/a": 0.75, "default/b": 0.25},
                Coverage.L7_ONLY,
            ),
            ("default/a", B): ({}, {}, Coverage.L4_ONLY),
            ("default/b", B): ({}, {}, Coverage.L4_ONLY),
        },
    ),
    "no candidate stays unattributed": (
        [unattributed()],
        {(U, B): ({"unattributed": 10}, {}, Coverage.L7_ONLY)},
    ),
    "a different waypoint is no candidate": (
        [unattributed(), l4_edge("default/a", via="other/waypoint")],
        {
            (U, B): ({"unattributed": 10}, {}, Coverage.L7_ONLY),
            ("default/a", B): ({}, {}, Coverage.L4_ONLY),
        },
    ),
    "two unknown callers both land on the single candidate": (
        [unattributed(), unattributed(U2, 5), l4_edge("default/a")],
        {("default/a", B): ({"l4_single": 15}, {}, Coverage.FULL)},
    ),
    "an attributed edge keeps its own provenance beside the moved requests": (
        [
            unattributed(),
            GraphEdge(
                "default/a", B, "http", W, l7=l7(4), l4=l4(2), provenance={"paired_spans": 4}
            ),
        ],
        {("default/a", B): ({"paired_spans": 4, "l4_single": 10}, {}, Coverage.FULL)},
    ),
}


@pytest.mark.parametrize("edges,expected", list(CASES.values()), ids=list(CASES))
def test_attribution_rule(
    edges: list[GraphEdge],
    expected: dict[tuple[str, str], tuple[dict[str, int], dict[str, float], Coverage]],
) -> None:
    result = attribute(edges, {U, U2})
    got = {(e.source, e.target): (e.provenance, e.candidates, e.coverage) for e in result.edges}
    assert got == expected


def test_single_candidate_sums_requests_and_records_the_move() -> None:
    result = attribute([unattributed(requests=7), l4_edge("default/a")], {U})
    (edge,) = result.edges
    assert edge.l7 is not None and edge.l7.requests == 7
    assert edge.via == W and edge.protocol == "http"
    assert result.moved == {(U, B): ("default/a", B)}


def test_an_unknown_source_without_unattributed_provenance_is_left_alone() -> None:
    edge = GraphEdge(U, B, l7=l7(3), provenance={"peer_attribute": 3})
    assert attribute([edge, l4_edge("default/a")], {U}).edges[0] == edge


def test_sum_l7_adds_counters_and_takes_the_given_percentiles() -> None:
    merged = sum_l7(l7(10, errors=1), l7(5), (1.0, 2.0, 3.0))
    assert merged is not None
    assert (merged.requests, merged.errors, merged.status_codes) == (15, 1, {"200": 14, "503": 1})
    assert (merged.p50_ms, merged.p99_ms) == (1.0, 3.0)
    assert merge_l7_approx(GraphEdge("a", "b"), GraphEdge("c", "b", l7=l7(2))) == l7(2)
