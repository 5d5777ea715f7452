"""SQLite: writers take the write lock at BEGIN; readers (read_only) never wait for it."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from app.store.engine import create_store_engine, read_only
from app.store.schema import upgrade


def test_a_reader_does_not_queue_behind_an_open_write_transaction(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.begin() as writer:
        writer.execute(
            text(
                "INSERT INTO nodes (id, level, namespace, name, kind, service, principal,"
                " first_seen_s, last_seen_s) VALUES ('a/b', 'service', 'a', 'b', 'service',"
                " '', '', 1, 2)"
            )
        )
        began = time.perf_counter()
        with read_only(engine).connect() as reader:
            # The snapshot before the writer commits: its row is not visible yet.
            assert reader.execute(text("SELECT count(*) FROM nodes")).scalar_one() == 0
        assert time.perf_counter() - began < 1.0  # the busy timeout is 30 s
    with read_only(engine).connect() as reader:
        assert reader.execute(text("SELECT count(*) FROM nodes")).scalar_one() == 1
    engine.dispose()


def test_writers_still_begin_immediate(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    with read_only(engine).connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]
