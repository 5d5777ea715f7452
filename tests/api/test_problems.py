from __future__ import annotations

from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from app.api.problems import PROBLEM_JSON, Problem, install_problem_handlers


def make_client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/raise")
    async def raise_problem() -> None:
        raise Problem(404, "Unknown service", "no service named 'revews'", suggestions=["reviews"])

    @app.get("/typed")
    async def typed(depth: int = Query(ge=1, le=5)) -> dict[str, int]:
        return {"depth": depth}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return TestClient(app, raise_server_exceptions=False)


def test_problem_is_rendered_as_rfc9457() -> None:
    response = make_client().get("/raise")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Unknown service",
        "status": 404,
        "detail": "no service named 'revews'",
        "instance": "/raise",
        "suggestions": ["reviews"],
    }


def test_validation_errors_are_problems_naming_the_parameter() -> None:
    response = make_client().get("/typed", params={"depth": "99"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"].startswith("query.depth:")


def test_unknown_route_is_a_problem() -> None:
    response = make_client().get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


def test_unexpected_error_is_a_problem_without_internals() -> None:
    response = make_client().get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "boom" not in response.text
