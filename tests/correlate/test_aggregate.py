"""EdgeAggregator: end-time buckets at both levels, L4 per reporter, exemplars, nodes, late."""

from __future__ import annotations

from app.correlate.aggregate import EdgeAggregator
from app.domain import (
    Endpoint,
    ErrorCause,
    L4Sample,
    L7MetricSample,
    L7Observation,
    Level,
    NodeKind,
    Provenance,
    Reporter,
)
from app.edge.bucket import EdgeKey
from app.edge.stats import choose_l4

S = 1_000_000_000
A = Endpoint("default", "productpage", "productpage-v1", principal="spiffe://td/ns/default/sa/pp")
B = Endpoint("default", "reviews", "reviews-v2", principal="spiffe://td/ns/default/sa/reviews")
C = Endpoint("default", "ratings")


class Clock:
    def __init__(self, now_s: float = 0.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def obs(end_s: float, ms: float = 10.0, trace: int = 1, **kw: object) -> L7Observation:
    fields: dict[str, object] = {"source": A, "target": B, "via": "default/waypoint"}
    fields.update(kw)
    return L7Observation(
        end_ns=int(end_s * S),
        duration_ms=ms,
        trace_id=trace.to_bytes(16, "big"),
        **fields,  # type: ignore[arg-type]
    )


def test_buckets_by_end_time_at_both_levels() -> None:
    agg = EdgeAggregator(bucket_s=60, clock_s=Clock(10_000))
    agg.add_l7(obs(119.9, ms=200_000))  # started in bucket 0, ended in bucket 60
    agg.add_l7(obs(120.0))
    batch = agg.drain()
    svc = batch.edges[EdgeKey(60, Level.SERVICE, "default/productpage", "default/reviews")]
    wl = batch.edges[EdgeKey(60, Level.WORKLOAD, "default/productpage-v1", "default/reviews-v2")]
    assert svc.l7_requests == wl.l7_requests == 1
    assert (
        batch.edges[
            EdgeKey(120, Level.SERVICE, "default/productpage", "default/reviews")
        ].l7_requests
        == 1
    )
    assert len(batch.edges) == 4
    assert svc.via == "default/waypoint"


def test_workload_level_only_when_an_endpoint_has_a_workload() -> None:
    agg = EdgeAggregator(bucket_s=60)
    agg.add_l7(obs(1, source=C, target=Endpoint("default", "details")))
    assert {k.level for k in agg.drain().edges} == {Level.SERVICE}


def test_l7_counters() -> None:
    agg = EdgeAggregator(bucket_s=60)
    agg.add_l7(obs(1, ms=5, status_code="200"))
    agg.add_l7(
        obs(
            2,
            ms=15,
            status_code="503",
            error_cause=ErrorCause.RESPONSE_FLAGS,
            unpaired=True,
            provenance=Provenance.UNATTRIBUTED,
        )
    )
    agg.add_l7(
        obs(
            3,
            ms=10,
            status_code="grpc:14",
            error_cause=ErrorCause.GRPC,
            evicted=True,
            unpaired=True,
            provenance=Provenance.L4_AMBIGUOUS,
            candidates=(("default/a", 0.75), ("default/b", 0.25)),
        )
    )
    b = agg.drain().edges[EdgeKey(0, Level.SERVICE, "default/productpage", "default/reviews")]
    assert (b.l7_requests, b.l7_errors, b.l7_latency_sum_ms) == (3, 2, 30.0)
    assert b.l7_errors_by_cause == {"response_flags": 1, "grpc": 1}
    assert b.l7_status_codes == {"200": 1, "503": 1, "grpc:14": 1}
    assert b.l7_provenance == {"paired_spans": 1, "unattributed": 1, "l4_ambiguous": 1}
    assert b.l7_candidates == {"default/a": 0.75, "default/b": 0.25}
    assert (b.l7_unpaired, b.l7_evicted, b.l7_late) == (2, 1, 0)
    assert b.l7_latency.count == 3
    assert b.protocol == "http"


def test_exemplars_are_the_slowest_per_kind_in_the_stores_order() -> None:
    agg = EdgeAggregator(bucket_s=60)
    for i in range(10):
        agg.add_l7(obs(i, ms=float(i), trace=i + 1))
    # Failed: equal durations rank by trace id (as store/exemplars.py merges), one per trace.
    for i, (ms, trace) in enumerate([(1.0, 16), (1.0, 12), (3.0, 13), (1.0, 14), (1.0, 11)]):
        agg.add_l7(
            obs(10 + i, ms=ms, trace=trace, error_cause=ErrorCause.HTTP_5XX, status_code="500")
        )
    agg.add_l7(obs(20, ms=5.0, trace=12, error_cause=ErrorCause.HTTP_5XX, status_code="503"))
    b = agg.drain().edges[EdgeKey(0, Level.SERVICE, "default/productpage", "default/reviews")]
    slowest = [e for e in b.exemplars if e.kind == "slowest"]
    failed = [e for e in b.exemplars if e.kind == "failed"]
    assert [e.duration_ms for e in slowest] == [9.0, 8.0, 7.0]
    trace = lambda n: n.to_bytes(16, "big").hex()  # noqa: E731
    assert [(e.trace_id, e.duration_ms) for e in failed] == [
        (trace(12), 5.0),  # trace 12's longest request replaced its 1 ms one
        (trace(13), 3.0),
        (trace(11), 1.0),  # the smallest trace id among the 1 ms ones
    ]
    assert failed[0].status_code == "503"


def test_exemplars_do_not_depend_on_how_requests_are_split_into_flushes() -> None:
    from app.store.exemplars import top_exemplars

    requests = [
        obs(i, ms=float(i % 7), trace=100 + i, error_cause=ErrorCause.GRPC if i % 3 else None)
        for i in range(40)
    ]
    whole = EdgeAggregator(bucket_s=60)
    for r in requests:
        whole.add_l7(r)
    key = EdgeKey(0, Level.SERVICE, "default/productpage", "default/reviews")
    expected = top_exemplars(whole.drain().edges[key].exemplars)
    for size in (1, 3, 7, 16):
        parts = EdgeAggregator(bucket_s=60)
        rows = []
        for start in range(0, len(requests), size):
            for r in requests[start : start + size]:
                parts.add_l7(r)
            rows += parts.drain().edges[key].exemplars
        assert top_exemplars(rows) == expected, size


def test_l4_per_reporter_kept_separate_at_end_bucket() -> None:
    agg = EdgeAggregator(bucket_s=60)
    for reporter in (Reporter.SOURCE, Reporter.DESTINATION):
        agg.add_l4(
            L4Sample(
                source=A,
                target=B,
                reporter=reporter,
                start_s=50,
                end_s=65,
                connections_opened=3,
                connections_closed=2,
                bytes_sent=100,
                bytes_received=900,
            )
        )
    agg.add_l4(
        L4Sample(
            source=A,
            target=B,
            reporter=Reporter.SOURCE,
            start_s=65,
            end_s=80,
            connections_opened=1,
            mutual_tls=False,
            via_waypoint="default/waypoint",
        )
    )
    batch = agg.drain()
    b = batch.edges[EdgeKey(60, Level.SERVICE, "default/productpage", "default/reviews")]
    assert set(b.l4) == {"source", "destination"}
    assert (b.l4["source"].connections_opened, b.l4["source"].mtls_connections) == (4, 3)
    assert (b.l4["destination"].bytes_sent, b.l4["destination"].bytes_received) == (100, 900)
    assert b.l4_principals == {A.principal, B.principal}
    assert (b.protocol, b.via) == ("tcp", "default/waypoint")
    assert (
        EdgeKey(60, Level.WORKLOAD, "default/productpage-v1", "default/reviews-v2") in batch.edges
    )
    assert batch.nodes[("default/waypoint", Level.SERVICE)].kind is NodeKind.WAYPOINT


def test_nodes_seen_and_trace_hops() -> None:
    agg = EdgeAggregator(bucket_s=60)
    agg.add_l7(obs(70))
    agg.add_l7(obs(10, status_code="503", error_cause=ErrorCause.HTTP_5XX))
    batch = agg.drain()
    a = batch.nodes[("default/productpage", Level.SERVICE)]
    assert (a.first_seen_s, a.last_seen_s, a.kind) == (10, 70, NodeKind.SERVICE)
    a_wl = batch.nodes[("default/productpage-v1", Level.WORKLOAD)]
    assert (a_wl.kind, a_wl.service, a_wl.name, a_wl.principal) == (
        NodeKind.WORKLOAD,
        "default/productpage",
        "productpage-v1",
        A.principal,
    )
    wp = batch.nodes[("default/waypoint", Level.SERVICE)]
    assert (wp.kind, wp.namespace, wp.name) == (NodeKind.WAYPOINT, "default", "waypoint")
    assert len(batch.hops) == 2
    hop = batch.hops[1]
    assert (hop.source, hop.target, hop.via, hop.error_cause) == (
        "default/productpage",
        "default/reviews",
        "default/waypoint",
        "http_5xx",
    )
    assert hop.end_ns - hop.start_ns == 10_000_000


def test_late_after_one_bucket_of_grace() -> None:
    clock = Clock(185.0)  # drain during bucket 180: bucket 120 is in grace, earlier ones closed
    agg = EdgeAggregator(bucket_s=60, clock_s=clock)
    agg.add_l7(obs(130))
    assert agg.drain().edges[EdgeKey(120, Level.SERVICE, A.node_id(), B.node_id())].l7_late == 0
    agg.add_l7(obs(179))  # grace bucket: not late
    agg.add_l7(obs(119))  # closed bucket: late, still counted
    agg.add_l7(obs(200))
    batch = agg.drain()
    late = {k.bucket_start_s: v.l7_late for k, v in batch.edges.items() if k.level is Level.SERVICE}
    assert late == {120: 0, 60: 1, 180: 0}
    assert batch.edges[EdgeKey(60, Level.SERVICE, A.node_id(), B.node_id())].l7_requests == 1


def test_drain_resets() -> None:
    agg = EdgeAggregator(bucket_s=60)
    agg.add_l7(obs(1))
    assert len(agg) > 0
    agg.drain()
    assert len(agg) == 0
    assert len(agg.drain()) == 0


def test_waypoint_metric_samples_fill_the_exact_l7_fields_at_both_levels() -> None:
    agg = EdgeAggregator(bucket_s=60, clock_s=Clock(10_000))
    base = {"source": A, "target": B, "start_s": 60.0, "end_s": 75.0, "via_waypoint": "default/wp"}
    agg.add_l7_metric(
        L7MetricSample(
            **base,  # type: ignore[arg-type]
            requests=90,
            status_code="200",
            request_bytes=900,
            response_bytes=9000,
            latency_sum_ms=450.0,
            latency_buckets=(("5", 80), ("10", 10)),
        )
    )
    agg.add_l7_metric(
        L7MetricSample(
            **base,  # type: ignore[arg-type]
            requests=10,
            status_code="503",
            error_cause=ErrorCause.RESPONSE_FLAGS,
            response_flags="UH",
            latency_buckets=(("5", 10),),
        )
    )
    batch = agg.drain()
    for key in (
        EdgeKey(60, Level.SERVICE, "default/productpage", "default/reviews"),
        EdgeKey(60, Level.WORKLOAD, "default/productpage-v1", "default/reviews-v2"),
    ):
        b = batch.edges[key]
        assert (b.l7m_requests, b.l7m_errors, b.l7_requests) == (100, 10, 0)
        assert b.l7m_errors_by_cause == {"response_flags": 10}
        assert b.l7m_status_codes == {"200": 90, "503": 10}
        assert (b.l7m_bytes_sent, b.l7m_bytes_received, b.l7m_latency_sum_ms) == (900, 9000, 450)
        assert b.l7m_latency_buckets == {"5": 90, "10": 10}
        assert (b.via, b.protocol) == ("default/wp", "http")
    assert ("default/wp", Level.SERVICE) in batch.nodes


def test_failed_connections_count_by_side_and_flag_and_sole_traffic_has_its_own_side() -> None:
    agg = EdgeAggregator(bucket_s=60, clock_s=Clock(10_000))
    common = {"source": A, "target": B, "start_s": 60.0, "end_s": 75.0}
    agg.add_l4(L4Sample(**common, reporter=Reporter.DESTINATION, connections_opened=3))  # type: ignore[arg-type]
    agg.add_l4(
        L4Sample(
            **common,  # type: ignore[arg-type]
            reporter=Reporter.DESTINATION,
            connections_closed=3,
            response_flags="DENY",
        )
    )
    agg.add_l4(
        L4Sample(
            **common,  # type: ignore[arg-type]
            reporter=Reporter.SOURCE,
            connections_closed=3,
            response_flags="CONNECT",
        )
    )
    agg.add_l4(
        L4Sample(
            **common,  # type: ignore[arg-type]
            reporter=Reporter.SOURCE,
            connections_opened=2,
            bytes_sent=100,
            sole=True,
            via_waypoint="default/wp",
        )
    )
    b = agg.drain().edges[EdgeKey(60, Level.SERVICE, "default/productpage", "default/reviews")]
    assert b.l4[Reporter.DESTINATION].connections_failed == 3
    assert b.l4[Reporter.SOURCE].connections_failed == 3
    assert b.l4["sole"].connections_opened == 2 and b.l4["sole"].connections_failed == 0
    assert b.l4_failures == {"destination/DENY": 3, "source/CONNECT": 3}
    # the graph's view: the destination reporter (it saw traffic) plus the sole side
    view = choose_l4(b.l4, b.l4_failures)
    assert view is not None
    assert (view.connections_opened, view.connections_failed, view.bytes_sent) == (5, 3, 100)
    assert view.failures == (("DENY", 3),)
    assert b.l4[Reporter.DESTINATION].connections_opened == 3  # the bucket is not changed
