"""The OTLP answers both transports render: refusal kinds, retry hints, partial success."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from app.domain import Span, SpanKind
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
from app.ingest.otlp_decode import DecodeResult
from app.ingest.sink import Admission, Verdict
from tests.correlate.spans import span


class FixedSink:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict

    def offer(self, spans: list[Span]) -> Verdict:
        return self.verdict


def one_span() -> DecodeResult:
    return DecodeResult(spans=[span(SpanKind.SERVER, 1)])


@pytest.mark.parametrize(
    ("verdict", "kind", "message", "retry_after_s"),
    [
        (Verdict(Admission.OVERLOADED), Refused.OVERLOADED, "ingest queue full", 1),
        (Verdict(Admission.OVERLOADED, 7, "full"), Refused.OVERLOADED, "full", 7),
        (Verdict(Admission.UNAVAILABLE), Refused.UNAVAILABLE, "store unavailable", 1),
    ],
)
def test_a_refusing_sink_is_a_retryable_refusal(
    verdict: Verdict, kind: Refused, message: str, retry_after_s: int
) -> None:
    with pytest.raises(Refusal) as refused:
        offer(FixedSink(verdict), one_span())
    assert (refused.value.kind, refused.value.message) == (kind, message)
    assert refused.value.retry_after_s == retry_after_s
    assert refusal_headers(refused.value) == {"Retry-After": str(retry_after_s)}
    retry = error_details_pb2.RetryInfo()
    assert refusal_status(refused.value).details[0].Unpack(retry)
    assert retry.retry_delay.seconds == retry_after_s


def test_an_accepting_sink_and_no_spans_pass() -> None:
    offer(FixedSink(Verdict(Admission.ACCEPTED)), one_span())
    offer(FixedSink(Verdict(Admission.OVERLOADED)), DecodeResult(spans=[]))


@pytest.mark.parametrize(
    ("kind", "http_status", "code"),
    [
        (Refused.UNAUTHENTICATED, 401, code_pb2.UNAUTHENTICATED),
        (Refused.BAD_DATA, 400, code_pb2.INVALID_ARGUMENT),
        (Refused.TOO_LARGE, 413, code_pb2.RESOURCE_EXHAUSTED),
        (Refused.UNSUPPORTED, 415, code_pb2.INVALID_ARGUMENT),
        (Refused.OVERLOADED, 429, code_pb2.RESOURCE_EXHAUSTED),
        (Refused.UNAVAILABLE, 503, code_pb2.UNAVAILABLE),
    ],
)
def test_each_kind_names_its_http_status_and_grpc_code(
    kind: Refused, http_status: int, code: int
) -> None:
    assert (kind.http_status, kind.code) == (http_status, code)
    assert refusal_status(Refusal(kind, "why")).code == code


def test_the_bearer_check() -> None:
    check_bearer(None, "")  # no token: open
    check_bearer("Bearer tok", "tok")
    with pytest.raises(Refusal) as refused:
        check_bearer("Bearer nope", "tok")
    assert refused.value.kind is Refused.UNAUTHENTICATED
    assert refusal_headers(refused.value) == {"WWW-Authenticate": "Bearer"}


def test_partial_success_in_both_encodings() -> None:
    result = DecodeResult(spans=[], rejected=2, error_message="2 spans rejected")
    partial = export_response(result).partial_success
    assert (partial.rejected_spans, partial.error_message) == (2, "2 spans rejected")
    assert export_response_json(result) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans rejected"}
    }
    assert not export_response(DecodeResult(spans=[])).HasField("partial_success")
    assert export_response_json(DecodeResult(spans=[])) == {}
