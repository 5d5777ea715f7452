"""Nodes seen: upserted with min(first_seen), max(last_seen); read for kinds and name lookup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select

from app.edge.batch import NodeSeen
from app.store.bulk import Bulk, chunks
from app.store.tables import nodes as t

_COLUMNS = tuple(c.name for c in t.columns)
_ON_CONFLICT = (
    "ON CONFLICT (id, level) DO UPDATE SET "
    # min(first_seen), max(last_seen)
    "first_seen_s = CASE WHEN excluded.first_seen_s < nodes.first_seen_s "
    "THEN excluded.first_seen_s ELSE nodes.first_seen_s END, "
    "last_seen_s = CASE WHEN excluded.last_seen_s > nodes.last_seen_s "
    "THEN excluded.last_seen_s ELSE nodes.last_seen_s END, "
    # Evidence only grows: a known kind replaces "unknown", never the reverse; a node once
    # recognised as a gateway (router~ node id, labels) stays one.
    "kind = CASE WHEN excluded.kind = 'unknown' "
    "OR (nodes.kind = 'gateway' AND excluded.kind = 'service') "
    "THEN nodes.kind ELSE excluded.kind END, "
    "service = CASE WHEN excluded.service = '' THEN nodes.service ELSE excluded.service END, "
    "principal = CASE WHEN excluded.principal = '' THEN nodes.principal "
    "ELSE excluded.principal END"
)


class NodeRepository:
    def __init__(self, chunk_size: int = 20_000) -> None:
        self.chunk_size = chunk_size

    def upsert(self, conn: Connection, seen: Iterable[NodeSeen]) -> None:
        rows = [
            (
                n.id,
                str(n.level.value),
                n.namespace,
                n.name,
                str(n.kind.value),
                n.service,
                n.principal,
                n.first_seen_s,
                n.last_seen_s,
            )
            for n in sorted(seen, key=lambda n: (n.id, n.level.value))
        ]
        if not rows:
            return
        bulk = Bulk(conn)
        for part in chunks(rows, self.chunk_size):
            bulk.insert(t, _COLUMNS, part, _ON_CONFLICT)

    def seen_in(
        self,
        conn: Connection,
        level: str,
        start_s: float,
        end_s: float,
        kind: str | None = None,
    ) -> list[Row[Any]]:
        """Nodes whose [first_seen, last_seen] overlaps [start, end]."""
        stmt = select(t).where(
            t.c.level == level, t.c.last_seen_s >= int(start_s), t.c.first_seen_s <= end_s
        )
        if kind is not None:
            stmt = stmt.where(t.c.kind == kind)
        return list(conn.execute(stmt.order_by(t.c.id)))

    def seen_ids(
        self,
        conn: Connection,
        level: str,
        start_s: float,
        end_s: float,
        *,
        node_id: str | None = None,
        id_suffix: str | None = None,
    ) -> list[str]:
        """Ids of nodes seen in [start, end] (as `seen_in`) that are `node_id` or end with
        `id_suffix`, in id order: a name lookup without reading every node."""
        stmt = select(t.c.id).where(
            t.c.level == level, t.c.last_seen_s >= int(start_s), t.c.first_seen_s <= end_s
        )
        if node_id is not None:
            stmt = stmt.where(t.c.id == node_id)
        if id_suffix is not None:
            stmt = stmt.where(t.c.id.endswith(id_suffix, autoescape=True))
        return list(conn.scalars(stmt.order_by(t.c.id)))

    def first_seen(self, conn: Connection) -> int | None:
        """When the store's first data happened (epoch seconds), None while it is empty: before
        it meshstitch was not observing, so rates do not divide by that time."""
        first: int | None = conn.scalar(select(func.min(t.c.first_seen_s)))
        return first

    def kinds(self, conn: Connection, level: str, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in chunks(sorted(set(ids)), 1000):
            stmt = select(t.c.id, t.c.kind).where(t.c.level == level, t.c.id.in_(part))
            out.update({row.id: row.kind for row in conn.execute(stmt)})
        return out

    def kinds_at(self, conn: Connection, level: str) -> dict[str, str]:
        """Every node's kind at `level`."""
        return {
            row.id: row.kind
            for row in conn.execute(select(t.c.id, t.c.kind).where(t.c.level == level))
        }

    def seen_at(self, conn: Connection, level: str) -> dict[str, tuple[int, int]]:
        """Every node's (first_seen_s, last_seen_s) at `level`."""
        stmt = select(t.c.id, t.c.first_seen_s, t.c.last_seen_s).where(t.c.level == level)
        return {row.id: (int(row.first_seen_s), int(row.last_seen_s)) for row in conn.execute(stmt)}

    def ids_of_kind(self, conn: Connection, level: str, kind: str) -> set[str]:
        return set(conn.scalars(select(t.c.id).where(t.c.level == level, t.c.kind == kind)))

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        return int(conn.execute(delete(t).where(t.c.last_seen_s < cutoff_s)).rowcount)
