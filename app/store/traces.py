"""Trace hops: one row per trace per flush (`trace_chunks`), its hops encoded in the row.

A stored row per hop was the largest write cost of a flush; a trace's hops in one flush are
usually several (every waypoint hop of a request), so a chunk per trace costs a fraction of that.
Every trace keeps all its hops for the retention (`retention_h`): a chunk is deleted once its last
hop is older than that. Reading a trace reads its chunks, decodes them and returns the hops in
order; a span sent twice (in two flushes) is one hop, the first one stored (smallest chunk
`start_ns`, then chunk id) as when hops were rows inserted with ON CONFLICT DO NOTHING.

Encoding: a JSON array of hops, each the array of `TraceHop`'s fields after `trace_id`
(`HOP_FIELDS`), so a new field is a new trailing element (older rows decode it as its default).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, delete, select

from app.edge.batch import TraceHop
from app.store.bulk import Bulk, chunks
from app.store.tables import trace_chunks as t

HOP_FIELDS = tuple(f.name for f in dataclasses.fields(TraceHop))[1:]  # after trace_id
CHUNK_COLUMNS = ("trace_id", "chunk", "start_ns", "end_ns", "hops")
_hop_values = attrgetter(*HOP_FIELDS)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_hops(hops: Iterable[TraceHop]) -> str:
    return _dumps([_hop_values(h) for h in hops])


def decode_hops(trace_id: str, text: str) -> list[TraceHop]:
    return [TraceHop(trace_id, *values) for values in json.loads(text)]


def chunk_rows(hops: Iterable[TraceHop], chunk: str) -> list[tuple[Any, ...]]:
    """One row per trace of `hops`: `CHUNK_COLUMNS`."""
    by_trace: dict[str, list[TraceHop]] = {}
    for hop in hops:
        found = by_trace.get(hop.trace_id)
        if found is None:
            by_trace[hop.trace_id] = [hop]
        else:
            found.append(hop)
    return [
        (
            trace_id,
            chunk,
            min(h.start_ns for h in trace_hops),
            max(h.end_ns for h in trace_hops),
            encode_hops(trace_hops),
        )
        for trace_id, trace_hops in by_trace.items()
    ]


class TraceHopRepository:
    def __init__(self, chunk_size: int = 20_000) -> None:
        self.chunk_size = chunk_size

    def add(self, conn: Connection, hops: Iterable[TraceHop], chunk: str = "") -> None:
        """Store `hops` as one chunk per trace named `chunk` (the batch id; a new id when
        empty): adding the same chunk again adds nothing."""
        rows = chunk_rows(hops, chunk or uuid.uuid4().hex)
        if not rows:
            return
        bulk = Bulk(conn)
        for part in chunks(rows, self.chunk_size):
            bulk.insert(t, CHUNK_COLUMNS, part, "ON CONFLICT DO NOTHING")

    def hops(self, conn: Connection, trace_id: str) -> list[TraceHop]:
        stmt = select(t.c.hops).where(t.c.trace_id == trace_id).order_by(t.c.start_ns, t.c.chunk)
        first: dict[str, TraceHop] = {}
        for text in conn.scalars(stmt):
            for hop in decode_hops(trace_id, text):
                first.setdefault(hop.span_id, hop)
        return sorted(first.values(), key=lambda h: (h.start_ns, h.end_ns, h.span_id))

    def delete_before(self, conn: Connection, cutoff_ns: int) -> int:
        """Chunks whose every hop ended before `cutoff_ns`; returns how many were deleted."""
        return int(conn.execute(delete(t).where(t.c.end_ns < cutoff_ns)).rowcount)
