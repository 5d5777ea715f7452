from __future__ import annotations

from app.edge.zones import ZonePath, ZoneStats
from app.graph.model import Exemplar, GraphEdge
from app.graph.neighbourhood import Dependent
from app.graph.triage import Severity, triage
from tests.graph.fixtures import l4, l7

W, B = 900.0, 3600.0


def kinds(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.kind, f.edge) for f in findings]


def test_error_regression_is_critical_and_first_with_failed_exemplars() -> None:
    now = [
        GraphEdge(
            "ns/a",
            "ns/svc",
            l7=l7(1000, errors=100),
            exemplars=(Exemplar("failed", "f" * 32, 5, 1),),
        )
    ]
    before = [GraphEdge("ns/a", "ns/svc", l7=l7(4000, errors=8))]
    findings = triage("ns/svc", now, before, W, B, [])
    assert findings[0].kind == "error_rate_regression"
    assert findings[0].severity is Severity.CRITICAL
    assert findings[0].evidence["baseline_error_rate"] == 0.002
    assert findings[0].evidence["failed_traces"] == ["f" * 32]


def test_small_samples_and_steady_error_rates_are_not_findings() -> None:
    steady = [GraphEdge("ns/a", "ns/svc", l7=l7(1000, errors=10))]
    tiny = [GraphEdge("ns/b", "ns/svc", l7=l7(5, errors=5))]
    before = [
        GraphEdge("ns/a", "ns/svc", l7=l7(4000, errors=40)),
        GraphEdge("ns/b", "ns/svc", l7=l7(20)),
    ]
    assert triage("ns/svc", steady + tiny, before, W, B, []) == []


def test_latency_regression_needs_evidence_on_both_sides() -> None:
    now = [
        GraphEdge("ns/a", "ns/svc", l7=l7(100, p99=400.0)),
        GraphEdge("ns/b", "ns/svc", l7=l7(100, p99=900.0)),
    ]
    before = [
        GraphEdge("ns/a", "ns/svc", l7=l7(100, p99=100.0)),
        GraphEdge("ns/b", "ns/svc", l7=l7(3, p99=1.0)),
    ]
    findings = triage("ns/svc", now, before, W, B, [])
    assert kinds(findings) == [("latency_regression", "ns/a->ns/svc")]
    assert findings[0].severity is Severity.CRITICAL


def test_new_vanished_blind_and_plaintext_edges() -> None:
    now = [
        GraphEdge("ns/svc", "ns/new", l7=l7(10)),
        GraphEdge("ns/svc", "ns/db", l4=l4(10, mtls=4)),
    ]
    before = [GraphEdge("ns/svc", "ns/db", l4=l4(10)), GraphEdge("ns/old", "ns/svc", l7=l7(50))]
    found = set(kinds(triage("ns/svc", now, before, W, B, [])))
    assert found == {
        ("new_edge", "ns/svc->ns/new"),
        ("blind_spot", "ns/svc->ns/db"),
        ("plaintext_link", "ns/svc->ns/db"),
        ("vanished_edge", "ns/old->ns/svc"),
    }


def test_blast_radius_finding_lists_dependents_and_ranking_puts_warnings_before_info() -> None:
    deps = [Dependent("ns/a", 1, 100, 0), Dependent("ns/b", 2, 0, 10)]
    now = [GraphEdge("ns/svc", "ns/db", l4=l4(10, mtls=0))]
    findings = triage("ns/svc", now, now, W, B, deps)
    assert [f.kind for f in findings] == ["plaintext_link", "blind_spot", "blast_radius"]
    assert findings[-1].evidence["dependents"][0] == {
        "node": "ns/a",
        "distance": 1,
        "requests": 100,
        "bytes": 0,
    }


def test_traffic_under_an_overflow_node_is_a_finding_naming_the_sender() -> None:
    edge = GraphEdge("shop/checkout", "external/__overflow__", l7=l7(300))
    before = [edge]  # not new: the overflow finding stands on its own
    findings = [f for f in triage("shop/checkout", [edge], before, W, B, [])]
    (finding,) = [f for f in findings if f.kind == "cardinality_overflow"]
    assert finding.severity is Severity.WARNING
    assert finding.evidence == {
        "sender": "shop/checkout",
        "namespace": "external",
        "requests": 300,
        "bytes": 0,
    }
    assert "shop/checkout" in finding.summary
    plain = GraphEdge("shop/checkout", "shop/cart", l7=l7(300))
    assert not [
        f
        for f in triage("shop/checkout", [plain], [plain], W, B, [])
        if f.kind == "cardinality_overflow"
    ]


def test_a_waypoint_in_another_zone_is_a_detour_finding_and_a_local_one_is_not() -> None:
    far = ZoneStats((ZonePath("a", "b", "a", True, 1000), ZonePath("a", "b", "b", True, 500)))
    near = ZoneStats((ZonePath("a", "a", "b", True, 1000),))  # crosses anyway: no detour
    now = [
        GraphEdge("ns/a", "ns/svc", via="ns/waypoint", l4=l4(10), zones=far),
        GraphEdge("ns/c", "ns/svc", via="ns/waypoint", l4=l4(10), zones=near),
        GraphEdge("ns/d", "ns/svc", l4=l4(10), zones=far),  # no waypoint: nothing to blame
    ]
    detours = [f for f in triage("ns/svc", now, now, W, B, []) if f.kind == "waypoint_detour"]
    assert [(f.edge, f.evidence["detour_bytes"]) for f in detours] == [("ns/a->ns/svc", 2000)]
    assert detours[0].evidence["paths"] == [
        {"client_zone": "a", "waypoint_zone": "b", "server_zone": "a", "detour_bytes": 2000}
    ]
