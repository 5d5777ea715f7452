"""Triage: ranked findings for one service, comparing the window with a baseline window.

Pure: takes the edges around the service for both windows and returns findings with their
evidence. Thresholds are deliberately explicit so an SRE can see why something was flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.domain import DENIED_FLAGS, Coverage, is_overflow_id
from app.graph.model import GraphEdge
from app.graph.neighbourhood import Dependent


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_requests: int = 20  # fewer requests than this in the window is not evidence
    error_rate_factor: float = 2.0  # window error rate ≥ factor * baseline ...
    error_rate_delta: float = 0.01  # ... and at least this many points higher
    critical_error_rate: float = 0.05
    p99_factor: float = 1.5
    critical_p99_factor: float = 3.0


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    severity: Severity
    score: float  # ranking key: bigger first
    summary: str
    edge: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def _rate(edge: GraphEdge | None, window_s: float) -> float:
    return edge.l7.requests / window_s if edge and edge.l7 and window_s > 0 else 0.0


def _error_regression(
    now: GraphEdge, before: GraphEdge | None, w_s: float, b_s: float, t: Thresholds
) -> Finding | None:
    if now.l7 is None or now.l7.requests < t.min_requests:
        return None
    rate_now = now.l7.error_rate
    rate_before = before.l7.error_rate if before and before.l7 and before.l7.requests else 0.0
    if rate_now < max(rate_before * t.error_rate_factor, rate_before + t.error_rate_delta):
        return None
    severity = Severity.CRITICAL if rate_now >= t.critical_error_rate else Severity.WARNING
    return Finding(
        kind="error_rate_regression",
        severity=severity,
        score=(rate_now - rate_before) * _rate(now, w_s) * 100
        + (100 if severity is Severity.CRITICAL else 10),
        summary=f"{now.id}: error rate {100 * rate_now:.1f}% (baseline {100 * rate_before:.1f}%)",
        edge=now.id,
        evidence={
            "error_rate": round(rate_now, 6),
            "baseline_error_rate": round(rate_before, 6),
            "errors": now.l7.errors,
            "requests": now.l7.requests,
            "errors_by_cause": dict(now.l7.errors_by_cause),
            "failed_traces": [e.trace_id for e in now.exemplars if e.kind == "failed"],
            "baseline_rps": round(_rate(before, b_s), 4),
        },
    )


def _latency_regression(
    now: GraphEdge, before: GraphEdge | None, w_s: float, t: Thresholds
) -> Finding | None:
    if now.l7 is None or now.l7.requests < t.min_requests or now.l7.p99_ms is None:
        return None
    if (
        before is None
        or before.l7 is None
        or before.l7.p99_ms is None
        or before.l7.requests < t.min_requests
    ):
        return None
    factor = now.l7.p99_ms / max(before.l7.p99_ms, 1e-6)
    if factor < t.p99_factor:
        return None
    severity = Severity.CRITICAL if factor >= t.critical_p99_factor else Severity.WARNING
    return Finding(
        kind="latency_regression",
        severity=severity,
        score=(factor - 1) * _rate(now, w_s) * 10 + (80 if severity is Severity.CRITICAL else 8),
        summary=f"{now.id}: p99 {now.l7.p99_ms:.1f} ms (baseline {before.l7.p99_ms:.1f} ms, x{factor:.1f})",
        edge=now.id,
        evidence={
            "p99_ms": round(now.l7.p99_ms, 3),
            "baseline_p99_ms": round(before.l7.p99_ms, 3),
            "p50_ms": now.l7.p50_ms,
            "slowest_traces": [e.trace_id for e in now.exemplars if e.kind == "slowest"],
        },
    )


def _new_edge(service: str, now: GraphEdge, before: GraphEdge | None, w_s: float) -> Finding | None:
    if before is not None:
        return None
    return Finding(
        kind="new_edge",
        severity=Severity.WARNING if service in (now.source, now.target) else Severity.INFO,
        score=5 + _rate(now, w_s),
        summary=f"{now.id}: new in this window ({now.coverage.value})",
        edge=now.id,
        evidence={
            "coverage": now.coverage.value,
            "rps": round(_rate(now, w_s), 4),
        },
    )


def _blind_spot(now: GraphEdge) -> Finding | None:
    if now.coverage is not Coverage.L4_ONLY:
        return None
    volume = now.l4.bytes_total if now.l4 else 0
    return Finding(
        kind="blind_spot",
        severity=Severity.INFO,
        score=3 + min(volume / 1e6, 50),
        summary=f"{now.id}: L4 only, no waypoint spans (a waypoint here would show requests and errors)",
        edge=now.id,
        evidence={
            "bytes": volume,
            "connections": now.l4.connections_opened if now.l4 else 0,
        },
    )


def _cardinality_overflow(now: GraphEdge, w_s: float) -> Finding | None:
    """Traffic counted under an overflow node: a sender named more distinct peers than the caps
    keep (app/correlate/cardinality.py), so these requests and bytes have no name of their own."""
    overflowed = [n for n in (now.target, now.source) if is_overflow_id(n)]
    if not overflowed:
        return None
    node = overflowed[0]
    namespace = node.rpartition("/")[0]
    sender = now.source if not is_overflow_id(now.source) else namespace
    return Finding(
        kind="cardinality_overflow",
        severity=Severity.WARNING,
        score=8 + _rate(now, w_s),
        summary=f"{sender} sent to more distinct peers than the cardinality caps keep; "
        f"the rest is counted under {node} (see /readyz cardinality)",
        edge=now.id,
        evidence={
            "sender": sender,
            "namespace": namespace,
            "requests": now.l7.requests if now.l7 else 0,
            "bytes": now.l4.bytes_total if now.l4 else 0,
        },
    )


def _plaintext_link(now: GraphEdge) -> Finding | None:
    if not now.plaintext or now.l4 is None:
        return None
    return Finding(
        kind="plaintext_link",
        severity=Severity.WARNING,
        score=20 + now.l4.connections_opened / 100,
        summary=f"{now.id}: {now.l4.connections_opened - now.l4.mtls_connections} of "
        f"{now.l4.connections_opened} connections without mutual TLS",
        edge=now.id,
        evidence={
            "mtls_share": now.l4.mtls_share,
            "connections": now.l4.connections_opened,
        },
    )


def _waypoint_detour(now: GraphEdge) -> Finding | None:
    """Bytes crossing zones only because the edge's waypoint runs in another zone than its
    callers or servers (app/edge/zones.py): a replica in the callers' zone removes them."""
    z = now.zones
    if z is None or not now.via or not z.detour_bytes:
        return None
    paths = [p for p in z.paths if p.detour_bytes]
    return Finding(
        kind="waypoint_detour",
        severity=Severity.WARNING,
        score=10 + min(z.detour_bytes / max(z.bytes, 1), 2) * 10,
        summary=f"{now.id}: {z.detour_bytes} bytes cross zones only because of waypoint "
        f"{now.via} ("
        + ", ".join(f"{p.client_zone}→{p.waypoint_zone}→{p.server_zone}" for p in paths[:3])
        + ")",
        edge=now.id,
        evidence={
            "waypoint": now.via,
            "detour_bytes": z.detour_bytes,
            "cross_zone_bytes": z.cross_zone_bytes,
            "bytes": z.bytes,
            "estimated_bytes": z.estimated_bytes,
            "paths": [
                {
                    "client_zone": p.client_zone,
                    "waypoint_zone": p.waypoint_zone,
                    "server_zone": p.server_zone,
                    "detour_bytes": p.detour_bytes,
                }
                for p in paths
            ],
        },
    )


def _connection_failures(now: GraphEdge, t: Thresholds) -> list[Finding]:
    """ztunnel's failed connections (response flags on closed connections): refused by policy
    (DENY, NETWORK_POLICY) and failing otherwise (CONNECT, TLS_FAILURE, …), one finding each.
    A denial may be the policy working as intended, so it warns; failing connections are
    critical once they are `critical_error_rate` of the connections opened."""
    l4 = now.l4
    if l4 is None or not l4.connections_failed:
        return []
    by_flag = dict(l4.failures)
    opened = max(l4.connections_opened, 1)
    out = []
    denied = {f: n for f, n in by_flag.items() if f in DENIED_FLAGS}
    failing = {f: n for f, n in by_flag.items() if f not in DENIED_FLAGS}
    if denied:
        n = sum(denied.values())
        out.append(
            Finding(
                kind="connections_denied",
                severity=Severity.WARNING,
                score=30 + min(n / opened, 1) * 50 + min(n / 100, 20),
                summary=f"{now.id}: {n} connections denied by policy ({', '.join(sorted(denied))})",
                edge=now.id,
                evidence={"failures": denied, "connections": l4.connections_opened},
            )
        )
    if failing:
        n = sum(failing.values())
        share = n / opened
        critical = share >= t.critical_error_rate
        out.append(
            Finding(
                kind="connections_failing",
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                score=(100 if critical else 25) + min(share, 1) * 50 + min(n / 100, 20),
                summary=f"{now.id}: {n} of {l4.connections_opened} connections failed "
                f"({', '.join(sorted(failing))})",
                edge=now.id,
                evidence={
                    "failures": failing,
                    "connections": l4.connections_opened,
                    "failed_share": round(share, 6),
                },
            )
        )
    return out


def _vanished_edge(
    service: str, before: GraphEdge, now: GraphEdge | None, b_s: float
) -> Finding | None:
    if now is not None:
        return None
    return Finding(
        kind="vanished_edge",
        severity=Severity.WARNING if service in (before.source, before.target) else Severity.INFO,
        score=6 + _rate(before, b_s),
        summary=f"{before.id}: seen in the baseline, silent now",
        edge=before.id,
        evidence={"baseline_rps": round(_rate(before, b_s), 4)},
    )


def _blast_radius(service: str, dependents: list[Dependent]) -> Finding | None:
    if not dependents:
        return None
    return Finding(
        kind="blast_radius",
        severity=Severity.INFO,
        score=1 + len(dependents),
        summary=f"{len(dependents)} upstream dependents of {service}; nearest: "
        + ", ".join(d.node for d in dependents[:3]),
        evidence={
            "dependents": [
                {
                    "node": d.node,
                    "distance": d.distance,
                    "requests": d.requests,
                    "bytes": d.bytes,
                }
                for d in dependents
            ]
        },
    )


def triage(
    service: str,
    window_edges: list[GraphEdge],
    baseline_edges: list[GraphEdge],
    window_s: float,
    baseline_s: float,
    dependents: list[Dependent],
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Findings about `service` and the edges on its paths, most important first."""
    t = thresholds or Thresholds()
    now = {(e.source, e.target): e for e in window_edges}
    before = {(e.source, e.target): e for e in baseline_edges}
    findings: list[Finding] = []
    for key, edge in now.items():
        previous = before.get(key)
        for finding in (
            _error_regression(edge, previous, window_s, baseline_s, t),
            _latency_regression(edge, previous, window_s, t),
            _new_edge(service, edge, previous, window_s),
            _blind_spot(edge),
            _plaintext_link(edge),
            _cardinality_overflow(edge, window_s),
            _waypoint_detour(edge),
        ):
            if finding is not None:
                findings.append(finding)
        findings.extend(_connection_failures(edge, t))
    for key, edge in before.items():
        vanished = _vanished_edge(service, edge, now.get(key), baseline_s)
        if vanished is not None:
            findings.append(vanished)
    blast = _blast_radius(service, dependents)
    if blast is not None:
        findings.append(blast)
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: (order[f.severity], -f.score, f.kind, f.edge))
