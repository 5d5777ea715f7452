"""Status codes and the documented error-cause order."""

from __future__ import annotations

import pytest

from app.correlate.status import span_protocol, span_status
from app.domain import AttrValue, ErrorCause

F = ErrorCause


@pytest.mark.parametrize(
    ("attrs", "status_error", "code", "cause"),
    [
        ({"http.status_code": "200"}, False, "200", None),
        ({"http.status_code": 200}, False, "200", None),
        ({"http.response.status_code": 503}, False, "503", F.HTTP_5XX),
        ({"http.status_code": "404"}, False, "404", None),
        ({"http.status_code": "500", "response_flags": "-"}, False, "500", F.HTTP_5XX),
        ({"http.status_code": "503", "response_flags": "UF"}, False, "503", F.RESPONSE_FLAGS),
        ({"http.status_code": "503", "response_flags": "UF,URX"}, False, "503", F.RESPONSE_FLAGS),
        ({"http.status_code": "0", "response_flags": "DC"}, False, "0", F.RESPONSE_FLAGS),
        ({"http.status_code": "404", "response_flags": "NR"}, False, "404", F.RESPONSE_FLAGS),
        ({"http.status_code": "200", "response_flags": "DI"}, False, "200", None),
        ({"http.status_code": "200", "response_flags": ""}, False, "200", None),
        ({"http.status_code": "200", "grpc.status_code": "14"}, False, "grpc:14", F.GRPC),
        ({"rpc.grpc.status_code": 0}, False, "grpc:0", None),
        ({"rpc.grpc.status_code": 5}, True, "grpc:5", F.GRPC),
        ({"grpc.status_code": "14", "response_flags": "UH"}, False, "grpc:14", F.RESPONSE_FLAGS),
        ({"http.status_code": "502"}, True, "502", F.HTTP_5XX),
        ({"http.status_code": "200"}, True, "200", F.SPAN_STATUS),
        ({}, True, "", F.SPAN_STATUS),
        ({}, False, "", None),
        ({"http.status_code": "abc"}, False, "", None),
    ],
)
def test_status_and_first_cause(
    attrs: dict[str, AttrValue], status_error: bool, code: str, cause: ErrorCause | None
) -> None:
    assert span_status(attrs, status_error) == (code, cause)


@pytest.mark.parametrize(
    ("attrs", "protocol"),
    [
        ({"http.method": "GET"}, "http"),
        ({"grpc.status_code": "0"}, "grpc"),
        ({"rpc.system": "grpc"}, "grpc"),
        ({"db.system": "postgresql"}, "db"),
        ({"messaging.system": "kafka"}, "messaging"),
        ({}, "http"),
    ],
)
def test_protocol(attrs: dict[str, AttrValue], protocol: str) -> None:
    assert span_protocol(attrs) == protocol
