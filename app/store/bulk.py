"""Driver-level bulk statements for the write path: no per-row SQLAlchemy bind processing.

The repositories' hot writes hand already-converted rows (JSON text dumped once, bytes as-is) to
the DBAPI cursor of the caller's connection, inside its transaction:

- SQLite (`?`): `executemany` of one prepared statement, and point look-ups by primary key in a
  loop (in-process: a look-up costs microseconds, no round trip);
- PostgreSQL (psycopg, `%s`): one statement per chunk over `unnest(%s::type[], …)` column arrays
  (one round trip for thousands of rows), JSON columns cast from text.

Statements are built from the SQLAlchemy `Table`, so column names and types have one source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, Float, Integer, LargeBinary, String, Table

PG_CHUNK = 5000  # rows per unnest statement
_PG_TYPES: tuple[tuple[type[Any], str], ...] = (
    (BigInteger, "bigint"),  # before Integer, its base class
    (Integer, "integer"),
    (Float, "float8"),
    (LargeBinary, "bytea"),
    (JSON, "text"),  # cast to json in the statement
    (String, "text"),
)


def _pg_type(table: Table, column: str) -> str:
    col_type = table.c[column].type
    for py_type, name in _PG_TYPES:
        if isinstance(col_type, py_type):
            return name
    raise TypeError(f"no PostgreSQL array type for {table.name}.{column}")  # pragma: no cover


def _pg_value(table: Table, column: str, source: str = "v") -> str:
    """`v.column`, cast to json for JSON columns (the arrays carry JSON as text)."""
    return (
        f"{source}.{column}::json"
        if isinstance(table.c[column].type, JSON)
        else f"{source}.{column}"
    )


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

    # ---- PostgreSQL building blocks ----------------------------------------------------------
    @staticmethod
    def unnest(table: Table, columns: Sequence[str], alias: str = "v") -> str:
        """`unnest(%s::t1[], …) AS v(c1, …)`: one array parameter per column."""
        arrays = ", ".join(f"%s::{_pg_type(table, c)}[]" for c in columns)
        return f"unnest({arrays}) AS {alias}({', '.join(columns)})"

    @staticmethod
    def arrays(table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Rows → one list per column (the unnest parameters); float columns all floats (psycopg
        dumps no list of mixed int and float)."""
        if not rows:
            return [[] for _ in columns]
        return [
            list(map(float, col)) if isinstance(table.c[c].type, Float) else list(col)
            for c, col in zip(columns, zip(*rows, strict=True), strict=True)
        ]

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
        values = ", ".join(_pg_value(table, c) for c in columns)
        ret = f" RETURNING {', '.join(columns[:returning])}" if returning else ""
        sql = (
            f"INSERT INTO {table.name} ({names}) SELECT {values} "
            f"FROM {self.unnest(table, columns)} {tail}{ret}"
        )
        out: list[tuple[Any, ...]] = []
        cur = self.cursor()
        for start in range(0, len(rows), PG_CHUNK):
            cur.execute(sql, self.arrays(table, columns, rows[start : start + PG_CHUNK]))
            if returning:
                out.extend(cur.fetchall())
        return out

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
            f"FROM {table.name} t JOIN {self.unnest(table, key_columns, 'k')} ON {on} "
            f"ORDER BY {order}{' FOR UPDATE OF t' if lock else ''}"
        )
        out = []
        cur = self.cursor()
        for start in range(0, len(keys), PG_CHUNK):
            cur.execute(sql, self.arrays(table, key_columns, keys[start : start + PG_CHUNK]))
            out.extend(cur.fetchall())
        return out

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
        assignments = ", ".join(
            self.assignment(table, c, how, _pg_value(table, c)) for c, how in sets
        )
        where = " AND ".join(f"{table.name}.{c} = v.{c}" for c in key_columns)
        sql = (
            f"UPDATE {table.name} SET {assignments} FROM {self.unnest(table, columns)} "
            f"WHERE {where}"
        )
        cur = self.cursor()
        for start in range(0, len(rows), PG_CHUNK):
            cur.execute(sql, self.arrays(table, columns, rows[start : start + PG_CHUNK]))

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
        sql = f"DELETE FROM {table.name} USING {self.unnest(table, key_columns, 'k')} WHERE {on}"
        cur = self.cursor()
        for start in range(0, len(keys), PG_CHUNK):
            cur.execute(sql, self.arrays(table, key_columns, keys[start : start + PG_CHUNK]))
