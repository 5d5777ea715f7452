from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind as OtelSpanKind
from pydantic import SecretStr

from app.domain import Span, SpanKind
from app.ingest.otlp_grpc import GrpcServerHandle, start_grpc_server
from app.ingest.sink import Admission, ListSink, Verdict
from app.settings import Settings
from tests.ingest.builders import to_protobuf, waypoint_document

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def serve(sink: Any, **settings: Any) -> GrpcServerHandle:
    return start_grpc_server(
        sink, Settings(database_url="sqlite://", **settings), host="127.0.0.1", port=0
    )


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def server(sink: ListSink) -> Iterator[GrpcServerHandle]:
    handle = serve(sink, grpc_max_message_bytes=64 * 1024)
    yield handle
    handle.stop(0)


@pytest.fixture
def export(server: GrpcServerHandle) -> Iterator[Any]:
    """The raw Export call on a channel to the server: bytes in, response bytes out."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel.unary_unary(EXPORT)


def recent_body(**span_fields: Any) -> bytes:
    now = time.time_ns()
    return to_protobuf(
        waypoint_document(
            startTimeUnixNano=str(now - 10**7), endTimeUnixNano=str(now), **span_fields
        )
    )


def test_export_accepts_spans(export: Any, sink: ListSink) -> None:
    response = ExportTraceServiceResponse.FromString(export(recent_body(), timeout=10))
    assert not response.HasField("partial_success")
    (span,) = sink.spans
    assert span.service == "waypoint.default" and span.kind is SpanKind.SERVER


def test_gzip_request(export: Any, sink: ListSink) -> None:
    export(recent_body(), timeout=10, compression=grpc.Compression.Gzip)
    assert len(sink.spans) == 1


def test_invalid_spans_come_back_as_partial_success(export: Any, sink: ListSink) -> None:
    response = ExportTraceServiceResponse.FromString(export(recent_body(spanId="00"), timeout=10))
    assert response.partial_success.rejected_spans == 1
    assert "invalid span id" in response.partial_success.error_message
    assert not sink.spans


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x0a\x10\x01", grpc.StatusCode.INVALID_ARGUMENT),
        (bytes(range(7, 200)), grpc.StatusCode.INVALID_ARGUMENT),
        (bytes(64 * 1024 + 1), grpc.StatusCode.RESOURCE_EXHAUSTED),  # over max message size
    ],
    ids=["truncated", "random", "too large"],
)
def test_bad_messages_and_the_server_keeps_serving(
    export: Any, sink: ListSink, body: bytes, code: grpc.StatusCode
) -> None:
    export(recent_body(), timeout=10)
    with pytest.raises(grpc.RpcError) as failure:
        export(body, timeout=10)
    assert failure.value.code() is code
    export(recent_body(), timeout=10)
    assert len(sink.spans) == 2


def test_gzip_bomb_is_capped_by_max_message_size(export: Any) -> None:
    body = recent_body() + bytes(1 << 20)  # trailing zeros parse as nothing but inflate to 1 MiB
    with pytest.raises(grpc.RpcError) as failure:
        export(body, timeout=10, compression=grpc.Compression.Gzip)
    assert failure.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


class RefusingSink:
    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def offer(self, spans: list[Span]) -> Verdict:
        return Verdict(self.admission, retry_after_s=3, reason="queue full")


@pytest.mark.parametrize(
    ("admission", "code"),
    [
        (Admission.OVERLOADED, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Admission.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_overload_carries_retry_info(admission: Admission, code: grpc.StatusCode) -> None:
    handle = serve(RefusingSink(admission))
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{handle.port}") as channel,
            pytest.raises(grpc.RpcError) as failure,
        ):
            channel.unary_unary(EXPORT)(recent_body(), timeout=10)
    finally:
        handle.stop(0)
    error: Any = failure.value
    assert error.code() is code and error.details() == "queue full"
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    pb_status = status_pb2.Status.FromString(details)
    assert pb_status.code == code.value[0]
    retry = error_details_pb2.RetryInfo()
    assert pb_status.details[0].Unpack(retry) and retry.retry_delay.seconds == 3


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ((), False),
        ((("authorization", "Bearer nope"),), False),
        ((("authorization", "Bearer s3cret"),), True),
    ],
    ids=["none", "wrong", "right"],
)
def test_bearer_token(sink: ListSink, metadata: tuple[tuple[str, str], ...], ok: bool) -> None:
    handle = serve(sink, otlp_token=SecretStr("s3cret"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
            call = channel.unary_unary(EXPORT)
            if ok:
                call(recent_body(), timeout=10, metadata=metadata)
            else:
                with pytest.raises(grpc.RpcError) as failure:
                    call(recent_body(), timeout=10, metadata=metadata)
                assert failure.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        handle.stop(0)
    assert len(sink.spans) == (1 if ok else 0)


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_opentelemetry_sdk_exporter_over_real_grpc(
    server: GrpcServerHandle, sink: ListSink, compression: grpc.Compression
) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "reviews.default.svc.cluster.local"})
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("test").start_as_current_span(
        "reviews.default.svc.cluster.local:9080/*", kind=OtelSpanKind.SERVER
    ) as pb_span:
        pb_span.set_attribute(
            "upstream_cluster", "outbound|9080|v1|reviews.default.svc.cluster.local"
        )
        pb_span.set_attribute("peer.address", "10.42.0.15:47238")
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{server.port}", insecure=True, compression=compression, timeout=10
    )
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()
    (span,) = sink.spans
    assert span.trace_id == pb_span.get_span_context().trace_id.to_bytes(16, "big")
    assert span.span_id == pb_span.get_span_context().span_id.to_bytes(8, "big")
    assert span.service == "reviews.default.svc.cluster.local"
    assert span.attributes == {
        "upstream_cluster": "outbound|9080|v1|reviews.default.svc.cluster.local",
        "peer.address": "10.42.0.15:47238",
    }


def test_port_zero_binds_a_free_port(server: GrpcServerHandle) -> None:
    assert server.port > 0
