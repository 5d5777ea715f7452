"""meshstitch's own health series on /metrics, and the Tempo-compatible service-graph collector."""

from __future__ import annotations

from app.api.metrics_route import Collector, MetricFamily, service_graph_families
from app.correlate.servicegraph_metrics import ServiceGraphMetrics
from app.edge.recent_hops import RecentHops
from app.graph.window_cache import WindowCache
from app.pipeline import IngestPipeline
from app.self_report import PartState


def pipeline_families(pipeline: IngestPipeline) -> list[MetricFamily]:
    stats = pipeline.stats
    _, state = pipeline.state()
    spans = MetricFamily(
        "meshstitch_ingest_spans", "counter", "Spans offered to the pipeline, by outcome."
    )
    spans.add(stats.spans_accepted, outcome="accepted")
    spans.add(stats.spans_refused_overload, outcome="refused_overload")
    spans.add(stats.spans_refused_unavailable, outcome="refused_unavailable")
    return [
        spans,
        MetricFamily(
            "meshstitch_observations", "counter", "L7 observations after pairing and attribution."
        ).add(stats.observations),
        MetricFamily("meshstitch_l4_samples", "counter", "L4 samples aggregated.").add(
            stats.l4_samples
        ),
        MetricFamily("meshstitch_store_flushes", "counter", "Aggregate writes, by result.")
        .add(stats.flushes_ok, result="ok")
        .add(stats.flushes_failed, result="failed"),
        MetricFamily(
            "meshstitch_ingest_queue_spans", "gauge", "Spans accepted but not yet aggregated."
        ).add(state["queued_spans"]),
        MetricFamily(
            "meshstitch_ingest_queue_bytes",
            "gauge",
            "Estimated memory of the spans accepted but not yet aggregated.",
        ).add(state["queued_bytes_estimated"]),
        MetricFamily(
            "meshstitch_ingest_queue_capacity_bytes",
            "gauge",
            "The ingest queue's memory bound (MESHSTITCH_INGEST_QUEUE_BYTES).",
        ).add(state["queue_capacity_bytes"] or 0),
        MetricFamily(
            "meshstitch_pending_writes", "gauge", "Aggregate batches waiting for the store."
        ).add(state["pending_writes"]),
        MetricFamily(
            "meshstitch_last_flush_timestamp_seconds", "gauge", "When the store last took a write."
        ).add(stats.last_flush_ok_s),
    ]


def window_cache_families(cache: WindowCache) -> list[MetricFamily]:
    edges, too_large = cache.held_edges(), cache.stats.too_large
    return [
        MetricFamily(
            "meshstitch_graph_cache_edges", "gauge", "Edges held by the cached merged windows."
        ).add(edges),
        MetricFamily(
            "meshstitch_graph_cache_too_large",
            "counter",
            "Window builds not kept: more edges than MESHSTITCH_GRAPH_CACHE_MAX_EDGES.",
        ).add(too_large),
    ]


def trace_hop_families(recent: RecentHops) -> list[MetricFamily]:
    return [
        MetricFamily(
            "meshstitch_trace_hops",
            "counter",
            "Trace hops (one per L7 observation with a trace id), by where they are kept: all "
            "enter the recent ring, exemplar traces' are also stored.",
        )
        .add(recent.added, kept="recent")
        .add(recent.stored, kept="store"),
        MetricFamily(
            "meshstitch_recent_trace_hops",
            "gauge",
            "Hops held by the recent ring (at most MESHSTITCH_RECENT_TRACE_HOPS).",
        ).add(len(recent)),
    ]


def trace_hops_state(recent: RecentHops) -> PartState:
    """/readyz part `trace_hops`: the recent ring's use, and how many hops were stored."""
    return PartState(
        True,
        {
            "recent": len(recent),
            "recent_capacity": recent.max_hops,
            "seen_total": recent.added,
            "stored_total": recent.stored,
        },
    )


def service_graph_collector(metrics: ServiceGraphMetrics) -> Collector:
    def collect() -> list[MetricFamily]:
        return service_graph_families(metrics.snapshot())  # type: ignore[arg-type]

    return collect
