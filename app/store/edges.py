"""Edge buckets: additive upserts from aggregate batches, and the rows a window merges.

Write protocol per chunk of keys (callers own the transaction):
1. read the non-additive columns (JSON maps, sketch, principals, protocol, via) of the keys that
   exist, locking them (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE already
   serialises writers);
2. existing keys: `INSERT … ON CONFLICT DO UPDATE` adding every counter (`c = edge_buckets.c +
   excluded.c`) and setting the maps merged in Python from the locked values;
3. new keys: `INSERT … ON CONFLICT DO NOTHING RETURNING` the keys inserted; a key another writer
   inserted meanwhile comes back missing and goes round again through steps 1 and 2, now locked.
So two batches for one key give the same row as their sum, in any order and from any replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, select, tuple_

from app.correlate.buckets import EdgeBucket, L4Counters
from app.correlate.sketch import LatencySketch
from app.domain import EdgeKey
from app.store.dialect import chunks, upsert_insert
from app.store.tables import edge_buckets as t

L4_FIELDS = (
    "connections_opened",
    "connections_closed",
    "bytes_sent",
    "bytes_received",
    "mtls_connections",
)
REPORTER_SIDES = {"source": "src", "destination": "dst"}
KEY_COLUMNS = ("bucket_start_s", "level", "source", "target")
COUNTER_COLUMNS = (
    "l7_requests",
    "l7_errors",
    "l7_latency_sum_ms",
    "l7_unpaired",
    "l7_late",
    "l7_evicted",
    *(f"l4_{side}_{name}" for side in ("src", "dst") for name in L4_FIELDS),
)
MERGED_COLUMNS = (
    "protocol",
    "via",
    "l7_errors_by_cause",
    "l7_status_codes",
    "l7_latency_sketch",
    "l7_provenance",
    "l7_candidates",
    "l4_principals",
)
_MAX_ROUNDS = 5  # rounds of "insert new keys, lock and merge the ones that raced"

Key = tuple[int, str, str, str]


def key_tuple(key: EdgeKey) -> Key:
    return (key.bucket_start_s, str(key.level.value), key.source, key.target)


def _counters(bucket: EdgeBucket) -> dict[str, Any]:
    out: dict[str, Any] = {
        "l7_requests": bucket.l7_requests,
        "l7_errors": bucket.l7_errors,
        "l7_latency_sum_ms": float(bucket.l7_latency_sum_ms),
        "l7_unpaired": bucket.l7_unpaired,
        "l7_late": bucket.l7_late,
        "l7_evicted": bucket.l7_evicted,
    }
    for reporter, side in REPORTER_SIDES.items():
        counters = bucket.l4.get(reporter) or L4Counters()
        for name in L4_FIELDS:
            out[f"l4_{side}_{name}"] = getattr(counters, name)
    return out


def _add_maps(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(old or {})
    for k, v in new.items():
        merged[k] = merged.get(k, 0) + v
    return merged


def _merged(bucket: EdgeBucket, old: Row[Any] | None) -> dict[str, Any]:
    sketch = LatencySketch()
    if old is not None and old.l7_latency_sketch:
        sketch.merge(LatencySketch.from_bytes(old.l7_latency_sketch))
    sketch.merge(bucket.l7_latency)
    principals = set(bucket.l4_principals)
    if old is not None:
        principals.update(old.l4_principals or ())
    # max() of two strings is commutative and prefers a non-empty value over "".
    return {
        "protocol": max(old.protocol if old is not None else "", bucket.protocol),
        "via": max(old.via if old is not None else "", bucket.via),
        "l7_errors_by_cause": _add_maps(old and old.l7_errors_by_cause, bucket.l7_errors_by_cause),
        "l7_status_codes": _add_maps(old and old.l7_status_codes, bucket.l7_status_codes),
        "l7_latency_sketch": sketch.to_bytes() if sketch.count else None,
        "l7_provenance": _add_maps(old and old.l7_provenance, bucket.l7_provenance),
        "l7_candidates": _add_maps(old and old.l7_candidates, bucket.l7_candidates),
        "l4_principals": sorted(principals),
    }


def _params(key: Key, bucket: EdgeBucket, old: Row[Any] | None) -> dict[str, Any]:
    return {**dict(zip(KEY_COLUMNS, key, strict=True)), **_counters(bucket), **_merged(bucket, old)}


class EdgeRepository:
    """SQL for `edge_buckets`. Never commits: every method runs on the caller's connection."""

    def __init__(self, chunk_size: int = 400) -> None:
        self.chunk_size = chunk_size

    def add(self, conn: Connection, buckets: Mapping[EdgeKey, EdgeBucket]) -> None:
        """Add the buckets to what is stored (see the module docstring for the protocol)."""
        by_key = {key_tuple(k): b for k, b in buckets.items()}
        for chunk in chunks(sorted(by_key), self.chunk_size):  # sorted: one lock order
            pending = chunk
            for _ in range(_MAX_ROUNDS):
                pending = self._add_chunk(conn, pending, by_key)
                if not pending:
                    break
            else:  # pragma: no cover - needs a writer that deletes rows between our statements
                raise RuntimeError(f"edge bucket upsert did not settle for {len(pending)} keys")

    def _add_chunk(
        self, conn: Connection, keys: list[Key], by_key: Mapping[Key, EdgeBucket]
    ) -> list[Key]:
        existing = self._lock_existing(conn, keys)
        updates = [_params(k, by_key[k], existing[k]) for k in keys if k in existing]
        inserts = [_params(k, by_key[k], None) for k in keys if k not in existing]
        if updates:
            ins = upsert_insert(conn, t)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[t.c[c] for c in KEY_COLUMNS],
                    set_={
                        **{c: t.c[c] + ins.excluded[c] for c in COUNTER_COLUMNS},
                        **{c: ins.excluded[c] for c in MERGED_COLUMNS},
                    },
                ),
                updates,
            )
        if not inserts:
            return []
        stmt = (
            upsert_insert(conn, t)
            .on_conflict_do_nothing(index_elements=[t.c[c] for c in KEY_COLUMNS])
            .returning(*(t.c[c] for c in KEY_COLUMNS))
        )
        inserted = {tuple(row) for row in conn.execute(stmt, inserts)}
        return [k for k in keys if k not in existing and k not in inserted]

    def _lock_existing(self, conn: Connection, keys: list[Key]) -> dict[Key, Row[Any]]:
        stmt = (
            select(*(t.c[c] for c in KEY_COLUMNS), *(t.c[c] for c in MERGED_COLUMNS))
            .where(tuple_(*(t.c[c] for c in KEY_COLUMNS)).in_(keys))
            .order_by(*(t.c[c] for c in KEY_COLUMNS))
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return {tuple(row[:4]): row for row in conn.execute(stmt)}

    def window_rows(
        self,
        conn: Connection,
        level: str,
        first_bucket_s: int,
        end_s: int,
        *,
        sources: Iterable[str] | None = None,
        targets: Iterable[str] | None = None,
    ) -> list[Row[Any]]:
        """Rows with `first_bucket_s <= bucket_start_s < end_s`, optionally only those leaving
        `sources` or entering `targets` (each served by its index)."""
        base = select(t).where(
            t.c.level == level, t.c.bucket_start_s >= first_bucket_s, t.c.bucket_start_s < end_s
        )
        if sources is None and targets is None:
            return list(conn.execute(base))
        rows: list[Row[Any]] = []
        for column, names in ((t.c.source, sources), (t.c.target, targets)):
            if names is None:
                continue
            for part in chunks(sorted(set(names)), 1000):
                rows.extend(conn.execute(base.where(column.in_(part))))
        return rows

    def targets_with_unknown_sources(
        self, conn: Connection, level: str, first_bucket_s: int, end_s: int, targets: Iterable[str]
    ) -> set[str]:
        """Which of `targets` have an edge from an `unknown`-kind node in the window (those are
        the targets where query-time attribution may move requests)."""
        found: set[str] = set()
        for part in chunks(sorted(set(targets)), 1000):
            stmt = (
                select(t.c.target)
                .distinct()
                .where(
                    t.c.level == level,
                    t.c.target.in_(part),
                    t.c.bucket_start_s >= first_bucket_s,
                    t.c.bucket_start_s < end_s,
                    t.c.source.in_(unknown_sources(level)),
                )
            )
            found.update(conn.scalars(stmt))
        return found

    def node_exists(
        self, conn: Connection, level: str, first_bucket_s: int, end_s: int, node_id: str
    ) -> bool:
        for column in (t.c.source, t.c.target):
            stmt = (
                select(t.c.bucket_start_s)
                .where(
                    t.c.level == level,
                    column == node_id,
                    t.c.bucket_start_s >= first_bucket_s,
                    t.c.bucket_start_s < end_s,
                )
                .limit(1)
            )
            if conn.execute(stmt).first() is not None:
                return True
        return False

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        return int(conn.execute(delete(t).where(t.c.bucket_start_s < cutoff_s)).rowcount)


def unknown_sources(level: str) -> Any:
    """Subquery: ids of `unknown`-kind nodes at a level (callers the correlator could not name)."""
    from app.store.tables import nodes

    return select(nodes.c.id).where(nodes.c.level == level, nodes.c.kind == "unknown")
