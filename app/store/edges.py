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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, select

from app.codegen import compile_function
from app.domain import Reporter
from app.edge.bucket import EdgeBucket, EdgeKey
from app.edge.fields import EDGE_FIELDS, STORED_SIDE, EdgeField, Merge, Stored
from app.edge.merge import VALUE_COLUMNS as FIELD_COLUMNS
from app.edge.merge import merged
from app.edge.sketch import LatencySketch
from app.edge.sketch_codec import encode_sketch, merge_encoded
from app.edge.stats import L4Stats, add_counts
from app.hot_path import BoundedMemo, IdentityMemo
from app.store.bulk import Bulk, chunks
from app.store.tables import edge_buckets as t
from app.store.tables import edge_rollups as r

KEY_COLUMNS = EdgeKey._fields  # bucket_start_s, level, source, target
ROLLUP_KEY_COLUMNS = ("span_s", *KEY_COLUMNS)
_MAX_ROUNDS = 5  # rounds of "insert new keys, lock and merge the ones that raced"
# Coarse bucket widths kept in edge_rollups (each a multiple of the fine bucket width in use;
# readers skip one that is not). Changing them needs a migration that rebuilds edge_rollups.
ROLLUP_SPANS_S = (600, 3600)

BoundKey = tuple[int, str, str, str]
RollupKey = tuple[int, int, str, str, str]


def bound_key(key: EdgeKey) -> BoundKey:
    """`key` as rows hold it: the level as its plain string (`str` of the `Level` member). A row
    tuple of atoms only is dropped from the cycle collector's tracking; one holding an enum member
    stays tracked, which made roll-ups and exemplars ~1.5x slower in bench/write.py's key-heavy
    batch (every full collection walks every row)."""
    start, level, source, target = key
    return (start, str(level), source, target)


_dumps, _loads = json.dumps, json.loads  # what SQLAlchemy's JSON type used: same stored text
_MEMO_MAX = 65536
_map_texts: BoundedMemo[tuple[Any, ...], str] = BoundedMemo(_MEMO_MAX)
_small_sketches: BoundedMemo[tuple[Any, ...], bytes] = BoundedMemo(_MEMO_MAX)
_merged_texts: BoundedMemo[tuple[str, str], str] = BoundedMemo(_MEMO_MAX)
_merged_sketches: BoundedMemo[tuple[bytes, bytes], bytes] = BoundedMemo(_MEMO_MAX)


def _map_text(m: Mapping[str, Any]) -> str:
    """`json.dumps(m)`, memoised: a batch repeats few small maps ({"200": 1} …) many times
    (the value types are part of the memo key: 1 and 1.0 are equal, their JSON is not)."""
    if not m:
        return "{}"
    items = (*m.items(), *map(type, m.values()))
    text = _map_texts.get(items)
    return text if text is not None else _map_texts.set(items, _dumps(m))


def _sketch_blob(sketch: LatencySketch) -> bytes | None:
    """The stored sketch (None when empty); those of one or two bins (one or two requests)
    memoised."""
    if not sketch.count:
        return None
    bins = sketch.bins
    if len(bins) > 2:
        return encode_sketch(sketch.zero_count, bins)
    key = (sketch.zero_count, *bins.items())
    blob = _small_sketches.get(key)
    return (
        blob
        if blob is not None
        else _small_sketches.set(key, encode_sketch(sketch.zero_count, bins))
    )


def _principals_text(principals: set[str]) -> str:
    return _dumps(sorted(principals)) if principals else "[]"


def merge_map_text(old: str | None, new: str) -> str | None:
    """Stored JSON map + a batch's: per-key sums, the stored keys' order first (small pairs,
    which repeat in key-heavy batches, memoised)."""
    if new == "{}":
        return old
    small = old is not None and len(old) + len(new) < 96
    if small:
        found = _merged_texts.get((old or "", new))
        if found is not None:
            return found
    into: dict[str, Any] = _loads(old) if old else {}
    add_counts(into, _loads(new))
    text = _dumps(into)
    if small:
        _merged_texts.set((old or "", new), text)
    return text


def merge_sketch_blob(old: bytes | None, new: bytes | None) -> bytes | None:
    """Stored sketch + a batch's (both `LatencySketch.to_bytes`, canonical; small pairs
    memoised)."""
    if not new:
        return old
    if not old:
        return new
    if len(old) + len(new) > 24:
        return merge_encoded(old, new)
    found = _merged_sketches.get((old, new))
    return found if found is not None else _merged_sketches.set((old, new), merge_encoded(old, new))


def merge_principals_text(old: str | None, new: str) -> str | None:
    """Stored principals + a batch's: the sorted union."""
    if new == "[]":
        return old
    return _dumps(sorted({*(_loads(old) if old else ()), *_loads(new)}))


class _StoredMerge:
    """How a read-modify-write column is encoded, merged in Python and in SQLite, and what an
    empty value looks like (its merge is then skipped)."""

    def __init__(
        self, encode: str, merge: Callable[[Any, Any], Any], sqlite_name: str, empty: str | None
    ) -> None:
        self.encode, self.merge, self.sqlite_name, self.empty = encode, merge, sqlite_name, empty


_STORED_MERGES = {
    Merge.ADD_MAP: _StoredMerge("_map_text", merge_map_text, "meshstitch_merge_map", "{}"),
    Merge.SKETCH: _StoredMerge("_sketch_blob", merge_sketch_blob, "meshstitch_merge_sketch", None),
    Merge.UNION: _StoredMerge(
        "_principals_text", merge_principals_text, "meshstitch_merge_principals", "[]"
    ),
}
# Counters add in SQL, strings take max() in SQL; the rest is read, merged and written back.
_COUNTERS = [f for f in EDGE_FIELDS if f.merge is Merge.ADD]
_STRINGS = [f for f in EDGE_FIELDS if f.merge is Merge.MAX]
_RMW = [f for f in EDGE_FIELDS if f.merge in _STORED_MERGES]
COUNTER_COLUMNS = tuple(f.name for f in _COUNTERS)
STRING_COLUMNS = tuple(f.name for f in _STRINGS)
RMW_COLUMNS = tuple(f.name for f in _RMW)
VALUE_COLUMNS = (*COUNTER_COLUMNS, *STRING_COLUMNS, *RMW_COLUMNS)
# The read-modify-write columns, each with its merge of (stored, batch) and its empty value.
RMW_MERGES = {f.name: _STORED_MERGES[f.merge] for f in _RMW}
_RMW_EMPTY = tuple(m.empty for m in RMW_MERGES.values())
_N_RMW = len(RMW_COLUMNS)


def _value_expression(f: EdgeField) -> str:
    """The stored value of one field of bucket `b` (L4 fields of the reporter's counters)."""
    if f.reporter is not None:
        return f"{STORED_SIDE[f.reporter]}.{f.attr}"
    value = f"b.{f.attr}"
    if f.merge in _STORED_MERGES:
        return f"{_STORED_MERGES[f.merge].encode}({value})"
    return f"float({value})" if f.stored is Stored.FLOAT else value


_row_values_body = [
    f"{side} = b.l4.get({str(reporter)!r}) or _NO_L4" for reporter, side in STORED_SIDE.items()
]
_row_values_body.append(
    "return (" + ", ".join(_value_expression(f) for f in (*_COUNTERS, *_STRINGS, *_RMW)) + ",)"
)
row_values: Callable[[EdgeBucket], tuple[Any, ...]] = compile_function(
    "row_values",
    "b",
    _row_values_body,
    {
        "Reporter": Reporter,
        "_NO_L4": L4Stats(),
        "_map_text": _map_text,
        "_sketch_blob": _sketch_blob,
        "_principals_text": _principals_text,
    },
)
row_values.__doc__ = (
    'The bucket as stored, in `VALUE_COLUMNS` order: JSON maps as text ("{}" when empty), the '
    "sketch as bytes (None when empty), principals as a sorted JSON list.\n\n"
    + (row_values.__doc__ or "")
)


class RowValues:
    """`row_values` per bucket object, computed once: a roll-up row made of one fine bucket (a
    batch within one coarse bucket) reuses the fine row's values."""

    def __init__(self) -> None:
        self._by_bucket: IdentityMemo[EdgeBucket, tuple[Any, ...]] = IdentityMemo(1 << 20)

    def of(self, bucket: EdgeBucket) -> tuple[Any, ...]:
        found = self._by_bucket.get(bucket)
        return found if found is not None else self._by_bucket.set(bucket, row_values(bucket))


def rollup_keys(by_key: Mapping[BoundKey, EdgeBucket]) -> dict[RollupKey, EdgeBucket]:
    """The batch coarsened to every roll-up span, keys falling in one coarse bucket merged."""
    out: dict[RollupKey, EdgeBucket] = {}
    for span in ROLLUP_SPANS_S:
        for (start, level, source, target), bucket in by_key.items():
            key = (span, start // span * span, level, source, target)
            seen = out.get(key)
            out[key] = bucket if seen is None else merged(seen, bucket)
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
        for m in _STORED_MERGES.values():
            bulk.dbapi.create_function(m.sqlite_name, 2, m.merge, deterministic=True)
        sets = [bulk.assignment(table, c, how, f"excluded.{c}") for c, how in self._additive]
        for c, m in RMW_MERGES.items():
            stored, new = f"{table.name}.{c}", f"excluded.{c}"
            skip = f"{new} IS NULL" if m.empty is None else f"{new} = '{m.empty}'"
            merge = f"{m.sqlite_name}({stored}, {new})"
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
        merges = [m.merge for m in RMW_MERGES.values()]
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
        by_key = {bound_key(k): b for k, b in buckets.items()}
        values = RowValues()
        self.add_fine(conn, by_key, values)
        self.add_rollups(conn, by_key, values)

    def add_fine(
        self, conn: Connection, by_key: Mapping[BoundKey, EdgeBucket], values: RowValues
    ) -> None:
        """The fine rows of `add` (`values`: shared with `add_rollups`)."""
        self._fine.add_rows(conn, [(*k, *values.of(by_key[k])) for k in sorted(by_key)])

    def add_rollups(
        self, conn: Connection, by_key: Mapping[BoundKey, EdgeBucket], values: RowValues
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

    def window_values_rolled(
        self,
        conn: Connection,
        level: str,
        first_bucket_s: int,
        end_s: int,
        bucket_s: int,
        *,
        sources: Iterable[str] | None = None,
        targets: Iterable[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of `window_rows_rolled` (the same filters) as values rows,
        `(source, target, *FIELD_COLUMNS)` straight from the driver (app/edge/merge.py
        `merge_values`): a whole window is hundreds of thousands of rows, and SQLAlchemy's
        per-row processing (its JSON columns decoded row by row) cost ~40 µs of each; a
        neighbourhood read from the store spent a third of its time there."""
        bulk = Bulk(conn)  # the transaction begun (one snapshot on SQLite), its DBAPI cursor
        mark = "%s" if bulk.postgresql else "?"
        names = ", ".join(("source", "target", *FIELD_COLUMNS))
        filters: list[tuple[str | None, list[str]]] = [(None, [])]
        if sources is not None or targets is not None:
            filters = [
                (column, part)
                for column, wanted in (("source", sources), ("target", targets))
                if wanted is not None
                for part in chunks(sorted(set(wanted)), 500)
            ]
        cursor = bulk.cursor()
        for span, lo, hi in window_parts(first_bucket_s, end_s, bucket_s):
            table, params = (t.name, [level, lo, hi]) if span is None else (r.name, [level, lo, hi])
            where = f"level = {mark} AND bucket_start_s >= {mark} AND bucket_start_s < {mark}"
            if span is not None:
                where += f" AND span_s = {mark}"
                params.append(span)
            for column, part in filters:
                sql = f"SELECT {names} FROM {table} WHERE {where}"
                if column is not None:
                    sql += f" AND {column} IN ({', '.join([mark] * len(part))})"
                cursor.execute(sql, (*params, *part))
                while rows := cursor.fetchmany(5000):  # streamed: the merge holds pairs, not rows
                    yield from rows
        cursor.close()

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
