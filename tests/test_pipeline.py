"""The pipeline with fakes for the pure parts and the store: ordering, bounds, failure buffering."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from app.domain import Endpoint, L4Sample, L7Observation, Reporter, Span, SpanKind
from app.ingest.sink import Admission
from app.pipeline import IngestPipeline


def span(i: int) -> Span:
    return Span(
        trace_id=i.to_bytes(16, "big"),
        span_id=(i + 1).to_bytes(8, "big"),
        parent_span_id=b"",
        kind=SpanKind.SERVER,
        name="GET",
        start_ns=0,
        end_ns=1_000_000,
        service="svc",
        status_error=False,
    )


A, B = Endpoint("default", "a"), Endpoint("default", "b")


class FakeCorrelator:
    """Emits one observation per span immediately; holds `held` spans until drained."""

    def __init__(self, hold: int = 0) -> None:
        self.hold, self.held = hold, []  # type: ignore[var-annotated]

    def _obs(self, s: Span) -> L7Observation:
        return L7Observation(
            source=A, target=B, end_ns=s.end_ns, duration_ms=1.0, trace_id=s.trace_id
        )

    def add(self, spans: Iterable[Span], now_ns: int) -> list[L7Observation]:
        out = []
        for s in spans:
            if len(self.held) < self.hold:
                self.held.append(s)
            else:
                out.append(self._obs(s))
        return out

    def expire(self, now_ns: int) -> list[L7Observation]:
        return []

    def drain(self) -> list[L7Observation]:
        out = [self._obs(s) for s in self.held]
        self.held.clear()
        return out

    def __len__(self) -> int:
        return len(self.held)


class CountingAggregator:
    def __init__(self) -> None:
        self.l7 = 0
        self.l4 = 0

    def add_l7(self, obs: L7Observation) -> None:
        self.l7 += 1

    def add_l4(self, sample: L4Sample) -> None:
        self.l4 += 1

    def drain(self) -> dict[str, int]:
        batch, self.l7, self.l4 = {"l7": self.l7, "l4": self.l4}, 0, 0
        return batch

    def __len__(self) -> int:
        return self.l7 + self.l4


class FlakyStore:
    def __init__(self) -> None:
        self.up = True
        self.written: list[dict[str, int]] = []

    def write(self, batch: Any) -> None:
        if not self.up:
            raise ConnectionError("database is down")
        self.written.append(batch)

    def total(self, key: str) -> int:
        return sum(b[key] for b in self.written)


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore()


def make(store: FlakyStore, **kw: Any) -> IngestPipeline:
    options: dict[str, Any] = {"queue_spans": 1000, "flush_interval_s": 3600.0}
    options.update(kw)
    correlator = options.pop("correlator", FakeCorrelator())
    return IngestPipeline(correlator, CountingAggregator(), store.write, **options)


@pytest.fixture
def pipeline(store: FlakyStore) -> Iterator[IngestPipeline]:
    p = make(store)
    p.start()
    yield p
    p.stop()


def test_flush_writes_everything_accepted(pipeline: IngestPipeline, store: FlakyStore) -> None:
    for i in range(10):
        assert pipeline.offer([span(i), span(i + 100)]).admission is Admission.ACCEPTED
    assert pipeline.flush()
    assert store.total("l7") == 20


def test_l4_samples_are_aggregated(pipeline: IngestPipeline, store: FlakyStore) -> None:
    sample = L4Sample(
        source=A, target=B, reporter=Reporter.SOURCE, start_s=0, end_s=15, connections_opened=1
    )
    pipeline.add_l4([sample, sample])
    assert pipeline.flush()
    assert store.total("l4") == 2


def test_full_queue_answers_overloaded_without_losing_what_was_accepted(store: FlakyStore) -> None:
    p = make(store, queue_spans=10)  # not started: nothing drains the queue
    p._running = p._accepting = True  # accept without a worker, to fill the queue deterministically
    assert p.offer([span(i) for i in range(10)]).admission is Admission.ACCEPTED
    verdict = p.offer([span(99)])
    assert verdict.admission is Admission.OVERLOADED
    assert verdict.retry_after_s >= 1
    p._running = p._accepting = False
    p.start()
    assert p.flush()
    assert store.total("l7") == 10
    assert p.stats.spans_refused_overload == 1
    p.stop()


def test_database_down_buffers_then_refuses_then_recovers(store: FlakyStore) -> None:
    p = make(store, max_pending_writes=2)
    p.start()
    store.up = False
    for i in range(2):
        assert p.offer([span(i)]).admission is Admission.ACCEPTED
        assert p.flush() is False
    ready, detail = p.state()
    assert not ready
    assert detail["pending_writes"] == 2
    assert "database is down" in detail["last_flush_error"]
    assert p.offer([span(5)]).admission is Admission.UNAVAILABLE
    store.up = True
    assert p.flush()
    assert store.total("l7") == 2
    assert p.state()[0]
    p.stop()


def test_stop_drains_spans_still_waiting_for_their_peer(store: FlakyStore) -> None:
    p = make(store, correlator=FakeCorrelator(hold=3))
    p.start()
    assert p.offer([span(i) for i in range(5)]).admission is Admission.ACCEPTED
    assert p.flush()
    assert store.total("l7") == 2
    assert p.stop()
    assert store.total("l7") == 5
    assert p.offer([span(9)]).admission is Admission.UNAVAILABLE


def test_a_failing_item_does_not_kill_the_worker(store: FlakyStore) -> None:
    class Exploding(FakeCorrelator):
        def add(self, spans: Iterable[Span], now_ns: int) -> list[L7Observation]:
            if any(s.trace_id == span(13).trace_id for s in spans):
                raise ValueError("bad span")
            return super().add(spans, now_ns)

    p = make(store, correlator=Exploding())
    p.start()
    p.offer([span(13)])
    p.offer([span(1)])
    assert p.flush()
    assert store.total("l7") == 1
    p.stop()


def test_after_write_runs_once_a_flush_wrote_and_not_when_the_write_failed(
    store: FlakyStore,
) -> None:
    """serve hands the freed heap back here (app/malloc_tuning.py `trim_heap`)."""
    calls: list[int] = []
    p = make(store, after_write=lambda: calls.append(len(store.written)))
    p.start()
    assert p.flush() and calls == []  # nothing to write
    p.offer([span(1)])
    assert p.flush() and calls == [1]  # after the batch was written
    store.up = False
    p.offer([span(2)])
    assert p.flush() is False and calls == [1]
    store.up = True
    p.offer([span(3)])
    assert p.flush() and calls == [1, 3]  # both pending batches, then once
    p.stop()
