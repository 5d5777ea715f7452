"""The simpod-json-datasource API under /grafana (plugin ≥ 0.6; README, openapi.yaml, src/types.d.ts).

Routes raise their errors; `GrafanaRoute` (app/grafana/errors.py) answers `{"message": ...}`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.domain import NO_L4_INPUT, Coverage, ZtunnelCount
from app.grafana.catalog import TARGETS, TIME_SERIES_TARGETS, metric_configs
from app.grafana.cost_frames import advisor_frame, cost_frame, detours_frame
from app.grafana.errors import ERROR_RESPONSES, GrafanaRoute
from app.grafana.frames import node_graph_frames
from app.grafana.requests import (
    GrafanaRequestError,
    Selection,
    parse_payload,
    request_window,
    selection,
)
from app.grafana.tables import (
    annotations_frame,
    blind_spots_table,
    edges_table,
    restrict,
    select_edges,
    series_frames,
)
from app.graph import advisor
from app.graph.cost import CostModel, cost_report
from app.graph.model import Graph, GraphEdge
from app.graph.neighbourhood import Direction
from app.graph.queries import GraphQueries, busiest_first
from app.graph.window import Window

MAX_BODY_BYTES = 1 << 20
_BODY = {"content": {"application/json": {"schema": {"type": "object"}}}}
_ARRAY: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
    }
}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise GrafanaRequestError(f"request body larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GrafanaRequestError(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise GrafanaRequestError("request body must be a JSON object")
    return body


def build_grafana_router(
    queries: GraphQueries,
    clock: Callable[[], float] = time.time,
    model: CostModel | None = None,
    ztunnels: Callable[[], ZtunnelCount] = lambda: NO_L4_INPUT,
) -> APIRouter:
    cost_inputs = CostInputs(model or CostModel(), ztunnels)
    router = APIRouter(prefix="/grafana", tags=["grafana"], route_class=GrafanaRoute)

    @router.get("", summary="Save & test: the datasource is reachable")
    @router.get("/", include_in_schema=False)
    async def test_connection() -> dict[str, str]:
        return {"status": "ok", "message": "meshstitch JSON datasource is working"}

    @router.post(
        "/metrics",
        summary="Targets and their payload options",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def metrics(request: Request) -> JSONResponse:
        await _json_body(request)
        return JSONResponse(metric_configs())

    @router.post(
        "/metric-payload-options",
        summary="Options of a select payload",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def payload_options(request: Request) -> JSONResponse:
        body = await _json_body(request)
        name = body.get("name")
        window = Window(clock() - 3600, clock())
        nodes = await run_in_threadpool(queries.node_list, window, None)
        if name == "namespace":
            values = sorted({n.namespace for n in nodes})
        elif name == "service":
            values = sorted(n.id for n in nodes)
        else:
            values = []
        return JSONResponse([{"label": v, "value": v} for v in values])

    @router.post(
        "/variable",
        summary="Values of a dashboard variable",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def variable(request: Request) -> JSONResponse:
        body = await _json_body(request)
        payload = parse_payload(body.get("payload"))
        window = request_window(body, clock(), default_s=86400)
        target = str(payload.get("target", "")).strip()
        kinds = {
            "namespaces": None,
            "services": "service",
            "workloads": "workload",
            "waypoints": "waypoint",
        }
        if target not in kinds:
            raise GrafanaRequestError(
                f"unknown variable query {target!r}; use one of {', '.join(kinds)}"
            )
        nodes = await run_in_threadpool(queries.node_list, window, kinds[target])
        namespaces = set(as_filter(payload.get("namespace")))
        if target == "namespaces":
            values = sorted({n.namespace for n in nodes})
        else:
            values = sorted(n.id for n in nodes if not namespaces or n.namespace in namespaces)
        return JSONResponse([{"__text": v, "__value": v} for v in values])

    @router.post(
        "/tag-keys",
        summary="Ad hoc filter keys",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def tag_keys() -> JSONResponse:
        return JSONResponse(
            [{"type": "string", "text": k} for k in ("namespace", "service", "coverage")]
        )

    @router.post(
        "/tag-values",
        summary="Ad hoc filter values for a key",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def tag_values(request: Request) -> JSONResponse:
        body = await _json_body(request)
        key = body.get("key")
        if key == "coverage":
            return JSONResponse([{"text": c.value} for c in Coverage])
        nodes = await run_in_threadpool(queries.node_list, Window(clock() - 86400, clock()), None)
        if key == "namespace":
            return JSONResponse([{"text": v} for v in sorted({n.namespace for n in nodes})])
        if key == "service":
            return JSONResponse([{"text": v} for v in sorted(n.id for n in nodes)])
        raise GrafanaRequestError(f"unknown tag key {key!r}; use namespace, service or coverage")

    @router.post(
        "/query",
        summary="Data frames for every target (panels and annotations)",
        openapi_extra={"requestBody": _BODY},
        responses={**_ARRAY, **ERROR_RESPONSES},
    )
    async def query(request: Request) -> JSONResponse:
        body = await _json_body(request)
        window = request_window(body, clock())
        targets = body.get("targets") or []
        if not isinstance(targets, list):
            raise GrafanaRequestError("targets must be a list")
        frames: list[dict[str, Any]] = []
        for target in targets:
            if (
                not isinstance(target, dict)
                or target.get("hide") is True
                or not target.get("target")
            ):
                continue
            frames.extend(
                await run_in_threadpool(
                    _answer, queries, target, body.get("filters") or [], window, cost_inputs
                )
            )
        return JSONResponse(frames)

    return router


def as_filter(value: Any) -> list[str]:
    from app.grafana.requests import as_list

    return as_list(value)


def _answer(
    queries: GraphQueries,
    target: dict[str, Any],
    filters: list[Any],
    window: Window,
    model: CostInputs,
) -> list[dict[str, Any]]:
    name = str(target["target"])
    ref_id = str(target.get("refId", "A"))
    if name not in TARGETS:
        raise GrafanaRequestError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    sel = selection(parse_payload(target.get("payload")), filters)
    if name == "graph":
        graph = _graph(queries, sel, window)
        shown = _busiest(graph.edges, sel.limit)
        frames = node_graph_frames(
            restrict(graph, shown) if shown is not graph.edges else graph, ref_id
        )
        return _say_truncated(frames, len(shown), len(graph.edges))
    whole = queries.whole_graph(window, sel.level)
    edges = select_edges(whole, sel)
    if name in COST_TARGETS:
        return [_cost_frame(name, model.model, model.ztunnels(), whole, edges, ref_id)]
    if name in {"edges", "blind_spots", "new_edges"}:
        if name == "blind_spots":
            edges = [e for e in edges if e.coverage is Coverage.L4_ONLY and e.l4 is not None]
        if name == "new_edges":
            before = queries.whole_graph(window.shifted_back(window.seconds), sel.level)
            known = {e.id for e in before.edges}
            edges = [e for e in edges if e.id not in known]
        shown = _busiest(edges, sel.limit)
        if name == "blind_spots":
            table = blind_spots_table(shown, ref_id)
        else:
            table = edges_table(whole, shown, ref_id, name=name)
        return _say_truncated([table], len(shown), len(edges))
    if name == "annotations":
        return [
            annotations_frame(queries.edge_events(window, sel.level, {e.id for e in edges}), ref_id)
        ]
    assert name in TIME_SERIES_TARGETS
    # Only edges with the series' layer: a blind spot's request rate is unknown, not 0 req/s.
    if name == "edge_tcp_bytes":
        layer = [e for e in edges if e.l4 is not None]
        ranked = sorted(layer, key=lambda e: (-_l4_volume(e), e.id))
    else:
        layer = [e for e in edges if e.l7 is not None and e.l7.requests]
        ranked = sorted(layer, key=lambda e: (-(e.l7.requests if e.l7 else 0), e.id))
    chosen = {e.id for e in ranked[: sel.top]}
    return series_frames(name, queries.edge_series(window, sel.level, chosen, name), ref_id)


COST_TARGETS = ("cost", "waypoint_advisor", "waypoint_detours")


class CostInputs(NamedTuple):
    model: CostModel
    ztunnels: Callable[[], ZtunnelCount]  # the L4 input's ztunnel count (app/poll/poller.py)


def _cost_frame(
    name: str,
    model: CostModel,
    ztunnels: ZtunnelCount,
    whole: Graph,
    edges: list[GraphEdge],
    ref_id: str,
) -> dict[str, Any]:
    """The cost targets over the selected edges."""
    if name == "cost":
        return cost_frame(cost_report(model, whole, edges, ztunnels), ref_id)
    if name == "waypoint_advisor":
        return advisor_frame(advisor.candidates(model, whole, edges), ref_id)
    return detours_frame(advisor.existing(model, edges), ref_id)


def _busiest(edges: list[GraphEdge], limit: int) -> list[GraphEdge]:
    """The `limit` busiest edges (all of them, in their order, when they fit)."""
    return edges if len(edges) <= limit else sorted(edges, key=busiest_first)[:limit]


def _say_truncated(frames: list[dict[str, Any]], shown: int, total: int) -> list[dict[str, Any]]:
    """A warning notice on each frame when edges were left out (Grafana shows it on the panel)."""
    if shown < total:
        text = (
            f"showing the busiest {shown:,} of {total:,} edges; raise the payload's limit "
            "or narrow the query (namespace, service, coverage)"
        )
        for item in frames:
            meta = item.setdefault("meta", {})
            meta.setdefault("notices", []).append({"severity": "warning", "text": text})
    return frames


def _l4_volume(edge: GraphEdge) -> int:
    return edge.l4.bytes_total if edge.l4 is not None else 0


def _graph(queries: GraphQueries, sel: Selection, window: Window) -> Any:
    if sel.services:  # several services (a multi-value variable): their neighbourhoods together
        nodes: dict[str, Any] = {}
        edges: dict[str, GraphEdge] = {}
        for service in sorted(sel.services):
            part = queries.graph(
                window,
                sel.level,
                service=service,
                namespace=None,
                depth=sel.depth,
                direction=Direction(sel.direction),
                coverage=sel.coverage,
            )
            nodes.update(part.nodes)
            edges.update((e.id, e) for e in part.edges)
        graph = Graph(
            nodes, list(edges.values()), window.start_s, window.end_s, queries.observed_from(window)
        )
    else:
        graph = queries.whole_graph(window, sel.level)
    return restrict(
        graph,
        select_edges(
            graph,
            Selection(
                namespaces=sel.namespaces,
                excluded_namespaces=sel.excluded_namespaces,
                coverage=sel.coverage,
                level=sel.level,
            ),
        ),
    )
