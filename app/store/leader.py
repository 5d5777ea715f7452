"""Which replica polls ztunnel: the holder of a PostgreSQL session advisory lock.

Span aggregates are additive, so any number of replicas can write them. L4 is different: every
replica would scrape the same ztunnels (or ask the same Prometheus) and the additive store would
count each connection once per replica. So exactly one replica polls: the one holding
`pg_try_advisory_lock(POLL_LOCK_KEY)` on a connection it keeps open. When that process dies or
loses its connection, PostgreSQL releases the lock and the next replica to ask takes over; its
first scrape of each target is a baseline, so the traffic of one poll interval around a failover
is not counted (documented in the README). The embedded SQLite store has one writer process,
which is always the leader.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)
POLL_LOCK_KEY = 0x6D73_706F  # "mspo"


class PollLeadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self.leader = False

    def check(self) -> bool:
        """True while this process holds (or has just taken) the poll lock. Never raises."""
        with self._lock:
            if self._engine.dialect.name != "postgresql":
                self.leader = True
                return True
            try:
                if self._connection is None:
                    self._connection = self._engine.connect()
                    self._connection.execution_options(isolation_level="AUTOCOMMIT")
                if self.leader:
                    self._connection.execute(text("SELECT 1"))  # still connected: still ours
                else:
                    self.leader = bool(
                        self._connection.execute(
                            text("SELECT pg_try_advisory_lock(:k)"), {"k": POLL_LOCK_KEY}
                        ).scalar()
                    )
                    if self.leader:
                        log.info("this replica now polls ztunnel (poll lock taken)")
            except Exception as exc:  # database away: not the leader until it is back
                if self.leader:
                    log.warning("lost the poll lock: %s", type(exc).__name__)
                self._drop()
            return self.leader

    def _drop(self) -> None:
        self.leader = False
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except Exception:  # already broken
                log.debug("closing the poll-lock connection failed", exc_info=True)
            self._connection = None

    def release(self) -> None:
        with self._lock:
            if self._connection is not None and self.leader:
                try:
                    self._connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": POLL_LOCK_KEY}
                    )
                except Exception:
                    log.debug("unlocking the poll lock failed", exc_info=True)
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self.leader = False
