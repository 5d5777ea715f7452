"""Schema state: upgrade to head, and tell whether a database is behind."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS_DIR = next(
    (
        p
        for p in (Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations")
        if p.is_dir()
    ),
    Path(__file__).resolve().parents[2] / "migrations",
)


class SchemaBehindError(RuntimeError):
    """The database is not at the head revision and may not be upgraded automatically."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions is empty"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# Any constant key: several replicas' `meshstitch migrate` init containers may start at once on an
# empty PostgreSQL; the advisory lock (released at commit) makes the later ones wait and find the
# schema at head instead of failing on "relation already exists".
_MIGRATION_LOCK_KEY = 0x6D657368  # "mesh"


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Upgrade when allowed (embedded SQLite); otherwise refuse a database that is behind."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if auto_upgrade:
        upgrade(engine)
        return
    raise SchemaBehindError(
        f"database schema is at {current or 'nothing'} but this meshstitch needs {head}; "
        "run `meshstitch migrate` (with the same MESHSTITCH_DATABASE_URL) before `meshstitch serve`"
    )
