"""The edge's JSON, declared once: each key of the response models below carries, beside its type
and description, where its value comes from (`From`, an expression over `edge`, `graph`, `l7`,
`l4`). The API documents the models (api/schemas.py uses them as they are, so openapi.yaml follows
them) and `edge_json`, the builder, is generated from the same models: a key is added, renamed or
documented in one place, and the builder runs as fast as one written by hand.

Nested models are built in place: an optional one only `When` its condition holds, a list one
`Each` item of an iterable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.codegen import compile_function


class From:
    """The builder's expression for a key."""

    def __init__(self, expr: str) -> None:
        self.expr = expr


class When:
    """An optional nested model: built when `condition` holds, else null."""

    def __init__(self, condition: str) -> None:
        self.condition = condition


class Each:
    """A list of nested models: one per `target` in `iterable`."""

    def __init__(self, target: str, iterable: str) -> None:
        self.target, self.iterable = target, iterable


def finite(value: float | None, digits: int = 3) -> float | None:
    """`value` rounded, or None when missing or not finite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


_HAS_L7 = "l7 is not None and l7.requests"


def bound(bounds: tuple[tuple[float, float] | None, ...] | None, i: int) -> list[float | None]:
    """The i-th quantile's (lo, hi] bound as [lo, hi] (hi null for the +Inf bucket); [] if none."""
    if not bounds or bounds[i] is None:
        return []
    lo, hi = bounds[i]  # type: ignore[misc]
    return [finite(lo), finite(hi)]


class LatencyBoundsOut(BaseModel):
    p50: Annotated[list[float | None], From("bound(l7.latency_bounds, 0)")]
    p95: Annotated[list[float | None], From("bound(l7.latency_bounds, 1)")]
    p99: Annotated[list[float | None], From("bound(l7.latency_bounds, 2)")]


class LatencyOut(BaseModel):
    p50: Annotated[float | None, From("finite(l7.p50_ms)")]
    p95: Annotated[float | None, From("finite(l7.p95_ms)")]
    p99: Annotated[float | None, From("finite(l7.p99_ms)")]
    from_: Annotated[
        str | None,
        From("l7.latency_from or None"),
        Field(
            alias="from",
            description="spans (the sampled spans' sketch, 1 % relative) | histogram (the "
            "waypoint metrics' buckets, interpolated); see the README's latency rule",
        ),
    ]
    bounds: Annotated[
        LatencyBoundsOut | None,
        When("l7.latency_bounds"),
        Field(
            description="per quantile, [lo, hi] of the exact histogram bucket the true value "
            "and the shown value lie in (hi null: +Inf); null without waypoint metrics"
        ),
    ]


class L7Out(BaseModel):
    requests: Annotated[int, From("l7.requests")]
    rps: Annotated[float | None, From("finite(graph.rps(l7.requests), 4)")]
    errors: Annotated[int, From("l7.errors")]
    error_rate: Annotated[float | None, From("finite(l7.error_rate, 6)")]
    errors_by_cause: Annotated[dict[str, int], From("dict(l7.errors_by_cause)")]
    latency_ms: LatencyOut
    status_codes: Annotated[dict[str, int], From("dict(l7.status_codes)")]
    counts_from: Annotated[
        str,
        From("l7.counts_from"),
        Field(
            description="metrics: waypoint request metrics, unsampled and exact | spans: each "
            "sampled span counts one request"
        ),
    ]
    exact: Annotated[bool, From("l7.exact")]
    spans: Annotated[int, From("l7.spans"), Field(description="sampled spans seen on the edge")]
    sampling_share: Annotated[
        float | None,
        From("finite(l7.sampling_share, 6)"),
        Field(
            description="spans ÷ requests with metrics; for span-only edges the configured "
            "sampling rate, else the share observed on edges with metrics"
        ),
    ]
    bytes_sent: Annotated[
        int | None, From("l7.bytes_sent"), Field(description="request bytes (metrics)")
    ]
    bytes_received: Annotated[
        int | None, From("l7.bytes_received"), Field(description="response bytes (metrics)")
    ]


class L4Out(BaseModel):
    connections_opened: Annotated[int, From("l4.connections_opened")]
    connections_closed: Annotated[int, From("l4.connections_closed")]
    bytes_sent: Annotated[int, From("l4.bytes_sent"), Field(description="client to server")]
    bytes_received: Annotated[int, From("l4.bytes_received"), Field(description="server to client")]
    mtls_share: Annotated[float | None, From("finite(l4.mtls_share, 6)")]
    principals: Annotated[list[str], From("list(l4.principals)")]
    connections_failed: Annotated[
        int,
        From("l4.connections_failed"),
        Field(description="closed with a ztunnel failure flag (DENY, CONNECT, …)"),
    ]
    failures: Annotated[
        dict[str, int], From("dict(l4.failures)"), Field(description="failure flag -> connections")
    ]


class ZonePathOut(BaseModel):
    client_zone: Annotated[str | None, From("p.client_zone or None")]
    waypoint_zone: Annotated[
        str | None,
        From("p.waypoint_zone or None"),
        Field(description="null on a direct path or when the waypoint's zone is unknown"),
    ]
    server_zone: Annotated[str | None, From("p.server_zone or None")]
    via_waypoint: Annotated[bool, From("p.via")]
    bytes: Annotated[int, From("p.bytes"), Field(description="request + response bytes")]
    cross_zone_bytes: Annotated[
        int,
        From("p.cross_zone_bytes"),
        Field(description="bytes times the zone boundaries crossed"),
    ]
    detour_bytes: Annotated[
        int,
        From("p.detour_bytes"),
        Field(description="crossings only the waypoint causes (client zone → server zone direct)"),
    ]
    estimated_bytes: Annotated[
        int,
        From("p.estimated_bytes"),
        Field(description="bytes whose server zone was split in proportion (an estimate)"),
    ]


class ZonesOut(BaseModel):
    bytes: Annotated[int, From("z.bytes"), Field(description="request + response bytes")]
    cross_zone_bytes: Annotated[
        int,
        From("z.cross_zone_bytes"),
        Field(
            description="bytes times the zone boundaries crossed (twice through a third-zone waypoint)"
        ),
    ]
    cross_zone_share: Annotated[
        float | None,
        From("finite(z.cross_zone_share, 6)"),
        Field(description="share of the bytes with known zones that crossed a zone"),
    ]
    detour_bytes: Annotated[
        int,
        From("z.detour_bytes"),
        Field(description="cross-zone bytes caused only by the waypoint's zone"),
    ]
    unknown_bytes: Annotated[
        int, From("z.unknown_bytes"), Field(description="bytes with a hop of unknown zones")
    ]
    estimated_bytes: Annotated[int, From("z.estimated_bytes")]
    paths: Annotated[list[ZonePathOut], Each("p", "z.paths")]


class ExemplarOut(BaseModel):
    kind: Annotated[str, From("e.kind"), Field(description="slowest | failed")]
    trace_id: Annotated[str, From("e.trace_id")]
    duration_ms: Annotated[float | None, From("finite(e.duration_ms)")]
    status_code: Annotated[str, From("e.status_code")]


class CandidateOut(BaseModel):
    source: Annotated[str, From("source")]
    share: Annotated[float | None, From("finite(share, 6)")]


class ProvenanceOut(BaseModel):
    evidence: Annotated[
        dict[str, int],
        From("dict(edge.provenance)"),
        Field(description="evidence kind -> requests it explains"),
    ]
    candidates: Annotated[
        list[CandidateOut],
        Each("(source, share)", "sorted(edge.candidates.items())"),
        Field(description="ambiguous L4 candidates and their shares"),
    ]


class EdgeOut(BaseModel):
    id: Annotated[str, From("edge.id")]
    source: Annotated[str, From("edge.source")]
    target: Annotated[str, From("edge.target")]
    protocol: Annotated[str, From(f'edge.protocol or ("http" if {_HAS_L7} else "tcp")')]
    coverage: Annotated[
        str, From("edge.coverage.value"), Field(description="full | l4_only | l7_only")
    ]
    via: Annotated[
        str | None, From("edge.via or None"), Field(description="waypoint collapsed into this edge")
    ]
    l7: Annotated[L7Out | None, When(_HAS_L7)]
    l4: Annotated[L4Out | None, When("l4 is not None and l4.has_traffic")]
    zones: Annotated[
        ZonesOut | None,
        When("z is not None"),
        Field(
            description="L4 bytes by zone path, from ztunnel's source_zone/destination_zone "
            "labels, else Kubernetes node topology (the pod directory, direct scrape or PromQL "
            "mode), else the waypoint's spans' zone tag for its hop; null when no zone is known"
        ),
    ]
    exemplars: Annotated[list[ExemplarOut], Each("e", "edge.exemplars")]
    provenance: ProvenanceOut
    unpaired: Annotated[int, From("l7.unpaired if l7 else 0")]
    late: Annotated[int, From("l7.late if l7 else 0")]
    evicted: Annotated[int, From("l7.evicted if l7 else 0")]


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The model inside `M`, `M | None` or `list[M]`, if any."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def builder_expression(model: type[BaseModel]) -> str:
    """The dict display that builds `model`'s JSON, from each key's `From`/`When`/`Each`."""
    parts = []
    for name, info in model.model_fields.items():
        meta = {type(m): m for m in info.metadata}
        nested = _nested(info.annotation)
        if From in meta:
            value = meta[From].expr
        elif nested is None:
            raise TypeError(f"{model.__name__}.{name} says nowhere where its value comes from")
        elif Each in meta:
            each = meta[Each]
            value = f"[{builder_expression(nested)} for {each.target} in {each.iterable}]"
        elif When in meta:
            value = f"({builder_expression(nested)} if {meta[When].condition} else None)"
        else:
            value = builder_expression(nested)
        parts.append(f"{(info.alias or name)!r}: {value}")
    return "{" + ", ".join(parts) + "}"


edge_json: Callable[[Any, Any], dict[str, Any]] = compile_function(
    "edge_json",
    "edge, graph",
    ["l7, l4, z = edge.l7, edge.l4, edge.zones", f"return {builder_expression(EdgeOut)}"],
    {"finite": finite, "bound": bound},
)
