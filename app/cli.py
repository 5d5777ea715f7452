"""Command line: serve, migrate, demo, graph, openapi, settings. `python -m app` = `meshstitch`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
import yaml

from app.gc_tuning import tune_gc
from app.malloc_tuning import limit_arenas
from app.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def _serve(settings: Settings) -> int:
    from app.ingest.decoder_choice import DecoderUnavailable
    from app.main import create_app
    from app.store.engine import create_store_engine
    from app.store.schema import SchemaBehindError, ensure_schema

    limit_arenas()  # before any thread starts (app/malloc_tuning.py)
    # Checked before uvicorn starts so the refusal is one clear line, not a lifespan traceback.
    engine = create_store_engine(settings.database_url)
    try:
        ensure_schema(engine, auto_upgrade=settings.is_sqlite)
    except SchemaBehindError as exc:
        print(f"meshstitch: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    try:
        app = create_app(settings)
    except DecoderUnavailable as exc:
        print(f"meshstitch: {exc}", file=sys.stderr)
        return 2
    tune_gc()
    config = uvicorn_config(app, settings)
    server = uvicorn.Server(config)
    server.run()
    # uvicorn swallows a failed lifespan startup (e.g. schema behind) and just returns.
    return 0 if server.started else 2


def uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_level=settings.log_level,
        access_log=False,
        # uvicorn[standard]: uvloop and httptools, named so that a missing one fails the start
        # instead of falling back to asyncio and h11 unnoticed.
        loop="uvloop",
        http="httptools",
    )


def _migrate(settings: Settings, revision: str) -> int:
    from app.store.engine import create_store_engine
    from app.store.schema import current_revision, upgrade

    engine = create_store_engine(settings.database_url)
    upgrade(engine, revision)
    print(f"database at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def server_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    return f"http://{host}:{settings.http_port}"


def _graph(settings: Settings, args: argparse.Namespace) -> int:
    """Ask a running server for /graph and print it; the server renders every format."""
    import httpx

    params = {
        "service": args.service,
        "depth": str(args.depth),
        "direction": args.direction,
        "window": args.window,
        "level": args.level,
        "format": args.format,
    }
    if args.namespace:
        params["namespace"] = args.namespace
    token = settings.api_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = (args.url or server_url(settings)).rstrip("/") + "/graph"
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"meshstitch: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            problem = response.json()
            message = problem.get("detail") or problem.get("title") or response.text
        except ValueError:
            message = response.text
        print(f"meshstitch: {response.status_code}: {message}", file=sys.stderr)
        return 1
    text = response.text
    if args.format == "json":
        text = json.dumps(response.json(), indent=2) + "\n"
    sys.stdout.write(text)
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
    demo = sub.add_parser(
        "demo", help="serve on the embedded SQLite default with a simulated ambient mesh"
    )
    demo.add_argument(
        "--ticks", type=int, default=0, help="stop after this many 5 s ticks (default: Ctrl-C)"
    )
    graph = sub.add_parser("graph", help="print the graph around a service from a running server")
    graph.add_argument("--service", required=True, help="service name or namespace/name")
    graph.add_argument("--namespace", default="", help="namespace of the service")
    graph.add_argument("--depth", type=int, default=1, help="hops from the service (default 1)")
    graph.add_argument("--direction", choices=["upstream", "downstream", "both"], default="both")
    graph.add_argument("--window", default="15m", help="window ending now (default 15m)")
    graph.add_argument("--level", choices=["service", "workload"], default="service")
    graph.add_argument("--format", choices=["table", "json", "dot", "mermaid"], default="table")
    graph.add_argument(
        "--url", default="", help="server base URL (default from MESHSTITCH_HOST/HTTP_PORT)"
    )
    openapi = sub.add_parser("openapi", help="write the OpenAPI document as YAML")
    openapi.add_argument("--output", "-o", default="-", help="file to write, - for stdout")
    sub.add_parser(
        "settings",
        help="print the effective settings as JSON (secrets hidden) and the OTLP decoder in use",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "openapi":
        return _openapi(args.output)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # One INFO line per scrape and per request would drown everything else.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate(settings, args.revision)
    if args.command == "demo":
        from app.demo import run_demo

        return run_demo(settings, ticks=args.ticks)
    if args.command == "graph":
        return _graph(settings, args)
    if args.command == "settings":
        from app.ingest.decoder_choice import describe_protobuf_decoder

        shown = settings.model_dump(mode="json")
        shown["otlp_decoder_in_use"] = describe_protobuf_decoder(settings.otlp_decoder)
        print(json.dumps(shown, indent=2))
        return 0
    return 2  # pragma: no cover - argparse enforces the choices
