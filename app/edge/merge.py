"""The one merge of edge buckets, generated from the field declaration (app/edge/fields.py).

- `merged(a, b)`: a new bucket holding both (exemplars left out: they have their own top-N).
  The store's roll-ups and query-time attribution use it.
- `add_stored(bucket, row)`: adds one stored row (any object with the stored columns as
  attributes, as the store reads them: JSON maps as dicts, principals as a list, the sketch as
  bytes) to a bucket; the window reader merges a window's rows with it (`merge_rows`). Stored
  sketches are merged without decoding (`LatencySketch.merge_encoded`).
Both give the same bucket whatever the order of their inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from app.codegen import compile_function
from app.domain import Reporter
from app.edge.bucket import EdgeBucket
from app.edge.fields import EDGE_FIELDS, L4_COUNTERS, STORED_SIDE, Merge, Stored
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats, add_counts, added

Pair = tuple[str, str]
_BUCKET_FIELDS = [f for f in EDGE_FIELDS if f.reporter is None]
_ENV: dict[str, Any] = {
    "EdgeBucket": EdgeBucket,
    "L4Stats": L4Stats,
    "LatencySketch": LatencySketch,
}
_ENV |= {"add_counts": add_counts, "added": added, "Reporter": Reporter}


def _merged_lines() -> list[str]:
    lines = [
        "l4 = {}",
        "for part in (a.l4, b.l4):",
        "    for reporter, counters in part.items():",
        "        mine = l4.get(reporter)",
        "        if mine is None:",
        "            mine = l4[reporter] = L4Stats()",
        "        mine.merge(counters)",
    ]
    values = []
    for f in _BUCKET_FIELDS:
        a, b = f"a.{f.attr}", f"b.{f.attr}"
        match f.merge:
            case Merge.ADD:
                values.append(f"{a} + {b}")
            case Merge.MAX:
                values.append(f"max({a}, {b})")
            case Merge.ADD_MAP:
                values.append(f"added({a}, {b})")
            case Merge.SKETCH:
                lines += [f"s_{f.attr} = LatencySketch()", f"s_{f.attr}.merge({a})"]
                lines.append(f"s_{f.attr}.merge({b})")
                values.append(f"s_{f.attr}")
            case Merge.UNION:
                values.append(f"{a} | {b}")
    named = [f"{f.attr}={v}" for f, v in zip(_BUCKET_FIELDS, values, strict=True)]
    lines.append(f"return EdgeBucket({', '.join(named)}, l4=l4)")
    return lines


def _add_stored_lines() -> list[str]:
    lines = []
    for f in _BUCKET_FIELDS:
        into, stored = f"into.{f.attr}", f"row.{f.name}"
        match f.merge:
            case Merge.ADD:
                lines.append(f"{into} += {stored}")
            case Merge.MAX:
                lines.append(f"{into} = max({into}, {stored})")
            case Merge.ADD_MAP:
                lines.append(f"add_counts({into}, {stored})")
            case Merge.SKETCH:
                lines.append(f"{into}.merge_encoded({stored})")
            case Merge.UNION:
                lines += [f"if {stored}:", f"    {into}.update({stored})"]
    for reporter, side in STORED_SIDE.items():
        values = ", ".join(f"row.l4_{side}_{c}" for c in L4_COUNTERS)
        lines += [
            f"v = ({values},)",
            "if any(v):",
            f"    c = into.l4.get({str(reporter)!r})",
            "    if c is None:",
            f"        c = into.l4[{str(reporter)!r}] = L4Stats()",
            *(f"    c.{name} += v[{i}]" for i, name in enumerate(L4_COUNTERS)),
        ]
    return lines


merged = compile_function("merged", "a, b", _merged_lines(), _ENV)
add_stored = compile_function("add_stored", "into, row", _add_stored_lines(), _ENV)

# The stored value columns in table order (store/tables.py: one per field, in its order); a
# "values row" is (source, target, *VALUE_COLUMNS) as the driver returns it: JSON as text
# (SQLite) or already decoded (psycopg).
VALUE_COLUMNS = tuple(f.name for f in EDGE_FIELDS)
_JSON_COLUMNS = {f.name for f in EDGE_FIELDS if f.stored in (Stored.JSON_MAP, Stored.JSON_LIST)}
_NOTHING: dict[str, Any] = {}


class _Decoder:
    """JSON columns as the driver gave them, decoded once per distinct text (a window repeats
    few small maps, {"200": 196} …, many times); the values are only read by the merge."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {"{}": _NOTHING, "[]": _NOTHING}

    def __call__(self, value: Any) -> Any:
        if type(value) is not str:
            return value  # psycopg decodes json columns itself
        found = self._seen.get(value)
        if found is None:
            found = self._seen[value] = json.loads(value)
        return found


def _values_lines() -> list[str]:
    index = {name: i + 2 for i, name in enumerate(VALUE_COLUMNS)}

    def by_index(match: re.Match[str]) -> str:
        name = match.group(1)
        at = f"row[{index[name]}]"
        return f"_decoded({at})" if name in _JSON_COLUMNS else at

    return [re.sub(r"\brow\.(\w+)", by_index, line) for line in _add_stored_lines()]


add_stored_values = compile_function(
    "add_stored_values", "into, row, _decoded", _values_lines(), _ENV
)
add_stored_values.__doc__ = (
    "`add_stored` of a values row (no per-column attribute look-up: ~10x faster on a window's "
    "hundreds of thousands of rows).\n\n" + (add_stored_values.__doc__ or "")
)


def merge_values(rows: Iterable[tuple[Any, ...]]) -> dict[Pair, EdgeBucket]:
    """`merge_rows` of values rows."""
    out: dict[Pair, EdgeBucket] = {}
    decoded = _Decoder()
    for row in rows:
        key = (row[0], row[1])
        bucket = out.get(key)
        if bucket is None:
            bucket = out[key] = EdgeBucket()
        add_stored_values(bucket, row, decoded)
    return out


def merge_rows(rows: Iterable[Any]) -> dict[Pair, EdgeBucket]:
    """A window's stored rows merged per (source, target)."""
    out: dict[Pair, EdgeBucket] = {}
    for row in rows:
        key = (row.source, row.target)
        bucket = out.get(key)
        if bucket is None:
            bucket = out[key] = EdgeBucket()
        add_stored(bucket, row)
    return out


def merge_rows_by_bucket(rows: Iterable[Any]) -> dict[Pair, dict[int, EdgeBucket]]:
    """Per edge, per bucket start: a window's rows kept apart for time series."""
    out: dict[Pair, dict[int, EdgeBucket]] = {}
    for row in rows:
        per_bucket = out.setdefault((row.source, row.target), {})
        bucket = per_bucket.get(row.bucket_start_s)
        if bucket is None:
            bucket = per_bucket[row.bucket_start_s] = EdgeBucket()
        add_stored(bucket, row)
    return out
