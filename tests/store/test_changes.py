"""store_changes: one seq per write transaction of a writer, and the bucket range since a seq."""

from __future__ import annotations

from sqlalchemy import Engine

from app.store.changes import Changed, StoreChangeRepository


def test_seqs_count_each_writers_transactions_and_ranges_merge(engine: Engine) -> None:
    repo = StoreChangeRepository()
    with engine.begin() as conn:
        assert repo.record(conn, 600, 660, "a", now_s=10) == 1
    with engine.begin() as conn:
        assert repo.record(conn, 120, 180, "a", now_s=11) == 2
        assert repo.record(conn, 0, -1, "b", now_s=11) == 1
    with engine.connect() as conn:
        writers = repo.writers(conn)
        assert writers == {("a", 10): 2, ("b", 11): 1}
        assert repo.changed_since(conn, "a", 0) == Changed(120, 660)
        assert repo.changed_since(conn, "a", 1) == Changed(120, 180)
    assert not Changed(120, 180).overlaps(240, 300) and Changed(120, 180).overlaps(180, 240)
    assert not Changed(0, -1).overlaps(0, 10**9)  # nodes only: no bucket


def test_a_log_cut_by_retention_says_everything_may_have_changed(engine: Engine) -> None:
    repo = StoreChangeRepository()
    for now in (10, 20, 30):
        with engine.begin() as conn:
            repo.record(conn, 60, 60, "a", now_s=now)
    with engine.begin() as conn:
        assert repo.delete_before(conn, 25) == 2  # seqs 1 and 2; the writer row stays (seen 30)
    with engine.connect() as conn:
        assert repo.changed_since(conn, "a", 0).everything
        assert repo.changed_since(conn, "a", 2) == Changed(60, 60)
    with engine.begin() as conn:
        repo.delete_before(conn, 100)  # the writer too: heard from again, it is a new row
        repo.record(conn, 60, 60, "a", now_s=200)
    with engine.connect() as conn:
        assert repo.writers(conn) == {("a", 200): 1}
