"""The protobuf decoder's shortcuts give exactly what the plain paths give.

`read_span_attributes` memoises encoded KeyValues, `new_span_record` builds a `Span` through its
slots, and `_decode_request` checks span validity in one expression before asking `span_problem`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from app.domain import KEPT_SPAN_ATTRIBUTES, Span, SpanKind
from app.ingest.otlp_decode import (
    SPAN_ATTRIBUTE_CACHE,
    SPAN_KEY_PREFIXES,
    BadAttribute,
    decode_protobuf,
    new_span_record,
    read_pb_attributes,
    read_span_attributes,
    span_problem,
)
from tests.ingest.builders import NOW, T0

KEYS = [
    *sorted(KEPT_SPAN_ATTRIBUTES)[:6],
    "http.method",
    "node_id",
    "zone",
    "user_agent",
    "guid:x-client-trace-id",
    "x" * 130,
]
VALUES = st.one_of(
    st.sampled_from(["GET", "", "-", "inbound-vip|9080|http|reviews", "é", "y" * 200, "z" * 600]),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.just(AnyValue(array_value=ArrayValue())),
    st.just(None),  # key only
)


def encode(key: str, value: Any) -> bytes:
    if value is None:
        return KeyValue(key=key).SerializeToString()
    if isinstance(value, str):
        value = AnyValue(string_value=value)
    return KeyValue(key=key, value=value).SerializeToString()


RAW_ATTRIBUTE = st.one_of(
    st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: encode(*kv)),
    st.sampled_from(
        [
            b"",  # empty KeyValue
            b"\x0a\x0bhttp.method\x12\x05\x0a\x03\xff\xfe\xfd",  # not UTF-8
            b"\x12\x05\x0a\x03GET\x0a\x0bhttp.method",  # value before key
            b"\x0a\x0bhttp.method\x12\x05\x0a\x03GE",  # truncated
        ]
    ),
)


def plain(raws: list[bytes], max_attributes: int) -> Any:
    try:
        return read_pb_attributes(raws, SPAN_KEY_PREFIXES, max_attributes)
    except BadAttribute as exc:
        return str(exc)


def memoised(raws: list[bytes], max_attributes: int) -> Any:
    try:
        return read_span_attributes(raws, max_attributes)
    except BadAttribute as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(RAW_ATTRIBUTE, max_size=12), st.integers(1, 14))
def test_memoised_attributes_equal_the_plain_reader_cold_and_warm(
    raws: list[bytes], max_attributes: int
) -> None:
    expected = plain(raws, max_attributes)
    SPAN_ATTRIBUTE_CACHE.clear()
    assert memoised(raws, max_attributes) == expected  # cold
    assert memoised(raws, max_attributes) == expected  # warm
    assert memoised(list(reversed(raws)), max_attributes) == plain(
        list(reversed(raws)), max_attributes
    )


def test_attribute_cache_stays_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(SPAN_ATTRIBUTE_CACHE, "max_entries", 8)
    SPAN_ATTRIBUTE_CACHE.clear()
    for i in range(100):
        raws = [encode("http.method", f"M{i}"), encode("custom", str(i))]
        assert read_span_attributes(raws, 10) == {"http.method": f"M{i}"}
        assert len(SPAN_ATTRIBUTE_CACHE) <= 8
    long = encode("node_id", "n" * 1000)
    read_span_attributes([long], 10)
    assert long not in SPAN_ATTRIBUTE_CACHE


def test_new_span_record_equals_the_dataclass() -> None:
    fields = (b"t" * 16, b"s" * 8, b"", SpanKind.SERVER, "n", 1, 2, "svc", True, {"a": 1}, {})
    made = new_span_record(*fields)
    assert type(made) is Span
    assert made == Span(*fields)
    assert dataclasses.astuple(made) == dataclasses.astuple(Span(*fields))
    assert hash(made.trace_id) == hash(fields[0]) and made.duration_ms == 1e-6


def test_new_span_record_covers_every_field_of_span() -> None:
    # If Span gains a field, the factory returns Span itself rather than leave it unset.
    assert new_span_record is Span or len(dataclasses.fields(Span)) == 11


IDS = st.sampled_from([b"", bytes(8), bytes(16), b"\x01" * 4, b"\x01" * 8, b"\x01" * 16])
TIMES = st.sampled_from(
    [0, 5, T0 - 1, T0, T0 + 1, NOW, NOW + 86_400 * 10**9, NOW + 86_400 * 10**9 + 1, 2**64 - 1]
)


@settings(max_examples=400, deadline=None)
@given(IDS, IDS, IDS, TIMES, TIMES)
def test_inline_span_checks_agree_with_span_problem(
    trace_id: bytes, span_id: bytes, parent_id: bytes, start: int, end: int
) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    result = decode_protobuf(request.SerializeToString(), 16, now_ns=NOW)
    normalized_parent = b"" if parent_id == bytes(8) else parent_id
    problem = span_problem(trace_id, span_id, normalized_parent, start, end, NOW)
    if problem:
        assert not result.spans and result.rejected == 1 and problem in result.error_message
    else:
        (decoded,) = result.spans
        assert decoded.parent_span_id == normalized_parent and result.rejected == 0


def test_decode_is_the_same_with_a_cold_or_warm_cache() -> None:
    request = ExportTraceServiceRequest()
    pb_span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=b"\x01" * 16,
            span_id=b"\x02" * 8,
            start_time_unix_nano=T0,
            end_time_unix_nano=T0 + 5,
            kind=2,
        )
    )
    pb_span.attributes.extend(
        [
            KeyValue(key="node_id", value=AnyValue(string_value="waypoint~1")),
            KeyValue(key="user_agent", value=AnyValue(string_value="")),
            KeyValue(key="http.url", value=AnyValue(string_value="http://a/b")),
        ]
    )
    body = request.SerializeToString()
    SPAN_ATTRIBUTE_CACHE.clear()
    cold = decode_protobuf(body, 64, now_ns=time.time_ns())
    warm = decode_protobuf(body, 64, now_ns=time.time_ns())
    assert cold == warm
    assert cold.spans[0].attributes == {"node_id": "waypoint~1", "http.url": "http://a/b"}
