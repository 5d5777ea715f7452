"""The error-cause order spans and waypoint request metrics share, and `le` bounds."""

from __future__ import annotations

import math

import pytest

from app.domain import ErrorCause
from app.rules.error_cause import first_error_cause
from app.rules.histogram_bound import le_bound

F = ErrorCause


@pytest.mark.parametrize(
    ("flags", "grpc_failed", "http", "span_error", "cause"),
    [
        ("", False, None, False, None),
        ("-", False, 200, False, None),
        ("DI", False, 200, False, None),
        ("UF", True, 503, True, F.RESPONSE_FLAGS),  # flags first: they say why
        ("-", True, 503, True, F.GRPC),
        ("", False, 500, True, F.HTTP_5XX),
        ("", False, 499, True, F.SPAN_STATUS),
        ("", False, None, True, F.SPAN_STATUS),
    ],
)
def test_the_first_cause_that_applies(
    flags: str, grpc_failed: bool, http: int | None, span_error: bool, cause: ErrorCause | None
) -> None:
    assert first_error_cause(flags, grpc_failed, http, span_error) is cause


@pytest.mark.parametrize(
    ("le", "bound"), [("0.5", 0.5), ("25", 25.0), ("+Inf", math.inf), ("junk", math.inf)]
)
def test_le_bound(le: str, bound: float) -> None:
    assert le_bound(le) == bound
