"""Span builders for correlation tests: a waypoint span, app client and server spans."""

from __future__ import annotations

from typing import Any

from app.domain import AttrValue, Span, SpanKind

T1 = b"\x01" * 16
S = 1_000_000_000  # ns per second


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def span(
    kind: SpanKind,
    span_id: int,
    parent: int = 0,
    *,
    trace: bytes = T1,
    service: str = "",
    end_s: float = 100.0,
    ms: float = 10.0,
    error: bool = False,
    attrs: dict[str, AttrValue] | None = None,
    resource: dict[str, AttrValue] | None = None,
    **extra: Any,
) -> Span:
    end_ns = int(end_s * S)
    return Span(
        trace_id=trace,
        span_id=sid(span_id),
        parent_span_id=sid(parent) if parent else b"",
        kind=kind,
        name=extra.get("name", "op"),
        start_ns=end_ns - int(ms * 1e6),
        end_ns=end_ns,
        service=service,
        status_error=error,
        attributes=attrs or {},
        resource=resource if resource is not None else {"service.name": service},
    )


def waypoint_span(span_id: int, parent: int = 0, dest: str = "reviews", **kw: Any) -> Span:
    attrs: dict[str, AttrValue] = {
        "component": "proxy",
        "upstream_cluster": f"inbound-vip|9080|http|{dest}.default.svc.cluster.local",
        "node_id": "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local",
        "istio.canonical_service": "waypoint",
        "istio.namespace": "default",
        "http.status_code": "200",
        "response_flags": "-",
    }
    attrs.update(kw.pop("attrs", {}))
    kw.setdefault("service", "waypoint.default")
    return span(SpanKind.SERVER, span_id, parent, attrs=attrs, **kw)


def app_resource(service: str, ns: str = "default", pod: str = "") -> dict[str, AttrValue]:
    res: dict[str, AttrValue] = {"service.name": service, "k8s.namespace.name": ns}
    if pod:
        res["k8s.pod.name"] = pod
    return res


def client(span_id: int, parent: int = 0, service: str = "productpage", **kw: Any) -> Span:
    kw.setdefault("resource", app_resource(service))
    return span(SpanKind.CLIENT, span_id, parent, service=service, **kw)


def server(span_id: int, parent: int = 0, service: str = "reviews", **kw: Any) -> Span:
    kw.setdefault("resource", app_resource(service))
    return span(SpanKind.SERVER, span_id, parent, service=service, **kw)
