"""/cost and /advisor over HTTP on a store with hand-built edges (SQLite and PostgreSQL); every
expected figure is worked out by hand in the comments from the defaults (README "Cost").

One minute (rates divide by 60 s), zones a/b/c:
* A → B through waypoint W (zone b), A and B in zone a: 120 requests, 3e9 bytes on the path
  a → b → a: two crossings a direct call would not make (6e9 cross-zone, all detour).
* A → C direct, L4 only (a blind spot): 120 connections, 3e9 bytes a → b (one crossing).
* D → C direct, L4 only: 60 connections, 1.5e9 bytes c → c (none).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.api.cost import build_cost_router, cost_model
from app.api.cost_schemas import AdvisorOut, CostOut
from app.api.problems import install_problem_handlers
from app.domain import ZtunnelCount
from app.edge.bucket import EdgeBucket
from app.edge.stats import L4Stats
from app.graph.queries import GraphQueries
from app.poll.zone_split import (
    LABELS_SOURCE,
    NODE_TOPOLOGY_SOURCE,
    SPANS_SOURCE,
    zone_sources,
)
from app.settings import Settings
from app.store.writer import write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

T0 = 35_100
WINDOW = {"from": str(T0 * 1000), "to": str((T0 + 60) * 1000)}
A, B, C, D, W = "ns/a", "ns/b", "ns/c", "ns/d", "ns/waypoint"
GB = 1_000_000_000


def _l4(opened: int, sent: int) -> L4Stats:
    return L4Stats(opened, opened, sent, 2 * sent, opened)


def scenario() -> dict[tuple[int, str, str], EdgeBucket]:
    through = l7_bucket([5.0] * 120, via=W)
    through.l4 = {"sole": _l4(12, GB)}
    through.l4_zone_bytes = {"sole|a|b|a|x": 3 * GB}
    blind = l4_bucket(120)
    blind.l4 = {"destination": _l4(120, GB), "source": _l4(120, GB)}
    # both reporters print the same path; only the chosen one (destination) counts
    blind.l4_zone_bytes = {"destination|a||b|x": 3 * GB, "source|a||b|x": 3 * GB}
    local = l4_bucket(60)
    local.l4 = {"destination": _l4(60, GB // 2)}
    local.l4_zone_bytes = {"destination|c||c|x": 3 * GB // 2}
    return {(T0, A, B): through, (T0, A, C): blind, (T0, D, C): local}


COUNTED = ZtunnelCount(3, "ztunnel endpoints scraped (up or not)")


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    write_batch(engine, batch(scenario()))
    app = FastAPI()
    install_problem_handlers(app)
    model = cost_model(Settings(), zone_sources(node_topology=True))
    app.include_router(build_cost_router(GraphQueries(engine, 60), model, lambda: COUNTED))
    with TestClient(app) as test_client:
        yield test_client


def test_cost_prices_cross_zone_bytes_and_detours_with_their_inputs(client: TestClient) -> None:
    response = client.get("/cost", params=WINDOW)
    assert response.status_code == 200, response.text
    body = CostOut.model_validate(response.json())
    cz = body.cross_zone
    assert (cz.bytes, cz.cross_zone_bytes, cz.detour_bytes) == (7.5 * GB, 9 * GB, 6 * GB)
    assert cz.cross_zone_usd == pytest.approx(9 * (0.01 + 0.01))  # both directions billed
    assert cz.detour_usd == pytest.approx(6 * 0.02) and cz.detour_share == pytest.approx(2 / 3)
    assert cz.inputs["cost_cross_zone_usd_per_gb_out"] == 0.01
    assert cz.inputs["cross_zone_bytes"] == 9 * GB
    # where the zones came from, in precedence order: labels, node topology, waypoint spans
    assert cz.inputs["zones_from"] == [LABELS_SOURCE, NODE_TOPOLOGY_SOURCE, SPANS_SOURCE]
    (wp,) = cz.by_waypoint
    assert wp.inputs["zones_from"] == cz.inputs["zones_from"]
    assert (wp.waypoint, wp.zones, wp.detour_bytes) == (W, ["b"], 6 * GB)

    p = body.proxies
    # calls/s: A→B 120 requests/60 s = 2; A→C 2 and D→C 1 connections/s; each at two ends
    assert p.rps == pytest.approx(5.0)
    assert p.sidecars.rps == pytest.approx(10.0)
    assert p.sidecars.cpu_millicores == pytest.approx(638 * 10 / 2000)  # 3.19
    assert p.sidecars.memory_mib == pytest.approx(288 * 10 / 2000)  # 1.44
    z = p.ambient.ztunnel
    assert (z.nodes, z.cpu_millicores, z.memory_mib) == (3, 0.3, 0.06)  # 60m, 12Mi * 10/2000
    assert z.nodes_counted_from == z.inputs["nodes_counted_from"] == COUNTED.counted_from
    (w,) = p.ambient.waypoints
    assert (w.waypoint, w.rps, w.cpu_millicores, w.memory_mib) == (W, 2.0, 0.37, 0.068)
    assert p.ambient.cpu_millicores == pytest.approx(0.67)
    assert p.saving.cpu_millicores == pytest.approx(3.19 - 0.67)
    assert p.saving.memory_mib == pytest.approx(1.44 - 0.128)
    assert z.inputs["cost_ztunnel_cpu_millicores"] == 60 and z.inputs["rps"] == 10
    assert z.inputs["edges_rated_by_connections"] == 2
    assert all(x.estimate for x in (z, w, p.sidecars)) and cz.estimate


def test_the_advisor_ranks_blind_services_and_prices_existing_detours(client: TestClient) -> None:
    response = client.get("/advisor", params=WINDOW)
    assert response.status_code == 200, response.text
    body = AdvisorOut.model_validate(response.json())
    (c,) = body.candidates  # B is seen by its waypoint already
    assert (c.service, c.dark_bytes, c.dark_connections, c.callers) == (
        C,
        4.5 * GB,
        180,
        [A, D],
    )
    # 3 connections/s: 370m * 3/2000, 68Mi * 3/2000
    assert (c.waypoint.cpu_millicores, c.waypoint.memory_mib) == (0.555, 0.102)
    # placed in b (3e9 of C's bytes are served there, 1.5e9 in c): a→b gains nothing,
    # c→c becomes c→b→c, two crossings of 1.5e9
    assert c.waypoint_zone == "b" and c.added_cross_zone_bytes == 3 * GB
    assert c.added_cross_zone_usd == pytest.approx(0.06)
    assert c.dark_bytes_per_millicore == pytest.approx(4.5 * GB / 0.555, abs=0.001)
    (w,) = body.waypoints
    assert (w.waypoint, w.detour_bytes, w.zone_local_replica_removes_bytes) == (W, 6 * GB, 6 * GB)
    assert w.replica_zones == ["a"] and w.detour_usd == pytest.approx(0.12)


def test_a_namespace_without_traffic_costs_nothing(client: TestClient) -> None:
    body = client.get("/cost", params={**WINDOW, "namespace": "elsewhere"}).json()
    assert body["cross_zone"]["cross_zone_bytes"] == 0 and body["proxies"]["rps"] == 0
    assert (
        client.get("/advisor", params={**WINDOW, "namespace": "elsewhere"}).json()["candidates"]
        == []
    )


def test_bad_windows_are_problems(client: TestClient) -> None:
    for route in ("/cost", "/advisor"):
        response = client.get(route, params={"window": "soon"})
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
