"""/readyz answers while a writer holds SQLite's write lock (probes must not queue behind flushes)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.store.engine import create_store_engine


def test_readyz_is_not_blocked_by_a_held_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app(Settings(database_url=url, host="127.0.0.1", grpc_port=0))
    with TestClient(app) as client:
        writer = create_store_engine(url)
        with writer.begin():  # BEGIN IMMEDIATE: the write lock, held for the whole request
            response = client.get("/readyz")
        writer.dispose()
    assert response.status_code == 200, response.text
    assert response.json()["parts"]["database"]["ready"] is True
