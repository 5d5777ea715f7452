from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from app.domain import SpanKind
from app.ingest.otlp_decode import OtlpDecodeError, decode_protobuf
from app.ingest.otlp_json import decode_json
from tests.ingest.builders import (
    NOW,
    T0,
    fixture_documents,
    fixture_lines,
    to_protobuf,
    waypoint_document,
    with_spans,
)

WAYPOINT_TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def decode_both(document: dict[str, Any], max_attributes: int = 1024) -> Any:
    """Decode one request in both encodings and check they agree."""
    from_json = decode_json(json.dumps(document).encode(), max_attributes, now_ns=NOW)
    from_pb = decode_protobuf(to_protobuf(document), max_attributes, now_ns=NOW)
    assert from_json == from_pb
    return from_json


def test_fixture_waypoint_spans_decode_identically_from_json_and_protobuf() -> None:
    old, new, sidecar = (decode_both(doc) for doc in fixture_documents())
    assert [len(old.spans), len(new.spans), len(sidecar.spans)] == [3, 1, 1]
    assert old.rejected == new.rejected == sidecar.rejected == 0
    first = old.spans[0]
    assert first.trace_id == WAYPOINT_TRACE
    assert first.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert first.parent_span_id == bytes.fromhex("a2fb4a1d1a96d312")
    assert first.kind is SpanKind.SERVER
    assert first.name == "reviews.default.svc.cluster.local:9080/*"
    assert first.service == "waypoint.default"
    assert first.start_ns == T0 and first.end_ns == T0 + 12_500_000
    assert (
        first.attributes["upstream_cluster"]
        == "inbound-vip|9080|http|reviews.default.svc.cluster.local"
    )
    assert first.attributes["http.status_code"] == "200"  # Envoy sends every tag as a string
    assert first.attributes["node_id"].startswith("waypoint~10.42.0.9~")
    assert first.attributes["guid:x-request-id"] == "4bf92f35-77b3-4a4c-8f1f-3b6c2d0e1a77"
    assert "user_agent" not in first.attributes  # not kept
    assert first.attributes["zone"] == ""  # kept: a waypoint's own zone (the proxy had none)
    assert first.resource == {"service.name": "waypoint.default"}
    failed = old.spans[1]
    assert failed.status_error and failed.parent_span_id == b""
    assert failed.attributes["response_flags"] == "UF"
    assert old.spans[2].attributes["upstream_cluster"] == "PassthroughCluster"
    assert new.spans[0].service == "reviews.default.svc.cluster.local"
    assert sidecar.spans[0].kind is SpanKind.CLIENT
    assert sidecar.spans[0].span_id == first.parent_span_id  # the pair correlation joins


def span(**fields: Any) -> dict[str, Any]:
    base = fixture_documents()[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return {**base, **fields}


INVALID_SPANS = [
    ("trace id too short", {"traceId": "5b8efff798038103"}, "invalid trace id"),
    ("trace id all zero", {"traceId": "0" * 32}, "invalid trace id"),
    ("trace id missing", {"traceId": ""}, "invalid trace id"),
    ("span id too long", {"spanId": "eee19b7ec3c1b17400"}, "invalid span id"),
    ("span id all zero", {"spanId": "0" * 16}, "invalid span id"),
    ("parent id 4 bytes", {"parentSpanId": "a2fb4a1d"}, "invalid parent span id"),
    ("end before start", {"endTimeUnixNano": str(T0 - 1)}, "end before start"),
    ("start before 2000", {"startTimeUnixNano": "5", "endTimeUnixNano": "6"}, "before 2000"),
    (
        "end two days ahead",
        {"endTimeUnixNano": str(NOW + 2 * 86_400 * 10**9)},
        "in the future",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [(m, r) for _, m, r in INVALID_SPANS],
    ids=[i for i, _, _ in INVALID_SPANS],
)
def test_invalid_span_is_rejected_and_counted_while_its_neighbours_are_kept(
    mutation: dict[str, Any], reason: str
) -> None:
    document = with_spans(waypoint_document(**mutation), span(spanId="00000000000000aa"))
    result = decode_both(document)
    assert [s.span_id.hex() for s in result.spans] == ["00000000000000aa"]
    assert result.rejected == 1
    assert reason in result.error_message


def test_all_zero_parent_id_means_no_parent() -> None:
    result = decode_both(waypoint_document(parentSpanId="0" * 16))
    assert result.spans[0].parent_span_id == b""


def test_rejections_are_summarised_by_reason() -> None:
    document = with_spans(waypoint_document(traceId="00"), span(traceId="11"), span(spanId="22"))
    result = decode_both(document)
    assert result.rejected == 3 and not result.spans
    assert result.error_message == "3 spans rejected: 2 invalid trace id, 1 invalid span id"


OTLP_JSON_SPELLINGS = [
    ("enum names", {"kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR"}}),
    ("integer timestamps", {"kind": 3, "startTimeUnixNano": T0, "status": {"code": 2}}),
    (
        "snake_case keys",
        {
            "trace_id": "5B8EFFF798038103D269B633813FC60C",  # hex is case-insensitive
            "traceId": None,
            "start_time_unix_nano": str(T0),
            "startTimeUnixNano": None,
            "kind": 3,
            "status": {"code": 2},
        },
    ),
]


@pytest.mark.parametrize(
    "fields", [f for _, f in OTLP_JSON_SPELLINGS], ids=[i for i, _ in OTLP_JSON_SPELLINGS]
)
def test_otlp_json_spellings_the_spec_allows(fields: dict[str, Any]) -> None:
    document = waypoint_document(**fields)
    (decoded,) = decode_json(json.dumps(document).encode(), 1024, now_ns=NOW).spans
    assert decoded.kind is SpanKind.CLIENT and decoded.status_error
    assert decoded.trace_id == WAYPOINT_TRACE and decoded.start_ns == T0


def test_json_snake_case_containers_and_typed_values() -> None:
    body = {
        "resource_spans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"string_value": "a"}}]
                },
                "scope_spans": [
                    {
                        "spans": [
                            span(
                                attributes=[
                                    {"key": "server.port", "value": {"intValue": "9080"}},
                                    {
                                        "key": "http.response.status_code",
                                        "value": {"int_value": 503},
                                    },
                                    {"key": "rpc.system", "value": {"boolValue": True}},
                                    {"key": "request_size", "value": {"doubleValue": 1.5}},
                                    {
                                        "key": "peer.service",
                                        "value": {"arrayValue": {"values": []}},
                                    },
                                ]
                            )
                        ]
                    }
                ],
            }
        ]
    }
    (decoded,) = decode_json(json.dumps(body).encode(), 1024, now_ns=NOW).spans
    assert decoded.service == "a"
    assert decoded.attributes == {
        "server.port": 9080,
        "http.response.status_code": 503,
        "rpc.system": True,
        "request_size": 1.5,
    }


def pb_request(attributes: list[KeyValue], **span_fields: Any) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    pb_span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=WAYPOINT_TRACE,
            span_id=b"\x01" * 8,
            start_time_unix_nano=T0,
            end_time_unix_nano=T0 + 1,
            kind=2,
            **span_fields,
        )
    )
    pb_span.attributes.extend(attributes)
    return request


def string_kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def test_protobuf_values_beyond_the_fast_path() -> None:
    long_url = "http://reviews:9080/" + "x" * 300  # length needs a two-byte varint
    attributes = [
        string_kv("http.url", long_url),
        KeyValue(key="server.port", value=AnyValue(int_value=9080)),
        KeyValue(key="rpc.system", value=AnyValue(bool_value=True)),
        KeyValue(key="request_size", value=AnyValue(double_value=2.5)),
        KeyValue(key="peer.service", value=AnyValue(array_value=ArrayValue())),
        KeyValue(key="db.system"),  # no value at all
        string_kv("upstream_cluster", ""),
    ]
    body = pb_request(attributes).SerializeToString()
    (decoded,) = decode_protobuf(body, 1024, now_ns=NOW).spans
    assert decoded.attributes == {
        "http.url": long_url,
        "server.port": 9080,
        "rpc.system": True,
        "request_size": 2.5,
        "upstream_cluster": "",
    }


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def request_of_raw_spans(*raw_spans: bytes) -> bytes:
    """An export request wrapping already-encoded spans (to send what generated classes refuse)."""
    scope_spans = b"".join(length_delimited(b"\x12", s) for s in raw_spans)
    resource_spans = length_delimited(b"\x12", scope_spans)
    return length_delimited(b"\x0a", resource_spans)


def raw_span(span_id: bytes, *raw_attributes: bytes) -> bytes:
    pb_span = pb_request([]).resource_spans[0].scope_spans[0].spans[0]
    pb_span.span_id = span_id
    return pb_span.SerializeToString() + b"".join(
        length_delimited(b"\x4a", a) for a in raw_attributes
    )


def test_protobuf_keyvalue_with_value_before_key() -> None:
    # Protobuf allows fields in any order; the fast path expects key first and must not skip this.
    value = AnyValue(string_value="GET").SerializeToString()
    reordered = length_delimited(b"\x12", value) + length_delimited(b"\x0a", b"http.method")
    body = request_of_raw_spans(raw_span(b"\x01" * 8, reordered))
    (decoded,) = decode_protobuf(body, 1024, now_ns=NOW).spans
    assert decoded.attributes == {"http.method": "GET"}


def test_only_the_first_max_attributes_are_read() -> None:
    filler = [string_kv(f"custom.{i}", "v") for i in range(10_000)]
    attributes = [string_kv("http.method", "GET"), *filler, string_kv("http.status_code", "200")]
    body = pb_request(attributes).SerializeToString()
    (decoded,) = decode_protobuf(body, 1024, now_ns=NOW).spans
    assert decoded.attributes == {"http.method": "GET"}
    as_json = waypoint_document(
        attributes=[
            {"key": "http.method", "value": {"stringValue": "GET"}},
            *({"key": f"custom.{i}", "value": {"stringValue": "v"}} for i in range(10_000)),
            {"key": "http.status_code", "value": {"stringValue": "200"}},
        ]
    )
    (decoded,) = decode_json(json.dumps(as_json).encode(), 1024, now_ns=NOW).spans
    assert decoded.attributes == {"http.method": "GET"}


def test_invalid_utf8_attribute_rejects_the_span_only() -> None:
    bad_kv = b"\x0a\x0bhttp.method\x12\x05\x0a\x03\xff\xfe\xfd"
    good_kv = string_kv("http.method", "GET").SerializeToString()
    body = request_of_raw_spans(raw_span(b"\x01" * 8, bad_kv), raw_span(b"\x02" * 8, good_kv))
    result = decode_protobuf(body, 1024, now_ns=NOW)
    assert result.rejected == 1 and "UTF-8" in result.error_message
    assert [s.span_id for s in result.spans] == [b"\x02" * 8]


def test_deprecated_instrumentation_library_spans_are_read() -> None:
    # ResourceSpans field 1000 (InstrumentationLibrarySpans) from senders before OTLP 0.19.
    library_spans = length_delimited(b"\x12", raw_span(b"\x01" * 8))
    body = length_delimited(b"\x0a", length_delimited(b"\xc2\x3e", library_spans))  # tag 1000
    (decoded,) = decode_protobuf(body, 1024, now_ns=NOW).spans
    assert decoded.trace_id == WAYPOINT_TRACE


UNDECODABLE_PROTOBUF = [
    ("truncated", to_protobuf(fixture_documents()[0])[:-7]),
    ("random", bytes(range(7, 200))),
    ("length past the end", b"\x0a\x10\x01"),
    (
        "invalid utf-8 span name",
        pb_request([], name="ok").SerializeToString().replace(b"ok", b"\xff\xfe"),
    ),
]


@pytest.mark.parametrize(
    "body", [b for _, b in UNDECODABLE_PROTOBUF], ids=[i for i, _ in UNDECODABLE_PROTOBUF]
)
def test_undecodable_protobuf_raises_otlp_decode_error(body: bytes) -> None:
    with pytest.raises(OtlpDecodeError):
        decode_protobuf(body, 1024, now_ns=NOW)


UNDECODABLE_JSON = [
    ("not json", b"{"),
    ("invalid utf-8", b'{"resourceSpans": "\xff"}'),
    ("top level array", b"[]"),
    ("resourceSpans not an array", b'{"resourceSpans": 5}'),
    ("scopeSpans of strings", b'{"resourceSpans": [{"scopeSpans": ["x"]}]}'),
    ("resource attributes not a list", b'{"resourceSpans": [{"resource": {"attributes": 1}}]}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize(
    "body", [b for _, b in UNDECODABLE_JSON], ids=[i for i, _ in UNDECODABLE_JSON]
)
def test_undecodable_json_raises_otlp_decode_error(body: bytes) -> None:
    with pytest.raises(OtlpDecodeError):
        decode_json(body, 1024, now_ns=NOW)


MALFORMED_JSON_SPANS = [
    ("trace id not hex", {"traceId": "zz" * 16}),
    ("trace id a number", {"traceId": 5}),
    ("start a float", {"startTimeUnixNano": 1.5}),
    ("start a huge digit string", {"startTimeUnixNano": "9" * 5000}),
    ("kind unknown name", {"kind": "SPAN_KIND_SIDEWAYS"}),
    ("name a list", {"name": ["x"]}),
    ("status a string", {"status": "ERROR"}),
    ("attributes an object", {"attributes": {"http.method": "GET"}}),
    (
        "attribute value of the wrong type",
        {"attributes": [{"key": "http.method", "value": {"stringValue": 1}}]},
    ),
    ("attribute key a list", {"attributes": [{"key": ["x"], "value": {}}, 3]}),
]


@pytest.mark.parametrize(
    "fields", [f for _, f in MALFORMED_JSON_SPANS], ids=[i for i, _ in MALFORMED_JSON_SPANS]
)
def test_malformed_json_span_is_rejected_and_its_neighbour_kept(fields: dict[str, Any]) -> None:
    document = with_spans(waypoint_document(**fields), span(spanId="00000000000000aa"))
    result = decode_json(json.dumps(document).encode(), 1024, now_ns=NOW)
    assert result.rejected == 1
    assert [s.span_id.hex() for s in result.spans] == ["00000000000000aa"]


def test_every_fixture_line_is_an_export_request() -> None:
    for line in fixture_lines():
        assert decode_json(line, 1024, now_ns=NOW).spans


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise_anything_but_otlp_decode_error(body: bytes) -> None:
    for decode in (decode_protobuf, decode_json):
        try:
            result = decode(body, 64)
        except OtlpDecodeError:
            continue
        assert result.rejected >= 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 400))
def test_corrupted_waypoint_requests_never_raise_anything_but_otlp_decode_error(
    noise: bytes, at: int
) -> None:
    body = bytearray(to_protobuf(fixture_documents()[0]))
    at = at % len(body)
    body[at : at + len(noise)] = noise
    with contextlib.suppress(OtlpDecodeError):
        decode_protobuf(bytes(body), 64, now_ns=NOW)
