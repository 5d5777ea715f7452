"""The e2e tests' meshstitch settings: a throwaway SQLite store, loopback ports, explicit flushes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.ports import free_port

BUCKET_S = 60


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'meshstitch.db'}",
        host="127.0.0.1",
        http_port=free_port(),
        grpc_port=free_port(),
        bucket_s=BUCKET_S,
        flush_interval_s=3600,  # the test flushes explicitly
    )
