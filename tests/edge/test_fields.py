"""The edge's one field declaration: the bucket, the stats, the stored columns and the merges all
follow it, and the generated merges agree with a plain reference merge in any order."""

from __future__ import annotations

import json
import random
from dataclasses import fields
from types import SimpleNamespace
from typing import Any

from app.domain import Reporter
from app.edge.bucket import EdgeBucket
from app.edge.fields import EDGE_FIELDS, L4_COUNTERS, SOLE, Merge
from app.edge.merge import add_stored, merged
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats, L7Stats, l7_stats, sum_l7
from app.store.edges import KEY_COLUMNS, VALUE_COLUMNS, row_values
from app.store.tables import edge_buckets, edge_rollups


def test_the_bucket_holds_the_declared_fields_and_nothing_else() -> None:
    declared = [f.attr for f in EDGE_FIELDS if f.reporter is None]
    at = declared.index("l4_principals")  # the per-side L4 counters live in `l4`, before it
    assert [f.name for f in fields(EdgeBucket)] == [
        *declared[:at],
        "l4",
        *declared[at:],
        "exemplars",
    ]


def test_l4_and_l7_stats_hold_the_declared_counters() -> None:
    assert [f.name for f in fields(L4Stats)] == [*L4_COUNTERS, "principals", "failures"]
    shown = {f.shown for f in EDGE_FIELDS if f.shown}
    sources = {"counts_from", "spans", "bytes_sent", "bytes_received", "latency_from"}
    sources |= {"latency_bounds", "sampling_share"}
    assert {f.name for f in fields(L7Stats)} == shown | {"p50_ms", "p95_ms", "p99_ms"} | sources
    for reporter in (*Reporter, SOLE):
        per_reporter = [f.attr for f in EDGE_FIELDS if f.reporter is reporter]
        assert per_reporter == list(L4_COUNTERS)


def test_stored_columns_are_the_declared_fields_in_order() -> None:
    names = [f.name for f in EDGE_FIELDS]
    assert [c.name for c in edge_buckets.columns] == [*KEY_COLUMNS, *names]
    assert [c.name for c in edge_rollups.columns] == ["span_s", *KEY_COLUMNS, *names]
    assert sorted(VALUE_COLUMNS) == sorted(names)
    merges = {f.name: f.merge for f in EDGE_FIELDS}
    assert merges["l7_latency_sketch"] is Merge.SKETCH and merges["l4_principals"] is Merge.UNION


def _random_bucket(rng: random.Random) -> EdgeBucket:
    b = EdgeBucket()
    b.protocol = rng.choice(["", "http", "grpc", "tcp"])
    b.via = rng.choice(["", "default/waypoint", "default/wp-2"])
    b.l7_requests, b.l7_errors = rng.randint(0, 50), rng.randint(0, 5)
    b.l7_errors_by_cause = {
        c: rng.randint(1, 3) for c in rng.sample(["app", "timeout", "reset"], 2)
    }
    b.l7_status_codes = {c: rng.randint(1, 9) for c in rng.sample(["200", "404", "503"], 2)}
    b.l7_latency_sum_ms = rng.random() * 100
    b.l7_latency.add_all(rng.expovariate(0.1) for _ in range(rng.randint(0, 20)))
    b.l7_provenance = {"paired_spans": rng.randint(0, 4)}
    b.l7_candidates = {"default/a": rng.random()}
    b.l7_unpaired, b.l7_late, b.l7_evicted = rng.randint(0, 3), rng.randint(0, 3), rng.randint(0, 3)
    for reporter in rng.sample([*Reporter, SOLE], rng.randint(0, 3)):
        b.l4[reporter] = L4Stats(*(rng.randint(1, 1000) for _ in L4_COUNTERS))
    b.l4_principals = set(rng.sample(["spiffe://a", "spiffe://b", "spiffe://c"], rng.randint(0, 2)))
    flags = ["destination/DENY", "source/CONNECT", "sole/TLS_FAILURE"]
    b.l4_failures = {f: rng.randint(1, 9) for f in rng.sample(flags, rng.randint(0, 2))}
    b.l7m_requests, b.l7m_errors = rng.randint(0, 500), rng.randint(0, 20)
    b.l7m_errors_by_cause = {"http_5xx": rng.randint(0, 9)} if rng.random() < 0.5 else {}
    b.l7m_status_codes = {c: rng.randint(1, 99) for c in rng.sample(["200", "503", "grpc:14"], 2)}
    b.l7m_bytes_sent, b.l7m_bytes_received = rng.randint(0, 10**6), rng.randint(0, 10**6)
    b.l7m_latency_sum_ms = rng.random() * 1000
    b.l7m_latency_buckets = {le: rng.randint(1, 50) for le in rng.sample(["5", "25", "+Inf"], 2)}
    return b


def _reference(a: EdgeBucket, b: EdgeBucket) -> dict[str, Any]:
    """A plain merge by value type, written without the declaration."""
    out: dict[str, Any] = {}
    for f in fields(EdgeBucket):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "exemplars":
            continue
        if isinstance(x, str):
            out[f.name] = max(x, y)
        elif isinstance(x, int | float):
            out[f.name] = x + y
        elif isinstance(x, set):
            out[f.name] = x | y
        elif isinstance(x, LatencySketch):
            bins = dict(x.bins)
            for k, c in y.bins.items():
                bins[k] = bins.get(k, 0) + c
            out[f.name] = (bins, x.zero_count + y.zero_count)
        elif f.name == "l4":
            l4: dict[str, tuple[int, ...]] = {}
            for part in (x, y):
                for reporter, s in part.items():
                    seen = l4.get(reporter, (0,) * len(L4_COUNTERS))
                    l4[reporter] = tuple(
                        v + getattr(s, c) for v, c in zip(seen, L4_COUNTERS, strict=True)
                    )
            out[f.name] = l4
        else:
            keys = {*x, *y}
            out[f.name] = {k: x.get(k, 0) + y.get(k, 0) for k in keys}
    return out


def _summary(b: EdgeBucket) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(EdgeBucket):
        value = getattr(b, f.name)
        if f.name == "exemplars":
            continue
        if isinstance(value, LatencySketch):
            value = (dict(value.bins), value.zero_count)
        elif f.name == "l4":
            value = {
                r: tuple(getattr(s, c) for c in L4_COUNTERS)
                for r, s in value.items()
                if not s.empty
            }
        elif isinstance(value, float):
            value = round(value, 9)
        elif isinstance(value, dict) and any(isinstance(v, float) for v in value.values()):
            value = {k: round(v, 9) for k, v in value.items()}
        out[f.name] = value
    return out


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    out["l7_latency_sum_ms"] = round(out["l7_latency_sum_ms"], 9)
    out["l7m_latency_sum_ms"] = round(out["l7m_latency_sum_ms"], 9)
    out["l7_candidates"] = {k: round(v, 9) for k, v in out["l7_candidates"].items()}
    return out


def test_merged_is_the_reference_merge_in_any_order() -> None:
    rng = random.Random(12)
    for _ in range(200):
        a, b, c = (_random_bucket(rng) for _ in range(3))
        assert _summary(merged(a, b)) == _rounded(_reference(a, b))
        assert _summary(merged(a, b)) == _summary(merged(b, a))
        assert _summary(merged(merged(a, b), c)) == _summary(merged(a, merged(b, c)))


def _stored_row(bucket: EdgeBucket) -> SimpleNamespace:
    """The bucket as the store reads it back: JSON maps and principals decoded, sketch bytes."""
    row = dict(zip(VALUE_COLUMNS, row_values(bucket), strict=True))
    for f in EDGE_FIELDS:
        if f.merge in (Merge.ADD_MAP, Merge.UNION):
            row[f.name] = json.loads(row[f.name])
    return SimpleNamespace(**row)


def test_adding_stored_rows_gives_the_merge_of_the_buckets() -> None:
    rng = random.Random(7)
    for _ in range(200):
        parts = [_random_bucket(rng) for _ in range(rng.randint(1, 4))]
        into = EdgeBucket()
        for part in parts:
            add_stored(into, _stored_row(part))
        expected = parts[0]
        for part in parts[1:]:
            expected = merged(expected, part)
        assert _summary(into) == _summary(expected)
        assert into.l7_latency.quantiles() == expected.l7_latency.quantiles()


def test_l7_stats_and_their_sum_follow_the_buckets() -> None:
    rng = random.Random(3)
    for _ in range(50):
        a, b = _random_bucket(rng), _random_bucket(rng)
        a.l7_requests, b.l7_requests = a.l7_requests + 1, b.l7_requests + 1
        a.l7m_requests = b.l7m_requests = 0  # span counts (the metrics' view: the test below)
        both = merged(a, b)
        stats = l7_stats(both)
        assert stats is not None
        assert stats.requests == a.l7_requests + b.l7_requests
        assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == both.l7_latency.quantiles()
        x, y = l7_stats(a), l7_stats(b)
        summed = sum_l7(x, y, (stats.p50_ms, stats.p95_ms, stats.p99_ms))
        assert summed is not None
        assert summed.errors_by_cause == stats.errors_by_cause
        assert summed.status_codes == stats.status_codes
        assert (summed.requests, summed.errors, summed.unpaired, summed.late, summed.evicted) == (
            stats.requests,
            stats.errors,
            stats.unpaired,
            stats.late,
            stats.evicted,
        )
    assert l7_stats(EdgeBucket()) is None


def test_with_waypoint_metrics_the_counts_are_theirs_and_spans_give_the_sampling_share() -> None:
    rng = random.Random(5)
    for _ in range(50):
        a, b = _random_bucket(rng), _random_bucket(rng)
        a.l7m_requests, b.l7m_requests = a.l7m_requests + 1, b.l7m_requests + 1
        both = merged(a, b)
        stats = l7_stats(both)
        assert stats is not None and stats.exact and stats.counts_from == "metrics"
        assert stats.requests == a.l7m_requests + b.l7m_requests
        assert (stats.errors, stats.status_codes) == (both.l7m_errors, both.l7m_status_codes)
        assert stats.spans == both.l7_requests
        assert stats.sampling_share == both.l7_requests / stats.requests
        assert stats.bytes_sent == both.l7m_bytes_sent
        assert stats.latency_bounds is not None
        for value, bound in zip(
            (stats.p50_ms, stats.p95_ms, stats.p99_ms), stats.latency_bounds, strict=True
        ):
            assert bound is not None and value is not None
            assert bound[0] <= value <= bound[1]
