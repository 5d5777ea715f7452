"""Node aliases (app/correlate/identity.py): upserted, the stronger source winning; read whole.

The table is small (a few names per service), so readers take it whole and cache it
(app/graph/aliases.py); every replica's identity loads it at start.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Connection, select

from app.domain import ALIAS_PRIORITY, Alias, AliasSource
from app.store.bulk import Bulk, chunks
from app.store.tables import node_aliases as t

_COLUMNS = ("namespace", "alias", "service", "source", "priority", "updated_s")
# A weaker source never overwrites a stronger one; among equals the latest wins.
_ON_CONFLICT = (
    "ON CONFLICT (namespace, alias) DO UPDATE SET service = excluded.service, "
    "source = excluded.source, priority = excluded.priority, updated_s = excluded.updated_s "
    "WHERE excluded.priority >= node_aliases.priority"
)


class AliasRepository:
    def upsert(
        self, conn: Connection, aliases: Iterable[Alias], now_s: float | None = None
    ) -> None:
        stamp = int(time.time() if now_s is None else now_s)
        by_key = {(a.namespace, a.name): a for a in aliases}  # one row per key per statement
        rows = [
            (a.namespace, a.name, a.service, a.source.value, ALIAS_PRIORITY[a.source], stamp)
            for _, a in sorted(by_key.items())
        ]
        if not rows:
            return
        bulk = Bulk(conn)
        for part in chunks(rows, 5000):
            bulk.insert(t, _COLUMNS, part, _ON_CONFLICT)

    def all(self, conn: Connection) -> list[Alias]:
        rows = conn.execute(select(t.c.namespace, t.c.alias, t.c.service, t.c.source))
        return [Alias(r.namespace, r.alias, r.service, AliasSource(r.source)) for r in rows]
