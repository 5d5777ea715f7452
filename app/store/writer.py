"""Units of work over the repositories: one transaction per aggregate batch, and retention.

`write_batch` is what the ingest pipeline calls (bind the engine with functools.partial); a batch
is applied whole or not at all, so the pipeline may retry it after a failure without double
counting: the batch's id is recorded by the same transaction (applied_batches), so a retry after
a COMMIT whose acknowledgement was lost finds it and writes nothing. PostgreSQL may abort one of two writers that lock overlapping keys in a different order
(deadlock, SQLSTATE 40P01): the whole transaction is then retried here a few times.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.edge.batch import AggregateBatch
from app.store.aliases import AliasRepository
from app.store.applied_batches import AppliedBatchRepository
from app.store.changes import NO_BUCKETS, PROCESS_WRITER_ID, StoreChangeRepository
from app.store.edges import EdgeRepository
from app.store.exemplars import ExemplarRepository
from app.store.nodes import NodeRepository
from app.store.traces import TraceHopRepository

log = logging.getLogger(__name__)
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_ATTEMPTS = 4


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def write_batch(engine: Engine, batch: AggregateBatch, writer_id: str = PROCESS_WRITER_ID) -> None:
    """Add a batch to the store in one transaction (additive: safe beside other replicas).
    `writer_id` names the writing process in store_changes (tests play other replicas)."""
    if not len(batch):
        return
    edges, exemplars = EdgeRepository(), ExemplarRepository()
    nodes, hops = NodeRepository(), TraceHopRepository()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                if batch.batch_id and not AppliedBatchRepository().claim(conn, batch.batch_id):
                    log.info("batch %s is already in the store; not added again", batch.batch_id)
                    return
                # Edge rows first: their locks cover the exemplar read-modify-write below.
                edges.add(conn, batch.edges)
                exemplars.add(conn, {k: b.exemplars for k, b in batch.edges.items()})
                nodes.upsert(conn, batch.nodes.values())
                hops.add(conn, batch.hops)
                AliasRepository().upsert(conn, batch.aliases)
                # Last: tells cached windows which buckets changed (store/changes.py).
                StoreChangeRepository().record(conn, *_bucket_range(batch), writer_id)
            return
        except DBAPIError as exc:
            if attempt == _ATTEMPTS or not _retryable(exc):
                raise
            log.warning("edge upsert aborted (%s), retrying (attempt %d)", exc.orig, attempt)
            time.sleep(0.01 * attempt)


def _bucket_range(batch: AggregateBatch) -> tuple[int, int]:
    """The first and last bucket start the batch's edges and exemplars write."""
    if not batch.edges:
        return NO_BUCKETS
    starts = [key.bucket_start_s for key in batch.edges]
    return min(starts), max(starts)


@dataclass(frozen=True, slots=True)
class Deleted:
    edge_buckets: int
    exemplars: int
    trace_hops: int
    nodes: int
    applied_batches: int = 0
    store_changes: int = 0


def delete_expired(engine: Engine, now_s: float, retention_h: float) -> Deleted:
    """Delete buckets, exemplars and hops older than `retention_h`, and nodes not seen since.

    The lead schedules this (e.g. every few minutes); it is idempotent.
    """
    cutoff_s = int(now_s - retention_h * 3600)
    with engine.begin() as conn:
        return Deleted(
            edge_buckets=EdgeRepository().delete_before(conn, cutoff_s),
            exemplars=ExemplarRepository().delete_before(conn, cutoff_s),
            trace_hops=TraceHopRepository().delete_before(conn, cutoff_s * 1_000_000_000),
            nodes=NodeRepository().delete_before(conn, cutoff_s),
            applied_batches=AppliedBatchRepository().delete_before(conn, cutoff_s),
            store_changes=_record_deletion(conn, cutoff_s),
        )


def _record_deletion(conn: Connection, cutoff_s: int) -> int:
    """Old change rows go; the deletion itself is a change of every bucket before the cutoff."""
    deleted = StoreChangeRepository().delete_before(conn, cutoff_s)
    StoreChangeRepository().record(conn, 0, cutoff_s)
    return deleted
