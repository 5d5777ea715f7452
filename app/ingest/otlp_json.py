"""OTLP/JSON → `Span` records by walking the parsed JSON.

Not `google.protobuf.json_format`: it is ~20x slower and reads the hex ids of OTLP/JSON as base64.
OTLP/JSON rules followed (opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding"):
ids are hex strings (case-insensitive); enums are integers or their names; 64-bit integers are
decimal strings or numbers; keys are lowerCamelCase, and the original snake_case names are accepted
as the protobuf JSON mapping allows. A span whose fields have the wrong types is rejected and
counted like an invalid one; a body whose structure is not an export request raises
`OtlpDecodeError`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from app.domain import AttrValue, Span, SpanKind
from app.ingest.otlp_decode import (
    INTERNED_VALUES,
    KINDS,
    RESOURCE_KEYS,
    SPAN_KEYS,
    STATUS_CODE_ERROR,
    ZERO_SPAN_ID,
    DecodeResult,
    OtlpDecodeError,
    Rejections,
    span_problem,
)

KIND_NAMES = {f"SPAN_KIND_{kind.name}": kind for kind in SpanKind}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class BadSpan(Exception):
    """A field of one span has the wrong type; the span is rejected, the request goes on."""


def decode_json(body: bytes, max_attributes: int, now_ns: int | None = None) -> DecodeResult:
    """Decode an OTLP/JSON `ExportTraceServiceRequest`. Raises only `OtlpDecodeError`."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise OtlpDecodeError(f"not JSON: {exc}") from exc
    try:
        return _decode_document(document, max_attributes, now_ns or time.time_ns())
    except OtlpDecodeError:
        raise
    except Exception as exc:  # defensive: a decoder bug must be a 400, never a 500
        raise OtlpDecodeError(f"undecodable OTLP/JSON: {exc!r}") from exc


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise OtlpDecodeError(f"{what} must be an array of objects")
    return value


def _decode_document(document: Any, max_attributes: int, now_ns: int) -> DecodeResult:
    if not isinstance(document, dict):
        raise OtlpDecodeError("an OTLP/JSON export request is a JSON object")
    spans: list[Span] = []
    rejections = Rejections()
    for resource_spans in _objects(
        _field(document, "resourceSpans", "resource_spans"), "resourceSpans"
    ):
        pb_resource = resource_spans.get("resource") or {}
        if not isinstance(pb_resource, dict):
            raise OtlpDecodeError("resource must be an object")
        try:
            resource = _read_attributes(
                pb_resource.get("attributes"), RESOURCE_KEYS, max_attributes
            )
        except BadSpan as exc:
            raise OtlpDecodeError(f"resource attributes: {exc}") from exc
        service = str(resource.get("service.name", ""))
        for scope_spans in _objects(
            _field(resource_spans, "scopeSpans", "scope_spans"), "scopeSpans"
        ):
            for json_span in _objects(scope_spans.get("spans"), "spans"):
                try:
                    span = _decode_span(json_span, service, resource, max_attributes, now_ns)
                except BadSpan as exc:
                    rejections.add(f"malformed span ({exc})")
                    continue
                if isinstance(span, str):
                    rejections.add(span)
                else:
                    spans.append(span)
    return rejections.result(spans)


def _decode_span(
    json_span: dict[str, Any],
    service: str,
    resource: dict[str, AttrValue],
    max_attributes: int,
    now_ns: int,
) -> Span | str:
    """The span, or the reason it is invalid."""
    trace_id = _hex_id(_field(json_span, "traceId", "trace_id"), "traceId")
    span_id = _hex_id(_field(json_span, "spanId", "span_id"), "spanId")
    parent_id = _hex_id(_field(json_span, "parentSpanId", "parent_span_id"), "parentSpanId")
    if parent_id == ZERO_SPAN_ID:
        parent_id = b""
    start_ns = _uint64(_field(json_span, "startTimeUnixNano", "start_time_unix_nano"), "start")
    end_ns = _uint64(_field(json_span, "endTimeUnixNano", "end_time_unix_nano"), "end")
    problem = span_problem(trace_id, span_id, parent_id, start_ns, end_ns, now_ns)
    if problem:
        return problem
    name = json_span.get("name", "")
    if not isinstance(name, str):
        raise BadSpan("name is not a string")
    status = json_span.get("status") or {}
    if not isinstance(status, dict):
        raise BadSpan("status is not an object")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        kind=_enum(json_span.get("kind"), KIND_NAMES, "kind"),
        name=sys.intern(name),
        start_ns=start_ns,
        end_ns=end_ns,
        service=service,
        status_error=_enum(status.get("code"), STATUS_NAMES, "status.code") == STATUS_CODE_ERROR,
        attributes=_read_attributes(json_span.get("attributes"), SPAN_KEYS, max_attributes),
        resource=resource,  # shared by every span of the resource: treat as read-only
    )


def _hex_id(value: Any, what: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise BadSpan(f"{what} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadSpan(f"{what} is not hex") from None


def _uint64(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadSpan(f"{what} time is not an integer")
    try:
        number = int(value)  # a digit string beyond Python's limit raises ValueError too
    except ValueError:
        raise BadSpan(f"{what} time is not an integer") from None
    if not 0 <= number < 2**64:
        raise BadSpan(f"{what} time is out of range")
    return number


def _enum(value: Any, names: dict[str, Any], what: str) -> Any:
    if value is None:
        return next(iter(names.values()))  # the zero value
    if isinstance(value, str):
        if value in names:
            return names[value]
        raise BadSpan(f"unknown {what} {value[:40]!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        if names is KIND_NAMES:
            return KINDS[value] if 0 <= value < len(KINDS) else SpanKind.UNSPECIFIED
        return value
    raise BadSpan(f"{what} is not an enum")


def _read_attributes(
    json_attributes: Any, kept: dict[str, str], max_attributes: int
) -> dict[str, AttrValue]:
    if json_attributes is None:
        return {}
    if not isinstance(json_attributes, list):
        raise BadSpan("attributes is not an array")
    attributes: dict[str, AttrValue] = {}
    for json_kv in json_attributes[:max_attributes]:
        if not isinstance(json_kv, dict):
            raise BadSpan("an attribute is not an object")
        json_key = json_kv.get("key")
        key = kept.get(json_key) if isinstance(json_key, str) else None
        if key is None:
            continue
        value = _any_value(json_kv.get("value"))
        if value is None:
            continue
        if key in INTERNED_VALUES and isinstance(value, str):
            value = sys.intern(value)
        attributes[key] = value
    return attributes


def _any_value(json_value: Any) -> AttrValue | None:
    if not isinstance(json_value, dict):
        return None
    if (text := _field(json_value, "stringValue", "string_value")) is not None:
        if not isinstance(text, str):
            raise BadSpan("stringValue is not a string")
        return text
    if (number := _field(json_value, "intValue", "int_value")) is not None:
        if isinstance(number, bool) or not isinstance(number, int | str):
            raise BadSpan("intValue is not an integer")
        try:
            return int(number)
        except ValueError:
            raise BadSpan("intValue is not an integer") from None
    if (flag := _field(json_value, "boolValue", "bool_value")) is not None:
        if not isinstance(flag, bool):
            raise BadSpan("boolValue is not a boolean")
        return flag
    if (real := _field(json_value, "doubleValue", "double_value")) is not None:
        if isinstance(real, bool) or not isinstance(real, int | float | str):
            raise BadSpan("doubleValue is not a number")
        try:
            return float(real)  # the JSON mapping writes NaN/Infinity as strings
        except ValueError:
            raise BadSpan("doubleValue is not a number") from None
    return None  # arrays, kvlists, bytes: nothing correlation reads comes in these shapes
