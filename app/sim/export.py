"""The real OpenTelemetry SDK OTLP exporters, called synchronously with explicit batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

Protocol = Literal["grpc", "http"]


class ExportFailedError(RuntimeError):
    """The OTLP receiver did not acknowledge a batch (after the exporter's own retries)."""


def make_exporter(
    endpoint: str,
    protocol: Protocol = "grpc",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
) -> SpanExporter:
    """An OTLP span exporter for `endpoint`.

    gRPC: `host:port` or `http://host:port` (plaintext). HTTP: a base URL (`http://host:port`,
    `/v1/traces` is appended) or the full traces URL.
    """
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        target = endpoint.split("://", 1)[-1].rstrip("/")
        return GrpcSpanExporter(
            endpoint=target, insecure=True, headers=dict(headers or {}), timeout=timeout_s
        )
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        url = endpoint if "://" in endpoint else f"http://{endpoint}"
        if urlsplit(url).path in {"", "/"}:
            url = url.rstrip("/") + "/v1/traces"
        return HttpSpanExporter(endpoint=url, headers=dict(headers or {}), timeout=timeout_s)
    raise ValueError(f"unknown OTLP protocol {protocol!r}")


def export_all(exporter: SpanExporter, spans: Sequence[ReadableSpan], batch_spans: int) -> int:
    """Export in batches of at most `batch_spans`; returns the number of requests sent."""
    sent = 0
    for i in range(0, len(spans), batch_spans):
        result = exporter.export(spans[i : i + batch_spans])
        if result is not SpanExportResult.SUCCESS:
            raise ExportFailedError(
                f"OTLP export of {len(spans[i : i + batch_spans])} spans failed"
            )
        sent += 1
    return sent
