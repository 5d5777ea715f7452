"""The graph router over HTTP on a store with known content (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pydot
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.api.graph import build_graph_router
from app.api.problems import install_problem_handlers
from app.api.schemas import GraphOut
from app.graph.queries import GraphQueries
from tests.graph.scenario import NOW, TRACE, build


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    build(engine)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(build_graph_router(GraphQueries(engine, 60), clock=lambda: NOW))
    with TestClient(app) as test_client:
        yield test_client


def test_graph_json(client: TestClient) -> None:
    response = client.get("/graph", params={"service": "productpage", "depth": 2})
    assert response.status_code == 200
    graph = GraphOut.model_validate(response.json())
    ids = {e.id for e in graph.edges}
    assert "default/productpage->default/details" in ids
    details = next(e for e in graph.edges if e.id == "default/productpage->default/details")
    assert details.coverage == "full" and details.provenance.evidence == {"l4_single": 10}


def test_unknown_service_is_a_problem_with_suggestions(client: TestClient) -> None:
    response = client.get("/graph", params={"service": "reviewz"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "default/reviews" in response.json()["suggestions"]


@pytest.mark.parametrize(
    "params", [{"window": "soon"}, {"window": "1h", "from": "0"}, {"from": "2", "to": "1"}]
)
def test_bad_windows_are_400(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/graph", params={"service": "reviews", **params})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


# pydot 4 calls pyparsing APIs that pyparsing 3.3 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_formats(client: TestClient) -> None:
    params = {"service": "default/productpage", "depth": "2"}
    dot = client.get("/graph", params={**params, "format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    (parsed,) = pydot.graph_from_dot_data(dot.text) or [None]
    assert parsed is not None and len(parsed.get_edges()) == 4
    assert client.get("/graph", params={**params, "format": "mermaid"}).text.startswith("flowchart")
    cyto = client.get("/graph", params={**params, "format": "cytoscape"}).json()
    assert {"nodes", "edges"} <= set(cyto["elements"])
    assert all("source" in e["data"] for e in cyto["elements"]["edges"])
    frames = client.get("/graph", params={**params, "format": "nodegraph"}).json()
    assert {f["name"] for f in frames} == {"nodes", "edges"}
    assert "SOURCE" in client.get("/graph", params={**params, "format": "table"}).text


def test_listings_triage_and_traces(client: TestClient) -> None:
    assert client.get("/services").json()["services"]
    assert client.get("/edges", params={"coverage": "l4_only"}).json()["edges"]
    assert (
        client.get("/coverage").json()["blind_spots"][0]["edge"]
        == "default/reviews->default/ratings"
    )
    triage = client.get("/triage", params={"service": "productpage", "window": "15m"})
    assert triage.status_code == 200 and triage.json()["findings"]
    assert client.get("/triage", params={"service": "nope"}).status_code == 404
    trace = client.get(f"/traces/{TRACE.upper()}")
    assert trace.status_code == 200 and len(trace.json()["hops"]) == 2
    assert client.get("/traces/" + "0" * 32).status_code == 404


@pytest.mark.parametrize(
    ("path", "items", "limit"),
    [("/services", "services", 2), ("/edges", "edges", 2), ("/coverage", "blind_spots", 1)],
)
def test_listings_page_through_everything_once(
    client: TestClient, path: str, items: str, limit: int
) -> None:
    whole = client.get(path, params={"limit": 10_000}).json()
    assert whole["page"]["truncated"] is False and whole["page"]["next_offset"] is None
    everything = whole[items]
    assert len(everything) == whole["page"]["total"] > limit
    pages: list[object] = []
    offset: int | None = 0
    for _ in range(len(everything)):  # bounded: one page per item at most
        if offset is None:
            break
        body = client.get(path, params={"limit": limit, "offset": offset}).json()
        assert len(body[items]) <= limit
        assert body["page"]["total"] == len(everything)
        assert body["page"]["truncated"] is (body["page"]["next_offset"] is not None)
        pages.extend(body[items])
        offset = body["page"]["next_offset"]
    assert pages == everything


def test_graph_keeps_the_busiest_edges_and_the_nodes_they_touch(client: TestClient) -> None:
    params = {"service": "default/productpage", "depth": "2"}
    whole = client.get("/graph", params=params).json()
    assert whole["page"]["truncated"] is False
    assert whole["page"]["total"] == len(whole["edges"]) > 1
    cut = client.get("/graph", params={**params, "limit": 1})
    body = GraphOut.model_validate(cut.json())
    assert body.page is not None and body.page.truncated and body.page.next_offset == 1
    assert body.page.total == len(whole["edges"])
    assert body.page.total_nodes == len(whole["nodes"])
    (edge,) = body.edges
    assert {n.id for n in body.nodes} == {edge.source, edge.target, "default/productpage"}
    busiest = max(whole["edges"], key=lambda e: (e["l7"] or {}).get("requests", 0))
    assert edge.id == busiest["id"]
    dot = client.get("/graph", params={**params, "limit": 1, "format": "dot"})
    assert dot.headers["x-truncated"] == "true"
    assert dot.headers["x-total-count"] == str(len(whole["edges"]))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/services", {"limit": "0"}),
        ("/edges", {"offset": "-1"}),
        ("/coverage", {"limit": "many"}),
        ("/graph", {"limit": "100000"}),
        ("/graph", {"offset": "99999999999"}),
    ],
)
def test_bad_page_parameters_are_problems(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_an_offset_past_the_end_is_an_empty_last_page(client: TestClient) -> None:
    body = client.get("/edges", params={"offset": 10_000}).json()
    assert body["edges"] == []
    assert body["page"]["truncated"] is False and body["page"]["total"] > 0
