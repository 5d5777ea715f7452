"""Trace hops: one row per collapsed span, inserted once (a replayed batch is ignored)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy import Connection, delete, select

from app.correlate.buckets import TraceHop
from app.store.dialect import chunks, upsert_insert
from app.store.tables import trace_hops as t


class TraceHopRepository:
    def __init__(self, chunk_size: int = 500) -> None:
        self.chunk_size = chunk_size

    def add(self, conn: Connection, hops: Iterable[TraceHop]) -> None:
        rows = [dataclasses.asdict(h) for h in hops]
        for part in chunks(rows, self.chunk_size):
            conn.execute(upsert_insert(conn, t).on_conflict_do_nothing(), part)

    def hops(self, conn: Connection, trace_id: str) -> list[TraceHop]:
        stmt = (
            select(t)
            .where(t.c.trace_id == trace_id)
            .order_by(t.c.start_ns, t.c.end_ns, t.c.span_id)
        )
        return [TraceHop(**row._asdict()) for row in conn.execute(stmt)]

    def delete_before(self, conn: Connection, cutoff_ns: int) -> int:
        return int(conn.execute(delete(t).where(t.c.end_ns < cutoff_ns)).rowcount)
