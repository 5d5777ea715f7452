"""The compiled OTLP protobuf decoder (app/ingest/_otlp_wire.c): `decode_protobuf` in one pass
over the wire format, with the reference's output and rejections.

`app.ingest.otlp_decode` stays the reference: tests/ingest/test_decoder_differential.py feeds both
generated, fuzzed and captured payloads and asserts equal spans and equal errors. This module only
hands the C decoder the reference's own constants (kept keys, interned values, reasons, the Span
slots), so the two cannot drift apart by a copied table. Importing it raises ImportError when the
extension was not built; app/ingest/decoder_choice.py decides what that means.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

from app.domain import Span
from app.ingest import _otlp_wire
from app.ingest.otlp_decode import (
    INTERNED_VALUES,
    KINDS,
    MAX_FUTURE_NS,
    MIN_TIME_NS,
    RESOURCE_KEYS,
    SPAN_KEYS,
    DecodeResult,
    LeanRequest,
    OtlpDecodeError,
    Rejections,
)

# In the order of the C decoder's R_* indices; the texts are the reference's (span_problem,
# BadAttribute, and "resource " + BadAttribute for a resource's attributes).
REASONS = (
    "invalid trace id",
    "invalid span id",
    "invalid parent span id",
    "end before start",
    "start before 2000",
    "end more than a day in the future",
    "attribute value is not UTF-8",
    "malformed attribute",
    "resource attribute value is not UTF-8",
    "resource malformed attribute",
)
# upb's text of a failed parse, as `DecodeError` carries it (the C decoder supplies the status).
PARSE_ERROR = f"Error parsing message with type '{LeanRequest.DESCRIPTOR.full_name}'"
U64_MAX = 2**64 - 1


def _keys(kept: dict[str, str]) -> tuple[tuple[str, bool], ...]:
    return tuple((key, key in INTERNED_VALUES) for key in kept.values())


DECODER = _otlp_wire.Decoder(
    span_type=Span,
    slots=tuple(f.name for f in dataclasses.fields(Span)),
    kinds=KINDS,
    span_keys=_keys(SPAN_KEYS),
    resource_keys=_keys(RESOURCE_KEYS),
    service_key="service.name",
    reasons=REASONS,
    min_start_ns=MIN_TIME_NS,
)


def decode_protobuf_compiled(
    body: bytes, max_attributes: int, now_ns: int | None = None
) -> DecodeResult:
    """`otlp_decode.decode_protobuf`, compiled. Raises only `OtlpDecodeError`."""
    max_end_ns = (now_ns or time.time_ns()) + MAX_FUTURE_NS
    try:
        spans, reasons = DECODER.decode(body, max_attributes, min(max(max_end_ns, 0), U64_MAX))
    except _otlp_wire.WireError as exc:
        raise OtlpDecodeError(
            f"not a protobuf ExportTraceServiceRequest: {PARSE_ERROR}: {exc}"
        ) from exc
    except Exception as exc:  # MemoryError and the like: a 400, as the reference answers
        raise OtlpDecodeError(f"undecodable ExportTraceServiceRequest: {exc!r}") from exc
    if not reasons:
        return DecodeResult(spans)
    rejections = Rejections()
    rejections.reasons = Counter(reasons)  # first-seen order, as the reference counts
    return rejections.result(spans)
