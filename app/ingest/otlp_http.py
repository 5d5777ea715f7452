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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from app.ingest.decoder_choice import ProtobufDecoder, select_protobuf_decoder
from app.ingest.decompress import BadEncoding, TooLarge, UnsupportedEncoding, decompress
from app.ingest.otlp_answers import (
    Refusal,
    Refused,
    check_bearer,
    export_response,
    export_response_json,
    offer,
    refusal_headers,
    refusal_status,
)
from app.ingest.otlp_decode import DecodeResult, OtlpDecodeError
from app.ingest.otlp_json import decode_json
from app.ingest.sink import SpanSink
from app.settings import Settings

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Small batches decode faster than a thread hop costs; big ones must not stall the event loop.
INLINE_DECODE_BYTES = 1 << 20
# The answer to almost every export (nothing rejected), encoded once.
ACCEPTED_PROTOBUF = ExportTraceServiceResponse().SerializeToString()
ACCEPTED_JSON = b"{}"

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


def build_otlp_http_router(
    sink: SpanSink, settings: Settings, decoder: ProtobufDecoder | None = None
) -> APIRouter:
    """`decoder` defaults to the one `settings.otlp_decoder` selects (app/ingest/decoder_choice.py)."""
    router = APIRouter(tags=["otlp"])
    decode_protobuf = (decoder or select_protobuf_decoder(settings.otlp_decoder)).decode
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
            check_bearer(request.headers.get("authorization"), token)
            if media_type not in (PROTOBUF, JSON):
                raise Refusal(Refused.UNSUPPORTED, f"unsupported media type {media_type[:60]!r}")
            body = await _read_body(request, max_body)
            try:
                payload = decompress(body, request.headers.get("content-encoding", ""), max_payload)
            except TooLarge as exc:
                raise Refusal(Refused.TOO_LARGE, str(exc)) from exc
            except BadEncoding as exc:
                raise Refusal(Refused.BAD_DATA, str(exc)) from exc
            except UnsupportedEncoding as exc:
                raise Refusal(Refused.UNSUPPORTED, str(exc)) from exc
            decode = decode_json if as_json else decode_protobuf
            try:
                if len(payload) <= INLINE_DECODE_BYTES:
                    result = decode(payload, max_attributes)
                else:
                    result = await run_in_threadpool(decode, payload, max_attributes)
            except OtlpDecodeError as exc:
                raise Refusal(Refused.BAD_DATA, str(exc)) from exc
            offer(sink, result)
        except Refusal as refusal:
            return _status_response(refusal, as_json)
        return _export_response(result, as_json)

    return router


async def _read_body(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise Refusal(Refused.TOO_LARGE, f"body over {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:  # stop reading: a chunked upload has no Content-Length to check
            raise Refusal(Refused.TOO_LARGE, f"body over {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _export_response(result: DecodeResult, as_json: bool) -> Response:
    if not result.rejected:
        return Response(
            ACCEPTED_JSON if as_json else ACCEPTED_PROTOBUF,
            media_type=JSON if as_json else PROTOBUF,
        )
    if as_json:
        body = json.dumps(export_response_json(result), separators=(",", ":"))
        return Response(body, media_type=JSON)
    return Response(export_response(result).SerializeToString(), media_type=PROTOBUF)


def _status_response(refusal: Refusal, as_json: bool) -> Response:
    pb_status = refusal_status(refusal)
    status, headers = refusal.kind.http_status, refusal_headers(refusal)
    if as_json:
        body = json_format.MessageToJson(pb_status, indent=None)
        return Response(body, status_code=status, media_type=JSON, headers=headers)
    return Response(
        pb_status.SerializeToString(), status_code=status, media_type=PROTOBUF, headers=headers
    )
