"""Liveness and readiness. Readiness asks every registered part (database, poller, pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.self_report import PartState

__all__ = ["PartState", "Readiness", "build_health_router"]


class Readiness:
    """Registry of the background parts whose state /readyz reports."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], PartState]] = {}

    def register(self, name: str, check: Callable[[], PartState]) -> None:
        self._checks[name] = check

    def report(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        parts: dict[str, dict[str, Any]] = {}
        for name, check in self._checks.items():
            try:
                state = check()
            except Exception as exc:  # a failing check is a not-ready part, never a 500
                state = PartState(False, {"error": f"{type(exc).__name__}: {exc}"})
            parts[name] = {"ready": state.ready, **state.detail}
        return all(p["ready"] for p in parts.values()), parts


class Health(BaseModel):
    status: str


class ReadinessReport(BaseModel):
    status: str
    parts: dict[str, dict[str, Any]]


def build_health_router(readiness: Readiness) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="Liveness: the process is serving")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        response_model=ReadinessReport,
        summary="Readiness: database reachable and at head, state of every background part",
        responses={503: {"model": ReadinessReport, "description": "A part is not ready"}},
    )
    async def readyz() -> JSONResponse:
        # Checks may touch the database; keep them off the event loop.
        ready, parts = await run_in_threadpool(readiness.report)
        body = ReadinessReport(status="ready" if ready else "not ready", parts=parts)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router
