"""A flush whose COMMIT succeeded but whose answer was lost is not counted twice on retry.

The fault is real: the DBAPI connection commits, then closes itself and raises the driver's own
"connection lost" error, as a server or network dropping the link right after COMMIT would. The
pipeline keeps the batch and writes it again on the next flush (SQLite and PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select

from app.correlate.aggregate import EdgeAggregator
from app.correlate.correlator import SpanCorrelator
from app.domain import Endpoint, L4Sample, Reporter
from app.pipeline import IngestPipeline
from app.store.engine import create_store_engine
from app.store.schema import upgrade
from app.store.tables import applied_batches, edge_buckets
from app.store.writer import delete_expired, write_batch


def _losing(base: type[Any], fault: dict[str, int]) -> type[Any]:
    """`base` (the driver's connection class) whose commit, when armed, commits and then loses
    the connection."""

    class LoseAnswerAfterCommit(base):  # type: ignore[misc, valid-type]
        def commit(self) -> None:
            super().commit()
            if fault["armed"]:
                fault["armed"] -= 1
                fault["fired"] += 1
                self.close()
                if isinstance(self, sqlite3.Connection):
                    raise sqlite3.OperationalError("disk I/O error after commit")
                raise psycopg.OperationalError("server closed the connection unexpectedly")

    return LoseAnswerAfterCommit


@pytest.fixture
def faulty(db_url: str) -> Iterator[tuple[Engine, dict[str, int]]]:
    upgrade_engine = create_store_engine(db_url)
    upgrade(upgrade_engine)
    upgrade_engine.dispose()
    engine = create_store_engine(db_url)
    fault = {"armed": 0, "fired": 0}
    sqlite_class = _losing(sqlite3.Connection, fault)
    pg_class = _losing(psycopg.Connection, fault)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _rec: Any, cargs: Any, cparams: Any) -> Any:
        if dialect.name == "sqlite":
            return sqlite3.connect(*cargs, **cparams, factory=sqlite_class)
        return pg_class.connect(*cargs, **cparams)

    yield engine, fault
    engine.dispose()


def _sample(end_s: float, nbytes: int) -> L4Sample:
    return L4Sample(
        source=Endpoint("shop", "checkout", "checkout-v1"),
        target=Endpoint("shop", "cart", "cart-v1"),
        reporter=Reporter.DESTINATION,
        start_s=end_s - 15,
        end_s=end_s,
        connections_opened=3,
        connections_closed=3,
        bytes_sent=nbytes,
        bytes_received=2 * nbytes,
    )


def _stored_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        total = conn.execute(
            select(func.coalesce(func.sum(edge_buckets.c.l4_dst_bytes_sent), 0)).where(
                edge_buckets.c.level == "service"
            )
        ).scalar_one()
    return int(total)


def test_a_retry_after_a_lost_commit_answer_is_not_counted_twice(
    faulty: tuple[Engine, dict[str, int]],
) -> None:
    engine, fault = faulty
    pipeline = IngestPipeline(
        SpanCorrelator(wait_s=10, max_items=100, bucket_s=60),
        EdgeAggregator(60, clock_s=lambda: 10_000.0),
        lambda batch: write_batch(engine, batch),
        queue_spans=1000,
        flush_interval_s=3600,
    )
    pipeline.start()
    try:
        pipeline.add_l4([_sample(9_000, 100), _sample(9_015, 50)])
        fault["armed"] = 1
        assert pipeline.flush() is False  # the write raised: the pipeline keeps the batch
        assert fault["fired"] == 1
        assert pipeline.stats.flushes_failed == 1
        assert _stored_bytes(engine) == 150  # ... although its COMMIT went through
        assert pipeline.flush() is True  # the retry finds its id and adds nothing
        assert _stored_bytes(engine) == 150
        pipeline.add_l4([_sample(9_030, 25)])  # a new batch is added as usual
        assert pipeline.flush() is True
        assert _stored_bytes(engine) == 175
    finally:
        pipeline.stop()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(applied_batches)).scalar_one() == 2


def test_batches_without_an_id_are_always_added_and_ids_expire_with_retention(
    engine: Engine,
) -> None:
    agg = EdgeAggregator(60, clock_s=lambda: 10_000.0)
    agg.add_l4(_sample(9_000, 10))
    batch = agg.drain()
    write_batch(engine, batch)
    write_batch(engine, batch)  # the same id: once
    assert _stored_bytes(engine) == 10
    batch.batch_id = ""
    write_batch(engine, batch)  # no id: added (hand-built batches in tests and tools)
    assert _stored_bytes(engine) == 20
    deleted = delete_expired(engine, now_s=time.time() + 7200, retention_h=1)
    assert deleted.applied_batches == 1
