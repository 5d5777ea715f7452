"""Shared fixtures: settings, engines on SQLite and a throwaway PostgreSQL, skip policy under CI."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.store.engine import create_store_engine
from app.store.schema import upgrade
from tests.postgres_cluster import PostgresCluster, find_pg_bin, postgres_cluster

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DATA = Path(__file__).parent / "data"


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a missing real part; under CI=true that is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true requires this part: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    if find_pg_bin() is None:
        skip_or_fail("PostgreSQL server binaries (initdb/pg_ctl) are not installed")
    with postgres_cluster() as cluster:
        yield cluster


_db_counter = itertools.count()


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database in the session's cluster."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    admin = create_store_engine(pg_cluster.url())
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_cluster.url(name)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meshstitch.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test on the embedded default and on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty database (SQLite and PostgreSQL)."""
    eng = create_store_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
