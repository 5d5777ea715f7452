"""The recent-hops ring: bounded, looked up by trace, merged with stored hops one per span."""

from __future__ import annotations

import threading

from app.domain import Endpoint, ErrorCause, L7Observation, Provenance
from app.edge.batch import TraceHop
from app.edge.recent_hops import RecentHops, merge_hops, trace_hop

A, B = Endpoint("default", "a"), Endpoint("default", "b")


def entry(trace: int, span: int, end_ns: int = 5_000_000_000) -> tuple[L7Observation, str, str]:
    obs = L7Observation(
        source=A,
        target=B,
        end_ns=end_ns,
        duration_ms=20.0,
        trace_id=trace.to_bytes(16, "big"),
        span_id=span.to_bytes(8, "big"),
        parent_span_id=b"\x01" * 8,
        protocol="http",
        status_code="503",
        error_cause=ErrorCause.HTTP_5XX,
        via="default/waypoint",
        provenance=Provenance.PARENT_SPAN,
    )
    return obs, "default/a", "default/b"


def test_trace_hop_is_the_stored_form() -> None:
    hop = trace_hop(*entry(1, 2))
    assert hop == TraceHop(
        trace_id=f"{1:032x}",
        span_id=f"{2:016x}",
        parent_span_id="01" * 8,
        source="default/a",
        target="default/b",
        via="default/waypoint",
        start_ns=4_980_000_000,
        end_ns=5_000_000_000,
        duration_ms=20.0,
        status_code="503",
        error_cause="http_5xx",
        provenance="parent_span",
    )


def test_ring_keeps_the_last_max_hops() -> None:
    ring = RecentHops(3)
    ring.extend([entry(1, 1), entry(2, 2)])
    ring.extend([entry(1, 3), entry(3, 4)])  # the oldest, trace 1 span 1, leaves
    assert len(ring) == 3 and ring.added == 4
    assert [h.span_id for h in ring.hops((1).to_bytes(16, "big"))] == [f"{3:016x}"]
    assert [e[0].span_id for e in ring.entries_of({(2).to_bytes(16, "big")})] == [(2).to_bytes(8)]
    assert ring.hops((9).to_bytes(16, "big")) == []


def test_a_zero_ring_keeps_nothing() -> None:
    ring = RecentHops(0)
    ring.extend([entry(1, 1)])
    assert len(ring) == 0 and ring.added == 1 and ring.hops((1).to_bytes(16, "big")) == []


def test_reads_beside_writes() -> None:
    """A reader copying the ring while the writer appends never sees a broken deque."""
    ring = RecentHops(500)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                ring.entries_of({(1).to_bytes(16, "big")})
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(2000):
        ring.extend([entry(n % 7, n)])
    done.set()
    reader.join(timeout=30)
    assert not errors and not reader.is_alive()
    assert len(ring) == 500


def test_merge_one_per_span_in_store_order() -> None:
    recent = [trace_hop(*entry(1, 2, end_ns=9_000_000_000)), trace_hop(*entry(1, 1))]
    stored = [trace_hop(*entry(1, 1))]
    merged = merge_hops(stored, recent)
    assert [h.span_id for h in merged] == [f"{1:016x}", f"{2:016x}"]
    assert merge_hops([], []) == []
