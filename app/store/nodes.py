"""Nodes seen: upserted with min(first_seen), max(last_seen); read for kinds and name lookup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, case, delete, select

from app.correlate.buckets import NodeSeen
from app.store.dialect import chunks, upsert_insert
from app.store.tables import nodes as t


class NodeRepository:
    def __init__(self, chunk_size: int = 500) -> None:
        self.chunk_size = chunk_size

    def upsert(self, conn: Connection, seen: Iterable[NodeSeen]) -> None:
        rows = [
            {
                "id": n.id,
                "level": str(n.level.value),
                "namespace": n.namespace,
                "name": n.name,
                "kind": str(n.kind.value),
                "service": n.service,
                "principal": n.principal,
                "first_seen_s": n.first_seen_s,
                "last_seen_s": n.last_seen_s,
            }
            for n in sorted(seen, key=lambda n: (n.id, n.level.value))
        ]
        for part in chunks(rows, self.chunk_size):
            ins = upsert_insert(conn, t)
            x = ins.excluded
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[t.c.id, t.c.level],
                    set_={
                        "first_seen_s": case(
                            (x.first_seen_s < t.c.first_seen_s, x.first_seen_s),
                            else_=t.c.first_seen_s,
                        ),
                        "last_seen_s": case(
                            (x.last_seen_s > t.c.last_seen_s, x.last_seen_s),
                            else_=t.c.last_seen_s,
                        ),
                        # Evidence only grows: a known kind replaces "unknown", never the reverse.
                        "kind": case((x.kind == "unknown", t.c.kind), else_=x.kind),
                        "service": case((x.service == "", t.c.service), else_=x.service),
                        "principal": case((x.principal == "", t.c.principal), else_=x.principal),
                    },
                ),
                part,
            )

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

    def kinds(self, conn: Connection, level: str, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in chunks(sorted(set(ids)), 1000):
            stmt = select(t.c.id, t.c.kind).where(t.c.level == level, t.c.id.in_(part))
            out.update({row.id: row.kind for row in conn.execute(stmt)})
        return out

    def ids_of_kind(self, conn: Connection, level: str, kind: str) -> set[str]:
        return set(conn.scalars(select(t.c.id).where(t.c.level == level, t.c.kind == kind)))

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        return int(conn.execute(delete(t).where(t.c.last_seen_s < cutoff_s)).rowcount)
