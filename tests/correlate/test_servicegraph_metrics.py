"""Tempo-compatible series, parsed back with prometheus_client as Prometheus would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import render, service_graph_families
from app.correlate.servicegraph_metrics import ServiceGraphMetrics
from app.domain import Endpoint, ErrorCause, L7Observation, NodeKind

PP, REVIEWS = Endpoint("default", "productpage"), Endpoint("default", "reviews")


def obs(
    ms: float, error: bool = False, target: Endpoint = REVIEWS, protocol: str = "http"
) -> L7Observation:
    return L7Observation(
        source=PP,
        target=target,
        end_ns=0,
        duration_ms=ms,
        trace_id=b"\x01" * 16,
        protocol=protocol,
        error_cause=ErrorCause.HTTP_5XX if error else None,
    )


def parse(metrics: ServiceGraphMetrics) -> dict[str, list]:  # type: ignore[type-arg]
    text = render(service_graph_families(metrics.snapshot()))
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_names_labels_counts_and_histogram() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe([obs(1.0), obs(30.0), obs(3000.0, error=True)])
    families = parse(metrics)
    (total,) = families["traces_service_graph_request"]
    assert total.name == "traces_service_graph_request_total"
    assert total.labels == {
        "client": "productpage",
        "server": "reviews",
        "connection_type": "",
        "client_service_namespace": "default",
        "server_service_namespace": "default",
    }
    assert total.value == 3
    assert families["traces_service_graph_request_failed"][0].value == 1
    server = families["traces_service_graph_request_server_seconds"]
    buckets = {s.labels["le"]: s.value for s in server if s.name.endswith("_bucket")}
    assert (
        buckets["0.002"] == 1
        and buckets["0.05"] == 2
        and buckets["2.0"] == 2
        and buckets["5.0"] == 3
    )
    assert buckets["+Inf"] == 3
    (count,) = [s for s in server if s.name.endswith("_count")]
    assert count.value == 3
    assert "traces_service_graph_request_client_seconds" in families


def test_counters_are_monotonic_across_scrapes() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe([obs(5.0)])
    first = parse(metrics)["traces_service_graph_request"][0].value
    metrics.observe([obs(5.0), obs(6.0)])
    second = parse(metrics)["traces_service_graph_request"][0].value
    assert (first, second) == (1, 3)


def test_connection_types_and_overflow() -> None:
    metrics = ServiceGraphMetrics(max_series=2)
    metrics.observe(
        [
            obs(1.0, protocol="db", target=Endpoint("default", "mysql", kind=NodeKind.EXTERNAL)),
            obs(1.0, target=Endpoint("external", "api.example.com", kind=NodeKind.EXTERNAL)),
            obs(1.0, target=Endpoint("default", "third")),
        ]
    )
    totals = {
        s.labels["server"]: s.labels["connection_type"]
        for s in parse(metrics)["traces_service_graph_request"]
    }
    assert totals == {"mysql": "database", "api.example.com": "virtual_node", "__overflow__": ""}
