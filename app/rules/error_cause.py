"""Which error cause a request has, the same for spans (app/correlate/status.py) and waypoint
request metrics (app/poll/waypoint_labels.py): the FIRST that applies, in this order.

1. `RESPONSE_FLAGS`: Envoy `response_flags` other than `-`/empty. First because it says *why*
   the proxy failed the request; the 503 it answers with is the symptom. `DI` (delay injected by
   fault injection) alone is not a failure.
2. `GRPC`: a non-zero gRPC status.
3. `HTTP_5XX`: an HTTP status ≥ 500.
4. `SPAN_STATUS`: the span's status is ERROR (spans only).

Each caller reads its own inputs (span attributes of any type, Prometheus label strings with
their `unknown`) and hands over what they say.
"""

from __future__ import annotations

from app.domain import ErrorCause

HARMLESS_FLAGS = frozenset({"", "-", "DI"})


def first_error_cause(
    response_flags: str,
    grpc_failed: bool,
    http_status: int | None,
    span_error: bool = False,
) -> ErrorCause | None:
    """The first cause that applies (module docstring), or None for a success."""
    if response_flags not in HARMLESS_FLAGS:
        return ErrorCause.RESPONSE_FLAGS
    if grpc_failed:
        return ErrorCause.GRPC
    if http_status is not None and http_status >= 500:
        return ErrorCause.HTTP_5XX
    if span_error:
        return ErrorCause.SPAN_STATUS
    return None
