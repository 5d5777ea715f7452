"""Wire-format corners the compiled decoder must treat as the reference (upb + otlp_decode) does.

Each case names what the reference makes of it, so a case that stopped reaching its corner (both
decoders accepting a body meant to be corrupt, say) fails too, not only a disagreement.
"""

from __future__ import annotations

import pytest

from app.ingest.otlp_wire import decode_protobuf_compiled
from tests.ingest import wire_bytes as wb
from tests.ingest.builders import NOW
from tests.ingest.test_decoder_differential import assert_same

CORRUPT = "Wire format was corrupt"
BAD_UTF8 = "String field had bad UTF-8"
GET = wb.key_value("http.method", wb.string_value(b"GET"))
KEPT = "http.method"


def one_span(*attributes: bytes, extra: bytes = b"", **fields: bytes) -> bytes:
    return wb.request(wb.scope(wb.span(*attributes, extra=extra, **fields)))  # type: ignore[arg-type]


def deep_array(levels: int) -> bytes:
    value = b""
    for _ in range(levels):
        value = wb.delimited(5, wb.delimited(1, value))  # AnyValue{array_value{values: …}}
    return value


# (id, body, what the reference answers: an error text, or (spans kept, spans rejected))
CASES: list[tuple[str, bytes, str | tuple[int, int]]] = [
    ("empty body", b"", (0, 0)),
    ("groups 100 deep at the top", wb.nested_groups(100), (0, 0)),
    ("groups 101 deep at the top", wb.nested_groups(101), CORRUPT),
    ("groups 97 deep in a span", one_span(extra=wb.nested_groups(97)), (1, 0)),
    ("groups 98 deep in a span", one_span(extra=wb.nested_groups(98)), CORRUPT),
    ("group left open", wb.tag(7, 3) + wb.tag(8, 0) + b"\x01", CORRUPT),
    ("group at the end", wb.tag(7, 3), CORRUPT),
    ("group closed by another number", wb.tag(7, 3) + wb.tag(8, 4), CORRUPT),
    ("end group at the top", wb.tag(7, 4), CORRUPT),
    ("end group in a span", one_span(extra=wb.tag(3, 4)), CORRUPT),
    ("field number 0", b"\x00\x00", CORRUPT),
    ("field number 0, group", b"\x03\x04", CORRUPT),
    ("wire type 6", wb.tag(9, 6), CORRUPT),
    ("wire type 7 in a span", one_span(extra=wb.tag(20, 7)), CORRUPT),
    ("tag of 6 bytes", b"\x88\x80\x80\x80\x80\x00\x00", CORRUPT),
    ("tag over 32 bits", b"\x80\x80\x80\x80\x10\x00", CORRUPT),
    ("tag of 5 bytes", b"\x88\x80\x80\x80\x00\x00", (0, 0)),
    ("varint of 10 bytes", wb.tag(9, 0) + b"\xff" * 9 + b"\x01", (0, 0)),
    ("varint of 11 bytes", wb.tag(9, 0) + b"\xff" * 10 + b"\x01", CORRUPT),
    ("varint cut off", wb.tag(9, 0) + b"\xff", CORRUPT),
    ("fixed64 cut off", wb.tag(9, 1) + b"\x00" * 7, CORRUPT),
    ("fixed32 cut off", wb.tag(9, 5) + b"\x00" * 3, CORRUPT),
    ("length past the end", wb.tag(9, 2) + wb.varint(5) + b"abc", CORRUPT),
    ("length of 2^31", wb.tag(9, 2) + wb.varint(2**31) + b"x", CORRUPT),
    ("length of 2^64-1", wb.tag(9, 2) + wb.varint(2**64 - 1), CORRUPT),
    (
        "span field past its span",
        wb.request(wb.delimited(2, wb.tag(2, 2) + wb.varint(4) + wb.tag(1, 2) + wb.varint(9))),
        CORRUPT,
    ),
    ("name not UTF-8", one_span(name=b"\xff"), BAD_UTF8),
    ("name a surrogate", one_span(name=b"\xed\xa0\x80"), BAD_UTF8),
    ("name overlong", one_span(name=b"\xc0\xaf"), BAD_UTF8),
    ("name beyond U+10FFFF", one_span(name=b"\xf4\x90\x80\x80"), BAD_UTF8),
    ("name cut mid-character", one_span(name="é".encode()[:1]), BAD_UTF8),
    ("name of every plane", one_span(name="aé名𝄞".encode()), (1, 0)),
    (
        "corrupt legacy scope before a bad name",
        wb.request(wb.delimited(wb.ILS_FIELD, b"\x0a\x05") + wb.scope(wb.span(name=b"\xff"))),
        CORRUPT,
    ),
    (
        "bad name before a corrupt legacy scope",
        wb.request(wb.scope(wb.span(name=b"\xff")) + wb.delimited(wb.ILS_FIELD, b"\x0a\x05")),
        BAD_UTF8,
    ),
    ("resource after the spans", wb.request(wb.scope(wb.span()) + wb.resource(GET)), (1, 0)),
    (
        "resource twice (merged)",
        wb.request(
            wb.resource(wb.key_value("service.name", wb.string_value(b"a")))
            + wb.scope(wb.span())
            + wb.resource(wb.key_value("k8s.pod.name", wb.string_value(b"p")))
        ),
        (1, 0),
    ),
    (
        "resource attribute not UTF-8",
        wb.request(
            wb.resource(wb.key_value("service.name", wb.string_value(b"\xff")))
            + wb.scope(wb.span(), wb.span())
            + wb.ils(wb.span())
        ),
        (0, 3),
    ),
    ("legacy scope after scope_spans", wb.request(wb.ils(wb.span()) + wb.scope(wb.span())), (2, 0)),
    (
        "kind as a 10-byte varint",
        one_span(extra=wb.tag(6, 0) + b"\x83" + b"\x80" * 8 + b"\x01"),
        (1, 0),
    ),
    ("kind with the wrong wire type", one_span(extra=wb.delimited(6, b"\x03")), (1, 0)),
    ("start time as a varint", one_span(extra=wb.tag(7, 0) + b"\x01"), (1, 0)),
    (
        "status twice, merged",
        one_span(extra=wb.delimited(15, b"\x18\x02") + wb.delimited(15, b"\x10\x01")),
        (1, 0),
    ),
    (
        "status code over 32 bits",
        one_span(extra=wb.delimited(15, b"\x18" + wb.varint(2**32 + 2))),
        (1, 0),
    ),
    ("status corrupt", one_span(extra=wb.delimited(15, b"\x18")), CORRUPT),
    ("unknown group in a span", one_span(extra=wb.group(99, wb.delimited(1, b"x"))), (1, 0)),
    ("attribute value not UTF-8", one_span(wb.key_value(KEPT, wb.string_value(b"\xff"))), (0, 1)),
    (
        "attribute not kept, value not UTF-8",
        one_span(wb.key_value("user_agent", wb.string_value(b"\xff"))),
        (1, 0),
    ),
    ("attribute key only", one_span(wb.key_value(KEPT)), (1, 0)),
    ("attribute empty", one_span(b""), (1, 0)),
    ("attribute of one byte", one_span(b"\x0a"), (1, 0)),
    ("attribute with an empty value", one_span(wb.key_value(KEPT, b"")), (1, 0)),
    (
        "attribute value cut after its tag",
        one_span(wb.key_value(KEPT)[:] + b"\x12\x01\x0a"),
        (1, 0),
    ),
    ("attribute value cut in the slow path", one_span(wb.key_value(KEPT) + b"\x12\x01"), (0, 1)),
    (
        "attribute value before key",
        one_span(wb.delimited(2, wb.string_value(b"GET")) + wb.delimited(1, KEPT.encode())),
        (1, 0),
    ),
    ("attribute with a second key", one_span(GET + wb.delimited(1, b"user_agent")), (1, 0)),
    (
        "attribute key not UTF-8, value first",
        one_span(wb.delimited(2, b"") + wb.delimited(1, b"\xff")),
        (0, 1),
    ),
    ("attribute int", one_span(wb.key_value("http.status_code", b"\x18" + wb.varint(-5))), (1, 0)),
    ("attribute bool", one_span(wb.key_value("http.status_code", b"\x10\x07")), (1, 0)),
    (
        "attribute double",
        one_span(wb.key_value("http.status_code", wb.fixed64(4, 0x4009_21FB_5444_2D18))),
        (1, 0),
    ),
    (
        "attribute values merged",
        one_span(wb.key_value(KEPT, b"\x18\x01") + wb.delimited(2, b"\x10\x01")),
        (1, 0),
    ),
    ("attribute array 49 deep", one_span(wb.key_value(KEPT, deep_array(49))), (1, 0)),
    ("attribute array 50 deep", one_span(wb.key_value(KEPT, deep_array(50))), (0, 1)),
    (
        "attribute array with a bad string",
        one_span(wb.key_value(KEPT, wb.delimited(5, wb.delimited(1, wb.string_value(b"\xff"))))),
        (0, 1),
    ),
    (
        "attribute kvlist with a bad key",
        one_span(wb.key_value(KEPT, wb.delimited(6, wb.delimited(1, wb.delimited(1, b"\xff"))))),
        (0, 1),
    ),
    (
        "attribute after groups 100 deep",
        one_span(wb.nested_groups(100) + wb.key_value("user_agent")),
        (1, 0),
    ),
    (
        "attribute after groups 101 deep",
        one_span(wb.nested_groups(101) + wb.key_value("user_agent")),
        (0, 1),
    ),
    ("attribute key only, after a group", one_span(wb.group(3, b"") + wb.key_value(KEPT)), (1, 0)),
    ("attribute kept, after a group", one_span(wb.group(3, b"") + GET), (1, 0)),
    (
        "attribute value length byte over 127",
        one_span(wb.delimited(1, KEPT.encode()) + b"\x12\x82\x0a\x80" + b"v" * 128),
        (1, 0),
    ),
]


@pytest.mark.parametrize("body, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wire_corner_decodes_as_the_reference(body: bytes, expected: str | tuple[int, int]) -> None:
    result = assert_same(body)
    if isinstance(expected, str):
        assert isinstance(result, str) and result.endswith(expected)
    else:
        assert (len(result.spans), result.rejected) == expected


@pytest.mark.parametrize("max_attributes", [-3, -1, 0, 1, 2, 5])
def test_max_attributes_slices_as_python_does(max_attributes: int) -> None:
    attributes = [wb.key_value(KEPT, wb.string_value(f"M{i}".encode())) for i in range(4)]
    body = one_span(*attributes)
    result = assert_same(body, max_attributes)
    kept = attributes[:max_attributes]
    assert result.spans[0].attributes == ({KEPT: f"M{len(kept) - 1}"} if kept else {})


def test_a_huge_request_of_empty_spans_is_counted_not_built() -> None:
    body = wb.request(wb.delimited(2, wb.delimited(2, b"") * 200_000))
    result = decode_protobuf_compiled(body, 1024, NOW)
    assert (len(result.spans), result.rejected) == (0, 200_000)
    assert result == assert_same(body)


def test_a_buffer_other_than_bytes_is_read_the_same() -> None:
    body = one_span(GET)
    assert decode_protobuf_compiled(memoryview(bytearray(body)), 1024, NOW) == assert_same(body)  # type: ignore[arg-type]
