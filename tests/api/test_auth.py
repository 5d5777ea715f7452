"""Bearer-token middleware: REST gets problem+json 401, /grafana gets {"message"}, probes stay open."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.auth import BearerTokenMiddleware

TOKEN = "s3cret-token"


def client() -> TestClient:
    app = FastAPI()

    @app.get("/graph")
    async def graph() -> dict[str, str]:
        return {"ok": "graph"}

    @app.get("/grafana")
    async def grafana() -> dict[str, str]:
        return {"ok": "grafana"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BearerTokenMiddleware, token=TOKEN)
    return TestClient(app)


def test_rest_route_refused_without_token_as_problem_json() -> None:
    response = client().get("/graph")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
    assert TOKEN not in response.text


def test_grafana_route_refused_with_message() -> None:
    response = client().get("/grafana", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "message" in response.json()


def test_token_opens_routes_and_probes_need_none() -> None:
    c = client()
    assert c.get("/graph", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {"ok": "graph"}
    assert c.get("/healthz").status_code == 200
