"""SQLite's write-ahead log kept small: `journal_size_limit` and periodic TRUNCATE checkpoints.

SQLite's own auto-checkpoint (PASSIVE, every 1000 pages) copies the WAL back into the database
but never shrinks the file, and cannot reset it while a reader holds an older snapshot: under
sustained writes with concurrent reads the WAL grew to 0.9 GB (issue 18). So the writer, after
each flush (at most every `every_s`, default every flush), runs `PRAGMA wal_checkpoint(TRUNCATE)` on its own connection with
a short busy timeout: when no reader is behind, the WAL is copied back and truncated to zero
bytes; when one is, SQLite answers busy after `busy_ms` and the next round tries again (readers
keep their snapshot either way: a checkpoint never overwrites pages a reader still needs).
`journal_size_limit` (engine.py) also caps what the file keeps after any checkpoint resets it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from app.self_report import MetricFamily, PartState

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 30_000  # what engine.py gives every connection (`timeout=30`)


@dataclass(slots=True)
class CheckpointStats:
    checkpoints: int = 0  # TRUNCATE checkpoints that completed
    busy: int = 0  # rounds a reader (or writer) kept the WAL from being reset
    failed: int = 0
    last_wal_bytes: int = 0  # the WAL's size after the last round


class WalCheckpointer:
    def __init__(
        self,
        engine: Engine,
        every_s: float = 0.0,
        busy_ms: int = 200,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.every_s, self.busy_ms = engine, every_s, busy_ms
        self._monotonic = monotonic
        self._next = monotonic()
        database = engine.url.database or ""
        self.wal_path = f"{database}-wal" if database and database != ":memory:" else ""
        self.stats = CheckpointStats()

    def wal_bytes(self) -> int:
        try:
            return os.path.getsize(self.wal_path) if self.wal_path else 0
        except OSError:  # no WAL yet (or just removed)
            return 0

    def after_write(self) -> None:
        """Called by the writer after each flush: a checkpoint when one is due; never raises
        (the flush has committed whatever happens here)."""
        if self._monotonic() < self._next:
            return
        self._next = self._monotonic() + self.every_s
        try:
            self.checkpoint()
        except Exception as exc:
            self.stats.failed += 1
            log.warning("WAL checkpoint failed: %s: %s", type(exc).__name__, exc)

    def checkpoint(self) -> bool:
        """One TRUNCATE checkpoint; True when the WAL was reset, False when busy."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            # No transaction is open on a pooled connection here (autocommit, engine.py).
            cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
            try:
                busy, _log_pages, _moved = cursor.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                cursor.close()
        finally:
            raw.close()
        self.stats.last_wal_bytes = self.wal_bytes()
        if busy:
            self.stats.busy += 1
            return False
        self.stats.checkpoints += 1
        return True

    # ---- reports ------------------------------------------------------------------------------
    def readiness(self) -> PartState:
        """Always ready (a busy checkpoint is retried); says how big the WAL is."""
        s = self.stats
        return PartState(
            True,
            {
                "wal_bytes": self.wal_bytes(),
                "checkpoints": s.checkpoints,
                "busy": s.busy,
                "failed": s.failed,
            },
        )

    def collect(self) -> list[MetricFamily]:
        s = self.stats
        return [
            MetricFamily("meshstitch_sqlite_wal_bytes", "gauge", "Size of SQLite's WAL file.").add(
                self.wal_bytes()
            ),
            MetricFamily(
                "meshstitch_sqlite_wal_checkpoints", "counter", "TRUNCATE checkpoints, by result."
            )
            .add(s.checkpoints, result="truncated")
            .add(s.busy, result="busy")
            .add(s.failed, result="failed"),
        ]
