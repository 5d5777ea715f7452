"""Response models of /cost and /advisor (app/graph/cost.py, app/graph/advisor.py say how each
figure is computed). Every estimate carries `inputs`: the settings and observed values it used."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.schemas import PageOut, WindowOut

Inputs = dict[str, Any]
_INPUTS = "the settings (cost_*) and observed values this figure was computed from"


class WaypointDetourOut(BaseModel):
    waypoint: str
    zones: list[str] = Field(description="zones the waypoint's pods were seen in")
    edges: int
    cross_zone_bytes: int
    detour_bytes: int = Field(description="crossings only the waypoint's zone causes")
    detour_usd: float
    estimated_bytes: int
    inputs: Inputs = Field(description=_INPUTS)


class CrossZoneOut(BaseModel):
    bytes: int = Field(description="request + response bytes of edges with a zone known")
    cross_zone_bytes: int = Field(description="bytes times the zone boundaries they crossed")
    cross_zone_usd: float
    detour_bytes: int
    detour_usd: float
    detour_share: float | None = Field(description="detour bytes ÷ cross-zone bytes")
    unknown_zone_bytes: int
    estimated_bytes: int = Field(description="bytes whose server zone was split in proportion")
    estimate: bool
    inputs: Inputs = Field(description=_INPUTS)
    by_waypoint: list[WaypointDetourOut]


class ProxyOut(BaseModel):
    rps: float = Field(description="calls per second the proxies of this kind handle")
    cpu_millicores: float
    memory_mib: float
    estimate: bool
    inputs: Inputs = Field(description=_INPUTS)


class ZtunnelOut(ProxyOut):
    nodes: int | None = Field(
        description="ztunnels seen (one per node): the endpoints scraped, or with PromQL the "
        'distinct `instance` of `istio_build{component="ztunnel"}`; null when not known'
    )
    nodes_counted_from: str = Field(description="how `nodes` was counted, or why it is null")


class WaypointProxyOut(ProxyOut):
    waypoint: str


class AmbientOut(BaseModel):
    ztunnel: ZtunnelOut
    waypoints: list[WaypointProxyOut]
    cpu_millicores: float
    memory_mib: float


class SavingOut(BaseModel):
    cpu_millicores: float = Field(description="sidecars minus ambient")
    memory_mib: float


class ProxiesOut(BaseModel):
    rps: float
    estimate: bool
    ambient: AmbientOut
    sidecars: ProxyOut
    saving: SavingOut


class CostOut(BaseModel):
    window: WindowOut
    cross_zone: CrossZoneOut
    proxies: ProxiesOut


class CandidateOut(BaseModel):
    service: str
    dark_bytes: int = Field(description="L4-only bytes into the service")
    dark_connections: int
    callers: list[str]
    waypoint: ProxyOut = Field(description="the waypoint's estimated cost at the calls' rate")
    waypoint_zone: str | None = Field(description="where it is assumed to run")
    added_cross_zone_bytes: int
    added_cross_zone_usd: float
    unknown_zone_bytes: int
    dark_bytes_per_millicore: float | None
    inputs: Inputs = Field(description=_INPUTS)


class ExistingWaypointOut(BaseModel):
    waypoint: str
    zones: list[str]
    cross_zone_bytes: int
    detour_bytes: int
    detour_usd: float
    estimated_bytes: int
    zone_local_replica_removes_bytes: int = Field(
        description="the detour a replica in each caller's zone would remove"
    )
    replica_zones: list[str] = Field(description="caller zones that would need a replica")
    inputs: Inputs = Field(description=_INPUTS)


class AdvisorOut(BaseModel):
    window: WindowOut
    rank_by: str
    candidates: list[CandidateOut]
    page: PageOut = Field(description="of `candidates`")
    waypoints: list[ExistingWaypointOut]
