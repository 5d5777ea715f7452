"""SQLite's WAL stays small under sustained writes beside readers (app/store/wal.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from app.domain import Level
from app.edge.batch import AggregateBatch
from app.edge.bucket import EdgeKey
from app.store.engine import WAL_SIZE_LIMIT_BYTES, create_store_engine, read_only
from app.store.schema import upgrade
from app.store.tables import edge_buckets
from app.store.wal import WalCheckpointer
from app.store.writer import write_batch
from tests.store.batches import l4_bucket


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'meshstitch.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _batch(i: int, edges: int = 200) -> AggregateBatch:
    return AggregateBatch(
        edges={
            EdgeKey(i * 60, Level.SERVICE, f"shop/caller-{j}", f"shop/callee-{j}"): l4_bucket(1)
            for j in range(edges)
        }
    )


def _rows(engine: Engine) -> int:
    with read_only(engine).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(edge_buckets)).scalar_one())


def test_the_engine_limits_the_journal_size(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == WAL_SIZE_LIMIT_BYTES


def test_a_checkpoint_truncates_the_wal_once_no_reader_is_behind(sqlite_engine: Engine) -> None:
    checkpoints = WalCheckpointer(sqlite_engine, busy_ms=50)
    reader = read_only(sqlite_engine).connect()
    reader.begin()
    before = int(
        reader.execute(select(func.count()).select_from(edge_buckets)).scalar_one()
    )  # the reader's snapshot is now fixed
    for i in range(20):
        write_batch(sqlite_engine, _batch(i))
    assert checkpoints.wal_bytes() > 0
    assert checkpoints.checkpoint() is False  # the reader still needs the old pages: busy
    assert checkpoints.stats.busy == 1
    # The reader's snapshot is untouched by the attempt.
    assert reader.execute(select(func.count()).select_from(edge_buckets)).scalar_one() == before
    reader.rollback()
    reader.close()
    assert checkpoints.checkpoint() is True
    assert checkpoints.wal_bytes() == 0
    assert _rows(sqlite_engine) == 20 * 200  # nothing lost in the checkpoint


def test_sustained_writes_with_a_checkpoint_after_each_keep_the_wal_bounded(
    sqlite_engine: Engine,
) -> None:
    clock = [0.0]
    checkpoints = WalCheckpointer(sqlite_engine, every_s=1.0, monotonic=lambda: clock[0])
    largest = 0
    for i in range(60):
        write_batch(sqlite_engine, _batch(i))
        with read_only(sqlite_engine).connect() as conn:  # a reader between flushes
            conn.execute(select(func.count()).select_from(edge_buckets)).scalar_one()
        clock[0] += 1.0
        checkpoints.after_write()
        largest = max(largest, checkpoints.wal_bytes())
    assert checkpoints.stats.checkpoints == 60
    one_batch = _wal_bytes_of_one_batch(sqlite_engine, checkpoints)
    assert largest <= 2 * one_batch  # one flush's pages, not the sum of all of them
    assert _rows(sqlite_engine) == 60 * 200 + 200


def _wal_bytes_of_one_batch(engine: Engine, checkpoints: WalCheckpointer) -> int:
    assert checkpoints.checkpoint() is True
    write_batch(engine, _batch(10_000))
    size = checkpoints.wal_bytes()
    assert size > 0
    return size
