"""The compiled decoder (app/ingest/otlp_wire.py) against the reference (otlp_decode.py): the same
spans and the same rejections for generated, mutated, random and captured payloads.

Generated requests are built with the protobuf classes (random resources, kinds, ids, clocks,
statuses, attributes of every AnyValue kind, fields the lean schema skips); mutations truncate,
flip, overwrite, insert and delete bytes of them; the captured payloads are the OTLP/JSON files in
tests/data (converted to protobuf), which the OTLP/JSON decoder must also read the same way.
"""

from __future__ import annotations

import base64
import json
import math
import random
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from app.domain import KEPT_RESOURCE_ATTRIBUTES, KEPT_SPAN_ATTRIBUTES
from app.ingest.otlp_decode import INTERNED_VALUES, decode_protobuf
from app.ingest.otlp_json import decode_json
from app.ingest.otlp_wire import decode_protobuf_compiled
from tests.ingest import wire_bytes as wb
from tests.ingest.builders import NOW, T0, fixture_lines, to_protobuf

DATA = Path(__file__).resolve().parents[1] / "data"
MAX_ATTRIBUTES = st.sampled_from([1024, 1024, 3, 1, 0, -2])


def assert_same(body: bytes, max_attributes: int = 1024, now_ns: int = NOW) -> Any:
    expected = wb.outcome(decode_protobuf, body, max_attributes, now_ns)
    assert wb.outcome(decode_protobuf_compiled, body, max_attributes, now_ns) == expected
    return expected


# ---- generated requests ----

SPAN_KEYS = sorted(KEPT_SPAN_ATTRIBUTES)
TEXT = st.one_of(
    st.sampled_from(
        ["", "GET", "-", "200", "inbound-vip|9080|http|reviews", "é", "名前", "x" * 300]
    ),
    st.text(max_size=20),
)


def any_values(depth: int = 2) -> st.SearchStrategy[AnyValue]:
    scalars = st.one_of(
        TEXT.map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
        st.floats(allow_nan=False).map(lambda x: AnyValue(double_value=x)),
        st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
        st.integers(0, 9).map(lambda n: AnyValue(string_value_strindex=n)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return scalars
    nested = any_values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(nested, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(TEXT, nested), max_size=2).map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    )


def key_values(keys: list[str]) -> st.SearchStrategy[KeyValue]:
    key = st.one_of(
        st.sampled_from(keys),
        st.sampled_from(["zone", "user_agent", "guid:x-client-trace-id", "k" * 130]),
    )
    return st.one_of(
        st.tuples(key, TEXT).map(
            lambda kv: KeyValue(key=kv[0], value=AnyValue(string_value=kv[1]))
        ),
        st.tuples(key, any_values()).map(lambda kv: KeyValue(key=kv[0], value=kv[1])),
        key.map(lambda k: KeyValue(key=k)),
    )


ID16 = st.sampled_from([bytes(range(1, 17)), bytes(16), b"\x01" * 15, b""]) | st.binary(
    min_size=16, max_size=16
)
ID8 = st.sampled_from([bytes(range(1, 9)), bytes(8), b"\x01" * 9, b""]) | st.binary(
    min_size=8, max_size=8
)
CLOCK = st.sampled_from([T0, T0 + 5, NOW, NOW + 2 * 86_400 * 10**9, 10**9, 0, 2**64 - 1])


@st.composite
def pb_spans(draw: st.DrawFn) -> Span:
    start = draw(CLOCK)
    end = draw(st.one_of(st.just(min(start + 10_000_000, 2**64 - 1)), CLOCK))
    pb_span = Span(
        trace_id=draw(ID16),
        span_id=draw(ID8),
        parent_span_id=draw(ID8),
        name=draw(TEXT),
        kind=draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, -1, 2**31 - 1])),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=draw(st.lists(key_values(SPAN_KEYS), max_size=8)),
        status=Status(code=draw(st.sampled_from([0, 1, 2, 7])), message=draw(TEXT)),
    )
    if draw(st.booleans()):  # fields the lean schema skips
        pb_span.trace_state = "k=v"
        pb_span.flags = 0x100
        pb_span.events.add(name="e", time_unix_nano=T0)
        pb_span.links.add(trace_id=bytes(16), span_id=bytes(8))
        pb_span.dropped_attributes_count = 3
    return pb_span


@st.composite
def pb_resource_spans(draw: st.DrawFn) -> ResourceSpans:
    resource_keys = sorted(KEPT_RESOURCE_ATTRIBUTES)
    rs = ResourceSpans(schema_url=draw(st.sampled_from(["", "https://x"])))
    if draw(st.booleans()):
        rs.resource.attributes.extend(draw(st.lists(key_values(resource_keys), max_size=4)))
        rs.resource.attributes.add(key="service.name").value.string_value = draw(TEXT)
    for _ in range(draw(st.integers(0, 2))):
        scope = rs.scope_spans.add()
        scope.scope.name = draw(TEXT)
        scope.spans.extend(draw(st.lists(pb_spans(), max_size=3)))
    return rs


@st.composite
def generated_requests(draw: st.DrawFn) -> bytes:
    """A serialized request; sometimes with pre-0.19 instrumentation_library_spans spliced in."""
    parts = []
    for rs in draw(st.lists(pb_resource_spans(), max_size=3)):
        encoded = rs.SerializeToString()
        if draw(st.booleans()):
            extra = ExportTraceServiceRequest(resource_spans=[draw(pb_resource_spans())])
            legacy = b"".join(s.SerializeToString() for s in extra.resource_spans[0].scope_spans)
            encoded = wb.delimited(wb.ILS_FIELD, legacy) + encoded  # before the scope_spans
        parts.append(wb.delimited(1, encoded))
    return b"".join(parts)


DIFFERENTIAL = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@DIFFERENTIAL
@given(generated_requests(), MAX_ATTRIBUTES)
def test_generated_requests_decode_identically(body: bytes, max_attributes: int) -> None:
    assert_same(body, max_attributes)


# ---- mutations and noise ----


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    body = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
        if op == "truncate":
            del body[at:]
        elif op == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif op == "delete":
            del body[at : at + draw(st.integers(1, 8))]
        elif at < len(body):
            body[at] = (
                body[at] ^ (1 << draw(st.integers(0, 7)))
                if op == "flip"
                else draw(st.integers(0, 255))
            )
    return bytes(body)


@DIFFERENTIAL
@given(mutated(generated_requests()), MAX_ATTRIBUTES)
def test_mutated_requests_fail_or_decode_identically(body: bytes, max_attributes: int) -> None:
    assert_same(body, max_attributes)


CAPTURED = [to_protobuf(json.loads(line)) for line in fixture_lines()] + [
    to_protobuf(json.loads(line))
    for path in sorted((DATA / "real").glob("*.otlp.json"))
    for line in path.read_text().splitlines()
    if line.strip()
]


@DIFFERENTIAL
@given(mutated(st.sampled_from(CAPTURED)))
def test_mutated_captured_requests_fail_or_decode_identically(body: bytes) -> None:
    assert_same(body)


@DIFFERENTIAL
@given(st.binary(max_size=512))
def test_random_bytes_fail_or_decode_identically(body: bytes) -> None:
    assert_same(body)


def test_seeded_byte_mutations_of_every_capture_decode_identically() -> None:
    """Every byte position of the captures, flipped and cut, beside the property tests' samples."""
    rng = random.Random(16)
    failures = 0
    for body in CAPTURED:
        for at in range(len(body)):
            flipped = bytearray(body)
            flipped[at] ^= 1 << rng.randrange(8)
            for candidate in (bytes(flipped), body[:at]):
                result = assert_same(candidate)
                failures += isinstance(result, str)
    assert failures > 0  # the mutations did reach the error paths


# ---- captured payloads, both encodings ----


def test_captured_payloads_decode_identically_in_protobuf_and_json() -> None:
    lines = fixture_lines() + [
        line.encode()
        for path in sorted((DATA / "real").glob("*.otlp.json"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    spans = 0
    for line, body in zip(lines, CAPTURED, strict=True):
        now_ns = NOW if b"1748779" in line else T0 * 2  # the real captures are from 2025-01
        expected = assert_same(body, now_ns=now_ns)
        assert decode_json(line, 1024, now_ns=now_ns) == expected
        spans += len(expected.spans)
    assert spans >= 10


def to_otlp_json(body: bytes) -> bytes:
    """OTLP/JSON of a request: json_format's mapping with hex ids (the OTLP/JSON rule)."""
    document = json_format.MessageToDict(ExportTraceServiceRequest.FromString(body))
    for rs in document.get("resourceSpans", []):
        for scope in rs.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


@DIFFERENTIAL
@given(generated_requests(), MAX_ATTRIBUTES.filter(lambda n: n >= 0))
def test_generated_requests_decode_identically_from_otlp_json(
    body: bytes, max_attributes: int
) -> None:
    pb_request = ExportTraceServiceRequest.FromString(body)
    pb_request.DiscardUnknownFields()  # the legacy field has no OTLP/JSON spelling
    body = pb_request.SerializeToString()
    from_protobuf = assert_same(body, max_attributes)
    assert decode_json(to_otlp_json(body), max_attributes, NOW) == from_protobuf


def test_interned_values_and_names_are_shared_and_the_memo_is_bounded() -> None:
    from app.ingest.otlp_wire import DECODER

    attribute = wb.key_value("http.method", wb.string_value(b"GET"))
    body = wb.request(
        wb.scope(*(wb.span(attribute, span_id=bytes([1] * 7 + [i])) for i in range(1, 4)))
    )
    spans = decode_protobuf_compiled(body, 1024, NOW).spans
    assert "http.method" in INTERNED_VALUES
    assert len({id(s.attributes["http.method"]) for s in spans}) == 1
    assert len({id(s.name) for s in spans}) == 1
    for batch in range(3):
        names = [f"route-{batch}-{i}".encode() for i in range(2000)]
        decode_protobuf_compiled(wb.request(wb.scope(*(wb.span(name=n) for n in names))), 8, NOW)
    assert 0 < DECODER.memo_size() <= 4096
    assert not math.isnan(float(len(spans)))
