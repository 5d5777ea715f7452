"""Grafana data frames (DataFrame DTO: `name`, `refId`, `meta`, `fields[{name,type,config,values}]`).

Node Graph contract (grafana public/app/plugins/panel/nodeGraph/utils.ts): nodes need `id`;
edges need `id`, `source`, `target`; every edge endpoint must be a node id (a dangling edge
crashes the panel); `arc__*` values of a node sum to 1; no NaN/Infinity (the DTO path cannot
encode them), so non-finite numbers become null. Field names are lowercase.
"""

from __future__ import annotations

import math
from typing import Any

from app.domain import Coverage
from app.graph.export import node_rates, rates_note
from app.graph.model import Graph, GraphEdge

NODE_GRAPH_META = {"preferredVisualisationType": "nodeGraph"}
GREEN, RED, ORANGE, GREY = "#73BF69", "#F2495C", "#FF9830", "#8e8e8e"


def field(name: str, values: list[Any], type_: str = "string", **config: Any) -> dict[str, Any]:
    clean = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    out: dict[str, Any] = {"name": name, "type": type_, "values": clean}
    if config:
        out["config"] = config
    return out


def frame(
    name: str, ref_id: str, fields: list[dict[str, Any]], meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "refId": ref_id, "fields": fields}
    if meta:
        out["meta"] = meta
    return out


def rates_meta(graph: Graph, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """`meta` with a notice saying what the frame's rates divide by (Grafana shows
    QueryResultMeta notices on the panel)."""
    return {**(meta or {}), "notices": [{"severity": "info", "text": rates_note(graph)}]}


def _rate_text(rps: float) -> str:
    return f"{rps:.2f} req/s" if rps else ""


def _bytes_rate_text(bytes_per_s: float) -> str:
    for unit in ("B/s", "KiB/s", "MiB/s"):
        if bytes_per_s < 1024 or unit == "MiB/s":
            return f"{bytes_per_s:.1f} {unit}"
        bytes_per_s /= 1024
    return ""  # pragma: no cover


def _edge_mainstat(edge: GraphEdge, graph: Graph) -> str:
    if edge.l7 is not None and edge.l7.requests:
        return _rate_text(graph.rps(edge.l7.requests))
    if edge.l4 is not None:
        return _bytes_rate_text(edge.l4.bytes_total / graph.rate_s)
    return ""


def node_graph_frames(graph: Graph, ref_id: str = "A") -> list[dict[str, Any]]:
    rates = node_rates(graph)
    node_ids = sorted(graph.nodes)
    errors_in: dict[str, int] = {n: 0 for n in node_ids}
    requests_in: dict[str, int] = {n: 0 for n in node_ids}
    for edge in graph.edges:
        if edge.l7 is not None:
            requests_in[edge.target] += edge.l7.requests
            errors_in[edge.target] += edge.l7.errors
    success, failed = [], []
    for node_id in node_ids:
        total = requests_in[node_id]
        error_share = errors_in[node_id] / total if total else 0.0
        failed.append(round(error_share, 6))
        success.append(round(1.0 - round(error_share, 6), 6))  # sums to exactly 1 with `failed`
    nodes = frame(
        "nodes",
        ref_id,
        [
            field("id", node_ids),
            field("title", [graph.nodes[n].name for n in node_ids]),
            field(
                "subtitle",
                [f"{graph.nodes[n].namespace} ({graph.nodes[n].kind.value})" for n in node_ids],
            ),
            field(
                "mainstat",
                [_rate_text(float(rates[n]["rps_in"] or 0)) for n in node_ids],
                displayName="Inbound",
            ),
            field(
                "secondarystat",
                [
                    f"{100 * f:.1f}% errors" if requests_in[n] else ""
                    for n, f in zip(node_ids, failed, strict=True)
                ],
                displayName="Errors",
            ),
            field(
                "arc__success",
                success,
                "number",
                displayName="Success",
                color={"mode": "fixed", "fixedColor": "green"},
            ),
            field(
                "arc__failed",
                failed,
                "number",
                displayName="Failed",
                color={"mode": "fixed", "fixedColor": "red"},
            ),
            field(
                "detail__kind", [graph.nodes[n].kind.value for n in node_ids], displayName="Kind"
            ),
            field(
                "detail__rps_out",
                [rates[n]["rps_out"] for n in node_ids],
                "number",
                displayName="Outbound req/s",
            ),
            field(
                "detail__bytes_in",
                [rates[n]["bytes_in"] for n in node_ids],
                "number",
                displayName="L4 bytes in",
            ),
        ],
        rates_meta(graph, NODE_GRAPH_META),
    )
    edges = sorted(graph.edges, key=lambda e: e.id)

    def l7(edge: GraphEdge, attr: str) -> Any:
        if edge.l7 is None or not edge.l7.requests:
            return None
        return getattr(edge.l7, attr)

    edge_frame = frame(
        "edges",
        ref_id,
        [
            field("id", [e.id for e in edges]),
            field("source", [e.source for e in edges]),
            field("target", [e.target for e in edges]),
            field("mainstat", [_edge_mainstat(e, graph) for e in edges]),
            field(
                "secondarystat",
                [_edge_secondarystat(e) for e in edges],
            ),
            field("detail__coverage", [e.coverage.value for e in edges], displayName="Coverage"),
            field(
                "detail__error_rate",
                [l7(e, "error_rate") for e in edges],
                "number",
                displayName="Error ratio",
            ),
            field(
                "detail__p50_ms", [l7(e, "p50_ms") for e in edges], "number", displayName="p50 ms"
            ),
            field(
                "detail__p99_ms", [l7(e, "p99_ms") for e in edges], "number", displayName="p99 ms"
            ),
            field(
                "detail__tcp_bytes",
                [e.l4.bytes_total if e.l4 else None for e in edges],
                "number",
                displayName="L4 bytes",
            ),
            field(
                "detail__mtls_share",
                [e.l4.mtls_share if e.l4 else None for e in edges],
                "number",
                displayName="mTLS share",
            ),
            field(
                "detail__counts",
                [_counts_text(e) for e in edges],
                displayName="L7 counts",
            ),
            field(
                "detail__connections_failed",
                [e.l4.connections_failed if e.l4 else None for e in edges],
                "number",
                displayName="Failed connections",
            ),
            field(
                "detail__failures",
                [_failures_text(e) for e in edges],
                displayName="Failures by flag",
            ),
            field(
                "detail__cross_zone_bytes",
                [e.zones.cross_zone_bytes if e.zones else None for e in edges],
                "number",
                displayName="Cross-zone bytes",
            ),
            field(
                "detail__cross_zone_share",
                [e.zones.cross_zone_share if e.zones else None for e in edges],
                "number",
                displayName="Cross-zone share",
            ),
            field(
                "detail__detour_bytes",
                [e.zones.detour_bytes if e.zones else None for e in edges],
                "number",
                displayName="Waypoint detour bytes",
            ),
            field("detail__via", [e.via for e in edges], displayName="Via waypoint"),
            field("thickness", [_thickness(e, graph) for e in edges], "number"),
            field("color", [_color(e) for e in edges]),
            field(
                "strokedasharray", ["4 4" if e.coverage is Coverage.L4_ONLY else "" for e in edges]
            ),
        ],
        NODE_GRAPH_META,
    )
    return [nodes, edge_frame]


def _counts_text(edge: GraphEdge) -> str:
    """`exact` (waypoint request metrics) or `sampled` (span counts), "" without L7."""
    if edge.l7 is None or not edge.l7.requests:
        return ""
    return "exact" if edge.l7.exact else "sampled"


def _failures_text(edge: GraphEdge) -> str:
    if edge.l4 is None or not edge.l4.connections_failed:
        return ""
    return ", ".join(f"{flag} {n}" for flag, n in edge.l4.failures)


def _edge_secondarystat(edge: GraphEdge) -> str:
    p99 = edge.l7.p99_ms if edge.l7 is not None else None
    if p99 is not None and math.isfinite(p99):
        return f"p99 {p99:.0f} ms"
    if edge.l4 is not None and edge.l4.connections_failed:
        return f"{edge.l4.connections_failed} conn failed"
    return edge.coverage.value


def _thickness(edge: GraphEdge, graph: Graph) -> int:
    rps = graph.rps(edge.l7.requests) if edge.l7 else 0.0
    return 1 if rps <= 0 else min(8, 1 + int(math.log10(1 + rps) * 2))


def _color(edge: GraphEdge) -> str:
    if edge.l7 is not None and edge.l7.requests and edge.l7.error_rate >= 0.05:
        return RED
    l4 = edge.l4
    if l4 is not None and l4.connections_failed >= 0.05 * max(l4.connections_opened, 1):
        return RED
    if edge.plaintext:
        return ORANGE
    if edge.coverage is Coverage.L4_ONLY:
        return GREY
    return GREEN
