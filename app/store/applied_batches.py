"""Ids of the aggregate batches already in the store: what makes a retried flush idempotent."""

from __future__ import annotations

import time

from sqlalchemy import Connection, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.store.tables import applied_batches as t


class AppliedBatchRepository:
    def claim(self, conn: Connection, batch_id: str, now_s: float | None = None) -> bool:
        """Record `batch_id` in `conn`'s transaction; False when it was already recorded (the
        batch is in the store: skip it). Commit with the batch's rows, never alone."""
        stamp = int(time.time() if now_s is None else now_s)
        values = {"batch_id": batch_id, "applied_s": stamp}
        # Both dialects share ON CONFLICT DO NOTHING; only these two are supported (store/bulk.py).
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        statement = dialect_insert(t).values(values).on_conflict_do_nothing()
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING.
        return conn.execute(statement.returning(t.c.batch_id)).first() is not None

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        return conn.execute(delete(t).where(t.c.applied_s < cutoff_s)).rowcount
