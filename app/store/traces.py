"""Trace hops: one row per collapsed span, inserted once (a replayed batch is ignored)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from operator import attrgetter

from sqlalchemy import Connection, delete, select

from app.edge.batch import TraceHop
from app.store.bulk import Bulk, chunks
from app.store.tables import trace_hops as t

HOP_COLUMNS = tuple(f.name for f in dataclasses.fields(TraceHop))  # the table's, in order
_hop_row = attrgetter(*HOP_COLUMNS)


class TraceHopRepository:
    def __init__(self, chunk_size: int = 20_000) -> None:
        self.chunk_size = chunk_size

    def add(self, conn: Connection, hops: Iterable[TraceHop]) -> None:
        rows = list(map(_hop_row, hops))
        if not rows:
            return
        bulk = Bulk(conn)
        for part in chunks(rows, self.chunk_size):
            bulk.insert(t, HOP_COLUMNS, part, "ON CONFLICT DO NOTHING")

    def hops(self, conn: Connection, trace_id: str) -> list[TraceHop]:
        stmt = (
            select(t)
            .where(t.c.trace_id == trace_id)
            .order_by(t.c.start_ns, t.c.end_ns, t.c.span_id)
        )
        return [TraceHop(**row._asdict()) for row in conn.execute(stmt)]

    def delete_before(self, conn: Connection, cutoff_ns: int) -> int:
        return int(conn.execute(delete(t).where(t.c.end_ns < cutoff_ns)).rowcount)
