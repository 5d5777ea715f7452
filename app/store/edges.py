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

Roll-ups (`edge_rollups`): the same batch, its keys coarsened to `ROLLUP_SPANS_S` buckets and
merged, is added by the same protocol in the same transaction (after the fine rows: one lock
order for every writer). Each roll-up row is therefore always the exact merge of the fine rows it
covers, and a window read (`window_rows_rolled`) may take whole coarse buckets from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, select, tuple_

from app.correlate.buckets import EdgeBucket, L4Counters
from app.correlate.sketch import LatencySketch
from app.domain import EdgeKey
from app.store.dialect import chunks, upsert_insert
from app.store.sketch_codec import merge_sketch_bytes
from app.store.tables import edge_buckets as t
from app.store.tables import edge_rollups as r

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
ROLLUP_KEY_COLUMNS = ("span_s", *KEY_COLUMNS)
_MAX_ROUNDS = 5  # rounds of "insert new keys, lock and merge the ones that raced"
# Coarse bucket widths kept in edge_rollups (each a multiple of the fine bucket width in use;
# readers skip one that is not). Changing them needs a migration that rebuilds edge_rollups.
ROLLUP_SPANS_S = (600, 3600)

Key = tuple[int, str, str, str]
RollupKey = tuple[int, int, str, str, str]


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
        merge_sketch_bytes(sketch, old.l7_latency_sketch)
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


def _params(
    key_columns: tuple[str, ...], key: tuple[Any, ...], bucket: EdgeBucket, old: Row[Any] | None
) -> dict[str, Any]:
    return {**dict(zip(key_columns, key, strict=True)), **_counters(bucket), **_merged(bucket, old)}


def merge_buckets(a: EdgeBucket, b: EdgeBucket) -> EdgeBucket:
    """A new bucket holding both (exemplars left out: roll-ups keep none)."""
    sketch = LatencySketch()
    sketch.merge(a.l7_latency)
    sketch.merge(b.l7_latency)
    l4: dict[str, L4Counters] = {}
    for part in (a.l4, b.l4):
        for reporter, counters in part.items():
            l4.setdefault(reporter, L4Counters()).merge(counters)
    return EdgeBucket(
        protocol=max(a.protocol, b.protocol),
        via=max(a.via, b.via),
        l7_requests=a.l7_requests + b.l7_requests,
        l7_errors=a.l7_errors + b.l7_errors,
        l7_errors_by_cause=_add_maps(a.l7_errors_by_cause, b.l7_errors_by_cause),
        l7_status_codes=_add_maps(a.l7_status_codes, b.l7_status_codes),
        l7_latency_sum_ms=a.l7_latency_sum_ms + b.l7_latency_sum_ms,
        l7_latency=sketch,
        l7_provenance=_add_maps(a.l7_provenance, b.l7_provenance),
        l7_candidates=_add_maps(a.l7_candidates, b.l7_candidates),
        l7_unpaired=a.l7_unpaired + b.l7_unpaired,
        l7_late=a.l7_late + b.l7_late,
        l7_evicted=a.l7_evicted + b.l7_evicted,
        l4=l4,
        l4_principals=a.l4_principals | b.l4_principals,
    )


def rollup_keys(by_key: Mapping[Key, EdgeBucket]) -> dict[RollupKey, EdgeBucket]:
    """The batch coarsened to every roll-up span, keys falling in one coarse bucket merged."""
    out: dict[RollupKey, EdgeBucket] = {}
    for span in ROLLUP_SPANS_S:
        for (start, level, source, target), bucket in by_key.items():
            key = (span, start // span * span, level, source, target)
            seen = out.get(key)
            out[key] = bucket if seen is None else merge_buckets(seen, bucket)
    return out


class _Upserter:
    """The additive write protocol (module docstring) on one table."""

    def __init__(self, table: Any, key_columns: tuple[str, ...], chunk_size: int) -> None:
        self.table, self.key_columns, self.chunk_size = table, key_columns, chunk_size
        self.keys = [table.c[c] for c in key_columns]

    def add(self, conn: Connection, by_key: Mapping[Any, EdgeBucket]) -> None:
        for chunk in chunks(sorted(by_key), self.chunk_size):  # sorted: one lock order
            pending = chunk
            for _ in range(_MAX_ROUNDS):
                pending = self._add_chunk(conn, pending, by_key)
                if not pending:
                    break
            else:  # pragma: no cover - needs a writer that deletes rows between our statements
                raise RuntimeError(f"edge bucket upsert did not settle for {len(pending)} keys")

    def _add_chunk(
        self, conn: Connection, keys: list[Any], by_key: Mapping[Any, EdgeBucket]
    ) -> list[Any]:
        table, cols = self.table, self.key_columns
        existing = self._lock_existing(conn, keys)
        updates = [_params(cols, k, by_key[k], existing[k]) for k in keys if k in existing]
        inserts = [_params(cols, k, by_key[k], None) for k in keys if k not in existing]
        if updates:
            ins = upsert_insert(conn, table)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=self.keys,
                    set_={
                        **{c: table.c[c] + ins.excluded[c] for c in COUNTER_COLUMNS},
                        **{c: ins.excluded[c] for c in MERGED_COLUMNS},
                    },
                ),
                updates,
            )
        if not inserts:
            return []
        stmt = (
            upsert_insert(conn, table)
            .on_conflict_do_nothing(index_elements=self.keys)
            .returning(*self.keys)
        )
        inserted = {tuple(row) for row in conn.execute(stmt, inserts)}
        return [k for k in keys if k not in existing and k not in inserted]

    def _lock_existing(self, conn: Connection, keys: list[Any]) -> dict[Any, Row[Any]]:
        n = len(self.keys)
        stmt = (
            select(*self.keys, *(self.table.c[c] for c in MERGED_COLUMNS))
            .where(tuple_(*self.keys).in_(keys))
            .order_by(*self.keys)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return {tuple(row[:n]): row for row in conn.execute(stmt)}


def window_parts(
    first_bucket_s: int, end_s: int, bucket_s: int
) -> list[tuple[int | None, int, int]]:
    """Cover the fine buckets starting in [first, end) exactly: `(span, lo, hi)` takes the
    roll-ups of that span starting in [lo, hi) (whole coarse buckets inside the window, largest
    span first), `(None, lo, hi)` the fine buckets starting in [lo, hi) (the window's edges)."""
    parts: list[tuple[int | None, int, int]] = []
    fine = [(first_bucket_s, end_s)] if end_s > first_bucket_s else []
    spans = sorted((s for s in ROLLUP_SPANS_S if s > bucket_s and s % bucket_s == 0), reverse=True)
    for span in spans:
        rest: list[tuple[int, int]] = []
        for lo, hi in fine:
            c0, c1 = -(-lo // span) * span, hi // span * span
            if c1 > c0:
                parts.append((span, c0, c1))
                rest.extend((a, b) for a, b in ((lo, c0), (c1, hi)) if b > a)
            else:
                rest.append((lo, hi))
        fine = rest
    parts.extend((None, lo, hi) for lo, hi in fine)
    return sorted(parts, key=lambda p: p[1])


class EdgeRepository:
    """SQL for `edge_buckets` and `edge_rollups`. Never commits: every method runs on the
    caller's connection."""

    def __init__(self, chunk_size: int = 400) -> None:
        self.chunk_size = chunk_size
        self._fine = _Upserter(t, KEY_COLUMNS, chunk_size)
        self._rollups = _Upserter(r, ROLLUP_KEY_COLUMNS, chunk_size)

    def add(self, conn: Connection, buckets: Mapping[EdgeKey, EdgeBucket]) -> None:
        """Add the buckets to what is stored, and to their roll-ups (module docstring)."""
        by_key = {key_tuple(k): b for k, b in buckets.items()}
        self._fine.add(conn, by_key)
        self._rollups.add(conn, rollup_keys(by_key))

    def window_rows_rolled(
        self,
        conn: Connection,
        level: str,
        first_bucket_s: int,
        end_s: int,
        bucket_s: int,
        *,
        sources: Iterable[str] | None = None,
        targets: Iterable[str] | None = None,
    ) -> list[Row[Any]]:
        """Rows whose merge per (source, target) equals that of `window_rows`: roll-up rows for
        the whole coarse buckets inside the window, fine rows for the rest (`window_parts`)."""
        rows: list[Row[Any]] = []
        for span, lo, hi in window_parts(first_bucket_s, end_s, bucket_s):
            if span is None:
                rows.extend(self.window_rows(conn, level, lo, hi, sources=sources, targets=targets))
                continue
            base = select(r).where(
                r.c.level == level,
                r.c.span_s == span,
                r.c.bucket_start_s >= lo,
                r.c.bucket_start_s < hi,
            )
            rows.extend(_filtered(conn, base, r, sources, targets))
        return rows

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
        return _filtered(conn, base, t, sources, targets)

    def targets_with_unknown_sources(
        self,
        conn: Connection,
        level: str,
        first_bucket_s: int,
        end_s: int,
        targets: Iterable[str],
        unknown: set[str] | None = None,
    ) -> set[str]:
        """Which of `targets` have an edge from an `unknown`-kind node in the window (those are
        the targets where query-time attribution may move requests). `unknown`, when the caller
        knows them, are the ids of the level's unknown-kind nodes."""
        found: set[str] = set()
        if unknown is not None and not unknown:
            return found
        sources: Any = (
            sorted(unknown)
            if unknown is not None and len(unknown) <= 500
            else unknown_sources(level)
        )
        for part in chunks(sorted(set(targets)), 1000):
            stmt = (
                select(t.c.target)
                .distinct()
                .where(
                    t.c.level == level,
                    t.c.target.in_(part),
                    t.c.bucket_start_s >= first_bucket_s,
                    t.c.bucket_start_s < end_s,
                    t.c.source.in_(sources),
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
        """Delete fine rows and roll-ups before `cutoff_s` rounded down to the widest span, so
        that every roll-up left is still the exact merge of the fine rows it covers (keeps at
        most one widest span more than asked). Returns the fine rows deleted."""
        cutoff_s = cutoff_s // max(ROLLUP_SPANS_S) * max(ROLLUP_SPANS_S)
        conn.execute(delete(r).where(r.c.bucket_start_s < cutoff_s))
        return int(conn.execute(delete(t).where(t.c.bucket_start_s < cutoff_s)).rowcount)


def _filtered(
    conn: Connection,
    base: Any,
    table: Any,
    sources: Iterable[str] | None,
    targets: Iterable[str] | None,
) -> list[Row[Any]]:
    if sources is None and targets is None:
        return list(conn.execute(base))
    rows: list[Row[Any]] = []
    for column, names in ((table.c.source, sources), (table.c.target, targets)):
        if names is None:
            continue
        for part in chunks(sorted(set(names)), 1000):
            rows.extend(conn.execute(base.where(column.in_(part))))
    return rows


def unknown_sources(level: str) -> Any:
    """Subquery: ids of `unknown`-kind nodes at a level (callers the correlator could not name)."""
    from app.store.tables import nodes

    return select(nodes.c.id).where(nodes.c.level == level, nodes.c.kind == "unknown")
