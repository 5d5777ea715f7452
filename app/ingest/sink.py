"""Where transports hand decoded spans over. Transports depend on this protocol, not on the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from app.domain import Span


class Admission(Enum):
    ACCEPTED = "accepted"
    OVERLOADED = "overloaded"  # queue full: HTTP 429 / gRPC RESOURCE_EXHAUSTED, retry soon
    UNAVAILABLE = "unavailable"  # store down and buffer full: HTTP 503 / gRPC UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Verdict:
    admission: Admission
    retry_after_s: int = 0
    reason: str = ""


class SpanSink(Protocol):
    def offer(self, spans: list[Span]) -> Verdict:
        """Take all of `spans` or none of them. Never blocks; an accepted batch is never lost
        short of a crash (SIGTERM flushes it)."""
        ...


class ListSink:
    """A sink that keeps what it accepts: for tests and benchmarks of the transports alone."""

    def __init__(self, capacity: int = 1 << 62) -> None:
        self.spans: list[Span] = []
        self.capacity = capacity

    def offer(self, spans: list[Span]) -> Verdict:
        if len(self.spans) + len(spans) > self.capacity:
            return Verdict(Admission.OVERLOADED, retry_after_s=1, reason="test sink full")
        self.spans.extend(spans)
        return Verdict(Admission.ACCEPTED)
