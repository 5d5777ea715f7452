"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

The generated servicer is the contract, but its handler is registered with a pass-through request
deserializer so the bytes go to the same decoder as OTLP/HTTP: a malformed message becomes
INVALID_ARGUMENT (grpc would answer INTERNAL for a failed deserializer) and the lean decode path
applies. gzip from clients is inflated by grpc core, whose `max_receive_message_length` caps the
decompressed size. Overload answers RESOURCE_EXHAUSTED / UNAVAILABLE with a `google.rpc.RetryInfo`
in `grpc-status-details-bin`, which the OTel exporters read to back off.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.ingest.decoder_choice import ProtobufDecoder, select_protobuf_decoder
from app.ingest.otlp_answers import (
    Refusal,
    Refused,
    check_bearer,
    export_response,
    offer,
    refusal_status,
)
from app.ingest.otlp_decode import OtlpDecodeError
from app.ingest.sink import SpanSink
from app.settings import Settings

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(
        self, sink: SpanSink, settings: Settings, decoder: ProtobufDecoder | None = None
    ) -> None:
        self.sink = sink
        self.decode = (decoder or select_protobuf_decoder(settings.otlp_decoder)).decode
        self.token = settings.otlp_token.get_secret_value()
        self.max_attributes = settings.max_attributes_per_span

    def Export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            check_bearer(_authorization(context), self.token)
            try:
                result = self.decode(request, self.max_attributes)
            except OtlpDecodeError as exc:
                raise Refusal(Refused.BAD_DATA, str(exc)) from exc
            offer(self.sink, result)
        except Refusal as refusal:
            _abort(context, refusal)
        return export_response(result)


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            return value
    return None


# google.rpc.Status carries the numeric code: grpc.StatusCode values are (number, name).
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _abort(context: grpc.ServicerContext, refusal: Refusal) -> None:
    """Ends the call: `context.abort` raises."""
    if refusal.retry_after_s:
        details = refusal_status(refusal).SerializeToString()
        context.set_trailing_metadata((("grpc-status-details-bin", details),))
    context.abort(_STATUS_CODES[refusal.kind.code], refusal.message)


@dataclass
class GrpcServerHandle:
    server: grpc.Server
    port: int  # the bound port, so port 0 in settings works

    def stop(self, grace_s: float | None = 5.0) -> None:
        """Stop accepting calls; let running ones finish within grace_s, then cancel them."""
        self.server.stop(grace_s).wait()


def start_grpc_server(
    sink: SpanSink,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    decoder: ProtobufDecoder | None = None,
) -> GrpcServerHandle:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", 4 * 2**20),
    ]
    server = grpc.server(
        ThreadPoolExecutor(
            max_workers=min(8, (os.cpu_count() or 1) + 2), thread_name_prefix="otlp-grpc"
        ),
        options=options,
    )
    service = TraceService(sink, settings, decoder)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                service.Export,
                request_deserializer=None,  # raw bytes: the protobuf decoder does the parsing
                response_serializer=ExportTraceServiceResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    bind_host = settings.host if host is None else host
    bind_port = settings.grpc_port if port is None else port
    address = f"[{bind_host}]:{bind_port}" if ":" in bind_host else f"{bind_host}:{bind_port}"
    bound = server.add_insecure_port(address)
    server.start()
    return GrpcServerHandle(server, bound)
