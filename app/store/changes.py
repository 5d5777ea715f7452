"""Which buckets the store's writers changed: what lets the read side cache merged windows.

Every write transaction (a flush, retention) calls `record` last, in its own transaction: it
bumps its process's row in `store_writers` and logs the bucket range it changed in
`store_changes`. The bump locks only this process's row, until COMMIT, so one writer's
transactions commit in `seq` order and a reader that has seen `seq` = n has seen every change
numbered ≤ n; other replicas have rows of their own and never wait on it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.store.tables import store_changes as c
from app.store.tables import store_writers as w

# One id per process: every write transaction of this process counts in the same row.
PROCESS_WRITER_ID = uuid.uuid4().hex
NO_BUCKETS = (0, -1)  # first > last: a change of nodes or aliases only


@dataclass(frozen=True, slots=True)
class Changed:
    """Bucket starts in [first_bucket_s, last_bucket_s] may have changed; `everything`: any."""

    first_bucket_s: int
    last_bucket_s: int
    everything: bool = False

    def overlaps(self, first_bucket_s: int, end_s: int) -> bool:
        """Whether a window of the bucket starts in [first_bucket_s, end_s) is touched."""
        if self.everything:
            return True
        return self.first_bucket_s < end_s and self.last_bucket_s >= first_bucket_s


class StoreChangeRepository:
    def record(
        self,
        conn: Connection,
        first_bucket_s: int,
        last_bucket_s: int,
        writer_id: str = PROCESS_WRITER_ID,
        now_s: float | None = None,
    ) -> int:
        """Count one write transaction of `writer_id` that changed the buckets starting in
        [first, last]; returns its seq. Call it last in the transaction (holds the row lock)."""
        stamp = int(time.time() if now_s is None else now_s)
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        bump = dialect_insert(w).values(
            writer_id=writer_id, seq=1, started_s=stamp, updated_s=stamp
        )
        bump = bump.on_conflict_do_update(
            index_elements=[w.c.writer_id],
            set_={"seq": w.c.seq + 1, "updated_s": bump.excluded.updated_s},
        )
        seq = int(conn.execute(bump.returning(w.c.seq)).scalar_one())
        conn.execute(
            c.insert().values(
                writer_id=writer_id,
                seq=seq,
                first_bucket_s=first_bucket_s,
                last_bucket_s=last_bucket_s,
                changed_s=stamp,
            )
        )
        return seq

    def writers(self, conn: Connection) -> dict[tuple[str, int], int]:
        """Every writer's seq by (writer_id, started_s): the cheap per-request check (one row
        per writing process; a row deleted by retention and made again is another writer)."""
        rows = conn.execute(select(w.c.writer_id, w.c.started_s, w.c.seq))
        return {(row.writer_id, int(row.started_s)): int(row.seq) for row in rows}

    def changed_since(self, conn: Connection, writer_id: str, after_seq: int) -> Changed:
        """The bucket range `writer_id` changed after `after_seq`; `everything` when its log no
        longer reaches back that far (deleted by retention)."""
        row = conn.execute(
            select(
                func.min(c.c.seq),
                func.min(c.c.first_bucket_s),
                func.max(c.c.last_bucket_s),
            ).where(c.c.writer_id == writer_id, c.c.seq > after_seq)
        ).one()
        first_seq, first, last = row
        if first_seq is None or first_seq != after_seq + 1:
            return Changed(0, 0, everything=True)
        return Changed(int(first), int(last))

    def touched_since(
        self, conn: Connection, since_s: float, first_bucket_s: int, end_s: int
    ) -> bool:
        """Whether any writer changed a bucket starting in [first, end) at or after `since_s`
        (epoch seconds): one small indexed-by-nothing scan of the log, which retention trims."""
        found = conn.execute(
            select(c.c.seq)
            .where(
                c.c.changed_s >= int(since_s),
                c.c.first_bucket_s < end_s,
                c.c.last_bucket_s >= first_bucket_s,
            )
            .limit(1)
        ).first()
        return found is not None

    def delete_before(self, conn: Connection, cutoff_s: int) -> int:
        """Log rows and writers not heard from since `cutoff_s` (a writer heard from again
        starts a new row, with another `started_s`: readers then drop what they cached)."""
        deleted = conn.execute(delete(c).where(c.c.changed_s < cutoff_s)).rowcount
        conn.execute(delete(w).where(w.c.updated_s < cutoff_s))
        return int(deleted)
