"""Exemplars carried across flushes of an open bucket: later batches hold only the offers that
beat what this process already flushed, and the store ends with the same exemplars."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.correlate.aggregate import EdgeAggregator
from app.domain import ErrorCause
from app.edge.batch import AggregateBatch
from app.edge.exemplars import Exemplar, top_exemplars
from app.edge.recent_hops import RecentHops
from tests.correlate.test_kept_traces import Clock, hop


class NoCarry(EdgeAggregator):
    """The aggregator as it was: every batch holds its own top-N per edge bucket."""

    def _carry(self, edges: Any, closed_before_s: int) -> None:
        return None


def store_merge(batches: list[AggregateBatch]) -> dict[object, list[Exemplar]]:
    """What the store keeps per edge bucket: the top-N of the union (app/store/exemplars.py)."""
    merged: dict[object, list[Exemplar]] = {}
    for batch in batches:
        for key, bucket in batch.edges.items():
            merged[key] = top_exemplars([*merged.get(key, []), *bucket.exemplars])
    return {key: items for key, items in merged.items() if items}


def rows(batches: list[AggregateBatch]) -> int:
    return sum(len(b.exemplars) for batch in batches for b in batch.edges.values())


def run(cls: type[EdgeAggregator], stream: list[tuple[Any, ...]]) -> list[AggregateBatch]:
    clock = Clock(990.0)
    agg = cls(bucket_s=60, clock_s=clock, recent_hops=RecentHops(10_000))
    batches = []
    for n, (trace, src, tgt, ms, failed, end_s, advance_s) in enumerate(stream):
        kw = {"status_code": "503", "error_cause": ErrorCause.HTTP_5XX} if failed else {}
        agg.add_l7(hop(trace + 1, n + 1, ms, src, tgt, end_s=end_s, **kw))
        if advance_s:  # a flush, then the clock moves on (buckets close as it passes them)
            batches.append(agg.drain())
            clock.now_s += advance_s
    batches.append(agg.drain())
    return batches


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 8),  # trace
            st.integers(0, 2),  # source
            st.integers(1, 3),  # target
            st.sampled_from([1.0, 5.0, 20.0, 20.0, 80.0, 300.0]),  # duration (ties included)
            st.booleans(),  # failed
            st.sampled_from([960.0, 1000.0, 1010.0, 1070.0]),  # end: three buckets
            st.sampled_from([0, 0, 0, 5, 40]),  # flush, and how far the clock moves
        ),
        min_size=1,
        max_size=80,
    )
)
def test_the_store_keeps_the_same_exemplars_and_their_hops(stream: list[tuple[Any, ...]]) -> None:
    carried, plain = run(EdgeAggregator, stream), run(NoCarry, stream)
    assert store_merge(carried) == store_merge(plain)
    assert rows(carried) <= rows(plain)
    # Every exemplar the store ends with has all its hops stored (as without carrying).
    stored: dict[str, set[str]] = {}
    for batch in carried:
        for h in batch.hops:
            stored.setdefault(h.trace_id, set()).add(h.span_id)
    hops_of: dict[str, set[str]] = {}
    for n, (trace, *_rest) in enumerate(stream):
        hops_of.setdefault(f"{trace + 1:032x}", set()).add(f"{n + 1:016x}")
    for items in store_merge(carried).values():
        for e in items:
            assert stored[e.trace_id] == hops_of[e.trace_id]


def test_a_later_flush_of_an_open_bucket_writes_only_what_beats_the_earlier_ones() -> None:
    clock = Clock()
    agg = EdgeAggregator(bucket_s=60, clock_s=clock, recent_hops=RecentHops(1000))
    for i in range(1, 4):
        agg.add_l7(hop(trace=i, span=i, ms=100.0 * i))  # 100, 200, 300 ms
    first = agg.drain()
    assert [e.duration_ms for b in first.edges.values() for e in b.exemplars] == [300, 200, 100]
    clock.now_s += 5  # the same bucket is still open
    for i in range(4, 14):
        agg.add_l7(hop(trace=i, span=i, ms=10.0 * i))  # 40..130 ms: only 130 beats 100
    second = agg.drain()
    (bucket,) = second.edges.values()
    assert [(e.duration_ms, e.trace_id) for e in bucket.exemplars] == [(130.0, f"{13:032x}")]
    assert {h.span_id for h in second.hops} == {f"{13:016x}"}  # the losers' hops stay recent
    assert bucket.l7_requests == 10  # counts are not carried, only the exemplars to beat


def test_a_closed_bucket_is_not_carried() -> None:
    clock = Clock()
    agg = EdgeAggregator(bucket_s=60, clock_s=clock)
    agg.add_l7(hop(trace=1, span=1, ms=500.0))
    agg.drain()
    clock.now_s += 180  # the bucket of end 1000 s is closed now
    agg.drain()
    agg.add_l7(hop(trace=2, span=2, ms=5.0))  # late, into that bucket: written as it comes
    (bucket,) = agg.drain().edges.values()
    assert [e.trace_id for e in bucket.exemplars] == [f"{2:032x}"]
    assert bucket.l7_late == 1
    assert not agg._carried
