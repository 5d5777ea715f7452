"""Graph exports: JSON (the API's shape), Cytoscape JSON, Graphviz DOT, Mermaid, a terminal table."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.domain import Coverage
from app.graph.edge_json import edge_json, finite
from app.graph.model import Graph, GraphEdge, GraphNode, L4Stats, L7Stats, rate_seconds


def node_rates(graph: Graph) -> dict[str, dict[str, float | int | None]]:
    """Per node: requests per second in and out, errors in, bytes in and out (the sums of its
    edges' `graph.rps`, in edge order)."""
    rate_s = graph.rate_s
    # rps in, rps out, errors in, bytes in, bytes out
    sums: dict[str, list[Any]] = {node_id: [0.0, 0.0, 0, 0, 0] for node_id in graph.nodes}
    for edge in graph.edges:
        out, into = sums[edge.source], sums[edge.target]
        l7 = edge.l7
        if l7 is not None:
            rps = l7.requests / rate_s  # graph.rps
            out[1] += rps
            into[0] += rps
            into[2] += l7.errors
        if edge.l4 is not None:
            traffic = edge.l4.bytes_total
            out[4] += traffic
            into[3] += traffic
    return {
        node_id: {
            "rps_in": finite(rps_in, 4),
            "rps_out": finite(rps_out, 4),
            "errors_in": errors_in,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
        }
        for node_id, (rps_in, rps_out, errors_in, bytes_in, bytes_out) in sums.items()
    }


def rfc3339(seconds: float) -> str:
    """Epoch seconds as an RFC 3339 UTC time (`…Z`)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def window_json(
    start_s: float, end_s: float, observed_from_s: float | None = None
) -> dict[str, Any]:
    """A window as every JSON answer shows it, with the observed part its rates divide by."""
    observed = start_s if observed_from_s is None else observed_from_s
    return {
        "from": rfc3339(start_s),
        "to": rfc3339(end_s),
        "seconds": round(end_s - start_s, 3),
        "observed_from": rfc3339(observed),
        "observed_seconds": round(rate_seconds(observed, end_s), 3),
    }


def rates_note(graph: Graph) -> str:
    """What every rate of `graph` divides by, in words (tables, Grafana notices, the CLI)."""
    window_s = graph.window_end_s - graph.window_start_s
    if graph.rate_s >= window_s - 0.5:
        return f"rates per second over the whole {_duration(window_s)} window"
    return (
        f"rates per second over the observed {_duration(graph.rate_s)} of the "
        f"{_duration(window_s)} window (since {rfc3339(graph.rate_start_s)})"
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 < 1:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60 and seconds % 60 < 1:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def to_json(graph: Graph) -> dict[str, Any]:
    rates = node_rates(graph)
    return {
        "window": window_json(graph.window_start_s, graph.window_end_s, graph.rate_start_s),
        "nodes": [
            {
                "id": n.id,
                "namespace": n.namespace,
                "name": n.name,
                "kind": n.kind.value,
                "aliases": list(n.aliases),
                **rates[n.id],
            }
            for n in sorted(graph.nodes.values(), key=lambda n: n.id)
        ],
        "edges": [edge_json(e, graph) for e in sorted(graph.edges, key=lambda e: e.id)],
    }


def to_cytoscape(graph: Graph) -> dict[str, Any]:
    doc = to_json(graph)
    return {
        "elements": {
            "nodes": [{"data": node} for node in doc["nodes"]],
            "edges": [{"data": edge} for edge in doc["edges"]],
        },
        "window": doc["window"],
    }


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edge_label(edge: GraphEdge, graph: Graph) -> str:
    parts = []
    if edge.l7 is not None and edge.l7.requests:
        parts.append(f"{graph.rps(edge.l7.requests):.2f} rps")
        if edge.l7.errors:
            parts.append(f"{100 * edge.l7.error_rate:.1f}% err")
        if edge.l7.p99_ms is not None:
            parts.append(f"p99 {edge.l7.p99_ms:.0f}ms")
    if edge.l4 is not None and edge.l4.has_traffic:
        parts.append(_human_bytes(edge.l4.bytes_total))
    cross = cross_zone_text(edge)
    if cross != "-":
        parts.append(f"cross-zone {cross}")
    parts.append(edge.coverage.value)
    if edge.via:
        parts.append(f"via {edge.via}")
    return ", ".join(parts)


def cross_zone_text(edge: GraphEdge) -> str:
    """`<share of bytes crossing a zone>% <cross-zone bytes>` (`+<detour> detour` through a
    waypoint elsewhere), "-" when no zone is known."""
    z = edge.zones
    if z is None or z.cross_zone_share is None:
        return "-"
    text = f"{100 * z.cross_zone_share:.0f}% {_human_bytes(z.cross_zone_bytes)}"
    if z.detour_bytes:
        text += f" ({_human_bytes(z.detour_bytes)} detour)"
    return text


def to_dot(graph: Graph) -> str:
    lines = ["digraph meshstitch {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        shape = {"waypoint": "hexagon", "external": "ellipse", "unknown": "ellipse"}.get(
            node.kind.value, "box"
        )
        lines.append(f"  {_dot_quote(node.id)} [label={_dot_quote(node.id)}, shape={shape}];")
    for edge in sorted(graph.edges, key=lambda e: e.id):
        style = "dashed" if edge.coverage is Coverage.L4_ONLY else "solid"
        lines.append(
            f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)} "
            f"[label={_dot_quote(_edge_label(edge, graph))}, style={style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(node_id: str, ids: dict[str, str]) -> str:
    if node_id not in ids:
        ids[node_id] = "n" + str(len(ids)) + "_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)[:40]
    return ids[node_id]


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        open_, close = (
            ("{{", "}}")
            if node.kind.value == "waypoint"
            else ("([", "])")
            if node.kind.value in {"external", "unknown"}
            else ("[", "]")
        )
        lines.append(f'  {_mermaid_id(node.id, ids)}{open_}"{_mermaid_text(node.id)}"{close}')
    for edge in sorted(graph.edges, key=lambda e: e.id):
        arrow = "-.->" if edge.coverage is Coverage.L4_ONLY else "-->"
        label = _mermaid_text(_edge_label(edge, graph))
        lines.append(
            f'  {_mermaid_id(edge.source, ids)} {arrow}|"{label}"| {_mermaid_id(edge.target, ids)}'
        )
    return "\n".join(lines) + "\n"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _counts(l7: L7Stats | None) -> str:
    """`exact` (waypoint metrics) or `sampled` with the sampling share, e.g. `sampled 10%`."""
    if l7 is None or not l7.requests:
        return "-"
    if l7.exact:
        return "exact"
    share = l7.sampling_share
    return "sampled" if share is None else f"sampled {100 * share:.3g}%"


def _failures(l4: L4Stats | None) -> str:
    """Failed connections by flag, e.g. `3 DENY`, `5 CONNECT,2 DENY`."""
    if l4 is None or not l4.connections_failed:
        return "-"
    return ",".join(f"{n} {flag}" for flag, n in sorted(l4.failures, key=lambda x: (-x[1], x[0])))


def to_table(graph: Graph) -> str:
    """A readable terminal table of the edges, busiest first."""
    header = (
        "SOURCE",
        "TARGET",
        "COVERAGE",
        "RPS",
        "ERR%",
        "P50ms",
        "P99ms",
        "COUNTS",
        "L4 BYTES",
        "MTLS",
        "FAILED",
        "CROSS-ZONE",
        "VIA",
    )
    rows = [header]
    for edge in sorted(graph.edges, key=lambda e: (-(e.l7.requests if e.l7 else 0), e.id)):
        l7, l4 = edge.l7, edge.l4
        rows.append(
            (
                edge.source,
                edge.target,
                edge.coverage.value,
                f"{graph.rps(l7.requests):.2f}" if l7 and l7.requests else "-",
                f"{100 * l7.error_rate:.1f}" if l7 and l7.requests else "-",
                f"{l7.p50_ms:.1f}" if l7 and l7.p50_ms is not None else "-",
                f"{l7.p99_ms:.1f}" if l7 and l7.p99_ms is not None else "-",
                _counts(l7),
                _human_bytes(l4.bytes_total) if l4 and l4.has_traffic else "-",
                f"{100 * (l4.mtls_share or 0):.0f}%" if l4 and l4.mtls_share is not None else "-",
                _failures(l4),
                cross_zone_text(edge),
                edge.via or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join([*lines, "", f"RPS: {rates_note(graph)}"]) + "\n"


__all__ = ["GraphNode", "edge_json", "to_cytoscape", "to_dot", "to_json", "to_mermaid", "to_table"]
