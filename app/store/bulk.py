"""Driver-level bulk statements for the write path: no per-row SQLAlchemy bind processing.

The repositories' hot writes hand already-converted rows (JSON text dumped once, bytes as-is) to
the DBAPI cursor of the caller's connection, inside its transaction:

- SQLite (`?`): `executemany` of one prepared statement, and point look-ups by primary key in a
  loop (in-process: a look-up costs microseconds, no round trip);
- PostgreSQL (psycopg): the rows COPied into a session temp table of the same column types, then
  one statement joining it (a few round trips for any number of rows; COPY beat `unnest` arrays
  by ~2.5x for trace hops).

Statements are built from the SQLAlchemy `Table`, so column names and types have one source.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table


class Bulk:
    """Bulk statements on `conn`'s transaction (begun here if the caller has not yet)."""

    def __init__(self, conn: Connection) -> None:
        if not conn.in_transaction():
            conn.begin()  # what autobegin would do: the caller's commit() ends it
        self.conn = conn
        self.postgresql = conn.dialect.name == "postgresql"
        if not self.postgresql and conn.dialect.name != "sqlite":
            raise NotImplementedError(f"no bulk writes for dialect {conn.dialect.name}")
        self.dbapi: Any = conn.connection.dbapi_connection

    def cursor(self) -> Any:
        return self.dbapi.cursor()

    # ---- PostgreSQL: rows staged by COPY --------------------------------------------------
    def _staged(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        sql: str,
        fetch: bool = False,
    ) -> list[tuple[Any, ...]]:
        """COPY `rows` into a session temp table of `table`'s `columns` (same types, no
        constraints; emptied at commit and after use), then run `sql` with `{src}` naming it.
        One COPY and one statement for any number of rows."""
        names = ", ".join(columns)
        stage = f"meshstitch_stage_{table.name}_{zlib.crc32(names.encode()):08x}"
        cur = self.cursor()
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table.name} WITH NO DATA"
        )
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(row)
        cur.execute(sql.replace("{src}", stage))
        out = cur.fetchall() if fetch else []
        cur.execute(f"TRUNCATE {stage}")
        return out

    # ---- statements --------------------------------------------------------------------------
    def insert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        tail: str = "",
        returning: int = 0,
    ) -> list[tuple[Any, ...]]:
        """`INSERT INTO table (columns) … {tail}` for every row; `tail` is an `ON CONFLICT`
        clause in the shared grammar (`excluded.c`, `{table}.c`). With `returning`, the first
        `returning` columns of the rows inserted (PostgreSQL only)."""
        if not rows:
            return []
        names = ", ".join(columns)
        if not self.postgresql:
            assert not returning, "RETURNING with executemany is PostgreSQL only"
            marks = ", ".join("?" * len(columns))
            self.cursor().executemany(
                f"INSERT INTO {table.name} ({names}) VALUES ({marks}) {tail}", rows
            )
            return []
        ret = f" RETURNING {', '.join(columns[:returning])}" if returning else ""
        sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {{src}} v {tail}{ret}"
        return self._staged(table, columns, rows, sql, fetch=bool(returning))

    def select_by_keys(
        self,
        table: Table,
        key_columns: Sequence[str],
        columns: Sequence[str],
        keys: Sequence[Sequence[Any]],
        *,
        lock: bool = False,
        prefix: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Rows `(key…, column…)` of `table` whose `key_columns` equal one of `keys`, in key
        order; JSON columns as their text. `prefix`: the keys are a prefix of the primary key
        (several rows per key). `lock`: `FOR UPDATE` on PostgreSQL (SQLite's writer already
        holds the database's write lock)."""
        if not keys:
            return []
        if not self.postgresql:
            where = " AND ".join(f"{c} = ?" for c in key_columns)
            sql = f"SELECT {', '.join((*key_columns, *columns))} FROM {table.name} WHERE {where}"
            cur = self.cursor()
            out: list[tuple[Any, ...]] = []
            for key in keys:
                out.extend(cur.execute(sql, key).fetchall())
            return out
        text_cols = [
            f"t.{c}::text" if isinstance(table.c[c].type, JSON) else f"t.{c}" for c in columns
        ]
        on = " AND ".join(f"t.{c} = k.{c}" for c in key_columns)
        order = ", ".join(f"t.{c}" for c in key_columns)
        sql = (
            f"SELECT {', '.join((*(f't.{c}' for c in key_columns), *text_cols))} "
            f"FROM {table.name} t JOIN {{src}} k ON {on} "
            f"ORDER BY {order}{' FOR UPDATE OF t' if lock else ''}"
        )
        return self._staged(table, key_columns, keys, sql, fetch=True)

    def assignment(self, table: Table, column: str, how: str, value: str) -> str:
        """`column = …` for an UPDATE or `ON CONFLICT DO UPDATE`: `how` is "add" (stored +
        value), "max" (the greater string, compared by code point as Python does) or "set"."""
        stored = f"{table.name}.{column}"
        if how == "add":
            return f"{column} = {stored} + {value}"
        if how == "max":
            if self.postgresql:
                return f'{column} = GREATEST({stored} COLLATE "C", {value} COLLATE "C")'
            return f"{column} = max({stored}, {value})"  # BINARY collation: code point order
        assert how == "set", how
        return f"{column} = {value}"

    def update_by_keys(
        self,
        table: Table,
        key_columns: Sequence[str],
        sets: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """For every row `(key…, value…)`: `UPDATE table SET …` its values, one per
        `(column, how)` of `sets` (see `assignment`), where the key columns equal its key."""
        if not rows:
            return
        n = len(key_columns)
        if not self.postgresql:
            assignments = ", ".join(self.assignment(table, c, how, "?") for c, how in sets)
            where = " AND ".join(f"{c} = ?" for c in key_columns)
            self.cursor().executemany(
                f"UPDATE {table.name} SET {assignments} WHERE {where}",
                [(*row[n:], *row[:n]) for row in rows],
            )
            return
        columns = (*key_columns, *(c for c, _ in sets))
        assignments = ", ".join(self.assignment(table, c, how, f"v.{c}") for c, how in sets)
        where = " AND ".join(f"{table.name}.{c} = v.{c}" for c in key_columns)
        sql = f"UPDATE {table.name} SET {assignments} FROM {{src}} v WHERE {where}"
        self._staged(table, columns, rows, sql)

    def delete_by_keys(
        self, table: Table, key_columns: Sequence[str], keys: Sequence[Sequence[Any]]
    ) -> None:
        """Delete the rows whose `key_columns` equal one of `keys`."""
        if not keys:
            return
        if not self.postgresql:
            where = " AND ".join(f"{c} = ?" for c in key_columns)
            self.cursor().executemany(f"DELETE FROM {table.name} WHERE {where}", keys)
            return
        on = " AND ".join(f"{table.name}.{c} = k.{c}" for c in key_columns)
        sql = f"DELETE FROM {table.name} USING {{src}} k WHERE {on}"
        self._staged(table, key_columns, keys, sql)


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """`items` in consecutive slices of at most `size` (statements stay under driver limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
