"""Test payloads: OTLP requests in protobuf and JSON built from the waypoint fixture's shape."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

FIXTURE = Path(__file__).parent.parent / "data" / "otlp" / "waypoint_spans.json"
T0 = 1_748_779_200_000_000_000  # the fixture's clock: 2025-06-01T12:00:00Z
NOW = T0 + 3_600 * 10**9  # the decoder's injected clock in these tests


def fixture_lines() -> list[bytes]:
    return [line for line in FIXTURE.read_bytes().splitlines() if line.strip()]


def fixture_documents() -> list[dict[str, Any]]:
    return [json.loads(line) for line in fixture_lines()]


def to_protobuf(document: dict[str, Any]) -> bytes:
    """OTLP/JSON → binary protobuf. json_format reads ids as base64, so hex ids are converted."""
    document = copy.deepcopy(document)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest()).SerializeToString()


def waypoint_document(**span_overrides: Any) -> dict[str, Any]:
    """One line-1 waypoint span (valid, 200 via inbound-vip) with fields replaced."""
    document = fixture_documents()[0]
    scope = document["resourceSpans"][0]["scopeSpans"][0]
    span = scope["spans"][0]
    span.update(span_overrides)
    for key, value in list(span.items()):
        if value is None:
            del span[key]
    scope["spans"] = [span]
    return document


def with_spans(document: dict[str, Any], *spans: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].extend(spans)
    return document
