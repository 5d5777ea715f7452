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

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, select

from app.correlate.buckets import EdgeBucket, L4Counters
from app.correlate.sketch import LatencySketch
from app.domain import EdgeKey
from app.store.bulk import Bulk
from app.store.dialect import chunks
from app.store.sketch_codec import encode_sketch, merge_encoded
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
ROLLUP_KEY_COLUMNS = ("span_s", *KEY_COLUMNS)
_MAX_ROUNDS = 5  # rounds of "insert new keys, lock and merge the ones that raced"
# Coarse bucket widths kept in edge_rollups (each a multiple of the fine bucket width in use;
# readers skip one that is not). Changing them needs a migration that rebuilds edge_rollups.
ROLLUP_SPANS_S = (600, 3600)

Key = tuple[int, str, str, str]
RollupKey = tuple[int, int, str, str, str]


def key_tuple(key: EdgeKey) -> Key:
    return (key.bucket_start_s, str(key.level.value), key.source, key.target)


def _add_maps(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(old or {})
    for k, v in new.items():
        merged[k] = merged.get(k, 0) + v
    return merged


_dumps, _loads = json.dumps, json.loads  # what SQLAlchemy's JSON type used: same stored text


def row_values(bucket: EdgeBucket) -> tuple[Any, ...]:
    """The bucket as stored, in `VALUE_COLUMNS` order: JSON maps as text ("{}" when empty),
    the sketch as bytes (None when empty), principals as a sorted JSON list."""
    l4 = bucket.l4
    src, dst = l4.get("source") or _NO_L4, l4.get("destination") or _NO_L4
    sketch = bucket.l7_latency
    return (
        bucket.l7_requests,
        bucket.l7_errors,
        float(bucket.l7_latency_sum_ms),
        bucket.l7_unpaired,
        bucket.l7_late,
        bucket.l7_evicted,
        src.connections_opened,
        src.connections_closed,
        src.bytes_sent,
        src.bytes_received,
        src.mtls_connections,
        dst.connections_opened,
        dst.connections_closed,
        dst.bytes_sent,
        dst.bytes_received,
        dst.mtls_connections,
        bucket.protocol,
        bucket.via,
        _map_text(bucket.l7_errors_by_cause),
        _map_text(bucket.l7_status_codes),
        _sketch_blob(sketch) if sketch.count else None,
        _map_text(bucket.l7_provenance),
        _map_text(bucket.l7_candidates),
        _dumps(sorted(bucket.l4_principals)) if bucket.l4_principals else "[]",
    )


_MEMO_MAX = 65536
_map_texts: dict[tuple[Any, ...], str] = {}
_small_sketches: dict[tuple[Any, ...], bytes] = {}
_merged_texts: dict[tuple[str, str], str] = {}
_merged_sketches: dict[tuple[bytes, bytes], bytes] = {}


def _map_text(m: Mapping[str, Any]) -> str:
    """`json.dumps(m)`, memoised: a batch repeats few small maps ({"200": 1} …) many times
    (the value types are part of the memo key: 1 and 1.0 are equal, their JSON is not)."""
    if not m:
        return "{}"
    items = (*m.items(), *map(type, m.values()))
    text = _map_texts.get(items)
    if text is None:
        if len(_map_texts) >= _MEMO_MAX:
            _map_texts.clear()
        text = _map_texts[items] = _dumps(m)
    return text


def _sketch_blob(sketch: LatencySketch) -> bytes:
    """The stored sketch; those of one or two bins (one or two requests) memoised."""
    bins = sketch.bins
    if len(bins) > 2:
        return encode_sketch(sketch.zero_count, bins)
    key = (sketch.zero_count, *bins.items())
    blob = _small_sketches.get(key)
    if blob is None:
        if len(_small_sketches) >= _MEMO_MAX:
            _small_sketches.clear()
        blob = _small_sketches[key] = encode_sketch(sketch.zero_count, bins)
    return blob


_NO_L4 = L4Counters()


class RowValues:
    """`row_values` per bucket object, computed once: a roll-up row made of one fine bucket (a
    batch within one coarse bucket) reuses the fine row's values."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[EdgeBucket, tuple[Any, ...]]] = {}

    def of(self, bucket: EdgeBucket) -> tuple[Any, ...]:
        found = self._by_id.get(id(bucket))
        if found is not None and found[0] is bucket:
            return found[1]
        values = row_values(bucket)
        self._by_id[id(bucket)] = (bucket, values)  # holding the bucket keeps its id unique
        return values


def merge_map_text(old: str | None, new: str) -> str | None:
    """Stored JSON map + a batch's: per-key sums, the stored keys' order first (small pairs,
    which repeat in key-heavy batches, memoised)."""
    if new == "{}":
        return old
    small = old is not None and len(old) + len(new) < 96
    if small:
        merged = _merged_texts.get((old or "", new))
        if merged is not None:
            return merged
    merged = _dumps(_add_maps(_loads(old) if old else None, _loads(new)))
    if small:
        if len(_merged_texts) >= _MEMO_MAX:
            _merged_texts.clear()
        _merged_texts[(old or "", new)] = merged
    return merged


def merge_sketch_blob(old: bytes | None, new: bytes | None) -> bytes | None:
    """Stored sketch + a batch's (both `LatencySketch.to_bytes`, canonical; small pairs
    memoised)."""
    if not new:
        return old
    if not old:
        return new
    if len(old) + len(new) > 24:
        return merge_encoded(old, new)
    merged = _merged_sketches.get((old, new))
    if merged is None:
        if len(_merged_sketches) >= _MEMO_MAX:
            _merged_sketches.clear()
        merged = _merged_sketches[(old, new)] = merge_encoded(old, new)
    return merged


def merge_principals_text(old: str | None, new: str) -> str | None:
    """Stored principals + a batch's: the sorted union."""
    if new == "[]":
        return old
    return _dumps(sorted({*(_loads(old) if old else ()), *_loads(new)}))


# The read-modify-write columns, each with its merge of (stored, batch) and its empty value.
RMW_MERGES: dict[str, tuple[Callable[[Any, Any], Any], str | None]] = {
    "l7_errors_by_cause": (merge_map_text, "{}"),
    "l7_status_codes": (merge_map_text, "{}"),
    "l7_latency_sketch": (merge_sketch_blob, None),
    "l7_provenance": (merge_map_text, "{}"),
    "l7_candidates": (merge_map_text, "{}"),
    "l4_principals": (merge_principals_text, "[]"),
}
RMW_COLUMNS = tuple(RMW_MERGES)
STRING_COLUMNS = ("protocol", "via")  # merged with max(), in SQL
VALUE_COLUMNS = (*COUNTER_COLUMNS, *STRING_COLUMNS, *RMW_COLUMNS)
_RMW_EMPTY = tuple(empty for _, empty in RMW_MERGES.values())
_N_RMW = len(RMW_COLUMNS)
_SQLITE_MERGE_FUNCTIONS = {
    "l7_errors_by_cause": "meshstitch_merge_map",
    "l7_status_codes": "meshstitch_merge_map",
    "l7_latency_sketch": "meshstitch_merge_sketch",
    "l7_provenance": "meshstitch_merge_map",
    "l7_candidates": "meshstitch_merge_map",
    "l4_principals": "meshstitch_merge_principals",
}


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
    """The additive write protocol (module docstring) on one table, at the driver level."""

    def __init__(self, table: Any, key_columns: tuple[str, ...], chunk_size: int) -> None:
        self.table, self.key_columns, self.chunk_size = table, key_columns, chunk_size
        self.columns = (*key_columns, *VALUE_COLUMNS)
        keys = ", ".join(key_columns)
        self._additive = [(c, "add") for c in COUNTER_COLUMNS] + [
            (c, "max") for c in STRING_COLUMNS
        ]
        self._conflict_keys = f"ON CONFLICT ({keys})"

    def add_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Add rows `(key…, *VALUE_COLUMNS)` (keys distinct and sorted) to the table."""
        if not rows:
            return
        bulk = Bulk(conn)
        if bulk.postgresql:
            self._add_postgresql(bulk, rows)
        else:
            self._add_sqlite(bulk, rows)

    def _add_sqlite(self, bulk: Bulk, rows: list[tuple[Any, ...]]) -> None:
        """One upsert: SQLite's write lock (BEGIN IMMEDIATE) is held, so the merges run in the
        statement, by functions registered on the connection, and only for non-empty parts."""
        table = self.table
        for name, fn in (
            ("meshstitch_merge_map", merge_map_text),
            ("meshstitch_merge_sketch", merge_sketch_blob),
            ("meshstitch_merge_principals", merge_principals_text),
        ):
            bulk.dbapi.create_function(name, 2, fn, deterministic=True)
        sets = [bulk.assignment(table, c, how, f"excluded.{c}") for c, how in self._additive]
        for c, (_, empty) in RMW_MERGES.items():
            stored, new = f"{table.name}.{c}", f"excluded.{c}"
            skip = f"{new} IS NULL" if empty is None else f"{new} = '{empty}'"
            merge = f"{_SQLITE_MERGE_FUNCTIONS[c]}({stored}, {new})"
            sets.append(f"{c} = CASE WHEN {skip} THEN {stored} ELSE {merge} END")
        for part in chunks(rows, self.chunk_size):
            bulk.insert(
                table, self.columns, part, f"{self._conflict_keys} DO UPDATE SET " + ", ".join(sets)
            )

    def _add_postgresql(self, bulk: Bulk, rows: list[tuple[Any, ...]]) -> None:
        """Rows with nothing to merge in Python (no maps, sketch or principals: e.g. L4 without
        principals) in one additive upsert; the others by the locked protocol."""
        table, n = self.table, len(self.key_columns)
        blind = [row for row in rows if row[-_N_RMW:] == _RMW_EMPTY]
        if blind:
            sets = [bulk.assignment(table, c, how, f"excluded.{c}") for c, how in self._additive]
            bulk.insert(
                table,
                self.columns,
                blind,
                f"{self._conflict_keys} DO UPDATE SET " + ", ".join(sets),
            )
        rmw = [row for row in rows if row[-_N_RMW:] != _RMW_EMPTY] if blind else rows
        for chunk in chunks(rmw, self.chunk_size):
            pending = chunk
            for _ in range(_MAX_ROUNDS):
                pending = self._add_locked(bulk, pending, n)
                if not pending:
                    break
            else:  # pragma: no cover - needs a writer that deletes rows between our statements
                raise RuntimeError(f"edge bucket upsert did not settle for {len(pending)} keys")

    def _add_locked(self, bulk: Bulk, rows: list[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
        """Steps 1-3 of the protocol for `rows`; returns the rows whose insert lost a race."""
        table = self.table
        keys = [row[:n] for row in rows]
        existing = {
            found[:n]: found[n:]
            for found in bulk.select_by_keys(table, self.key_columns, RMW_COLUMNS, keys, lock=True)
        }
        merges = [merge for merge, _ in RMW_MERGES.values()]
        updates, inserts = [], []
        for key, row in zip(keys, rows, strict=True):
            old = existing.get(key)
            if old is None:
                inserts.append(row)
                continue
            new = row[-_N_RMW:]
            merged = tuple(m(o, v) for m, o, v in zip(merges, old, new, strict=True))
            updates.append((*row[:-_N_RMW], *merged))
        bulk.update_by_keys(
            table, self.key_columns, [*self._additive, *((c, "set") for c in RMW_COLUMNS)], updates
        )
        if not inserts:
            return []
        inserted = set(
            bulk.insert(
                table, self.columns, inserts, f"{self._conflict_keys} DO NOTHING", returning=n
            )
        )
        return [row for row in inserts if row[:n] not in inserted]


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

    def __init__(self, chunk_size: int = 5000) -> None:
        self.chunk_size = chunk_size
        self._fine = _Upserter(t, KEY_COLUMNS, chunk_size)
        self._rollups = _Upserter(r, ROLLUP_KEY_COLUMNS, chunk_size)

    def add(self, conn: Connection, buckets: Mapping[EdgeKey, EdgeBucket]) -> None:
        """Add the buckets to what is stored, and to their roll-ups (module docstring)."""
        by_key = {key_tuple(k): b for k, b in buckets.items()}
        values = RowValues()
        self.add_fine(conn, by_key, values)
        self.add_rollups(conn, by_key, values)

    def add_fine(
        self, conn: Connection, by_key: Mapping[Key, EdgeBucket], values: RowValues
    ) -> None:
        """The fine rows of `add` (`values`: shared with `add_rollups`)."""
        self._fine.add_rows(conn, [(*k, *values.of(by_key[k])) for k in sorted(by_key)])

    def add_rollups(
        self, conn: Connection, by_key: Mapping[Key, EdgeBucket], values: RowValues
    ) -> None:
        """The roll-up rows of `add`, after the fine ones (one lock order for every writer)."""
        rolled = rollup_keys(by_key)
        self._rollups.add_rows(conn, [(*k, *values.of(rolled[k])) for k in sorted(rolled)])

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
