"""Merging a window's edge bucket rows into one value per (source, target), exactly.

Counters add, maps add per key, principals union, sketches merge bin by bin; L4 stays per
reporter so the reader can choose one reporter over the whole window (see `choose_l4`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from app.correlate.buckets import L4Counters
from app.correlate.sketch import LatencySketch
from app.store.edges import L4_FIELDS, REPORTER_SIDES
from app.store.sketch_codec import (  # noqa: F401 - merge_sketch_bytes, decode_sketch re-exported
    decode_sketch,
    merge_sketch_bytes,
    merged_bins,
    sketch_quantiles,
)


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
