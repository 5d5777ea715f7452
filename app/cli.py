"""Command line: serve, migrate, demo, openapi. `python -m app` is the same as `meshstitch`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
import yaml

from app.settings import Settings


def _serve(settings: Settings) -> int:
    from app.main import create_app
    from app.store.engine import create_store_engine
    from app.store.schema import SchemaBehindError, ensure_schema

    # Checked before uvicorn starts so the refusal is one clear line, not a lifespan traceback.
    engine = create_store_engine(settings.database_url)
    try:
        ensure_schema(engine, auto_upgrade=settings.is_sqlite)
    except SchemaBehindError as exc:
        print(f"meshstitch: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_level=settings.log_level,
        access_log=False,
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn swallows a failed lifespan startup (e.g. schema behind) and just returns.
    return 0 if server.started else 2


def _migrate(settings: Settings, revision: str) -> int:
    from app.store.engine import create_store_engine
    from app.store.schema import current_revision, upgrade

    engine = create_store_engine(settings.database_url)
    upgrade(engine, revision)
    print(f"database at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def openapi_document(settings: Settings | None = None) -> dict[str, object]:
    from app.main import create_app

    return create_app(settings or Settings(database_url="sqlite://")).openapi()


def _openapi(output: str) -> int:
    text = yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshstitch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the REST API, OTLP/HTTP, OTLP/gRPC and the pollers")
    migrate = sub.add_parser(
        "migrate", help="upgrade the database schema (MESHSTITCH_DATABASE_URL)"
    )
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    sub.add_parser(
        "demo", help="serve on the embedded SQLite default with a simulated ambient mesh"
    )
    openapi = sub.add_parser("openapi", help="write the OpenAPI document as YAML")
    openapi.add_argument("--output", "-o", default="-", help="file to write, - for stdout")
    sub.add_parser("settings", help="print the effective settings as JSON (secrets hidden)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "openapi":
        return _openapi(args.output)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate(settings, args.revision)
    if args.command == "demo":
        from app.demo import run_demo

        return run_demo(settings)
    if args.command == "settings":
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return 0
    return 2  # pragma: no cover - argparse enforces the choices
