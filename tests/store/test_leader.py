"""The poll lock: one holder among replicas sharing a PostgreSQL; SQLite is always the leader."""

from __future__ import annotations

from app.store.engine import create_store_engine
from app.store.leader import PollLeadership


def test_exactly_one_replica_holds_the_poll_lock_and_it_moves_on_release(pg_url: str) -> None:
    engines = [create_store_engine(pg_url) for _ in range(2)]
    first, second = (PollLeadership(e) for e in engines)
    try:
        assert first.check() is True
        assert second.check() is False
        assert first.check() is True  # still held
        first.release()
        assert second.check() is True
        assert first.check() is False
    finally:
        first.release()
        second.release()
        for e in engines:
            e.dispose()


def test_a_dead_leader_connection_frees_the_lock(pg_url: str) -> None:
    engines = [create_store_engine(pg_url) for _ in range(2)]
    first, second = (PollLeadership(e) for e in engines)
    try:
        assert first.check()
        engines[0].dispose()  # the process's connections go away (a crash, a network cut)
        assert first._connection is not None
        first._connection.invalidate()
        assert second.check() is True
    finally:
        first.release()
        second.release()
        for e in engines:
            e.dispose()


def test_sqlite_is_always_the_leader(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    assert PollLeadership(engine).check() is True
    engine.dispose()
