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
from google.protobuf.any_pb2 import Any as PbAny
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.bearer import WRONG_TOKEN, bearer_matches
from app.ingest.otlp_decode import OtlpDecodeError, decode_protobuf
from app.ingest.sink import Admission, SpanSink
from app.settings import Settings

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: SpanSink, settings: Settings) -> None:
        self.sink = sink
        self.token = settings.otlp_token.get_secret_value()
        self.max_attributes = settings.max_attributes_per_span

    def Export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        if self.token and not bearer_matches(_authorization(context), self.token):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, WRONG_TOKEN)
        try:
            result = decode_protobuf(request, self.max_attributes)
        except OtlpDecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if result.spans:
            verdict = self.sink.offer(result.spans)
            if verdict.admission is Admission.OVERLOADED:
                _abort_with_retry(
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    verdict.reason or "ingest queue full",
                    verdict.retry_after_s,
                )
            if verdict.admission is Admission.UNAVAILABLE:
                _abort_with_retry(
                    context,
                    grpc.StatusCode.UNAVAILABLE,
                    verdict.reason or "store unavailable",
                    verdict.retry_after_s,
                )
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message
        return response


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            return value
    return None


def _abort_with_retry(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, retry_after_s: int
) -> None:
    retry = PbAny()
    retry.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=max(1, retry_after_s))))
    # google.rpc.Status carries the numeric code: grpc.StatusCode values are (number, name).
    pb_status = status_pb2.Status(code=code.value[0], message=message, details=[retry])
    context.set_trailing_metadata((("grpc-status-details-bin", pb_status.SerializeToString()),))
    context.abort(code, message)


@dataclass
class GrpcServerHandle:
    server: grpc.Server
    port: int  # the bound port, so port 0 in settings works

    def stop(self, grace_s: float | None = 5.0) -> None:
        """Stop accepting calls; let running ones finish within grace_s, then cancel them."""
        self.server.stop(grace_s).wait()


def start_grpc_server(
    sink: SpanSink, settings: Settings, *, host: str | None = None, port: int | None = None
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
    service = TraceService(sink, settings)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                service.Export,
                request_deserializer=None,  # raw bytes: decode_protobuf does the parsing
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
