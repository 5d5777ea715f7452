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


def test_0006_moves_stored_hops_into_chunks_and_back(db_url: str) -> None:
    """A store at 0005 with trace hops: after the upgrade every hop reads back the same; the
    downgrade restores the rows."""
    from sqlalchemy import text

    from app.edge.batch import TraceHop
    from app.store.traces import TraceHopRepository

    engine = create_store_engine(db_url)
    upgrade(engine, "0005")
    hops = [
        TraceHop(
            "a" * 32, "1" * 16, "", "ns/a", "ns/b", "", 10, 20, 1.5, "200", "", "paired_spans"
        ),
        TraceHop("a" * 32, "2" * 16, "1" * 16, "ns/b", "ns/c", "ns/w", 12, 18, 0.5, "503", "x", ""),
        TraceHop("b" * 32, "3" * 16, "", "ns/a", "ns/c", "", 30, 40, 2.0, "", "", ""),
    ]
    columns = list(TraceHop.__dataclass_fields__)
    with engine.begin() as conn:
        for hop in hops:
            conn.execute(
                text(
                    f"INSERT INTO trace_hops ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"
                ),
                {c: getattr(hop, c) for c in columns},
            )
    upgrade(engine)
    with engine.connect() as conn:
        assert TraceHopRepository().hops(conn, "a" * 32) == hops[:2]
        assert TraceHopRepository().hops(conn, "b" * 32) == hops[2:]
        assert conn.execute(text("SELECT count(*) FROM trace_chunks")).scalar() == 2
    downgrade(engine, "0005")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT span_id, duration_ms FROM trace_hops ORDER BY span_id"))
        assert [tuple(r) for r in rows] == [("1" * 16, 1.5), ("2" * 16, 0.5), ("3" * 16, 2.0)]
    engine.dispose()
