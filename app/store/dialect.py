"""The dialect-specific INSERT that both repositories' upserts use (SQLite ≥ 3.24 and PostgreSQL
share the `ON CONFLICT` grammar; SQLAlchemy exposes it per dialect)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(conn: Connection, table: Table) -> Any:
    """`INSERT` with `.on_conflict_do_update` / `.on_conflict_do_nothing` for this connection."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {conn.dialect.name}")


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
