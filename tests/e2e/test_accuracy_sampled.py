"""End to end at the trace sampling real clusters run (issue 14): Istio samples 1 % of traces by
default, `deploy/istio` 10 %. The simulator records each request's trace with that probability
(per trace, every span or none) while its waypoints count every request in their request
metrics, which meshstitch scrapes beside ztunnel.

The truth (app/sim/truth.py) says what can be exact: every count on an edge through a waypoint,
whatever the sampling; on an edge seen only through spans (a gateway's, a sidecar's, two
instrumented apps), the sampled spans and nothing more, marked `sampled`. The score
(tests/e2e/test_accuracy.py) checks both, where each edge's numbers come from, the sampling share,
and that the true p99 lies inside the stated bound.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from app.settings import Settings
from app.sim import Coverage, Edge, Topology, bookinfo, generate_mesh, validate
from app.sim.realistic import realistic_bookinfo
from tests.e2e.test_accuracy import assert_perfect, run_mesh
from tests.e2e.test_accuracy_real_clusters import via_problems


@pytest.mark.parametrize("rate", [0.1, 0.01])
def test_realistic_bookinfo_at_istio_sampling_rates_equals_truth(
    settings: Settings, rate: float
) -> None:
    for result in run_mesh(
        settings, realistic_bookinfo(), seed=21, ticks=3, protocol="grpc", trace_sampling=rate
    ):
        assert_perfect(f"realistic bookinfo, {rate:.0%} of traces", result.truth, result.edges)
        assert via_problems(result.truth, result.edges) == []
        served = {(e["source"], e["target"]): e for e in result.edges}
        metered = [e for e in result.truth.visible_edges() if e.metrics and e.requests]
        assert metered, "the mesh has waypoint edges"
        for edge in metered:
            l7 = served[(edge.source, edge.target)]["l7"]
            assert l7["requests"] == edge.requests > l7["spans"], l7  # exact, not the sample
        span_only = [e for e in result.truth.visible_edges() if e.has_l7 and not e.metrics]
        assert span_only, "the mesh has gateway/sidecar edges seen only through spans"


def test_random_mesh_at_ten_percent_equals_truth(settings: Settings) -> None:
    for result in run_mesh(
        settings, generate_mesh(120, seed=11), seed=12, ticks=2, protocol="http", trace_sampling=0.1
    ):
        assert_perfect("random-120, 10 % of traces", result.truth, result.edges)


def test_no_trace_sampled_waypoint_edges_are_full_and_exact(settings: Settings) -> None:
    """Coverage is decided on traffic: with no span at all, an edge through a waypoint is still
    `full` (request metrics + L4), with its exact counts and latency from the histogram."""
    for result in run_mesh(
        settings, bookinfo(), seed=4, ticks=2, protocol="grpc", trace_sampling=0.0
    ):
        assert_perfect("bookinfo, no trace sampled", result.truth, result.edges)
        through = [e for e in result.edges if e.get("via")]
        assert through and all(e["coverage"] == Coverage.FULL.value for e in through), through
        for edge in through:
            l7 = edge["l7"]
            assert l7["spans"] == 0 and l7["counts_from"] == "metrics" and l7["exact"], l7
            assert l7["latency_ms"]["from"] == "histogram", l7["latency_ms"]


def _with_denied_edge() -> Topology:
    """bookinfo plus ratings → details, denied by an L4 AuthorizationPolicy at details."""
    mesh = bookinfo()
    denied = Edge("bookinfo/ratings", "bookinfo/details", rate_rps=2.0, denied=True)
    return validate(dataclasses.replace(mesh, edges=(*mesh.edges, denied)))


def test_connections_denied_by_policy_are_an_edge_with_failures_and_a_finding(
    settings: Settings,
) -> None:
    for result in run_mesh(settings, _with_denied_edge(), seed=8, ticks=2, protocol="grpc"):
        assert_perfect("bookinfo + a denied edge", result.truth, result.edges)
        truth = result.truth.edge("bookinfo/ratings", "bookinfo/details")
        assert truth.connections_failed == truth.connections_opened > 0
        edge = next(e for e in result.edges if e["id"] == "bookinfo/ratings->bookinfo/details")
        assert edge["coverage"] == Coverage.L4_ONLY.value and edge["l7"] is None, edge
        assert edge["l4"]["connections_failed"] == truth.connections_failed, edge["l4"]
        assert edge["l4"]["failures"] == truth.failures == {"DENY": truth.connections_failed}
        triage = httpx.get(
            f"{result.base_url}/triage",
            params={**result.params, "service": "bookinfo/details"},
            timeout=30,
        )
        assert triage.status_code == 200, triage.text
        denied = [f for f in triage.json()["findings"] if f["kind"] == "connections_denied"]
        assert [f["edge"] for f in denied] == ["bookinfo/ratings->bookinfo/details"], denied
