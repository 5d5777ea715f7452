"""Merging a window's edge bucket rows into one value per (source, target), exactly.

Counters add, maps add per key, principals union, sketches merge bin by bin; L4 stays per
reporter so the reader can choose one reporter over the whole window (see `choose_l4`).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import add, lt
from typing import Any

from sqlalchemy import Row

from app.correlate.buckets import L4Counters
from app.correlate.sketch import LatencySketch, SketchDecodeError
from app.store.edges import L4_FIELDS, REPORTER_SIDES


@dataclass(slots=True)
class MergedEdge:
    source: str
    target: str
    protocol: str = ""
    via: str = ""
    l7_requests: int = 0
    l7_errors: int = 0
    l7_errors_by_cause: dict[str, int] = field(default_factory=dict)
    l7_status_codes: dict[str, int] = field(default_factory=dict)
    l7_latency_sum_ms: float = 0.0
    # The stored sketches of the merged rows, decoded and merged only when asked (`quantiles`
    # needs no LatencySketch; attribution and tests do).
    sketch_parts: list[bytes] = field(default_factory=list)
    l7_provenance: dict[str, int] = field(default_factory=dict)
    l7_candidates: dict[str, float] = field(default_factory=dict)
    l7_unpaired: int = 0
    l7_late: int = 0
    l7_evicted: int = 0
    l4: dict[str, L4Counters] = field(default_factory=dict)  # reporter -> counters
    l4_principals: set[str] = field(default_factory=set)

    @property
    def l7_latency(self) -> LatencySketch:
        """The exact merge of the rows' sketches."""
        zero, bins = merged_bins(self.sketch_parts)
        sketch = LatencySketch()
        sketch.bins, sketch.zero_count, sketch.count = bins, zero, zero + sum(bins.values())
        return sketch

    def quantiles(self, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> tuple[float | None, ...]:
        """`self.l7_latency.quantile(q)` for each q, without building the sketch."""
        return sketch_quantiles(self.sketch_parts, qs)


# ---- stored sketches (app/correlate/sketch.py format 1) at C speed ------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


# zigzag-encoded one-byte key deltas -> delta
_UNZIGZAG = tuple((d >> 1) if not d & 1 else -((d + 1) >> 1) for d in range(128))
_VARINT = re.compile(rb"[\x80-\xff]*[\x00-\x7f]")


class _VarintValues(dict[bytes, int]):
    """Memo: encoded varint -> value (bounded; a miss decodes it in Python)."""

    def __missing__(self, encoded: bytes) -> int:
        value = _varint(encoded, 0)[0]
        if len(self) < 100_000:
            self[encoded] = value
        return value


_VARINTS = _VarintValues()


def decode_sketch(data: bytes) -> tuple[int, list[int], list[int]]:
    """(zero count, keys ascending, counts) of a stored sketch; the per-value work runs in C
    (slices, `map`, `accumulate`) instead of a Python varint loop."""
    if not data or data[0] != 1:
        raise SketchDecodeError("unknown latency sketch version")
    try:
        zero, pos = _varint(data, 1)
        n, pos = _varint(data, pos)
        if not n:
            return zero, [], []
        first, pos = _varint(data, pos)  # the first key is absolute: maybe several bytes
        body = data[pos:]
    except IndexError:
        raise SketchDecodeError("truncated latency sketch") from None
    if body and max(body) < 0x80:  # every count and later delta one byte: most buckets
        if len(body) != 2 * n - 1:
            raise SketchDecodeError("truncated latency sketch")
        counts = list(body[0::2])
        deltas = map(_UNZIGZAG.__getitem__, body[1::2])
    else:
        values = list(map(_VARINTS.__getitem__, _VARINT.findall(body)))
        if len(values) != 2 * n - 1 or (body and body[-1] & 0x80):
            raise SketchDecodeError("truncated latency sketch")
        counts = values[0::2]
        deltas = map(_unzigzag, values[1::2])
    keys = list(accumulate(deltas, initial=_unzigzag(first)))
    return zero, keys, counts


def _unzigzag(d: int) -> int:
    return (d >> 1) if not d & 1 else -((d + 1) >> 1)


def merged_bins(parts: Iterable[bytes]) -> tuple[int, dict[int, int]]:
    """(zero count, bins) of the merge of stored sketches."""
    zero, bins = 0, dict[int, int]()
    for data in parts:
        z, keys, counts = decode_sketch(data)
        zero += z
        if not bins:
            bins = dict(zip(keys, counts, strict=True))
        else:  # bins[k] += c for each pair, in C (keys are distinct within one sketch)
            bins.update(zip(keys, map(add, map(bins.get, keys, repeat(0)), counts), strict=True))
    return zero, bins


def merge_sketch_bytes(into: LatencySketch, data: bytes) -> None:
    """`into.merge(LatencySketch.from_bytes(data))`, decoding at C speed."""
    zero, keys, counts = decode_sketch(data)
    bins = into.bins
    bins.update(zip(keys, map(add, map(bins.get, keys, repeat(0)), counts), strict=True))
    into.zero_count += zero
    into.count += zero + sum(counts)


def sketch_quantiles(parts: list[bytes], qs: tuple[float, ...]) -> tuple[float | None, ...]:
    """LatencySketch.quantile of the merge of `parts` for each q (same ranks, same values)."""
    if len(parts) == 1:
        zero, keys, counts = decode_sketch(parts[0])
        if not all(map(lt, keys, keys[1:])):  # pragma: no cover - to_bytes writes keys in order
            zero, bins = merged_bins(parts)
            keys = sorted(bins)
            counts = [bins[k] for k in keys]
    else:
        zero, bins = merged_bins(parts)
        keys = sorted(bins)
        counts = list(map(bins.__getitem__, keys))
    cumulative = list(accumulate(counts))
    total = zero + (cumulative[-1] if cumulative else 0)
    if not total:
        return tuple(None for _ in qs)
    out: list[float | None] = []
    for q in qs:
        rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1))
        if rank < zero:
            out.append(0.0)
        else:
            out.append(LatencySketch.value(keys[bisect_right(cumulative, rank - zero)]))
    return tuple(out)


def _add(into: dict[str, Any], values: dict[str, Any] | None) -> None:
    if values:
        for k, v in values.items():
            into[k] = into.get(k, 0) + v


_L4_COLUMNS = tuple(
    (reporter, tuple(f"l4_{side}_{name}" for name in L4_FIELDS))
    for reporter, side in REPORTER_SIDES.items()
)


def merge_row(edge: MergedEdge, row: Row[Any]) -> None:
    edge.protocol = max(edge.protocol, row.protocol)
    edge.via = max(edge.via, row.via)
    edge.l7_requests += row.l7_requests
    edge.l7_errors += row.l7_errors
    _add(edge.l7_errors_by_cause, row.l7_errors_by_cause)
    _add(edge.l7_status_codes, row.l7_status_codes)
    edge.l7_latency_sum_ms += row.l7_latency_sum_ms
    if row.l7_latency_sketch:
        edge.sketch_parts.append(row.l7_latency_sketch)
    _add(edge.l7_provenance, row.l7_provenance)
    _add(edge.l7_candidates, row.l7_candidates)
    edge.l7_unpaired += row.l7_unpaired
    edge.l7_late += row.l7_late
    edge.l7_evicted += row.l7_evicted
    mapping = row._mapping
    for reporter, columns in _L4_COLUMNS:
        values = [mapping[c] for c in columns]
        if any(values):
            counters = edge.l4.setdefault(reporter, L4Counters())
            counters.merge(L4Counters(*values))
    if row.l4_principals:
        edge.l4_principals.update(row.l4_principals)


def merge_rows(rows: Iterable[Row[Any]]) -> dict[tuple[str, str], MergedEdge]:
    merged: dict[tuple[str, str], MergedEdge] = {}
    for row in rows:
        key = (row.source, row.target)
        edge = merged.get(key)
        if edge is None:
            edge = merged[key] = MergedEdge(row.source, row.target)
        merge_row(edge, row)
    return merged


def merge_rows_by_bucket(
    rows: Iterable[Row[Any]],
) -> dict[tuple[str, str], dict[int, MergedEdge]]:
    """Per edge, per bucket: the rows of a window kept apart for time series."""
    out: dict[tuple[str, str], dict[int, MergedEdge]] = {}
    for row in rows:
        per_bucket = out.setdefault((row.source, row.target), {})
        edge = per_bucket.get(row.bucket_start_s)
        if edge is None:
            edge = per_bucket[row.bucket_start_s] = MergedEdge(row.source, row.target)
        merge_row(edge, row)
    return out
