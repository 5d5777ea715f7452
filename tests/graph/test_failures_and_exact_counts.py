"""What the graph says about L4 failures and about where L7 numbers come from: triage findings,
the terminal table, Node Graph frames, and attribution when the waypoint's metrics name the
callers."""

from __future__ import annotations

from dataclasses import replace

from app.domain import Coverage
from app.grafana.frames import node_graph_frames
from app.graph.attribution import attribute
from app.graph.export import to_table
from app.graph.model import Graph, GraphEdge, node_from_id
from app.graph.triage import Severity, triage
from tests.graph.fixtures import l4, l7

SVC = "default/reviews"


def failing(flags: dict[str, int], opened: int = 100) -> GraphEdge:
    counters = replace(
        l4(opened),
        connections_failed=sum(flags.values()),
        failures=tuple(sorted(flags.items())),
    )
    return GraphEdge("default/productpage", SVC, "tcp", l4=counters)


def exact(requests: int, spans: int) -> GraphEdge:
    stats = replace(l7(requests), counts_from="metrics", spans=spans, sampling_share=0.01)
    return GraphEdge("default/productpage", SVC, "http", "default/wp", l7=stats, l4=l4(10))


def test_denied_and_failing_connections_are_separate_findings_ranked_with_the_others() -> None:
    edges = [failing({"DENY": 40, "CONNECT": 10, "TLS_FAILURE": 2})]
    findings = triage(SVC, edges, edges, 900, 3600, [])
    by_kind = {f.kind: f for f in findings}
    denied, broken = by_kind["connections_denied"], by_kind["connections_failing"]
    assert denied.evidence["failures"] == {"DENY": 40} and denied.severity is Severity.WARNING
    assert broken.evidence["failures"] == {"CONNECT": 10, "TLS_FAILURE": 2}
    assert broken.severity is Severity.CRITICAL  # 12 % of the connections
    assert findings[0] is broken
    assert "denied by policy" in denied.summary


def test_a_few_failures_warn_and_none_say_nothing() -> None:
    (finding,) = [
        f
        for f in triage(SVC, [failing({"CONNECT": 1}, 1000)], [], 900, 3600, [])
        if f.edge and f.kind.startswith("connections")
    ]
    assert finding.severity is Severity.WARNING
    assert not [
        f for f in triage(SVC, [failing({})], [], 900, 3600, []) if f.kind.startswith("conn")
    ]


def test_an_edge_with_only_failed_connections_is_shown_with_its_failures() -> None:
    counters = replace(
        l4(0, nbytes=0), connections_failed=3, failures=(("DENY", 3),), connections_closed=3
    )
    edge = GraphEdge("default/productpage", SVC, "tcp", l4=counters)
    graph = Graph({n: node_from_id(n) for n in (edge.source, SVC)}, [edge], 0, 60)
    assert edge.coverage is Coverage.L4_ONLY
    table = to_table(graph)
    assert "FAILED" in table.splitlines()[0] and "3 DENY" in table
    frames = node_graph_frames(graph)
    fields = {f["name"]: f["values"] for f in frames[1]["fields"]}
    assert fields["detail__connections_failed"] == [3]
    assert fields["detail__failures"] == ["DENY 3"]
    assert fields["secondarystat"] == ["3 conn failed"]


def test_the_table_and_frames_say_exact_or_sampled() -> None:
    sampled = GraphEdge("default/a", SVC, "http", l7=replace(l7(50), sampling_share=0.1), l4=l4(5))
    edges = [exact(1000, 10), sampled]
    graph = Graph(
        {n: node_from_id(n) for n in ("default/a", "default/productpage", SVC)}, edges, 0, 60
    )
    table = to_table(graph)
    assert "exact" in table and "sampled 10%" in table
    fields = {f["name"]: f["values"] for f in node_graph_frames(graph)[1]["fields"]}
    assert sorted(fields["detail__counts"]) == ["exact", "sampled"]


def test_unattributed_spans_fold_into_callers_the_waypoint_metrics_count_exactly() -> None:
    unknown = "unknown/caller-of-reviews.default"
    u = GraphEdge(unknown, SVC, "http", "default/wp", l7=l7(7), provenance={"unattributed": 7})
    a = replace(exact(600, 0), source="default/a")
    b = replace(exact(400, 0), source="default/b")
    result = attribute([u, a, b], {unknown})
    assert {(e.source, e.target) for e in result.edges} == {("default/a", SVC), ("default/b", SVC)}
    assert sum(e.l7.requests for e in result.edges if e.l7) == 1000  # counted once
    # a candidate without metrics keeps the old rule: the span edge stays, ambiguous
    c = GraphEdge("default/c", SVC, "tcp", "default/wp", l4=l4(3))
    kept = attribute([u, a, c], {unknown})
    assert (unknown, SVC) in {(e.source, e.target) for e in kept.edges}
