"""Exemplar trace ids per edge bucket: the top `EXEMPLARS_PER_KIND` of each kind.

Top-N by one total order (`rank` in app/edge/exemplars.py) is commutative and associative, so
merging stored exemplars with a batch's gives the same rows in any order. The merge is
read-modify-write: it must run in the transaction that upserted (and so locked) the same keys in
`edge_buckets`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, select, tuple_

from app.edge.bucket import EdgeKey
from app.edge.exemplars import EXEMPLARS_PER_KIND, Exemplar, top_exemplars
from app.store.bulk import Bulk, chunks
from app.store.edges import KEY_COLUMNS, bound_key
from app.store.tables import exemplars as t


def _row_to_exemplar(row: Row[Any]) -> Exemplar:
    return Exemplar(row.kind, row.trace_id, row.duration_ms, row.end_ns, row.status_code)


_VALUE_COLUMNS = ("kind", "trace_id", "duration_ms", "end_ns", "status_code")  # Exemplar's
_COLUMNS = (*KEY_COLUMNS, "kind", "rank", "trace_id", "duration_ms", "end_ns", "status_code")
# `for_edges(top=True)` reduces a pair's list once it holds this many (two kinds, twice over).
_REDUCE_AT = 4 * EXEMPLARS_PER_KIND


class ExemplarRepository:
    def __init__(self, chunk_size: int = 20_000) -> None:
        self.chunk_size = chunk_size

    def add(self, conn: Connection, items: Mapping[EdgeKey, Sequence[Exemplar]]) -> None:
        by_key = {bound_key(k): v for k, v in items.items() if v}
        if not by_key:
            return
        keys = sorted(by_key)
        bulk = Bulk(conn)
        stored: dict[tuple[Any, ...], list[Exemplar]] = {}
        for row in bulk.select_by_keys(t, KEY_COLUMNS, _VALUE_COLUMNS, keys):
            stored.setdefault(row[:4], []).append(Exemplar(*row[4:]))
        bulk.delete_by_keys(t, KEY_COLUMNS, list(stored))
        rows = []
        for key in keys:
            new = by_key[key]
            counts: dict[str, int] = {}
            for item in top_exemplars([*stored[key], *new] if key in stored else new):
                rank = counts[item.kind] = counts.get(item.kind, 0) + 1
                rows.append(
                    (
                        *key,
                        item.kind,
                        rank,
                        item.trace_id,
                        item.duration_ms,
                        item.end_ns,
                        item.status_code,
                    )
                )
        for part in chunks(rows, self.chunk_size):
            bulk.insert(t, _COLUMNS, part)

    def for_edges(
        self,
        conn: Connection,
        level: str,
        first_bucket_s: int,
        end_s: int,
        pairs: Iterable[tuple[str, str]] | None = None,
        *,
        top: bool = False,
    ) -> dict[tuple[str, str], list[Exemplar]]:
        """Exemplars of the window for these (source, target) pairs (all when None), not yet
        reduced to top-N; with `top`, reduced per pair as they are read (top-N is associative,
        so the readers' own reduction over several pairs gives the same answer), which bounds
        what a whole window holds (638k rows were ~200 MiB on bench/cardinality.py's hour)."""
        base = select(t).where(
            t.c.level == level, t.c.bucket_start_s >= first_bucket_s, t.c.bucket_start_s < end_s
        )
        statements = (
            [base]
            if pairs is None
            else [
                base.where(tuple_(t.c.source, t.c.target).in_(part))
                for part in chunks(sorted(set(pairs)), 500)
            ]
        )
        out: dict[tuple[str, str], list[Exemplar]] = {}
        for stmt in statements:
            for row in conn.execute(stmt):
                kept = out.setdefault((row.source, row.target), [])
                kept.append(_row_to_exemplar(row))
                if top and len(kept) >= _REDUCE_AT:
                    kept[:] = top_exemplars(kept)
        if top:
            for kept in out.values():
                kept[:] = top_exemplars(kept)
        return out

    def pairs_in(
        self, conn: Connection, level: str, first_bucket_s: int, end_s: int
    ) -> set[tuple[str, str]]:
        """The (source, target) pairs with any exemplar in the window."""
        stmt = (
            select(t.c.source, t.c.target)
            .distinct()
            .where(
                t.c.level == level,
                t.c.bucket_start_s >= first_bucket_s,
                t.c.bucket_start_s < end_s,
            )
        )
        return {(row.source, row.target) for row in conn.execute(stmt)}

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        return int(conn.execute(delete(t).where(t.c.bucket_start_s < cutoff_s)).rowcount)
