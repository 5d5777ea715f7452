"""What a decoded batch holds in memory while it waits in the ingest queue, estimated.

The ingest queue is bounded in bytes (`ingest_queue_bytes`) because decoded spans vary several
times in size: the decoder keeps only the attributes correlation reads, so neither the span count
nor the request body predicts memory (a span with 30 unread attributes is 1.1 KB on the wire and
~0.4 KB decoded; a waypoint span with its own resource, 0.7 KB on the wire and ~1.6 KB decoded).

The constants were measured with tracemalloc on the compiled decoder's output (CPython 3.11, the
`bench/cardinality.py` and `bench/ingest.py` batch shapes and a bare SDK span) and rounded up:

| shape                                 | kept attributes | measured | estimate |
|---------------------------------------|-----------------|----------|----------|
| SDK span, shared resource             | 0               | 396 B    | 400 B    |
| waypoint span, shared resource        | 19              | 1,358 B  | 1,616 B  |
| waypoint span, a resource of its own  | 12 (+1)         | 1,601 B  | 1,872 B  |

Attribute values are not measured one by one (that would cost more than the rest of offering a
batch); a long value is covered by the body cap, not by this estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain import Span

SPAN_BYTES = 400  # the slotted Span, its ids, name, service and two dicts
ATTRIBUTE_BYTES = 64  # one kept attribute: its dict slot and (mostly unshared) value
RESOURCE_BYTES = 640  # one resource dict not shared with the previous span


def estimate_batch_bytes(spans: Sequence[Span]) -> int:
    """Bytes `spans` hold while queued (module docstring); resources shared by consecutive spans,
    as the decoder builds them for one `ResourceSpans`, are counted once."""
    attributes = 0
    resources = 0
    last: object = None
    for span in spans:
        attributes += len(span.attributes)
        resource = span.resource
        if resource is not last:
            resources += 1
            attributes += len(resource)
            last = resource
    return len(spans) * SPAN_BYTES + attributes * ATTRIBUTE_BYTES + resources * RESOURCE_BYTES
