"""One route class answers every /grafana error as `{"message": ...}` (the plugin shows it)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.grafana.errors import GrafanaRoute
from app.grafana.requests import GrafanaRequestError
from app.graph.queries import UnknownNode


def client() -> TestClient:
    router = APIRouter(route_class=GrafanaRoute)

    @router.post("/bad")
    async def bad() -> None:
        raise GrafanaRequestError("targets must be a list")

    @router.post("/unknown")
    async def unknown() -> None:
        raise UnknownNode("ghost", ["bookinfo/ghosts"])

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_a_request_error_is_a_400_message() -> None:
    response = client().post("/bad")
    assert response.status_code == 400
    assert response.json() == {"message": "targets must be a list"}


def test_an_unknown_node_is_a_404_message_with_suggestions() -> None:
    response = client().post("/unknown")
    assert response.status_code == 404
    assert response.json() == {
        "message": "no node named 'ghost' in this time range; did you mean bookinfo/ghosts?"
    }
