"""Engine creation and schema state. SQLite gets WAL and a busy timeout; both dialects pool.

Writers on SQLite take the write lock at BEGIN (`BEGIN IMMEDIATE`) so their read-modify-write
merges cannot lose updates. Readers must not queue behind them: `read_only(engine)` returns a view
of the same engine (same pool) whose transactions begin with a plain deferred `BEGIN`, which in
WAL mode reads one consistent snapshot beside a running writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

READ_ONLY_OPTION = "meshstitch_read_only"
WAL_SIZE_LIMIT_BYTES = 64 * 2**20


def create_store_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}
    )


def read_only(engine: Engine) -> Engine:
    """The engine for queries that never write: on SQLite their BEGIN takes no write lock."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE ourselves so
    # read-modify-write merges take the write lock before reading (no lost updates).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # KiB: 16 MiB per connection. Bounded either way, but the pool holds several connections and
    # every one fills its cache as the file grows (bench/soak.py: 64 MiB kept RSS rising for minutes).
    cursor.execute("PRAGMA cache_size=-16384")
    # Bytes of WAL kept after a checkpoint resets it (app/store/wal.py truncates it to zero).
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")  # deferred: a WAL snapshot, no write lock
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
