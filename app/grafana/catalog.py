"""The targets the Grafana JSON datasource offers (`POST /grafana/metrics`) and their payloads."""

from __future__ import annotations

from typing import Any

from app.domain import Coverage

TIME_SERIES_TARGETS = {
    "edge_request_rate": "L7 requests per second per edge",
    "edge_error_rate": "L7 error ratio per edge",
    "edge_latency_p50": "L7 p50 latency per edge (ms)",
    "edge_latency_p95": "L7 p95 latency per edge (ms)",
    "edge_latency_p99": "L7 p99 latency per edge (ms)",
    "edge_tcp_bytes": "L4 bytes per second per edge (both directions)",
}
TABLE_TARGETS = {
    "graph": "Service graph (Node Graph panel: nodes and edges frames)",
    "edges": "Edges with both evidence layers (table)",
    "blind_spots": "L4-only traffic ranked by volume (table)",
    "new_edges": "Edges present now but not in the previous window of the same length (table)",
    "annotations": "Events: new edges, edges turning L4-only, error spikes (annotation frame)",
    "cost": "Estimated cost: ambient proxies beside sidecars, cross-zone bytes priced (table)",
    "waypoint_advisor": "L4-only services ranked by visibility a waypoint buys per cost (table)",
    "waypoint_detours": "Cross-zone bytes existing waypoints cause (table)",
}
TARGETS = {**TABLE_TARGETS, **TIME_SERIES_TARGETS}

_COMMON_PAYLOADS: list[dict[str, Any]] = [
    {
        "name": "namespace",
        "label": "Namespace",
        "type": "multi-select",
        "reloadMetric": False,
        "width": 20,
    },
    {
        "name": "service",
        "label": "Service",
        "type": "input",
        "placeholder": "namespace/name or name",
        "width": 20,
    },
    {
        "name": "coverage",
        "label": "Coverage",
        "type": "select",
        "options": [
            {"label": "any", "value": ""},
            {"label": "full", "value": Coverage.FULL.value},
            {"label": "L4 only", "value": Coverage.L4_ONLY.value},
            {"label": "L7 only", "value": Coverage.L7_ONLY.value},
        ],
    },
    {
        "name": "level",
        "label": "Level",
        "type": "select",
        "options": [
            {"label": "service", "value": "service"},
            {"label": "workload", "value": "workload"},
        ],
    },
]
_LIMIT = {"name": "limit", "label": "Most edges", "type": "input", "placeholder": "2000"}
_TABLE_PAYLOADS = [*_COMMON_PAYLOADS, _LIMIT]
_GRAPH_PAYLOADS = [
    *_COMMON_PAYLOADS,
    _LIMIT,
    {"name": "depth", "label": "Depth", "type": "input", "placeholder": "1", "width": 8},
    {
        "name": "direction",
        "label": "Direction",
        "type": "select",
        "options": [{"label": d, "value": d} for d in ("both", "upstream", "downstream")],
    },
]
_SERIES_PAYLOADS = [
    *_COMMON_PAYLOADS,
    {"name": "top", "label": "Top edges", "type": "input", "placeholder": "10"},
]


def metric_configs() -> list[dict[str, Any]]:
    configs = []
    for value, label in TARGETS.items():
        payloads = (
            _GRAPH_PAYLOADS
            if value == "graph"
            else _SERIES_PAYLOADS
            if value in TIME_SERIES_TARGETS
            else _TABLE_PAYLOADS
            if value in {"edges", "blind_spots", "new_edges"}
            else _COMMON_PAYLOADS
        )
        configs.append({"value": value, "label": label, "payloads": payloads})
    return configs
