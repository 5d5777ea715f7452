"""End to end against ground truth on a mesh that looks like a real cluster (issue 13).

`realistic_bookinfo()` (app/sim/realistic.py) has what the plain bookinfo leaves out: Kubernetes
Service, canonical service and OTel `service.name` that differ; a waypoint named without
"waypoint" (`bookinfo-l7`) and a workload named with it (`waypoint-ui`); an ingress gateway, a
sidecar workload, a workload waypoint with pod-IP traffic. It runs for Istio 1.27 to 1.30, whose
waypoint and gateway spans differ (app/sim/istio.py); the truth is the same for all. The product's
node identity contract (README, DESIGN.md "Node identity"): service nodes are
`<ns>/<canonical service>`, waypoints are never edge endpoints (`via`), the gateway is a node of
kind `gateway`, other names are `aliases`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.settings import Settings
from app.sim import Coverage, Truth
from app.sim.istio import ISTIO_VERSIONS, IstioVersion
from app.sim.realistic import realistic_bookinfo
from tests.e2e.test_accuracy import assert_perfect, run_mesh

GATEWAY = "istio-system/istio-ingressgateway"
REVIEWS = "bookinfo/reviews"


def via_problems(truth: Truth, served: list[dict[str, Any]]) -> list[str]:
    """`score` does not look at `via`; the contract says an edge through a waypoint names it."""
    waypoints = {e.via for e in truth.edges.values() if e.via}
    got = {(e["source"], e["target"]): e for e in served}
    problems = [
        f"{(e['source'], e['target'])}: a waypoint as an endpoint"
        for e in served
        if e["source"] in waypoints or e["target"] in waypoints
    ]
    for edge in truth.visible_edges():
        served_edge = got.get((edge.source, edge.target))
        if served_edge is not None and (served_edge.get("via") or "") != edge.via:
            problems.append(f"{(edge.source, edge.target)}: via {served_edge.get('via')!r}")
    return problems


def _get(base_url: str, path: str, params: dict[str, str]) -> Any:
    response = httpx.get(f"{base_url}{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("istio_version", ISTIO_VERSIONS)
def test_realistic_bookinfo_graph_equals_truth(
    settings: Settings, istio_version: IstioVersion
) -> None:
    topology = realistic_bookinfo()
    for result in run_mesh(
        settings, topology, seed=5, ticks=2, protocol="grpc", istio_version=istio_version
    ):
        assert_perfect(f"realistic bookinfo, Istio {istio_version}", result.truth, result.edges)
        assert via_problems(result.truth, result.edges) == []
        services = _get(result.base_url, "/services", result.params)["services"]
        kinds = {s["id"]: s["kind"] for s in services}
        assert kinds.get(GATEWAY) == "gateway", kinds
        expected_kinds = {k: v for k, v in result.truth.nodes.items() if k in kinds}
        assert {k: kinds[k] for k in expected_kinds} == expected_kinds


def test_a_service_with_three_names_is_one_node_with_aliases(settings: Settings) -> None:
    """reviews: Kubernetes Service `bookinfo-reviews`, pods `app=reviews`, OTel `reviews-svc`."""
    for result in run_mesh(
        settings, realistic_bookinfo(), seed=6, ticks=2, protocol="http", istio_version="1.29"
    ):
        wanted = set(result.truth.aliases[REVIEWS])
        assert wanted == {"bookinfo/bookinfo-reviews", "bookinfo/reviews-svc"}
        services = _get(result.base_url, "/services", result.params)["services"]
        ids = [s["id"] for s in services]
        assert ids.count(REVIEWS) == 1, ids
        assert not wanted & set(ids), ids
        entry = next(s for s in services if s["id"] == REVIEWS)
        assert wanted <= set(entry.get("aliases") or []), entry
        graph = _get(
            result.base_url, "/graph", {**result.params, "service": "reviews", "depth": "1"}
        )
        node = next(n for n in graph["nodes"] if n["id"] == REVIEWS)
        assert wanted <= set(node.get("aliases") or []), node
        touching = [e for e in graph["edges"] if REVIEWS in (e["source"], e["target"])]
        assert touching and {e["coverage"] for e in touching} == {Coverage.FULL.value}, touching
