"""What an OTLP export is answered, on either transport (docs/specification.md, "OTLP/HTTP
Response" and "OTLP/gRPC Response").

A refused export is a `Refusal`: its kind names the HTTP status and the gRPC code together, so the
two transports cannot drift apart; each only renders it in its own framing. An accepted export is
an `ExportTraceServiceResponse`, with `partial_success` when spans were rejected.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from google.protobuf.any_pb2 import Any as PbAny
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.bearer import WRONG_TOKEN, bearer_matches
from app.ingest.otlp_decode import DecodeResult
from app.ingest.sink import Admission, SpanSink


class Refused(Enum):
    """Why an export is turned away: (HTTP status, google.rpc code)."""

    UNAUTHENTICATED = (401, code_pb2.UNAUTHENTICATED)
    BAD_DATA = (400, code_pb2.INVALID_ARGUMENT)
    TOO_LARGE = (413, code_pb2.RESOURCE_EXHAUSTED)
    UNSUPPORTED = (415, code_pb2.INVALID_ARGUMENT)
    OVERLOADED = (429, code_pb2.RESOURCE_EXHAUSTED)  # retryable: the queue is full
    UNAVAILABLE = (503, code_pb2.UNAVAILABLE)  # retryable: the store is down, the buffer full

    def __init__(self, http_status: int, code: int) -> None:
        self.http_status, self.code = http_status, code


class Refusal(Exception):
    def __init__(self, kind: Refused, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.kind, self.message, self.retry_after_s = kind, message, retry_after_s


def check_bearer(authorization: str | None, token: str) -> None:
    """An empty token leaves ingest open."""
    if token and not bearer_matches(authorization, token):
        raise Refusal(Refused.UNAUTHENTICATED, WRONG_TOKEN)


def offer(sink: SpanSink, result: DecodeResult) -> None:
    """Hand the decoded spans to the sink; a refusing sink becomes a retryable Refusal."""
    if not result.spans:
        return
    verdict = sink.offer(result.spans)
    if verdict.admission is Admission.OVERLOADED:
        raise Refusal(
            Refused.OVERLOADED, verdict.reason or "ingest queue full", max(1, verdict.retry_after_s)
        )
    if verdict.admission is Admission.UNAVAILABLE:
        raise Refusal(
            Refused.UNAVAILABLE,
            verdict.reason or "store unavailable",
            max(1, verdict.retry_after_s),
        )


def refusal_status(refusal: Refusal) -> status_pb2.Status:
    """The `google.rpc.Status` of a refusal, with a `RetryInfo` the OTel exporters back off by."""
    pb_status = status_pb2.Status(code=refusal.kind.code, message=refusal.message)
    if refusal.retry_after_s:
        detail = PbAny()
        detail.Pack(
            error_details_pb2.RetryInfo(retry_delay=Duration(seconds=refusal.retry_after_s))
        )
        pb_status.details.append(detail)
    return pb_status


def refusal_headers(refusal: Refusal) -> dict[str, str]:
    """OTLP/HTTP headers beside the status: the bearer challenge, Retry-After."""
    headers: dict[str, str] = {}
    if refusal.kind is Refused.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    if refusal.retry_after_s:
        headers["Retry-After"] = str(refusal.retry_after_s)
    return headers


def export_response(result: DecodeResult) -> ExportTraceServiceResponse:
    pb_response = ExportTraceServiceResponse()
    if result.rejected:
        pb_response.partial_success.rejected_spans = result.rejected
        pb_response.partial_success.error_message = result.error_message
    return pb_response


def export_response_json(result: DecodeResult) -> dict[str, Any]:
    """`export_response` in OTLP/JSON, where every field of partial_success is written out."""
    body: dict[str, Any] = {}
    if result.rejected:
        body["partialSuccess"] = {
            "rejectedSpans": str(result.rejected),  # int64 is a string in OTLP/JSON
            "errorMessage": result.error_message,
        }
    return body
