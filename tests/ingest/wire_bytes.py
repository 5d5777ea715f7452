"""Protobuf wire bytes by hand, for payloads the generated classes cannot write (groups, bad
lengths, fields out of order, the pre-0.19 instrumentation_library_spans)."""

from __future__ import annotations

from typing import Any

from app.ingest.otlp_decode import DecodeResult, OtlpDecodeError

ILS_FIELD = 1000  # ResourceSpans.instrumentation_library_spans


def varint(n: int) -> bytes:
    n &= 2**64 - 1
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append(n & 0x7F | 0x80)
        n >>= 7


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def delimited(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def fixed64(field: int, n: int) -> bytes:
    return tag(field, 1) + n.to_bytes(8, "little")


def group(field: int, payload: bytes) -> bytes:
    return tag(field, 3) + payload + tag(field, 4)


def nested_groups(depth: int, field: int = 7) -> bytes:
    return tag(field, 3) * depth + tag(field, 4) * depth


def request(*resource_spans: bytes) -> bytes:
    return b"".join(delimited(1, rs) for rs in resource_spans)


def resource_spans(*fields: bytes) -> bytes:
    return b"".join(fields)


def scope(*spans: bytes) -> bytes:
    return delimited(2, b"".join(delimited(2, s) for s in spans))


def ils(*spans: bytes) -> bytes:
    return delimited(ILS_FIELD, b"".join(delimited(2, s) for s in spans))


def resource(*attributes: bytes) -> bytes:
    return delimited(1, b"".join(delimited(1, a) for a in attributes))


def key_value(key: str, value: bytes | None = None) -> bytes:
    """A KeyValue with an encoded AnyValue (None: key only)."""
    body = delimited(1, key.encode())
    return body if value is None else body + delimited(2, value)


def string_value(text: bytes) -> bytes:
    return delimited(1, text)


def outcome(decode: Any, body: bytes, max_attributes: int, now_ns: int) -> Any:
    """What a decoder makes of `body`: its DecodeResult, or its error message."""
    try:
        result: DecodeResult = decode(body, max_attributes, now_ns)
    except OtlpDecodeError as exc:
        return f"OtlpDecodeError: {exc}"
    return result


def span(
    *attributes: bytes,
    trace_id: bytes = bytes(range(1, 17)),
    span_id: bytes = bytes(range(1, 9)),
    name: bytes = b"reviews.default.svc.cluster.local:9080/*",
    start_ns: int = 1_748_779_200_000_000_000,
    end_ns: int = 1_748_779_200_010_000_000,
    extra: bytes = b"",
) -> bytes:
    """A valid SERVER span on the fixture's clock (tests/ingest/builders.py T0), then `extra`."""
    return (
        delimited(1, trace_id)
        + delimited(2, span_id)
        + delimited(5, name)
        + tag(6, 0)
        + varint(2)
        + fixed64(7, start_ns)
        + fixed64(8, end_ns)
        + b"".join(delimited(9, a) for a in attributes)
        + extra
    )
