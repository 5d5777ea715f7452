"""Roll-ups: written with the fine rows, always their exact merge; window reads that use them
merge to exactly what the fine rows merge to; retention and the 0002 backfill keep that true."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.edge.bucket import EdgeBucket
from app.edge.merge import merge_rows, merge_values
from app.edge.stats import L4Stats
from app.store.edges import ROLLUP_SPANS_S, EdgeRepository, window_parts
from app.store.engine import create_store_engine
from app.store.schema import downgrade, upgrade
from app.store.tables import edge_rollups
from app.store.writer import delete_expired, write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

A, B, C = "default/a", "default/b", "default/c"
H = 3600


def _summary(m: EdgeBucket) -> dict[str, Any]:
    return {
        "protocol": m.protocol,
        "via": m.via,
        "requests": m.l7_requests,
        "errors": m.l7_errors,
        "causes": m.l7_errors_by_cause,
        "codes": m.l7_status_codes,
        "sum": round(m.l7_latency_sum_ms, 6),
        "sketch": (m.l7_latency.bins, m.l7_latency.zero_count, m.l7_latency.count),
        "quantiles": m.l7_latency.quantiles(),
        "provenance": m.l7_provenance,
        "candidates": m.l7_candidates,
        "counters": (m.l7_unpaired, m.l7_late, m.l7_evicted),
        "l4": {k: v for k, v in m.l4.items() if not v.empty},
        "principals": m.l4_principals,
    }


def _write_mesh(engine: Engine, seed: int = 1) -> None:
    """Two hours of three edges in irregular minutes, each written in several batches."""
    rng = random.Random(seed)
    for _ in range(3):
        edges = {}
        for minute in rng.sample(range(120), 40):
            t = H + 60 * minute
            values = [rng.lognormvariate(2, 1) for _ in range(rng.randint(1, 300))]
            bucket = l7_bucket(values, errors=rng.randint(0, 2), principals=(f"p{minute % 3}",))
            bucket.l4 = {"destination": L4Stats(1, 1, minute, 2 * minute, 1)}
            edges[(t, A, B)] = bucket
            edges[(t, B, C)] = l4_bucket(minute + 1, reporter="source")
            edges[(t, A, C)] = l7_bucket([0.0, 5.0], provenance="unattributed", via="w")
        write_batch(engine, batch(edges))


WINDOWS = [
    (H, 3 * H),  # two whole hours
    (H + 1500, H + 1500 + H),  # an hour off the hour: fine, 10 min roll-ups, fine
    (H + 60, 3 * H - 60),
    (H + 600, H + 1200),  # one 10 min roll-up
    (H + 30, 2 * H + 3599),  # unaligned ends (bucket_range rounds the start up)
    (H + 120, H + 300),  # fine only
    (0, 10 * H),
]


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_rolled_window_reads_merge_exactly_like_fine_rows(
    engine: Engine, start: int, end: int
) -> None:
    _write_mesh(engine)
    repo = EdgeRepository()
    first = -(-start // 60) * 60
    with engine.connect() as conn:
        fine = merge_rows(repo.window_rows(conn, "service", first, end))
        rolled = merge_rows(repo.window_rows_rolled(conn, "service", first, end, 60))
        by_source = merge_rows(
            repo.window_rows_rolled(conn, "service", first, end, 60, sources=[A])
        )
        by_target = merge_rows(
            repo.window_rows_rolled(conn, "service", first, end, 60, targets=[C])
        )
    assert fine, "the window holds data"
    assert {k: _summary(v) for k, v in rolled.items()} == {k: _summary(v) for k, v in fine.items()}
    assert set(by_source) == {(A, B), (A, C)}
    assert set(by_target) == {(A, C), (B, C)}
    assert _summary(by_source[(A, B)]) == _summary(fine[(A, B)])


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_values_rows_filtered_merge_like_the_rows(engine: Engine, start: int, end: int) -> None:
    """The driver's values rows (what a neighbourhood read from the store merges) give the
    same buckets as SQLAlchemy's rows, whole window and filtered by source or target."""
    _write_mesh(engine)
    repo = EdgeRepository()
    first = -(-start // 60) * 60
    with engine.connect() as conn:
        for names in ({}, {"sources": [A]}, {"targets": [C]}, {"sources": [A, B, "nobody"]}):
            rows = merge_rows(repo.window_rows_rolled(conn, "service", first, end, 60, **names))
            values = merge_values(
                repo.window_values_rolled(conn, "service", first, end, 60, **names)
            )
            assert rows, names
            assert {k: _summary(v) for k, v in values.items()} == {
                k: _summary(v) for k, v in rows.items()
            }, names


def test_rollup_rows_are_the_merge_of_their_fine_rows(engine: Engine) -> None:
    _write_mesh(engine)
    repo = EdgeRepository()
    with engine.connect() as conn:
        rollups = list(conn.execute(select(edge_rollups)))
        for row in rollups:
            lo, hi = row.bucket_start_s, row.bucket_start_s + row.span_s
            fine = merge_rows(repo.window_rows(conn, "service", lo, hi, sources=[row.source]))[
                (row.source, row.target)
            ]
            assert _summary(merge_rows([row])[(row.source, row.target)]) == _summary(fine)
    assert {r.span_s for r in rollups} == set(ROLLUP_SPANS_S)


def test_window_parts_cover_the_window_once() -> None:
    assert window_parts(0, 7200, 60) == [(3600, 0, 7200)]
    assert window_parts(1500, 5100, 60) == [
        (None, 1500, 1800),
        (600, 1800, 4800),
        (None, 4800, 5100),
    ]
    assert window_parts(3000, 11000, 60) == [
        (600, 3000, 3600),
        (3600, 3600, 10800),
        (None, 10800, 11000),
    ]
    assert window_parts(60, 300, 60) == [(None, 60, 300)]
    assert window_parts(600, 600, 60) == []
    # a fine width that does not divide a span: that span is never used
    assert window_parts(0, 3600, 420) == [(None, 0, 3600)]
    for first in range(0, 4000, 60):
        for end in range(first, 12000, 900):
            covered = []
            for span, lo, hi in window_parts(first, end, 60):
                if span is not None:
                    assert lo % span == 0 and hi % span == 0
                covered.extend(range(lo, hi, 60))
            assert covered == list(range(first, end, 60))


def test_retention_deletes_rollups_with_the_fine_rows(engine: Engine) -> None:
    _write_mesh(engine)
    deleted = delete_expired(engine, now_s=H + 5400 + 24 * H, retention_h=24.0)
    with engine.connect() as conn:
        starts = conn.execute(select(edge_rollups.c.bucket_start_s)).scalars().all()
        fine = EdgeRepository().window_rows(conn, "service", 0, 10 * H)
    assert deleted.edge_buckets > 0
    # the cutoff (H + 5400) rounds down to 2H: nothing older survives, everything newer does
    assert starts and min(starts) >= 2 * H
    assert min(r.bucket_start_s for r in fine) >= 2 * H


def test_migration_0002_backfills_rollups_of_existing_buckets(db_url: str) -> None:
    engine = create_store_engine(db_url)
    upgrade(engine)
    _write_mesh(engine)
    with engine.connect() as conn:
        written = {
            tuple(r[:5]): _summary(merge_rows([r])[(r.source, r.target)])
            for r in conn.execute(select(edge_rollups))
        }
    downgrade(engine, "0001")
    upgrade(engine)
    with engine.connect() as conn:
        backfilled = {
            tuple(r[:5]): _summary(merge_rows([r])[(r.source, r.target)])
            for r in conn.execute(select(edge_rollups))
        }
    engine.dispose()
    assert backfilled == written
