"""OTLP/HTTP receiver: `POST /v1/traces`, binary protobuf or JSON, optionally gzip/deflate.

Status codes follow the OTLP specification (docs/specification.md, "OTLP/HTTP Response"): 200 with
an `ExportTraceServiceResponse` (and `partial_success` when spans were rejected), 400 with a
`google.rpc.Status`, 413 / 415, 429 / 503 with `Retry-After` when the sink refuses. Every body is
in the request's encoding. The raw body is read here with a cap, never parsed by FastAPI.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.any_pb2 import Any as PbAny
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from app.bearer import WRONG_TOKEN, bearer_matches
from app.ingest.decompress import BadEncoding, TooLarge, UnsupportedEncoding, decompress
from app.ingest.otlp_decode import DecodeResult, OtlpDecodeError, decode_protobuf
from app.ingest.otlp_json import decode_json
from app.ingest.sink import Admission, SpanSink
from app.settings import Settings

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Small batches decode faster than a thread hop costs; big ones must not stall the event loop.
INLINE_DECODE_BYTES = 1 << 20

OPENAPI_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An OTLP `ExportTraceServiceRequest`, optionally with Content-Encoding "
        "gzip or deflate.",
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": {"type": "object", "description": "OTLP/JSON encoding"}},
        },
    }
}


def _responses(description: str, message: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": {"type": "object", "description": f"OTLP/JSON {message}"}},
        },
    }


OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _responses(
        "ExportTraceServiceResponse, with partial_success if spans were rejected",
        "ExportTraceServiceResponse",
    ),
    400: _responses("Undecodable payload (google.rpc.Status)", "google.rpc.Status"),
    401: _responses("Missing or wrong bearer token (google.rpc.Status)", "google.rpc.Status"),
    413: _responses("Body or decompressed payload over the limit", "google.rpc.Status"),
    415: _responses("Media type or Content-Encoding not supported", "google.rpc.Status"),
    429: _responses("Ingest queue full; retry after Retry-After seconds", "google.rpc.Status"),
    503: _responses("Store unavailable; retry after Retry-After seconds", "google.rpc.Status"),
}


class Refusal(Exception):
    def __init__(self, http_status: int, code: int, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message
        self.retry_after_s = retry_after_s


def build_otlp_http_router(sink: SpanSink, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["otlp"])
    token = settings.otlp_token.get_secret_value()
    max_body, max_payload = settings.max_body_bytes, settings.max_decompressed_bytes
    max_attributes = settings.max_attributes_per_span

    @router.post(
        "/v1/traces",
        summary="OTLP/HTTP trace export",
        response_class=Response,
        responses=OPENAPI_RESPONSES,
        openapi_extra=OPENAPI_REQUEST_BODY,
    )
    async def export_traces(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        as_json = media_type != PROTOBUF  # unknown media types get readable JSON errors
        try:
            if token and not bearer_matches(request.headers.get("authorization"), token):
                raise Refusal(401, code_pb2.UNAUTHENTICATED, WRONG_TOKEN)
            if media_type not in (PROTOBUF, JSON):
                raise Refusal(
                    415, code_pb2.INVALID_ARGUMENT, f"unsupported media type {media_type[:60]!r}"
                )
            body = await _read_body(request, max_body)
            try:
                payload = decompress(body, request.headers.get("content-encoding", ""), max_payload)
            except TooLarge as exc:
                raise Refusal(413, code_pb2.RESOURCE_EXHAUSTED, str(exc)) from exc
            except BadEncoding as exc:
                raise Refusal(400, code_pb2.INVALID_ARGUMENT, str(exc)) from exc
            except UnsupportedEncoding as exc:
                raise Refusal(415, code_pb2.INVALID_ARGUMENT, str(exc)) from exc
            decode = decode_json if as_json else decode_protobuf
            try:
                if len(payload) <= INLINE_DECODE_BYTES:
                    result = decode(payload, max_attributes)
                else:
                    result = await run_in_threadpool(decode, payload, max_attributes)
            except OtlpDecodeError as exc:
                raise Refusal(400, code_pb2.INVALID_ARGUMENT, str(exc)) from exc
            _offer(sink, result)
        except Refusal as refusal:
            return _status_response(refusal, as_json)
        return _export_response(result, as_json)

    return router


async def _read_body(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise Refusal(413, code_pb2.RESOURCE_EXHAUSTED, f"body over {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:  # stop reading: a chunked upload has no Content-Length to check
            raise Refusal(413, code_pb2.RESOURCE_EXHAUSTED, f"body over {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _offer(sink: SpanSink, result: DecodeResult) -> None:
    if not result.spans:
        return
    verdict = sink.offer(result.spans)
    if verdict.admission is Admission.OVERLOADED:
        raise Refusal(
            429,
            code_pb2.RESOURCE_EXHAUSTED,
            verdict.reason or "ingest queue full",
            max(1, verdict.retry_after_s),
        )
    if verdict.admission is Admission.UNAVAILABLE:
        raise Refusal(
            503,
            code_pb2.UNAVAILABLE,
            verdict.reason or "store unavailable",
            max(1, verdict.retry_after_s),
        )


def _export_response(result: DecodeResult, as_json: bool) -> Response:
    if as_json:
        body: dict[str, Any] = {}
        if result.rejected:
            body["partialSuccess"] = {
                "rejectedSpans": str(result.rejected),  # int64 is a string in OTLP/JSON
                "errorMessage": result.error_message,
            }
        return Response(json.dumps(body, separators=(",", ":")), media_type=JSON)
    pb_response = ExportTraceServiceResponse()
    if result.rejected:
        pb_response.partial_success.rejected_spans = result.rejected
        pb_response.partial_success.error_message = result.error_message
    return Response(pb_response.SerializeToString(), media_type=PROTOBUF)


def _status_response(refusal: Refusal, as_json: bool) -> Response:
    pb_status = status_pb2.Status(code=refusal.code, message=refusal.message)
    headers: dict[str, str] = {}
    if refusal.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if refusal.retry_after_s:
        headers["Retry-After"] = str(refusal.retry_after_s)
        detail = PbAny()
        detail.Pack(
            error_details_pb2.RetryInfo(retry_delay=Duration(seconds=refusal.retry_after_s))
        )
        pb_status.details.append(detail)
    if as_json:
        return Response(
            json_format.MessageToJson(pb_status, indent=None),
            status_code=refusal.http_status,
            media_type=JSON,
            headers=headers,
        )
    return Response(
        pb_status.SerializeToString(),
        status_code=refusal.http_status,
        media_type=PROTOBUF,
        headers=headers,
    )
