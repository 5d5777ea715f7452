"""Table frames of the cost figures (app/graph/cost.py, advisor.py) for the Grafana datasource:
`cost` (the talk's before/after table: ambient as deployed beside sidecars, and the cross-zone
traffic with its price), `waypoint_advisor` (L4-only services ranked by visibility per cost) and
`waypoint_detours` (what existing waypoints cost in cross-zone bytes). Every row is an estimate;
its `inputs` column is the JSON of the inputs it used, and a notice on the frame says so."""

from __future__ import annotations

import json
from typing import Any

from app.grafana.frames import field, frame

_NOTICE = {
    "notices": [
        {
            "severity": "info",
            "text": "estimates: proxy CPU/memory scale the cost_* figures linearly by the "
            "observed rate; cross-zone bytes are priced in both directions (see inputs)",
        }
    ]
}


def _inputs(row: dict[str, Any]) -> str:
    return json.dumps(row.get("inputs", {}), sort_keys=True)


def cost_frame(report: dict[str, Any], ref_id: str) -> dict[str, Any]:
    proxies, cz = report["proxies"], report["cross_zone"]
    ambient = proxies["ambient"]
    rows: list[tuple[str, dict[str, Any]]] = [("ambient: ztunnel", ambient["ztunnel"])]
    rows += [(f"ambient: waypoint {w['waypoint']}", w) for w in ambient["waypoints"]]
    rows += [("ambient: total", ambient), ("sidecars", proxies["sidecars"])]
    rows += [("saving (sidecars - ambient)", proxies["saving"])]
    cross = [
        ("cross-zone traffic", cz["cross_zone_bytes"], cz["cross_zone_usd"], cz),
        ("waypoint detours", cz["detour_bytes"], cz["detour_usd"], cz),
    ]
    items = [r[0] for r in rows] + [c[0] for c in cross]
    return frame(
        "cost",
        ref_id,
        [
            field("item", items),
            field("rps", [r[1].get("rps") for r in rows] + [None, None], "number"),
            field(
                "cpu_millicores", [r[1]["cpu_millicores"] for r in rows] + [None, None], "number"
            ),
            field(
                "memory_mib",
                [r[1]["memory_mib"] for r in rows] + [None, None],
                "number",
                unit="mbytes",
            ),
            field(
                "cross_zone_bytes",
                [None] * len(rows) + [c[1] for c in cross],
                "number",
                unit="decbytes",
            ),
            field("usd", [None] * len(rows) + [c[2] for c in cross], "number", unit="currencyUSD"),
            field("inputs", [_inputs(r[1]) for r in rows] + [_inputs(c[3]) for c in cross]),
        ],
        _NOTICE,
    )


def advisor_frame(candidates: list[dict[str, Any]], ref_id: str) -> dict[str, Any]:
    c = candidates
    return frame(
        "waypoint_advisor",
        ref_id,
        [
            field("service", [x["service"] for x in c]),
            field("dark_bytes", [x["dark_bytes"] for x in c], "number", unit="decbytes"),
            field("dark_connections", [x["dark_connections"] for x in c], "number"),
            field("callers", [", ".join(x["callers"]) for x in c]),
            field(
                "waypoint_cpu_millicores", [x["waypoint"]["cpu_millicores"] for x in c], "number"
            ),
            field("waypoint_memory_mib", [x["waypoint"]["memory_mib"] for x in c], "number"),
            field("waypoint_zone", [x["waypoint_zone"] or "" for x in c]),
            field(
                "added_cross_zone_bytes",
                [x["added_cross_zone_bytes"] for x in c],
                "number",
                unit="decbytes",
            ),
            field(
                "added_cross_zone_usd",
                [x["added_cross_zone_usd"] for x in c],
                "number",
                unit="currencyUSD",
            ),
            field("dark_bytes_per_millicore", [x["dark_bytes_per_millicore"] for x in c], "number"),
            field("inputs", [_inputs(x) for x in c]),
        ],
        _NOTICE,
    )


def detours_frame(waypoints: list[dict[str, Any]], ref_id: str) -> dict[str, Any]:
    w = waypoints
    return frame(
        "waypoint_detours",
        ref_id,
        [
            field("waypoint", [x["waypoint"] for x in w]),
            field("zones", [", ".join(x["zones"]) for x in w]),
            field(
                "cross_zone_bytes", [x["cross_zone_bytes"] for x in w], "number", unit="decbytes"
            ),
            field("detour_bytes", [x["detour_bytes"] for x in w], "number", unit="decbytes"),
            field("detour_usd", [x["detour_usd"] for x in w], "number", unit="currencyUSD"),
            field("replica_zones", [", ".join(x["replica_zones"]) for x in w]),
            field("inputs", [_inputs(x) for x in w]),
        ],
        _NOTICE,
    )
