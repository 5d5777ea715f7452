"""Graph routes: /graph, /services, /edges, /coverage, /triage, /traces/{trace_id}.

Handlers only parse parameters and pick a format; every query lives in app/graph/queries.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from app.api.fast_json import FastJSONResponse
from app.api.problems import Problem, problem_responses
from app.api.schemas import CoverageOut, EdgesOut, GraphOut, ServicesOut, TraceOut, TriageOut
from app.domain import Coverage, Level
from app.graph.export import to_cytoscape, to_dot, to_json, to_mermaid, to_table
from app.graph.neighbourhood import Direction
from app.graph.page import Page
from app.graph.queries import GraphQueries, UnknownNode
from app.graph.window import Window, WindowError, resolve_window


class GraphFormat(StrEnum):
    JSON = "json"
    NODEGRAPH = "nodegraph"
    CYTOSCAPE = "cytoscape"
    DOT = "dot"
    MERMAID = "mermaid"
    TABLE = "table"


WindowParam = Annotated[
    str | None, Query(description="duration ending now, e.g. 15m, 1h (default 15m)")
]
FromParam = Annotated[str | None, Query(alias="from", description="RFC 3339 or epoch milliseconds")]
ToParam = Annotated[str | None, Query(description="RFC 3339 or epoch milliseconds (default now)")]
LevelParam = Annotated[Level, Query(description="graph of services or of workloads")]
OffsetParam = Annotated[
    int,
    Query(ge=0, le=10_000_000, description="items to skip (`page.next_offset` of the last page)"),
]
PageSizeParam = Annotated[int, Query(ge=1, le=10_000, description="page size")]
NamespaceParam = Annotated[
    str | None, Query(max_length=253, description="restrict to one namespace")
]


def request_window(
    clock: Callable[[], float], window: str | None, from_: str | None, to: str | None
) -> Window:
    try:
        return resolve_window(clock(), window, from_, to)
    except WindowError as exc:
        raise Problem(400, "Invalid window", str(exc)) from None


def _unknown(exc: UnknownNode) -> Problem:
    return Problem(404, "Unknown service", exc.describe("this window"), suggestions=exc.suggestions)


def build_graph_router(queries: GraphQueries, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(tags=["graph"], responses=problem_responses(400, 401, 422))

    @router.get(
        "/graph",
        response_model=GraphOut,
        summary="The service graph around a service (or of a namespace, or of the whole mesh)",
        responses={
            **problem_responses(404),
            200: {
                "description": "The graph in the requested format",
                "content": {
                    "application/json": {},
                    "text/vnd.graphviz": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
        },
    )
    async def graph(
        service: Annotated[
            str | None, Query(max_length=512, description="service name or namespace/name")
        ] = None,
        namespace: NamespaceParam = None,
        depth: Annotated[int, Query(ge=1, le=6)] = 1,
        direction: Direction = Direction.BOTH,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        level: LevelParam = Level.SERVICE,
        coverage: Annotated[
            Coverage | None, Query(description="keep only edges of this class")
        ] = None,
        format: GraphFormat = GraphFormat.JSON,
        limit: Annotated[
            int, Query(ge=1, le=50_000, description="most edges kept, busiest first")
        ] = 2000,
        offset: OffsetParam = 0,
    ) -> Response:
        w = request_window(clock, window, from_, to)
        try:
            result, page = await run_in_threadpool(
                queries.graph_page,
                w,
                level,
                Page(limit, offset),
                service=service,
                namespace=namespace,
                depth=depth,
                direction=direction,
                coverage=coverage,
            )
        except UnknownNode as exc:
            raise _unknown(exc) from None
        # Formats without a place for it say the page's state in headers.
        headers = {
            "X-Total-Count": str(page["total"]),
            "X-Truncated": str(page["truncated"]).lower(),
        }
        if format is GraphFormat.DOT:
            return PlainTextResponse(
                to_dot(result), media_type="text/vnd.graphviz", headers=headers
            )
        if format is GraphFormat.MERMAID:
            return PlainTextResponse(to_mermaid(result), headers=headers)
        if format is GraphFormat.TABLE:
            return PlainTextResponse(to_table(result), headers=headers)
        if format is GraphFormat.CYTOSCAPE:
            return FastJSONResponse(to_cytoscape(result), headers=headers)
        if format is GraphFormat.NODEGRAPH:
            from app.grafana.frames import node_graph_frames

            return FastJSONResponse(node_graph_frames(result, ref_id="A"), headers=headers)
        return FastJSONResponse({**to_json(result), "page": page}, headers=headers)

    @router.get(
        "/services",
        response_model=ServicesOut,
        summary="Nodes seen in the window with summary rates",
    )
    async def services(
        namespace: NamespaceParam = None,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        level: LevelParam = Level.SERVICE,
        limit: PageSizeParam = 500,
        offset: OffsetParam = 0,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        return FastJSONResponse(
            await run_in_threadpool(queries.services, w, level, namespace, Page(limit, offset))
        )

    @router.get("/edges", response_model=EdgesOut, summary="Edges in the window, filtered")
    async def edges(
        namespace: NamespaceParam = None,
        coverage: Annotated[Coverage | None, Query()] = None,
        min_rps: Annotated[float, Query(ge=0, description="minimum L7 requests per second")] = 0.0,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        level: LevelParam = Level.SERVICE,
        limit: Annotated[
            int, Query(ge=1, le=50_000, description="page size, busiest first")
        ] = 1000,
        offset: OffsetParam = 0,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        return FastJSONResponse(
            await run_in_threadpool(
                queries.edges, w, level, namespace, coverage, min_rps, limit, offset
            )
        )

    @router.get(
        "/coverage",
        response_model=CoverageOut,
        summary="L4-only traffic ranked by volume: where a waypoint buys most visibility",
    )
    async def coverage_report(
        namespace: NamespaceParam = None,
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        limit: PageSizeParam = 100,
        offset: OffsetParam = 0,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        return FastJSONResponse(
            await run_in_threadpool(queries.coverage, w, namespace, limit, offset)
        )

    @router.get(
        "/triage",
        response_model=TriageOut,
        responses=problem_responses(404),
        summary="Ranked findings for a service: regressions vs baseline, new/vanished edges, blind spots, plaintext, blast radius",
    )
    async def triage(
        service: Annotated[str, Query(max_length=512)],
        window: WindowParam = None,
        from_: FromParam = None,
        to: ToParam = None,
        baseline: Annotated[
            str, Query(description="length of the baseline window just before the window")
        ] = "1h",
        depth: Annotated[int, Query(ge=1, le=6)] = 2,
    ) -> Any:
        w = request_window(clock, window, from_, to)
        try:
            baseline_s = resolve_window(w.end_s, window=baseline).seconds
        except WindowError as exc:
            raise Problem(400, "Invalid baseline", str(exc)) from None
        try:
            return FastJSONResponse(
                await run_in_threadpool(queries.triage, service, w, baseline_s, depth)
            )
        except UnknownNode as exc:
            raise _unknown(exc) from None

    @router.get(
        "/traces/{trace_id}",
        response_model=TraceOut,
        responses=problem_responses(404),
        summary="A trace's hops with the L4 context of each, and L4-only hops beside it",
    )
    async def trace(
        trace_id: Annotated[str, Path(pattern="^[0-9a-fA-F]{32}$", description="32 hex digits")],
    ) -> Any:
        result = await run_in_threadpool(queries.trace, trace_id.lower())
        if result is None:
            raise Problem(
                404,
                "Unknown trace",
                f"trace {trace_id.lower()} is neither an exemplar trace in the store nor among "
                "this process's recent hops (MESHSTITCH_RECENT_TRACE_HOPS)",
            )
        return FastJSONResponse(result)

    return router
