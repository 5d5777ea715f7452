"""The ingest pipeline: a bounded queue of span batches, one worker that correlates and aggregates,
and periodic writes of the aggregates to the store.

One thread owns the correlator and the aggregator, so the pure rules need no locks; L4 samples
and flush requests enter the same queue. The queue is bounded twice: in spans and in the bytes
the decoded spans hold (app/ingest/span_memory.py), so memory stays bounded when spans are large;
past either bound ingest answers OVERLOADED (429 / RESOURCE_EXHAUSTED) and the client retries.
Writes that fail (database down) are kept, bounded, and
retried; while that buffer is full, ingest answers UNAVAILABLE so clients retry instead of losing
spans. `flush()` is the deterministic way for tests and shutdown to see everything written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.domain import L4Sample, L7MetricSample, L7Observation, Span
from app.ingest.sink import Admission, Verdict
from app.ingest.span_memory import estimate_batch_bytes

log = logging.getLogger(__name__)


class Correlator(Protocol):
    def add(self, spans: Iterable[Span], now_ns: int) -> list[L7Observation]: ...
    def expire(self, now_ns: int) -> list[L7Observation]: ...
    def drain(self) -> list[L7Observation]: ...
    def __len__(self) -> int: ...


class Aggregator(Protocol):
    def add_l7(self, obs: L7Observation) -> None: ...
    def add_l4(self, sample: L4Sample) -> None: ...
    def add_l7_metric(self, sample: L7MetricSample) -> None: ...
    def drain(self) -> Any: ...
    def __len__(self) -> int: ...


WriteBatch = Callable[[Any], None]


@dataclass
class PipelineStats:
    spans_accepted: int = 0
    spans_refused_overload: int = 0  # either queue bound (spans or bytes)
    spans_refused_unavailable: int = 0
    observations: int = 0
    l4_samples: int = 0
    l7_metric_samples: int = 0
    flushes_ok: int = 0
    flushes_failed: int = 0
    last_flush_error: str = ""
    last_flush_ok_s: float = 0.0


class _QueuedSpans:
    __slots__ = ("estimated_bytes", "spans")

    def __init__(self, spans: list[Span], estimated_bytes: int) -> None:
        self.spans, self.estimated_bytes = spans, estimated_bytes


@dataclass
class _FlushRequest:
    drain_pairing: bool
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class IngestPipeline:
    """Implements `app.ingest.sink.SpanSink`; also takes L4 samples from the poller."""

    def __init__(
        self,
        correlator: Correlator,
        aggregator: Aggregator,
        write_batch: WriteBatch,
        *,
        queue_spans: int,
        flush_interval_s: float,
        queue_bytes: int | None = None,
        max_pending_writes: int = 120,
        observers: Sequence[Callable[[Sequence[L7Observation]], None]] = (),
        l4_observers: Sequence[Callable[[Sequence[L4Sample]], None]] = (),
        metric_observers: Sequence[Callable[[Sequence[L7MetricSample]], None]] = (),
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        after_write: Callable[[], object] = lambda: None,
    ) -> None:
        self._correlator, self._aggregator, self._write = correlator, aggregator, write_batch
        # Called once a flush wrote what it had (serve: app/malloc_tuning.py `trim_heap`).
        self._after_write = after_write
        self._queue_cap, self._flush_interval_s = queue_spans, flush_interval_s
        self._queue_bytes_cap = queue_bytes  # None: bounded in spans only
        self._max_pending = max_pending_writes
        self._observers = tuple(observers)
        self._l4_observers = tuple(l4_observers)
        self._metric_observers = tuple(metric_observers)
        self._clock_ns, self._monotonic = clock_ns, monotonic
        # _QueuedSpans, polled-sample lists, flush requests
        self._items: deque[Any] = deque()
        self._queued_spans = 0
        self._queued_bytes = 0  # estimated (app/ingest/span_memory.py)
        self._cond = threading.Condition()
        self._pending_writes: deque[Any] = deque()
        self._running = False
        self._accepting = False
        self._thread: threading.Thread | None = None
        self.stats = PipelineStats()

    # ---- SpanSink -------------------------------------------------------------------------
    def offer(self, spans: list[Span]) -> Verdict:
        estimated = estimate_batch_bytes(spans)  # outside the lock: the worker takes it too
        with self._cond:
            if not self._accepting:
                self.stats.spans_refused_unavailable += len(spans)
                return Verdict(Admission.UNAVAILABLE, retry_after_s=5, reason="shutting down")
            if len(self._pending_writes) >= self._max_pending:
                self.stats.spans_refused_unavailable += len(spans)
                return Verdict(
                    Admission.UNAVAILABLE,
                    retry_after_s=10,
                    reason="store unavailable, write buffer full",
                )
            # An empty queue takes any batch (the body cap bounds one), so no batch waits forever.
            if self._queued_spans > 0:
                if self._queued_spans + len(spans) > self._queue_cap:
                    self.stats.spans_refused_overload += len(spans)
                    return Verdict(
                        Admission.OVERLOADED, retry_after_s=1, reason="ingest queue full"
                    )
                cap_bytes = self._queue_bytes_cap
                if cap_bytes is not None and self._queued_bytes + estimated > cap_bytes:
                    self.stats.spans_refused_overload += len(spans)
                    return Verdict(
                        Admission.OVERLOADED,
                        retry_after_s=1,
                        reason="ingest queue full (memory bound)",
                    )
            self._items.append(_QueuedSpans(spans, estimated))
            self._queued_spans += len(spans)
            self._queued_bytes += estimated
            self.stats.spans_accepted += len(spans)
            self._cond.notify()
        return Verdict(Admission.ACCEPTED)

    def add_l4(self, samples: Sequence[L4Sample | L7MetricSample]) -> None:
        """Polled evidence: ztunnel L4 samples and waypoint request-metric samples."""
        if not samples:
            return
        with self._cond:
            self._items.append(list(samples))
            self._cond.notify()

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            self._running = self._accepting = True
        self._thread = threading.Thread(target=self._run, name="meshstitch-pipeline", daemon=True)
        self._thread.start()

    def flush(self, *, drain_pairing: bool = False, timeout_s: float = 60.0) -> bool:
        """Process everything queued so far, write all aggregates; True when the write succeeded.

        With `drain_pairing`, spans still waiting for their peer are emitted as unpaired first
        (shutdown does this; tests use it to see waypoint spans whose caller never reports).
        """
        request = _FlushRequest(drain_pairing)
        with self._cond:
            if not self._running:
                return False
            self._items.append(request)
            self._cond.notify()
        return request.done.wait(timeout_s) and request.ok

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop accepting, process and write everything accepted, then stop the worker."""
        with self._cond:
            self._accepting = False
        ok = self.flush(drain_pairing=True, timeout_s=timeout_s)
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if not ok:
            log.error(
                "shutdown flush failed: %d aggregate batches not written", len(self._pending_writes)
            )
        return ok

    def state(self) -> tuple[bool, dict[str, Any]]:
        with self._cond:
            pending, queued = len(self._pending_writes), self._queued_spans
            queued_bytes = self._queued_bytes
        alive = self._thread is not None and self._thread.is_alive()
        detail = {
            "queued_spans": queued,
            "queue_capacity_spans": self._queue_cap,
            "queued_bytes_estimated": queued_bytes,
            "queue_capacity_bytes": self._queue_bytes_cap,
            "pending_writes": pending,
            "last_flush_error": self.stats.last_flush_error,
        }
        return alive and pending < self._max_pending, detail

    # ---- worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        next_flush = self._monotonic() + self._flush_interval_s
        next_expire = self._monotonic() + 1.0
        while True:
            with self._cond:
                while self._running and not self._items:
                    wait = min(next_flush, next_expire) - self._monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if not self._running and not self._items:
                    return
                item = self._items.popleft() if self._items else None
                if isinstance(item, _QueuedSpans):
                    self._queued_spans -= len(item.spans)
                    self._queued_bytes -= item.estimated_bytes
                    item = item.spans
            try:
                self._handle(item)
            except Exception:  # the worker must survive any single bad batch
                log.exception("pipeline worker failed on one item; continuing")
            now = self._monotonic()
            if now >= next_expire:
                self._aggregate(self._correlator.expire(self._clock_ns()))
                next_expire = now + 1.0
            if now >= next_flush:
                self._write_all()
                next_flush = now + self._flush_interval_s

    def _handle(self, item: Any) -> None:
        if item is None:
            return
        if isinstance(item, _FlushRequest):
            if item.drain_pairing:
                self._aggregate(self._correlator.drain())
            else:
                self._aggregate(self._correlator.expire(self._clock_ns()))
            item.ok = self._write_all()
            item.done.set()
            return
        if item and isinstance(item[0], L4Sample | L7MetricSample):
            l4: list[L4Sample] = []
            metrics: list[L7MetricSample] = []
            for sample in item:
                if isinstance(sample, L4Sample):
                    self._aggregator.add_l4(sample)
                    l4.append(sample)
                else:
                    self._aggregator.add_l7_metric(sample)
                    metrics.append(sample)
            self.stats.l4_samples += len(l4)
            self.stats.l7_metric_samples += len(metrics)
            for l4_observer in self._l4_observers:
                if l4:
                    l4_observer(l4)
            for metric_observer in self._metric_observers:
                if metrics:
                    metric_observer(metrics)
            return
        self._aggregate(self._correlator.add(item, self._clock_ns()))

    def _aggregate(self, observations: Sequence[L7Observation]) -> None:
        for obs in observations:
            self._aggregator.add_l7(obs)
        for observer in self._observers:
            observer(observations)
        self.stats.observations += len(observations)

    def _write_all(self) -> bool:
        if len(self._aggregator):
            batch = self._aggregator.drain()
            with self._cond:
                self._pending_writes.append(batch)
        wrote = False
        while True:
            with self._cond:
                if not self._pending_writes:
                    break
                batch = self._pending_writes[0]
            try:
                self._write(batch)
            except Exception as exc:  # database away: keep the batch, retry on the next flush
                self.stats.flushes_failed += 1
                self.stats.last_flush_error = (
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                )
                log.warning("aggregate write failed, will retry: %s", self.stats.last_flush_error)
                return False
            with self._cond:
                self._pending_writes.popleft()
            self.stats.flushes_ok += 1
            self.stats.last_flush_error = ""
            self.stats.last_flush_ok_s = time.time()
            wrote = True
        if wrote:
            self._after_write()
        return True
