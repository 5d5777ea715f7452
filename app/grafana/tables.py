"""Table, time-series and annotation frames for the JSON datasource (pure)."""

from __future__ import annotations

from typing import Any

from app.domain import Coverage
from app.grafana.frames import field, frame, rates_meta
from app.grafana.requests import Selection
from app.graph.model import Graph, GraphEdge

UNITS = {
    "edge_request_rate": "reqps",
    "edge_error_rate": "percentunit",
    "edge_latency_p50": "ms",
    "edge_latency_p95": "ms",
    "edge_latency_p99": "ms",
    "edge_tcp_bytes": "Bps",
}


def select_edges(graph: Graph, sel: Selection) -> list[GraphEdge]:
    def keep(edge: GraphEdge) -> bool:
        spaces = {edge.source.partition("/")[0], edge.target.partition("/")[0]}
        if sel.namespaces and not spaces & sel.namespaces:
            return False
        if sel.excluded_namespaces and spaces <= sel.excluded_namespaces:
            return False
        if (
            sel.services
            and not {
                edge.source,
                edge.target,
                edge.source.partition("/")[2],
                edge.target.partition("/")[2],
            }
            & sel.services
        ):
            return False
        return sel.coverage is None or edge.coverage is sel.coverage

    return [e for e in graph.edges if keep(e)]


def restrict(graph: Graph, edges: list[GraphEdge]) -> Graph:
    used = {n for e in edges for n in (e.source, e.target)}
    if edges:
        used |= {e.via for e in edges if e.via and e.via in graph.nodes}
    return Graph(
        {k: v for k, v in graph.nodes.items() if k in used},
        edges,
        graph.window_start_s,
        graph.window_end_s,
        graph.observed_from_s,
    )


def edges_table(
    graph: Graph, edges: list[GraphEdge], ref_id: str, name: str = "edges"
) -> dict[str, Any]:
    rows = sorted(edges, key=lambda e: (-(e.l7.requests if e.l7 else 0), e.id))
    return frame(
        name,
        ref_id,
        [
            field("edge", [e.id for e in rows]),
            field("source", [e.source for e in rows]),
            field("target", [e.target for e in rows]),
            field("coverage", [e.coverage.value for e in rows]),
            field("via", [e.via for e in rows]),
            field(
                "rps",
                [graph.rps(e.l7.requests) if e.l7 else None for e in rows],
                "number",
                unit="reqps",
            ),
            field(
                "error_rate",
                [e.l7.error_rate if e.l7 and e.l7.requests else None for e in rows],
                "number",
                unit="percentunit",
            ),
            field("p99_ms", [e.l7.p99_ms if e.l7 else None for e in rows], "number", unit="ms"),
            field(
                "tcp_bytes",
                [e.l4.bytes_total if e.l4 else None for e in rows],
                "number",
                unit="bytes",
            ),
            field(
                "mtls_share",
                [e.l4.mtls_share if e.l4 else None for e in rows],
                "number",
                unit="percentunit",
            ),
            field(
                "cross_zone_bytes",
                [e.zones.cross_zone_bytes if e.zones else None for e in rows],
                "number",
                unit="bytes",
            ),
            field(
                "detour_bytes",
                [e.zones.detour_bytes if e.zones else None for e in rows],
                "number",
                unit="bytes",
            ),
        ],
        rates_meta(graph),
    )


def blind_spots_table(edges: list[GraphEdge], ref_id: str) -> dict[str, Any]:
    blind = [e for e in edges if e.coverage is Coverage.L4_ONLY and e.l4 is not None]
    blind.sort(key=lambda e: (-e.l4.bytes_total if e.l4 else 0, e.id))
    return frame(
        "blind_spots",
        ref_id,
        [
            field("edge", [e.id for e in blind]),
            field("source", [e.source for e in blind]),
            field("target", [e.target for e in blind]),
            field(
                "bytes",
                [e.l4.bytes_total if e.l4 else 0 for e in blind],
                "number",
                unit="bytes",
            ),
            field("connections", [e.l4.connections_opened if e.l4 else 0 for e in blind], "number"),
            field(
                "mtls_share",
                [e.l4.mtls_share if e.l4 else None for e in blind],
                "number",
                unit="percentunit",
            ),
        ],
    )


def series_frames(
    metric: str, series: dict[str, list[tuple[int, float | None]]], ref_id: str
) -> list[dict[str, Any]]:
    frames = []
    for edge_id in sorted(series):
        points = series[edge_id]
        frames.append(
            frame(
                edge_id,
                ref_id,
                [
                    field("Time", [t for t, _ in points], "time"),
                    field(
                        "Value",
                        [v for _, v in points],
                        "number",
                        displayName=edge_id,
                        unit=UNITS.get(metric, ""),
                    ),
                ],
            )
        )
    return frames


def annotations_frame(events: list[dict[str, Any]], ref_id: str) -> dict[str, Any]:
    events = sorted(events, key=lambda e: (e["time"], e["title"]))
    return frame(
        "annotations",
        ref_id,
        [
            field("time", [e["time"] for e in events], "time"),
            field("timeEnd", [e["time_end"] for e in events], "time"),
            field("title", [e["title"] for e in events]),
            field("text", [e["text"] for e in events]),
            field("tags", [",".join(e["tags"]) for e in events]),
        ],
    )
