"""Which trace hops a flush stores: exemplar traces' whole, the rest only in the recent ring."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.correlate.aggregate import EdgeAggregator
from app.correlate.kept_traces import PIN_S, KeptTraces
from app.domain import Endpoint, ErrorCause, L7Observation, Provenance
from app.edge.batch import AggregateBatch
from app.edge.exemplars import top_exemplars
from app.edge.recent_hops import RecentHops

S = 1_000_000_000
NODES = [Endpoint("default", name) for name in ("a", "b", "c", "d")]


class Clock:
    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def hop(
    trace: int,
    span: int,
    ms: float,
    src: int = 0,
    tgt: int = 1,
    end_s: float = 1000.0,
    **kw: object,
) -> L7Observation:
    return L7Observation(
        source=NODES[src],
        target=NODES[tgt],
        end_ns=int(end_s * S),
        duration_ms=ms,
        trace_id=trace.to_bytes(16, "big"),
        span_id=span.to_bytes(8, "big"),
        parent_span_id=b"",
        protocol="http",
        status_code=str(kw.get("status_code", "200")),
        error_cause=kw.get("error_cause"),  # type: ignore[arg-type]
        via="",
        provenance=Provenance.PEER_TAGS,
    )


def stored_spans(batch: AggregateBatch) -> set[str]:
    return {h.span_id for h in batch.hops}


def test_only_exemplar_traces_are_stored_the_rest_stays_recent() -> None:
    recent = RecentHops(1000)
    agg = EdgeAggregator(bucket_s=60, clock_s=Clock(), recent_hops=recent)
    for i in range(1, 11):  # ten traces on one edge, 10..100 ms: the three slowest are exemplars
        agg.add_l7(hop(trace=i, span=i, ms=10.0 * i))
    agg.add_l7(hop(trace=20, span=20, ms=1.0, status_code="503", error_cause=ErrorCause.HTTP_5XX))
    batch = agg.drain()
    assert stored_spans(batch) == {f"{n:016x}" for n in (8, 9, 10, 20)}  # slowest 3 + the failed
    assert len(recent) == recent.added == 11 and recent.stored == 4
    # A trace that is not stored is still found in the ring, whole, as the store would give it.
    (looked_up,) = recent.hops((3).to_bytes(16, "big"))
    assert (looked_up.span_id, looked_up.duration_ms, looked_up.source) == (
        f"{3:016x}",
        30.0,
        "default/a",
    )


def test_trace_split_over_flushes_is_stored_whole() -> None:
    clock = Clock()
    agg = EdgeAggregator(bucket_s=60, clock_s=clock, recent_hops=RecentHops(1000))
    # Flush 1: trace 7's first hop a->b is fast, outranked by three slower traces on a->b.
    agg.add_l7(hop(trace=7, span=71, ms=1.0))
    for i in range(1, 4):
        agg.add_l7(hop(trace=i, span=i, ms=50.0))
    first = agg.drain()
    assert f"{71:016x}" not in stored_spans(first)
    # Flush 2: trace 7's hop b->c is that edge's slowest: its earlier hop comes from the ring.
    clock.now_s += 5
    agg.add_l7(hop(trace=7, span=72, ms=9.0, src=1, tgt=2))
    second = agg.drain()
    assert {f"{71:016x}", f"{72:016x}"} <= stored_spans(second)
    # Flush 3: a later hop of trace 7 on a busy edge, not an exemplar there, is stored (pinned).
    clock.now_s += 5
    for i in range(4, 7):
        agg.add_l7(hop(trace=i, span=i, ms=80.0, src=2, tgt=3))
    agg.add_l7(hop(trace=7, span=73, ms=2.0, src=2, tgt=3))
    third = agg.drain()
    assert f"{73:016x}" in stored_spans(third)
    # Past the pin, a trace's new hop that is not an exemplar is no longer stored.
    clock.now_s += PIN_S + 1
    for i in range(8, 11):
        agg.add_l7(hop(trace=i, span=i, ms=80.0, src=2, tgt=3))
    agg.add_l7(hop(trace=7, span=74, ms=2.0, src=2, tgt=3))
    assert f"{74:016x}" not in stored_spans(agg.drain())


def test_no_ring_keeps_exemplar_hops_of_the_batch() -> None:
    agg = EdgeAggregator(bucket_s=60, clock_s=Clock())  # default: RecentHops(0)
    for i in range(1, 6):
        agg.add_l7(hop(trace=i, span=i, ms=float(i)))
    assert stored_spans(agg.drain()) == {f"{n:016x}" for n in (3, 4, 5)}
    assert len(agg.kept_traces.recent) == 0


def test_pinned_traces_are_bounded() -> None:
    clock = Clock()
    kept = KeptTraces(RecentHops(0), clock, max_pinned=2)
    for i in range(5):
        kept.select([], [i.to_bytes(16, "big")])
        clock.now_s += 1
    assert len(kept) == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # trace
            st.integers(0, 3),  # source
            st.integers(0, 3),  # target
            st.floats(0.5, 500.0),  # duration
            st.booleans(),  # failed
            st.booleans(),  # flush after it
        ),
        min_size=1,
        max_size=60,
    )
)
def test_every_exemplar_trace_is_stored_whole(
    stream: list[tuple[int, int, int, float, bool, bool]],
) -> None:
    """Whatever the traffic and wherever the flushes fall (within the pin), every trace that is
    an exemplar of a flushed bucket, or of the buckets merged as the store merges them, has all
    its hops stored; nothing else is, and every hop is in the ring."""
    clock = Clock()
    agg = EdgeAggregator(bucket_s=60, clock_s=clock, recent_hops=RecentHops(10_000))
    hops_of: dict[str, set[str]] = {}
    batches: list[AggregateBatch] = []
    for n, (trace, src, tgt, ms, failed, flush) in enumerate(stream):
        kw = {"status_code": "503", "error_cause": ErrorCause.HTTP_5XX} if failed else {}
        agg.add_l7(hop(trace + 1, n + 1, ms, src, tgt, **kw))
        hops_of.setdefault(f"{trace + 1:032x}", set()).add(f"{n + 1:016x}")
        if flush:
            batches.append(agg.drain())
            clock.now_s += 1  # 60 flushes at most: all within the pin
    batches.append(agg.drain())
    stored: dict[str, set[str]] = {}
    for batch in batches:
        for h in batch.hops:
            stored.setdefault(h.trace_id, set()).add(h.span_id)
    exemplar_traces = {
        e.trace_id for batch in batches for bucket in batch.edges.values() for e in bucket.exemplars
    }
    merged: dict[object, list[object]] = {}
    for batch in batches:
        for key, bucket in batch.edges.items():
            merged.setdefault(key, []).extend(bucket.exemplars)
    store_exemplars = {e.trace_id for items in merged.values() for e in top_exemplars(items)}  # type: ignore[arg-type]
    assert store_exemplars <= exemplar_traces
    assert set(stored) == exemplar_traces
    for trace_id in exemplar_traces:
        assert stored[trace_id] == hops_of[trace_id]
    assert len(agg.kept_traces.recent) == len(stream)
