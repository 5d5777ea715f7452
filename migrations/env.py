"""Alembic environment: the URL is the caller's connection, or MESHSTITCH_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.settings import Settings
from app.store.engine import create_store_engine
from app.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_store_engine(Settings().database_url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
