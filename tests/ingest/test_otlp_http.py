from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind as OtelSpanKind
from pydantic import SecretStr

from app.domain import Span, SpanKind
from app.ingest.otlp_http import build_otlp_http_router
from app.ingest.sink import Admission, ListSink, Verdict
from app.settings import Settings
from tests.ingest.builders import fixture_lines, to_protobuf, waypoint_document
from tests.ingest.servers import serve_in_thread

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def make_app(sink: Any, **settings: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(build_otlp_http_router(sink, Settings(database_url="sqlite://", **settings)))
    return app


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def client(sink: ListSink) -> Iterator[TestClient]:
    with TestClient(
        make_app(sink, max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)
    ) as c:
        yield c


def recent_document(**span_fields: Any) -> dict[str, Any]:
    """A waypoint span timed now-ish, so the receiver's real clock accepts it."""
    import time

    now = time.time_ns()
    return waypoint_document(
        startTimeUnixNano=str(now - 10**7), endTimeUnixNano=str(now), **span_fields
    )


def test_protobuf_export_is_accepted_and_answered_in_protobuf(
    client: TestClient, sink: ListSink
) -> None:
    response = client.post("/v1/traces", content=to_protobuf(recent_document()), headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    (span,) = sink.spans
    assert span.attributes["upstream_cluster"].startswith("inbound-vip|9080|http|reviews")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies(client: TestClient, sink: ListSink, encoding: str) -> None:
    body = to_protobuf(recent_document())
    if encoding == "gzip":
        compressed = gzip.compress(body)
    elif encoding == "deflate":
        compressed = zlib.compress(body)
    else:
        packer = zlib.compressobj(wbits=-15)
        compressed = packer.compress(body) + packer.flush()
    headers = {**PROTOBUF, "content-encoding": encoding.removeprefix("raw-")}
    assert client.post("/v1/traces", content=compressed, headers=headers).status_code == 200
    assert len(sink.spans) == 1


def test_collector_file_exporter_lines_posted_as_is(client: TestClient, sink: ListSink) -> None:
    for line in fixture_lines():
        response = client.post("/v1/traces", content=line, headers=JSON)
        assert response.status_code == 200, response.text
        assert response.json() == {}
    assert len(sink.spans) == 5
    assert {s.service for s in sink.spans} == {
        "waypoint.default",
        "reviews.default.svc.cluster.local",
        "productpage.default",
    }


def test_partial_success_in_the_request_encoding(client: TestClient, sink: ListSink) -> None:
    document = recent_document()
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "traceId": "00" * 16})
    as_json = client.post("/v1/traces", content=json.dumps(document), headers=JSON)
    assert as_json.status_code == 200
    assert as_json.json() == {
        "partialSuccess": {
            "rejectedSpans": "1",
            "errorMessage": "1 spans rejected: 1 invalid trace id",
        }
    }
    as_pb = client.post("/v1/traces", content=to_protobuf(document), headers=PROTOBUF)
    partial = ExportTraceServiceResponse.FromString(as_pb.content).partial_success
    assert (partial.rejected_spans, partial.error_message) == (
        1,
        "1 spans rejected: 1 invalid trace id",
    )
    assert len(sink.spans) == 2


def bomb(size: int) -> bytes:
    packer = zlib.compressobj(wbits=31)
    chunk = bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(size >> 20)) + packer.flush()


BAD_INPUT = [
    ("random protobuf", PROTOBUF, b"\x0a\x10\x01\x02", 400),
    ("json with wrong types", JSON, b'{"resourceSpans": 5}', 400),
    ("not json", JSON, b"{", 400),
    ("invalid utf-8 json", JSON, b'{"resourceSpans": "\xff"}', 400),
    ("corrupt gzip", {**PROTOBUF, "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage", 400),
    (
        "truncated gzip",
        {**PROTOBUF, "content-encoding": "gzip"},
        gzip.compress(b"x" * 100)[:-9],
        400,
    ),
    ("oversize body", PROTOBUF, bytes(64 * 1024 + 1), 413),
    ("gzip bomb 16 MiB", {**PROTOBUF, "content-encoding": "gzip"}, bomb(16 << 20), 413),
    ("text/plain", {"content-type": "text/plain"}, b"hello", 415),
    ("no content type", {}, b"", 415),
    ("brotli", {**PROTOBUF, "content-encoding": "br"}, b"\x00", 415),
]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [(h, b, s) for _, h, b, s in BAD_INPUT],
    ids=[i for i, *_ in BAD_INPUT],
)
def test_bad_input_gets_its_status_and_the_server_keeps_serving(
    client: TestClient, sink: ListSink, headers: dict[str, str], body: bytes, status: int
) -> None:
    accepted = client.post("/v1/traces", content=to_protobuf(recent_document()), headers=PROTOBUF)
    assert accepted.status_code == 200
    response = client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if headers.get("content-type") == PROTOBUF["content-type"]:
        assert status_pb2.Status.FromString(response.content).message
    else:
        assert response.json()["message"]
    again = client.post("/v1/traces", content=to_protobuf(recent_document()), headers=PROTOBUF)
    assert again.status_code == 200
    assert len(sink.spans) == 2  # what was accepted before is still there


def test_chunked_upload_over_the_limit_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield bytes(4096)

    response = client.post("/v1/traces", content=chunks(), headers=PROTOBUF)
    assert response.status_code == 413


class RefusingSink:
    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def offer(self, spans: list[Span]) -> Verdict:
        return Verdict(self.admission, retry_after_s=7, reason="full")


@pytest.mark.parametrize(
    ("admission", "status", "code"),
    [(Admission.OVERLOADED, 429, 8), (Admission.UNAVAILABLE, 503, 14)],
)
def test_refusing_sink_answers_with_retry_after(
    admission: Admission, status: int, code: int
) -> None:
    with TestClient(make_app(RefusingSink(admission))) as client:
        response = client.post(
            "/v1/traces", content=to_protobuf(recent_document()), headers=PROTOBUF
        )
        assert response.status_code == status
        assert response.headers["retry-after"] == "7"
        pb_status = status_pb2.Status.FromString(response.content)
        assert pb_status.code == code
        retry = error_details_pb2.RetryInfo()
        assert pb_status.details[0].Unpack(retry) and retry.retry_delay.seconds == 7
        as_json = client.post("/v1/traces", content=json.dumps(recent_document()), headers=JSON)
        assert as_json.status_code == status and as_json.json()["code"] == code


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Basic s3cret", 401),
        ("Bearer s3cret", 200),
        ("bearer s3cret", 200),
    ],
)
def test_bearer_token(sink: ListSink, authorization: str | None, status: int) -> None:
    headers = {**PROTOBUF, **({"authorization": authorization} if authorization else {})}
    with TestClient(make_app(sink, otlp_token=SecretStr("s3cret"))) as client:
        response = client.post(
            "/v1/traces", content=to_protobuf(recent_document()), headers=headers
        )
    assert response.status_code == status
    assert len(sink.spans) == (1 if status == 200 else 0)


def test_openapi_documents_both_content_types(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/traces"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/x-protobuf",
        "application/json",
    }
    for status in ("200", "400", "413", "415", "429", "503"):
        assert set(operation["responses"][status]["content"]) == {
            "application/x-protobuf",
            "application/json",
        }


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_opentelemetry_sdk_exporter_over_real_http(
    sink: ListSink, compression: Compression
) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "waypoint.default"}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "reviews.default.svc.cluster.local:9080/*", kind=OtelSpanKind.SERVER
    ) as parent:
        parent.set_attribute(
            "upstream_cluster", "inbound-vip|9080|http|reviews.default.svc.cluster.local"
        )
        parent.set_attribute("http.status_code", "200")
        parent.set_attribute("not.kept", "x")
        with tracer.start_as_current_span("child", kind=OtelSpanKind.CLIENT) as child:
            child.set_attribute("server.port", 9080)
    finished = memory.get_finished_spans()
    with serve_in_thread(make_app(sink)) as base_url:
        exporter = OTLPSpanExporter(
            endpoint=f"{base_url}/v1/traces", compression=compression, timeout=10
        )
        assert exporter.export(finished) is SpanExportResult.SUCCESS
        exporter.shutdown()
    provider.shutdown()
    by_name = {s.name: s for s in sink.spans}
    server_span, client_span = by_name["reviews.default.svc.cluster.local:9080/*"], by_name["child"]
    assert server_span.trace_id == parent.get_span_context().trace_id.to_bytes(16, "big")
    assert server_span.span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert client_span.parent_span_id == server_span.span_id
    assert server_span.kind is SpanKind.SERVER and client_span.kind is SpanKind.CLIENT
    assert server_span.service == "waypoint.default"
    assert server_span.attributes == {
        "upstream_cluster": "inbound-vip|9080|http|reviews.default.svc.cluster.local",
        "http.status_code": "200",
    }
    assert client_span.attributes == {"server.port": 9080}
