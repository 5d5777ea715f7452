"""OTLP trace export → `Span` records: one decoder for both transports, pure and allocation-lean.

Only what correlation reads survives (`KEPT_SPAN_ATTRIBUTES`, `KEPT_RESOURCE_ATTRIBUTES`), so the
decoder checks a key's membership before it touches the value, and reads at most `max_attributes`
attributes of a span or resource: a sender attaching 10,000 attributes costs a slice, not a walk.

Span validity (a rejected span is counted in `partial_success`, its neighbours are kept):
- trace id 16 bytes and not all zero; span id 8 bytes and not all zero (OTLP trace.proto);
- parent span id empty or 8 bytes (an all-zero parent is read as "no parent", as Envoy and the
  Collector do);
- end not before start; start not before 2000-01-01 (a zero or garbage clock) and end not more
  than one day after the receiver's clock (a skewed sender would open buckets far in the future).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from app.domain import KEPT_RESOURCE_ATTRIBUTES, KEPT_SPAN_ATTRIBUTES, AttrValue, Span, SpanKind
from app.hot_path import BoundedMemo, fast_constructor

MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
MAX_FUTURE_NS = 86_400 * 10**9  # one day ahead of the receiver's clock
STATUS_CODE_ERROR = 2
ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)

# Indexed by the wire number; an unknown kind (proto3 enums are open) reads as UNSPECIFIED.
KINDS: tuple[SpanKind, ...] = tuple(SpanKind)
KIND_BY_NUMBER: dict[int, SpanKind] = {kind.value: kind for kind in SpanKind}
# The dict returns the one canonical key object, so every kept key in every span is shared.
SPAN_KEYS: dict[str, str] = {k: sys.intern(k) for k in KEPT_SPAN_ATTRIBUTES}
RESOURCE_KEYS: dict[str, str] = {k: sys.intern(k) for k in KEPT_RESOURCE_ATTRIBUTES}
# Values of these keys repeat across spans (a handful of clusters, methods, flags): interning them
# shares one string per value across the queue. High-cardinality ones (urls, request ids) are not.
INTERNED_VALUES = frozenset(
    {
        "upstream_cluster",
        "upstream_cluster.name",
        "downstream_cluster",
        "node_id",
        "component",
        "response_flags",
        "istio.canonical_service",
        "istio.canonical_revision",
        "istio.namespace",
        "istio.mesh_id",
        "http.method",
        "http.protocol",
        "http.status_code",
        "http.request.method",
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "k8s.namespace.name",
        "service.namespace",
    }
)


class OtlpDecodeError(ValueError):
    """The body is not an OTLP trace export at all (→ HTTP 400 / gRPC INVALID_ARGUMENT)."""


@dataclass(slots=True)
class DecodeResult:
    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    error_message: str = ""  # why spans were rejected, for `partial_success.error_message`


class Rejections:
    """Counts rejected spans by reason, for one `partial_success` message."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        self.reasons[reason] += 1

    def result(self, spans: list[Span]) -> DecodeResult:
        if not self.reasons:
            return DecodeResult(spans)
        total = sum(self.reasons.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in self.reasons.most_common())
        return DecodeResult(spans, total, f"{total} spans rejected: {detail}")


def span_problem(
    trace_id: bytes, span_id: bytes, parent_id: bytes, start_ns: int, end_ns: int, now_ns: int
) -> str:
    """Why a span is invalid, or "" when it is fine (see the module docstring)."""
    if len(trace_id) != 16 or trace_id == ZERO_TRACE_ID:
        return "invalid trace id"
    if len(span_id) != 8 or span_id == ZERO_SPAN_ID:
        return "invalid span id"
    if len(parent_id) not in (0, 8):
        return "invalid parent span id"
    if end_ns < start_ns:
        return "end before start"
    if start_ns < MIN_TIME_NS:
        return "start before 2000"
    if end_ns > now_ns + MAX_FUTURE_NS:
        return "end more than a day in the future"
    return ""


def _lean_request_class() -> Any:
    """`ExportTraceServiceRequest` as seen through a lean, wire-compatible schema.

    Field numbers are those of opentelemetry/proto/trace/v1/trace.proto. Fields correlation never
    reads (events, links, trace state, scopes …) are left out, so upb skips them in C instead of
    building Python objects; `Span.attributes` is read as `repeated bytes` (a KeyValue's encoding is
    length-delimited like bytes), which turns ~0.5 µs per attribute wrapper into a bytes slice.
    Measured on 512-span waypoint batches: 2-3x faster than the generated classes (bench/ingest.py).
    """
    pkg = "meshstitch.otlp_lean"
    file = descriptor_pb2.FileDescriptorProto(name="meshstitch/otlp_lean.proto", package=pkg)
    file.syntax = "proto3"
    f = descriptor_pb2.FieldDescriptorProto
    shapes: dict[str, list[tuple[str, int, int, str]]] = {
        "Status": [("code", 3, f.TYPE_INT32, "")],
        "Span": [
            ("trace_id", 1, f.TYPE_BYTES, ""),
            ("span_id", 2, f.TYPE_BYTES, ""),
            ("parent_span_id", 4, f.TYPE_BYTES, ""),
            ("name", 5, f.TYPE_STRING, ""),
            ("kind", 6, f.TYPE_INT32, ""),
            ("start_time_unix_nano", 7, f.TYPE_FIXED64, ""),
            ("end_time_unix_nano", 8, f.TYPE_FIXED64, ""),
            ("attributes", 9, f.TYPE_BYTES, "*"),
            ("status", 15, f.TYPE_MESSAGE, "Status"),
        ],
        "ScopeSpans": [("spans", 2, f.TYPE_MESSAGE, "*Span")],
        "Resource": [("attributes", 1, f.TYPE_BYTES, "*")],
        "ResourceSpans": [
            ("resource", 1, f.TYPE_MESSAGE, "Resource"),
            ("scope_spans", 2, f.TYPE_MESSAGE, "*ScopeSpans"),
            # InstrumentationLibrarySpans (same layout), still sent by senders older than OTLP 0.19.
            ("instrumentation_library_spans", 1000, f.TYPE_MESSAGE, "*ScopeSpans"),
        ],
        "Request": [("resource_spans", 1, f.TYPE_MESSAGE, "*ResourceSpans")],
    }
    for name, fields in shapes.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, ref in fields:
            pb_field = message.field.add(name=field_name, number=number, type=kind)
            pb_field.label = f.LABEL_REPEATED if ref.startswith("*") else f.LABEL_OPTIONAL
            if ref.strip("*"):
                pb_field.type_name = f".{pkg}.{ref.strip('*')}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.Request"))


LeanRequest = _lean_request_class()
# A KeyValue whose key is kept starts with these bytes: tag 1 (key), length, key.
SPAN_KEY_PREFIXES = {bytes([0x0A, len(k)]) + k.encode(): k for k in SPAN_KEYS.values()}
RESOURCE_KEY_PREFIXES = {bytes([0x0A, len(k)]) + k.encode(): k for k in RESOURCE_KEYS.values()}


class BadAttribute(Exception):
    """An attribute that is not a valid KeyValue (or not UTF-8): its span is rejected."""


# Encoded span KeyValue → what `read_pb_attributes` makes of it: `(key, value)` for a kept key
# whose values repeat (INTERNED_VALUES), None for a key not kept. Waypoint spans repeat most of
# their tags byte for byte (node_id, istio.*, component, clusters, methods, flags), so a hit costs
# one C-level dict lookup instead of a slice, a key lookup, a UTF-8 decode and an intern. Bounded:
# cleared when full, so a sender with endless distinct tags costs misses, not memory.
ATTRIBUTE_CACHE_ENTRIES = 4096
SPAN_ATTRIBUTE_CACHE: BoundedMemo[bytes, tuple[str, AttrValue] | None] = BoundedMemo(
    ATTRIBUTE_CACHE_ENTRIES
)
CACHEABLE_ATTRIBUTE_BYTES = 512
_MISS: Any = object()


def read_span_attributes(raw_attributes: Any, max_attributes: int) -> dict[str, AttrValue]:
    """`read_pb_attributes(raw_attributes, SPAN_KEY_PREFIXES, max_attributes)`, memoised per
    encoded KeyValue (see SPAN_ATTRIBUTE_CACHE); the result is the same, cached or not."""
    # A slice of the repeated field is a list (iterated faster than the upb container) and caps
    # what is read at `max_attributes`, however many the sender attached.
    raw_attributes = raw_attributes[:max_attributes]
    cache = SPAN_ATTRIBUTE_CACHE
    cached, remember = cache.get, cache.set
    attributes: dict[str, AttrValue] = {}
    for raw in raw_attributes:
        hit = cached(raw, _MISS)
        if hit is None:
            continue
        if hit is not _MISS:
            attributes[hit[0]] = hit[1]
            continue
        try:
            key_end = raw[1] + 2
            key = SPAN_KEY_PREFIXES.get(raw[:key_end])
            if key is None:
                if raw[0] != 0x0A:
                    _read_slow(raw, SPAN_KEY_PREFIXES, attributes)  # fields out of order
                elif len(raw) <= CACHEABLE_ATTRIBUTE_BYTES:
                    remember(raw, None)  # a key we do not keep
                continue
            rest = len(raw) - key_end
            if (
                raw[key_end] == 0x12
                and raw[key_end + 1] == rest - 2
                and raw[key_end + 2] == 0x0A
                and raw[key_end + 3] == rest - 4
            ):
                value = raw[key_end + 4 :].decode()
                if key in INTERNED_VALUES:
                    value = sys.intern(value)
                    if len(raw) <= CACHEABLE_ATTRIBUTE_BYTES:
                        remember(raw, (key, value))
                attributes[key] = value
            else:
                _read_slow(raw, SPAN_KEY_PREFIXES, attributes)
        except IndexError:
            continue  # an empty or key-only KeyValue: no value to keep
        except UnicodeDecodeError:
            raise BadAttribute("attribute value is not UTF-8") from None
    return attributes


# `Span(...)` at about half the cost (a frozen dataclass's `__init__` goes through
# `object.__setattr__` per field); measured 6% of `decode_protobuf` (bench/ingest.py).
new_span_record = fast_constructor(Span)


def decode_protobuf(body: bytes, max_attributes: int, now_ns: int | None = None) -> DecodeResult:
    """Decode a binary `ExportTraceServiceRequest`. Raises only `OtlpDecodeError`."""
    pb_request = LeanRequest()
    try:
        pb_request.ParseFromString(body)
    except Exception as exc:  # DecodeError; also upb's recursion limit on deep nesting
        raise OtlpDecodeError(f"not a protobuf ExportTraceServiceRequest: {exc}") from exc
    try:
        return _decode_request(pb_request, max_attributes, now_ns or time.time_ns())
    except Exception as exc:  # defensive: a decoder bug must be a 400, never a 500
        raise OtlpDecodeError(f"undecodable ExportTraceServiceRequest: {exc!r}") from exc


def _decode_request(pb_request: Any, max_attributes: int, now_ns: int) -> DecodeResult:
    spans: list[Span] = []
    append = spans.append
    rejections = Rejections()
    read_attributes, new_span, intern = read_span_attributes, new_span_record, sys.intern
    kinds, unspecified = KIND_BY_NUMBER, SpanKind.UNSPECIFIED
    max_end_ns = now_ns + MAX_FUTURE_NS
    for pb_resource_spans in pb_request.resource_spans:
        scopes = list(pb_resource_spans.scope_spans)
        scopes.extend(pb_resource_spans.instrumentation_library_spans)
        try:
            resource = read_pb_attributes(
                pb_resource_spans.resource.attributes, RESOURCE_KEY_PREFIXES, max_attributes
            )
        except BadAttribute as exc:
            for pb_scope_spans in scopes:
                for _ in pb_scope_spans.spans:
                    rejections.add(f"resource {exc}")
            continue
        service = str(resource.get("service.name", ""))
        for pb_scope_spans in scopes:
            for pb_span in pb_scope_spans.spans:
                trace_id, span_id = pb_span.trace_id, pb_span.span_id
                parent_id = pb_span.parent_span_id
                start_ns, end_ns = pb_span.start_time_unix_nano, pb_span.end_time_unix_nano
                # The common case in one expression; `span_problem` says why when it fails.
                if not (
                    len(trace_id) == 16
                    and len(span_id) == 8
                    and trace_id != ZERO_TRACE_ID
                    and span_id != ZERO_SPAN_ID
                    and MIN_TIME_NS <= start_ns <= end_ns <= max_end_ns
                ) or (parent_id and (len(parent_id) != 8 or parent_id == ZERO_SPAN_ID)):
                    if parent_id == ZERO_SPAN_ID:
                        parent_id = b""
                    problem = span_problem(trace_id, span_id, parent_id, start_ns, end_ns, now_ns)
                    if problem:
                        rejections.add(problem)
                        continue
                try:
                    attributes = read_attributes(pb_span.attributes, max_attributes)
                except BadAttribute as exc:
                    rejections.add(str(exc))
                    continue
                append(
                    new_span(
                        trace_id,
                        span_id,
                        parent_id,
                        kinds.get(pb_span.kind, unspecified),
                        intern(pb_span.name),
                        start_ns,
                        end_ns,
                        service,
                        pb_span.status.code == STATUS_CODE_ERROR,
                        attributes,
                        # Shared by every span of the resource: treat as read-only.
                        resource,
                    )
                )
    return rejections.result(spans)


def read_pb_attributes(
    raw_attributes: Any, kept_prefixes: dict[bytes, str], max_attributes: int
) -> dict[str, AttrValue]:
    """Kept attributes from encoded KeyValues, reading at most `max_attributes` of them.

    The common case — key first, a string value under 128 bytes, as Envoy writes every tag — is
    read straight from the bytes; anything else goes through the generated `KeyValue`.
    """
    if len(raw_attributes) > max_attributes:
        raw_attributes = raw_attributes[:max_attributes]
    attributes: dict[str, AttrValue] = {}
    for raw in raw_attributes:
        try:
            key_end = raw[1] + 2
            key = kept_prefixes.get(raw[:key_end])
            if key is None:
                if raw[0] == 0x0A:
                    continue  # a key we do not keep (keys over 127 bytes are never kept)
                _read_slow(raw, kept_prefixes, attributes)  # fields out of the usual order
                continue
            rest = len(raw) - key_end
            if (
                raw[key_end] == 0x12
                and raw[key_end + 1] == rest - 2
                and raw[key_end + 2] == 0x0A
                and raw[key_end + 3] == rest - 4
            ):
                value = raw[key_end + 4 :].decode()
                attributes[key] = sys.intern(value) if key in INTERNED_VALUES else value
            else:
                _read_slow(raw, kept_prefixes, attributes)
        except IndexError:
            continue  # an empty or key-only KeyValue: no value to keep
        except UnicodeDecodeError:
            raise BadAttribute("attribute value is not UTF-8") from None
    return attributes


def _read_slow(raw: bytes, kept_prefixes: dict[bytes, str], into: dict[str, AttrValue]) -> None:
    pb_kv = KeyValue()
    try:
        pb_kv.ParseFromString(raw)
    except DecodeError:
        raise BadAttribute("malformed attribute") from None
    key = (SPAN_KEYS if kept_prefixes is SPAN_KEY_PREFIXES else RESOURCE_KEYS).get(pb_kv.key)
    if key is None:
        return
    pb_value = pb_kv.value
    which = pb_value.WhichOneof("value")
    if which == "string_value":
        text = pb_value.string_value
        into[key] = sys.intern(text) if key in INTERNED_VALUES else text
    elif which in ("int_value", "bool_value", "double_value"):
        into[key] = getattr(pb_value, which)
    # arrays, kvlists, bytes: nothing correlation reads comes in these shapes
