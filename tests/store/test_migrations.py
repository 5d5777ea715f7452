from __future__ import annotations

import pytest
from sqlalchemy import inspect

from app.store.engine import create_store_engine
from app.store.schema import (
    SchemaBehindError,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from app.store.tables import metadata


def test_upgrade_creates_every_table_and_downgrade_removes_them(db_url: str) -> None:
    engine = create_store_engine(db_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_store_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_a_database_behind_is_refused_unless_auto_upgrade(db_url: str) -> None:
    engine = create_store_engine(db_url)
    with pytest.raises(SchemaBehindError, match="meshstitch migrate"):
        ensure_schema(engine, auto_upgrade=False)
    ensure_schema(engine, auto_upgrade=True)
    assert current_revision(engine) == head_revision()
    ensure_schema(engine, auto_upgrade=False)
    engine.dispose()


def test_concurrent_migrations_on_postgres_both_succeed(pg_url: str) -> None:
    """Two replicas' init containers migrating one empty database at once: neither fails."""
    from concurrent.futures import ThreadPoolExecutor

    engines = [create_store_engine(pg_url) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda e: upgrade(e), engines))
    assert results == [None, None]
    assert current_revision(engines[0]) == head_revision()
    for e in engines:
        e.dispose()
