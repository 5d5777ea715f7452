"""Cost routes: /cost (cross-zone bytes and their price, proxies as deployed beside sidecars) and
/advisor (where a waypoint buys most visibility per cost; what existing waypoints cost).
Handlers parse parameters only; the figures are app/graph/cost.py's and advisor.py's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.cost_schemas import AdvisorOut, CostOut
from app.api.graph import (
    FromParam,
    NamespaceParam,
    OffsetParam,
    PageSizeParam,
    ToParam,
    WindowParam,
    request_window,
)
from app.api.problems import problem_responses
from app.domain import NO_L4_INPUT, ZtunnelCount
from app.graph.cost import CostModel, ProxyFigure
from app.graph.queries import GraphQueries
from app.settings import Settings


def cost_model(settings: Settings, zone_sources: tuple[str, ...] = ()) -> CostModel:
    return CostModel(
        cross_zone_usd_per_gb_out=settings.cost_cross_zone_usd_per_gb_out,
        cross_zone_usd_per_gb_in=settings.cost_cross_zone_usd_per_gb_in,
        reference_rps=settings.cost_reference_rps,
        sidecar=ProxyFigure(settings.cost_sidecar_cpu_millicores, settings.cost_sidecar_memory_mib),
        waypoint=ProxyFigure(
            settings.cost_waypoint_cpu_millicores, settings.cost_waypoint_memory_mib
        ),
        ztunnel=ProxyFigure(settings.cost_ztunnel_cpu_millicores, settings.cost_ztunnel_memory_mib),
        zone_sources=zone_sources,
    )


def build_cost_router(
    queries: GraphQueries,
    model: CostModel,
    ztunnels: Callable[[], ZtunnelCount] = lambda: NO_L4_INPUT,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    router = APIRouter(tags=["cost"], responses=problem_responses(400, 401, 422))

    @router.get(
        "/cost",
        response_model=CostOut,
        summary="Cross-zone bytes and their price, waypoint detours, proxy CPU/memory: "
        "ambient as deployed beside sidecars (estimates that name their inputs)",
    )
    async def cost(
        namespace: NamespaceParam = None,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        counted = ztunnels()
        return JSONResponse(await run_in_threadpool(queries.cost, w, namespace, model, counted))

    @router.get(
        "/advisor",
        response_model=AdvisorOut,
        summary="Where a waypoint buys most visibility per cost; the cross-zone bytes existing "
        "waypoints cause and what a zone-local replica would remove",
    )
    async def advisor(
        namespace: NamespaceParam = None,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        limit: PageSizeParam = 100,
        offset: OffsetParam = 0,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        return JSONResponse(
            await run_in_threadpool(queries.advisor, w, namespace, model, limit, offset)
        )

    return router
