"""Response models: they document the JSON in openapi.yaml and tests validate real output with them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.graph.edge_json import (  # the edge's JSON is declared there, with its builder
    CandidateOut,
    EdgeOut,
    ExemplarOut,
    L4Out,
    L7Out,
    LatencyOut,
    ProvenanceOut,
)

__all__ = [
    "CandidateOut",
    "CoverageItemOut",
    "CoverageOut",
    "EdgeOut",
    "EdgesOut",
    "ExemplarOut",
    "FindingOut",
    "GraphOut",
    "GraphPageOut",
    "HopOut",
    "L4Out",
    "L7Out",
    "LatencyOut",
    "NodeOut",
    "PageOut",
    "ProvenanceOut",
    "ServiceOut",
    "ServicesOut",
    "TraceOut",
    "TriageOut",
    "WindowOut",
]


class WindowOut(BaseModel):
    from_: str = Field(alias="from", description="RFC 3339 start of the window")
    to: str = Field(description="RFC 3339 end of the window")
    seconds: float
    observed_from: str = Field(
        description="RFC 3339 start of the observed part of the window: the first whole bucket "
        "read, or the store's first data if later (meshstitch was not observing before it)"
    )
    observed_seconds: float = Field(
        description="every rate in this answer (rps, bytes per second) divides by these "
        "seconds: the observed part of the window, not its whole length"
    )


class PageOut(BaseModel):
    total: int = Field(description="items in the whole answer")
    offset: int
    limit: int
    truncated: bool = Field(description="more items follow this page")
    next_offset: int | None = Field(description="`offset` of the next page; null on the last")


class GraphPageOut(PageOut):
    total: int = Field(description="edges in the whole graph")
    total_nodes: int = Field(description="nodes in the whole graph")


class NodeOut(BaseModel):
    id: str
    namespace: str
    name: str
    kind: str = Field(
        description="service | workload | gateway | waypoint | external | unknown | overflow"
    )
    aliases: list[str] = Field(
        default_factory=list,
        description="other ids of this node: Kubernetes Service names, OTel service.name, "
        "workloads (`namespace/name`), read as this canonical service",
    )
    rps_in: float | None
    rps_out: float | None
    errors_in: int | None
    bytes_in: int | None
    bytes_out: int | None


class GraphOut(BaseModel):
    window: WindowOut
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    page: GraphPageOut | None = Field(
        default=None, description="the busiest `limit` edges were kept (and the nodes they touch)"
    )


class ServiceOut(BaseModel):
    id: str
    namespace: str
    name: str
    kind: str
    aliases: list[str] = Field(
        default_factory=list, description="other ids of this node, read as this one"
    )
    rps_in: float | None
    rps_out: float | None
    error_rate_in: float | None
    bytes_in: int | None
    bytes_out: int | None
    coverage: dict[str, int] = Field(description="edges touching the node by coverage class")


class ServicesOut(BaseModel):
    window: WindowOut
    services: list[ServiceOut]
    page: PageOut


class EdgesOut(BaseModel):
    window: WindowOut
    edges: list[EdgeOut]
    page: PageOut


class CoverageItemOut(BaseModel):
    edge: str
    source: str
    target: str
    bytes: int
    connections: int
    mtls_share: float | None
    share_of_blind_bytes: float | None


class CoverageOut(BaseModel):
    window: WindowOut
    blind_bytes: int
    total_bytes: int
    l7_coverage_by_bytes: float | None = Field(
        description="share of L4 bytes on edges that also have L7"
    )
    blind_spots: list[CoverageItemOut]
    page: PageOut = Field(description="of `blind_spots`")


class HopOut(BaseModel):
    span_id: str
    parent_span_id: str
    source: str
    target: str
    via: str | None
    start: str
    duration_ms: float
    status_code: str
    error_cause: str | None
    provenance: str
    l4: L4Out | None = Field(description="L4 evidence of this hop's edge in the hop's bucket")


class TraceOut(BaseModel):
    trace_id: str
    hops: list[HopOut]
    dark_hops: list[EdgeOut] = Field(
        description="L4-only edges adjacent to the trace's services in its time range"
    )


class FindingOut(BaseModel):
    kind: str
    severity: str
    score: float
    summary: str
    edge: str | None
    evidence: dict[str, Any]


class TriageOut(BaseModel):
    service: str
    window: WindowOut
    baseline: WindowOut
    findings: list[FindingOut]
