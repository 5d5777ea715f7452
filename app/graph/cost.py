"""What the observed mesh costs: cross-zone bytes and their price, and the proxies' CPU and
memory as deployed (ambient: ztunnels and waypoints) beside sidecars for the same traffic.

Every figure is an **estimate** from stated inputs, and each carries them (`inputs`): the settings
it used (named as in the README, `cost_*`) and the observed quantities it was computed from.

* Cross-zone price: each byte that crosses a zone boundary pays `cost_cross_zone_usd_per_gb_out`
  leaving its zone and `cost_cross_zone_usd_per_gb_in` entering the other (clouds bill both
  directions of inter-zone traffic, e.g. AWS's $0.01/GB "in each direction"); GB is 10^9 bytes.
  A call through a waypoint in a third zone crosses twice and pays twice (app/edge/zones.py).
* Proxies: a proxy's CPU and memory are the configured figure at `cost_reference_rps`
  (defaults: sidecar 638m/288Mi, waypoint 370m/68Mi, ztunnel 60m/12Mi per node at 2,000 RPS, the
  figures quoted in the KubeCon talk "Istio's Ambient Mesh: The Real Cost of Sidecar-less
  Tracing"), scaled linearly by the rate the proxy handles. Linear in the rate, the total of a
  kind does not depend on how many pods share the rate, so a sidecar mesh costs
  `sidecar figure * (rate through sidecars) / reference rps` however many pods it has. A call is
  handled by a sidecar at each end in the mesh, by ztunnel at each captured end, by its
  waypoint once.
* Rates: an edge's requests per second over the window's observed seconds (L7 counts, exact
  with waypoint metrics); an edge with no L7 (opaque TCP, a blind spot) counts its connections
  opened instead (`rate_from: connections`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.domain import NodeKind, ZtunnelCount
from app.graph.model import Graph, GraphEdge

GB = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ProxyFigure:
    cpu_millicores: float  # at the reference rate
    memory_mib: float


@dataclass(frozen=True, slots=True)
class CostModel:
    cross_zone_usd_per_gb_out: float = 0.01
    cross_zone_usd_per_gb_in: float = 0.01
    reference_rps: float = 2000.0
    sidecar: ProxyFigure = ProxyFigure(638.0, 288.0)
    waypoint: ProxyFigure = ProxyFigure(370.0, 68.0)
    ztunnel: ProxyFigure = ProxyFigure(60.0, 12.0)
    # Where the zones of the bytes came from, in precedence order (app/poll/zone_split.py):
    # named in each zone figure's inputs, as `nodes_counted_from` names how ztunnels were counted.
    zone_sources: tuple[str, ...] = ()

    def settings_json(self, kind: str) -> dict[str, float]:
        figure: ProxyFigure = getattr(self, kind)
        return {
            f"cost_{kind}_cpu_millicores": figure.cpu_millicores,
            f"cost_{kind}_memory_mib": figure.memory_mib,
            "cost_reference_rps": self.reference_rps,
        }

    @property
    def price_json(self) -> dict[str, float]:
        return {
            "cost_cross_zone_usd_per_gb_out": self.cross_zone_usd_per_gb_out,
            "cost_cross_zone_usd_per_gb_in": self.cross_zone_usd_per_gb_in,
        }

    @property
    def zone_inputs(self) -> dict[str, list[str]]:
        return {"zones_from": list(self.zone_sources)}

    def usd(self, cross_zone_bytes: int) -> float:
        return (
            cross_zone_bytes / GB * (self.cross_zone_usd_per_gb_out + self.cross_zone_usd_per_gb_in)
        )

    def proxy(self, kind: str, rps: float, **observed: Any) -> dict[str, Any]:
        """One proxy kind's estimate at `rps`, with its inputs."""
        figure: ProxyFigure = getattr(self, kind)
        scale = rps / self.reference_rps
        return {
            "rps": round(rps, 4),
            "cpu_millicores": round(figure.cpu_millicores * scale, 3),
            "memory_mib": round(figure.memory_mib * scale, 3),
            "estimate": True,
            "inputs": {**self.settings_json(kind), "rps": round(rps, 4), **observed},
        }


# Ends no sidecar and no ztunnel would serve: callers and hosts outside the mesh, and gateways
# (an Envoy of their own in both models) and waypoints.
_NOT_A_WORKLOAD = {NodeKind.UNKNOWN, NodeKind.EXTERNAL, NodeKind.GATEWAY, NodeKind.WAYPOINT}


def _in_mesh(graph: Graph, node_id: str) -> bool:
    node = graph.nodes.get(node_id)
    if node is not None:
        return node.kind not in _NOT_A_WORKLOAD
    return not node_id.startswith(("unknown/", "external/"))


def edge_rate(graph: Graph, edge: GraphEdge) -> tuple[float, str]:
    """(calls per second, what was counted: "requests" | "connections")."""
    if edge.l7 is not None and edge.l7.requests:
        return graph.rps(edge.l7.requests), "requests"
    opened = edge.l4.connections_opened if edge.l4 is not None else 0
    return graph.rps(opened), "connections"


def cross_zone(model: CostModel, edges: Iterable[GraphEdge]) -> dict[str, Any]:
    """The edges' cross-zone bytes, priced, and the detours per waypoint."""
    totals = {"bytes": 0, "cross": 0, "detour": 0, "unknown": 0, "estimated": 0}
    by_waypoint: dict[str, dict[str, Any]] = {}
    for edge in edges:
        z = edge.zones
        if z is None:
            continue
        totals["bytes"] += z.bytes
        totals["cross"] += z.cross_zone_bytes
        totals["detour"] += z.detour_bytes
        totals["unknown"] += z.unknown_bytes
        totals["estimated"] += z.estimated_bytes
        if edge.via:
            w = by_waypoint.setdefault(
                edge.via, {"cross": 0, "detour": 0, "estimated": 0, "edges": 0, "zones": set()}
            )
            w["cross"] += z.cross_zone_bytes
            w["detour"] += z.detour_bytes
            w["estimated"] += z.estimated_bytes
            w["edges"] += 1
            w["zones"].update(p.waypoint_zone for p in z.paths if p.waypoint_zone)
    waypoints = [
        {
            "waypoint": wid,
            "zones": sorted(w["zones"]),
            "edges": w["edges"],
            "cross_zone_bytes": w["cross"],
            "detour_bytes": w["detour"],
            "detour_usd": round(model.usd(w["detour"]), 6),
            "estimated_bytes": w["estimated"],
            "inputs": {**model.price_json, **model.zone_inputs, "detour_bytes": w["detour"]},
        }
        for wid, w in sorted(by_waypoint.items(), key=lambda kv: (-kv[1]["detour"], kv[0]))
    ]
    cross, detour = totals["cross"], totals["detour"]
    return {
        "bytes": totals["bytes"],
        "cross_zone_bytes": cross,
        "cross_zone_usd": round(model.usd(cross), 6),
        "detour_bytes": detour,
        "detour_usd": round(model.usd(detour), 6),
        "detour_share": round(detour / cross, 6) if cross else None,
        "unknown_zone_bytes": totals["unknown"],
        "estimated_bytes": totals["estimated"],
        "estimate": True,
        "inputs": {
            **model.price_json,
            **model.zone_inputs,
            "cross_zone_bytes": cross,
            "detour_bytes": detour,
        },
        "by_waypoint": waypoints,
    }


def proxies(model: CostModel, graph: Graph, ztunnels: ZtunnelCount) -> dict[str, Any]:
    """Ambient as deployed (ztunnels + waypoints) beside sidecars for the same calls."""
    sidecar_rps = ztunnel_rps = total_rps = 0.0
    counted = {"requests": 0, "connections": 0}
    via: dict[str, float] = {}
    for edge in graph.edges:
        rps, counted_as = edge_rate(graph, edge)
        if not rps:
            continue
        counted[counted_as] += 1
        total_rps += rps
        ends = _in_mesh(graph, edge.source) + _in_mesh(graph, edge.target)
        sidecar_rps += rps * ends
        # ztunnel carries the call on each captured end: an edge with L4 evidence was seen by it
        if edge.l4 is not None and edge.l4.has_traffic:
            ztunnel_rps += rps * ends
        if edge.via:
            via[edge.via] = via.get(edge.via, 0.0) + rps
    seen = {"edges_rated_by_requests": counted["requests"]}
    seen["edges_rated_by_connections"] = counted["connections"]
    nodes: dict[str, Any] = {"nodes": ztunnels.nodes, "nodes_counted_from": ztunnels.counted_from}
    ztunnel = model.proxy("ztunnel", ztunnel_rps, **nodes, **seen)
    ztunnel.update(nodes)
    waypoints = [
        {"waypoint": wid, **model.proxy("waypoint", rps)} for wid, rps in sorted(via.items())
    ]
    ambient_cpu = ztunnel["cpu_millicores"] + sum(w["cpu_millicores"] for w in waypoints)
    ambient_mem = ztunnel["memory_mib"] + sum(w["memory_mib"] for w in waypoints)
    sidecars = model.proxy("sidecar", sidecar_rps, **seen)
    return {
        "rps": round(total_rps, 4),
        "estimate": True,
        "ambient": {
            "ztunnel": ztunnel,
            "waypoints": waypoints,
            "cpu_millicores": round(ambient_cpu, 3),
            "memory_mib": round(ambient_mem, 3),
        },
        "sidecars": sidecars,
        "saving": {
            "cpu_millicores": round(sidecars["cpu_millicores"] - ambient_cpu, 3),
            "memory_mib": round(sidecars["memory_mib"] - ambient_mem, 3),
        },
    }


def cost_report(
    model: CostModel, graph: Graph, edges: list[GraphEdge], ztunnels: ZtunnelCount
) -> dict[str, Any]:
    """`GET /cost`'s body without the window (queries.py adds it)."""
    scoped = Graph(
        graph.nodes, edges, graph.window_start_s, graph.window_end_s, graph.observed_from_s
    )
    return {
        "cross_zone": cross_zone(model, edges),
        "proxies": proxies(model, scoped, ztunnels),
    }
