"""create_app(settings): the one place where parts are wired. Nothing runs at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from app.api.health import PartState, Readiness, build_health_router
from app.api.problems import install_problem_handlers
from app.settings import Settings
from app.store.engine import create_store_engine
from app.store.schema import current_revision, ensure_schema, head_revision

log = logging.getLogger(__name__)
VERSION = "0.1.0"


def database_state(engine: Engine) -> PartState:
    current, head = current_revision(engine), head_revision()
    return PartState(
        current == head, {"revision": current, "head": head, "dialect": engine.dialect.name}
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    readiness = Readiness()
    engine = create_store_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every part entered here is left in reverse order on shutdown (SIGTERM/SIGINT via uvicorn).
        async with AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            ensure_schema(engine, auto_upgrade=settings.is_sqlite)
            readiness.register("database", lambda: database_state(engine))
            log.info("meshstitch ready (database %s)", engine.dialect.name)
            yield
            log.info("meshstitch shutting down")
        log.info("meshstitch stopped")

    app = FastAPI(
        title="meshstitch",
        version=VERSION,
        summary="One service graph for Istio ambient mesh from waypoint spans (L7) and ztunnel metrics (L4).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.readiness = readiness
    install_problem_handlers(app)
    app.include_router(build_health_router(readiness))
    return app
