"""The queued-memory estimate of a decoded batch (app/ingest/span_memory.py)."""

from __future__ import annotations

import pytest

from app.domain import AttrValue, Span, SpanKind
from app.ingest.span_memory import (
    ATTRIBUTE_BYTES,
    RESOURCE_BYTES,
    SPAN_BYTES,
    estimate_batch_bytes,
)


def _span(attributes: int, resource: dict[str, AttrValue]) -> Span:
    return Span(
        trace_id=b"t" * 16,
        span_id=b"s" * 8,
        parent_span_id=b"",
        kind=SpanKind.SERVER,
        name="GET",
        start_ns=1,
        end_ns=2,
        service="svc",
        status_error=False,
        attributes={f"a{i}": "v" for i in range(attributes)},
        resource=resource,
    )


SHARED: dict[str, AttrValue] = {"service.name": "checkout"}


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], 0),
        ([_span(0, SHARED)], SPAN_BYTES + RESOURCE_BYTES + ATTRIBUTE_BYTES),
        # one ResourceSpans: its resource dict is shared by consecutive spans, counted once
        (
            [_span(3, SHARED)] * 4,
            4 * (SPAN_BYTES + 3 * ATTRIBUTE_BYTES) + RESOURCE_BYTES + ATTRIBUTE_BYTES,
        ),
        # a resource per span (bench/cardinality.py's shape): each one counted
        (
            [_span(2, {"service.name": f"s{i}"}) for i in range(3)],
            3 * (SPAN_BYTES + 2 * ATTRIBUTE_BYTES + RESOURCE_BYTES + ATTRIBUTE_BYTES),
        ),
    ],
)
def test_estimate(spans: list[Span], expected: int) -> None:
    assert estimate_batch_bytes(spans) == expected
