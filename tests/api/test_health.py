from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.health import PartState
from app.main import create_app
from app.settings import Settings


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url)
    if not settings.is_sqlite:  # PostgreSQL is never upgraded by serve: migrate first, as users do
        from app.store.engine import create_store_engine
        from app.store.schema import upgrade

        engine = create_store_engine(db_url)
        upgrade(engine)
        engine.dispose()
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_database_at_head(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    database = body["parts"]["database"]
    assert database["ready"] is True
    assert database["revision"] == database["head"]


def test_readyz_is_503_when_a_part_is_not_ready(client: TestClient) -> None:
    client.app.state.readiness.register(
        "poller", lambda: PartState(False, {"error": "target down"})
    )  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["parts"]["poller"] == {"ready": False, "error": "target down"}


def test_a_raising_check_is_reported_not_a_500(client: TestClient) -> None:
    def broken() -> PartState:
        raise ConnectionError("refused")

    client.app.state.readiness.register("broken", broken)  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["parts"]["broken"]["error"] == "ConnectionError: refused"
