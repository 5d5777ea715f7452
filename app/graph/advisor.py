"""The waypoint advisor: where a waypoint would buy the most visibility for its cost, and what the
existing waypoints cost in cross-zone bytes.

* **Candidates** are the services reached by L4-only edges (a waypoint serves a service). Each
  gets the visibility a waypoint would buy (dark bytes and connections, the callers), the
  waypoint's estimated CPU/memory at the calls' rate (app/graph/cost.py; an L4-only edge has no
  request count, so its connections opened per second stand for the rate), and the cross-zone
  bytes it would add: placed in the zone where most of the service's bytes are served, each path
  client zone → server zone becomes client → waypoint zone → server, adding
  `[c≠w] + [w≠s] - [c≠s]` crossings. They are ranked by dark bytes per estimated waypoint
  millicore (most visibility per unit of cost first), then by fewer added cross-zone bytes.
* **Existing waypoints** get the cross-zone bytes of the calls through them and the detour among
  them; a replica in each caller's zone (a zone-local waypoint) turns a path c → w → s into
  c → c → s, which crosses exactly as the direct call would: the detour is what it removes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.domain import Coverage
from app.edge.zones import ZonePath
from app.graph.cost import CostModel, edge_rate
from app.graph.model import Graph, GraphEdge

RANK_BY = "dark bytes per estimated waypoint millicore, then fewer added cross-zone bytes"


def _volume(edge: GraphEdge) -> int:
    return edge.l4.bytes_total if edge.l4 is not None else 0


def added_crossings(path: ZonePath, waypoint_zone: str) -> int | None:
    """Crossings a waypoint in `waypoint_zone` adds to the direct path; None: a zone unknown."""
    c, s = path.client_zone, path.server_zone
    if not (c and s and waypoint_zone):
        return None
    return int(c != waypoint_zone) + int(waypoint_zone != s) - int(c != s)


def _placement(paths: Iterable[ZonePath]) -> str:
    """The zone serving most bytes (ties: the first name)."""
    served: dict[str, int] = {}
    for p in paths:
        if p.server_zone:
            served[p.server_zone] = served.get(p.server_zone, 0) + p.bytes
    if not served:
        return ""
    return min(served, key=lambda z: (-served[z], z))


def candidates(model: CostModel, graph: Graph, edges: list[GraphEdge]) -> list[dict[str, Any]]:
    by_target: dict[str, list[GraphEdge]] = {}
    for e in edges:
        if e.coverage is Coverage.L4_ONLY and _volume(e) and not e.target.startswith("external/"):
            by_target.setdefault(e.target, []).append(e)
    out: list[dict[str, Any]] = []
    for target, into in by_target.items():
        rps = sum(edge_rate(graph, e)[0] for e in into)
        waypoint = model.proxy("waypoint", rps, rate_from="connections")
        paths = [p for e in into if e.zones is not None for p in e.zones.paths if not p.via]
        zone = _placement(paths)
        added = unknown = 0
        for p in paths:
            n = added_crossings(p, zone)
            if n is None:
                unknown += p.bytes
            else:
                added += n * p.bytes
        cpu = waypoint["cpu_millicores"]
        dark = sum(_volume(e) for e in into)
        out.append(
            {
                "service": target,
                "dark_bytes": dark,
                "dark_connections": sum(e.l4.connections_opened for e in into if e.l4),
                "callers": sorted(e.source for e in into),
                "waypoint": waypoint,
                "waypoint_zone": zone or None,
                "added_cross_zone_bytes": added,
                "added_cross_zone_usd": round(model.usd(added), 6),
                "unknown_zone_bytes": unknown,
                "dark_bytes_per_millicore": round(dark / cpu, 3) if cpu else None,
                "inputs": {
                    **model.price_json,
                    **model.zone_inputs,
                    "placement": "the zone serving most of the service's bytes",
                    "paths": len(paths),
                },
            }
        )
    out.sort(
        key=lambda c: (
            -(c["dark_bytes_per_millicore"] or 0.0),
            c["added_cross_zone_bytes"],
            c["service"],
        )
    )
    return out


def existing(model: CostModel, edges: list[GraphEdge]) -> list[dict[str, Any]]:
    by_waypoint: dict[str, list[ZonePath]] = {}
    for e in edges:
        if e.via and e.zones is not None:
            by_waypoint.setdefault(e.via, []).extend(p for p in e.zones.paths if p.via)
    out: list[dict[str, Any]] = []
    for wid, paths in by_waypoint.items():
        zones = {p.waypoint_zone for p in paths if p.waypoint_zone}
        detour = sum(p.detour_bytes for p in paths)
        replicas = sorted({p.client_zone for p in paths if p.detour_bytes} - zones)
        out.append(
            {
                "waypoint": wid,
                "zones": sorted(zones),
                "cross_zone_bytes": sum(p.cross_zone_bytes for p in paths),
                "detour_bytes": detour,
                "detour_usd": round(model.usd(detour), 6),
                "estimated_bytes": sum(p.estimated_bytes for p in paths),
                "zone_local_replica_removes_bytes": detour,
                "replica_zones": replicas,
                "inputs": {**model.price_json, **model.zone_inputs, "detour_bytes": detour},
            }
        )
    out.sort(key=lambda w: (-w["detour_bytes"], w["waypoint"]))
    return out
