"""Spans leave through the real OTLP exporters and arrive as the fixtures' shape, counts = truth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from app.sim.bookinfo import bookinfo
from app.sim.runner import MeshSimulator
from tests.sim.otlp_receiver import GrpcReceiver, HttpReceiver

T0 = 1_748_779_200
NS = 1_000_000_000
WAYPOINT_KEYS = {
    "node_id",
    "zone",
    "guid:x-request-id",
    "http.url",
    "http.method",
    "downstream_cluster",
    "user_agent",
    "http.protocol",
    "peer.address",
    "request_size",
    "response_flags",
    "upstream_address",
    "upstream_cluster",
    "upstream_cluster.name",
    "http.status_code",
    "response_size",
    "component",
    "istio.canonical_revision",
    "istio.canonical_service",
    "istio.cluster_id",
    "istio.mesh_id",
    "istio.namespace",
}


def _attrs(kvs: Iterator[common_pb2.KeyValue] | list[common_pb2.KeyValue]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in kvs:
        field = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, field) if field else None
    return out


@pytest.fixture(params=["grpc", "http"])
def run(request: pytest.FixtureRequest) -> Iterator[tuple[MeshSimulator, list]]:
    receiver = GrpcReceiver() if request.param == "grpc" else HttpReceiver()
    sim = MeshSimulator(
        bookinfo(),
        seed=4,
        otlp_endpoint=receiver.endpoint,
        protocol=request.param,
        headers={"authorization": "Bearer t0ken"},
        batch_spans=300,
    )
    try:
        reports = [sim.tick(T0 + 30 * i, T0 + 30 * (i + 1)) for i in range(2)]
        assert all(r.export_requests >= 2 for r in reports)
        assert len(receiver.service.requests) == sum(r.export_requests for r in reports)
        yield sim, list(receiver.service.spans())
    finally:
        sim.stop()
        receiver.close()


def test_waypoint_spans_have_the_fixture_shape_and_match_truth(run: tuple) -> None:
    sim, received = run
    truth = sim.truth
    waypoint = [
        (rs, s)
        for rs, s in received
        if _attrs(rs.resource.attributes)["service.name"] == "waypoint.bookinfo"
    ]
    per_cluster: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for rs, span in waypoint:
        resource = _attrs(rs.resource.attributes)
        assert resource["telemetry.sdk.name"] == "envoy"
        attrs = _attrs(span.attributes)
        assert set(attrs) >= WAYPOINT_KEYS
        assert all(isinstance(v, str) for v in attrs.values())  # Envoy writes strings only
        assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER
        assert attrs["component"] == "proxy"
        assert attrs["istio.canonical_service"] == "waypoint"
        assert attrs["istio.namespace"] == "bookinfo"
        assert str(attrs["node_id"]).startswith("waypoint~10.42.")
        assert str(attrs["node_id"]).endswith(".bookinfo~bookinfo.svc.cluster.local")
        cluster = str(attrs["upstream_cluster"])
        host = cluster.split("|")[3]
        assert cluster == f"inbound-vip|9080|http|{host}"
        assert span.name == f"{host}:9080/*"
        assert T0 * NS <= span.end_time_unix_nano < (T0 + 60) * NS
        per_cluster[host] += 1
        failed = attrs["http.status_code"].startswith("5") or attrs["response_flags"] != "-"
        errors[host] += failed
        assert (span.status.code == trace_pb2.Status.STATUS_CODE_ERROR) == attrs[
            "http.status_code"
        ].startswith("5")
    reviews = truth.edge("bookinfo/productpage", "bookinfo/reviews")
    ratings = truth.edge("bookinfo/reviews", "bookinfo/ratings")
    assert per_cluster == {
        "reviews.bookinfo.svc.cluster.local": reviews.requests,
        "ratings.bookinfo.svc.cluster.local": ratings.requests,
    }
    assert errors["reviews.bookinfo.svc.cluster.local"] == reviews.errors > 0
    assert errors["ratings.bookinfo.svc.cluster.local"] == ratings.errors


def test_instrumented_callers_parent_the_waypoint_span_and_servers_follow_it(run: tuple) -> None:
    sim, received = run
    by_id = {(s.trace_id, s.span_id): (rs, s) for rs, s in received}
    kinds: Counter[tuple[str, int]] = Counter()
    for rs, span in received:
        service = str(_attrs(rs.resource.attributes)["service.name"])
        kinds[(service, span.kind)] += 1
        host = _attrs(span.attributes).get("upstream_cluster", "")
        if service == "waypoint.bookinfo" and "ratings" in str(host):
            parent_rs, parent = by_id[(span.trace_id, span.parent_span_id)]
            assert parent.kind == trace_pb2.Span.SPAN_KIND_CLIENT
            assert _attrs(parent_rs.resource.attributes)["service.name"] == "reviews"
            assert (parent.start_time_unix_nano, parent.end_time_unix_nano) == (
                span.start_time_unix_nano,
                span.end_time_unix_nano,
            )
        elif service == "waypoint.bookinfo":
            assert span.parent_span_id == b""  # productpage propagates nothing
        elif span.kind == trace_pb2.Span.SPAN_KIND_SERVER:
            assert service == "reviews"
            _, parent = by_id[(span.trace_id, span.parent_span_id)]
            assert _attrs(parent.attributes)["component"] == "proxy"
    truth = sim.truth
    reviews = truth.edge("bookinfo/productpage", "bookinfo/reviews").requests
    ratings = truth.edge("bookinfo/reviews", "bookinfo/ratings").requests
    assert kinds == {
        ("waypoint.bookinfo", trace_pb2.Span.SPAN_KIND_SERVER): reviews + ratings,
        ("reviews", trace_pb2.Span.SPAN_KIND_CLIENT): ratings,
        ("reviews", trace_pb2.Span.SPAN_KIND_SERVER): reviews,
    }


def test_latency_truth_is_the_span_duration(run: tuple) -> None:
    sim, received = run
    durations = sorted(
        (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
        for rs, s in received
        if "ratings" in str(_attrs(s.attributes).get("upstream_cluster", ""))
    )
    edge = sim.truth.edge("bookinfo/reviews", "bookinfo/ratings")
    assert durations == sorted(edge.latencies_ms)
    assert edge.p99_ms == durations[int(0.99 * (len(durations) - 1))]


def test_grpc_export_carries_headers() -> None:
    receiver = GrpcReceiver()
    try:
        with MeshSimulator(
            bookinfo(), seed=1, otlp_endpoint=receiver.endpoint, headers={"authorization": "x"}
        ) as sim:
            sim.tick(T0, T0 + 5)
        assert receiver.service.metadata
        assert all(m.get("authorization") == "x" for m in receiver.service.metadata)
    finally:
        receiver.close()


def test_destination_naming_uses_the_1_29_resource_and_source_tags() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    sim = MeshSimulator(bookinfo(), seed=1, exporter=exporter, istio_version="1.29")
    sim.tick(T0, T0 + 10)
    spans = [s for s in exporter.get_finished_spans() if s.attributes.get("component") == "proxy"]
    assert spans
    for span in spans:
        assert span.resource.attributes["service.name"] in {
            "reviews.bookinfo.svc.cluster.local",
            "ratings.bookinfo.svc.cluster.local",
        }
        assert span.attributes["istio.source_namespace"] == "bookinfo"
        assert str(span.attributes["istio.destination_workload"]).startswith(
            str(span.attributes["istio.destination_canonical_service"])
        )
