"""`/metrics` in Prometheus text format 0.0.4, from collectors registered by the wired parts.

A collector is a callable returning `MetricFamily`s; nothing here keeps global state, so several
apps (tests) can live in one process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.self_report import Collector, Labels, MetricFamily, Sample

__all__ = ["Collector", "Labels", "MetricFamily", "Sample", "build_metrics_router", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return (
        repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))
    )


def render(families: Sequence[MetricFamily]) -> str:
    lines: list[str] = []
    for family in families:
        # Text format 0.0.4 names a counter family with its `_total` suffix (as prometheus_client does).
        base = family.name
        if family.kind == "counter" and not base.endswith("_total"):
            base += "_total"
        lines.append(f"# HELP {base} {family.help}")
        lines.append(f"# TYPE {base} {family.kind}")
        for sample in family.samples:
            name = base + sample.suffix
            if sample.labels:
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
                lines.append(f"{name}{{{label_text}}} {_number(sample.value)}")
            else:
                lines.append(f"{name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


class MetricsRegistry:
    def __init__(self) -> None:
        self._collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def collect(self) -> list[MetricFamily]:
        families: list[MetricFamily] = []
        for collector in self._collectors:
            families.extend(collector())
        return families


def build_metrics_router(registry: MetricsRegistry) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Self-metrics and Tempo-compatible service-graph series (Prometheus text 0.0.4)",
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(render(registry.collect()), media_type=CONTENT_TYPE)

    return router


def service_graph_families(
    snapshot: dict[tuple[str, str, str, str, str], object],
) -> list[MetricFamily]:
    """Render `ServiceGraphMetrics.snapshot()` as the Tempo-compatible families."""
    from app.correlate.servicegraph_metrics import BUCKETS_S, OVERFLOW_KEY, SeriesState

    total = MetricFamily(
        "traces_service_graph_request_total", "counter", "Requests between two nodes."
    )
    failed = MetricFamily(
        "traces_service_graph_request_failed_total", "counter", "Failed requests between two nodes."
    )
    server = MetricFamily(
        "traces_service_graph_request_server_seconds",
        "histogram",
        "Request latency seen by the mesh, server side.",
    )
    client = MetricFamily(
        "traces_service_graph_request_client_seconds",
        "histogram",
        "Request latency seen by the mesh, client side.",
    )
    bounds = [*(repr(b) for b in BUCKETS_S), "+Inf"]
    for key, state in sorted(snapshot.items()):
        assert isinstance(state, SeriesState)
        src, dst, ctype, src_ns, dst_ns = key
        labels = {
            "client": src,
            "server": dst,
            "connection_type": ctype,
            "client_service_namespace": src_ns,
            "server_service_namespace": dst_ns,
        }
        if key == OVERFLOW_KEY:  # Tempo's overflow series: no label but this one
            labels = {"metric_overflow": "true"}
        total.add(state.requests, **labels)
        failed.add(state.failed, **labels)
        for family in (server, client):
            cumulative = 0
            for bound, count in zip(bounds, state.bucket_counts, strict=True):
                cumulative += count
                family.add(cumulative, "_bucket", **labels, le=bound)
            family.add(state.seconds_sum, "_sum", **labels)
            family.add(state.requests, "_count", **labels)
    return [total, failed, server, client]
