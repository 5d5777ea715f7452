from __future__ import annotations

import math

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics_route import MetricFamily, MetricsRegistry, build_metrics_router, render


def test_render_parses_with_prometheus_client_including_escapes_and_specials() -> None:
    counter = MetricFamily("meshstitch_spans_accepted", "counter", "Spans accepted.").add(
        12, transport="http"
    )
    gauge = MetricFamily("meshstitch_queue", "gauge", "Queued.").add(math.nan, name='a"b\\c\nd')
    gauge.add(math.inf, name="inf")
    hist = MetricFamily("lat_seconds", "histogram", "Latency.")
    hist.add(1, "_bucket", le="0.1").add(3, "_bucket", le="+Inf").add(0.5, "_sum").add(3, "_count")
    parsed = {f.name: f for f in text_string_to_metric_families(render([counter, gauge, hist]))}
    assert parsed["meshstitch_spans_accepted"].samples[0].value == 12
    assert parsed["meshstitch_spans_accepted"].samples[0].labels == {"transport": "http"}
    names = [s.labels["name"] for s in parsed["meshstitch_queue"].samples]
    assert names == ['a"b\\c\nd', "inf"]
    assert math.isnan(parsed["meshstitch_queue"].samples[0].value)
    assert [s.name for s in parsed["lat_seconds"].samples] == [
        "lat_seconds_bucket",
        "lat_seconds_bucket",
        "lat_seconds_sum",
        "lat_seconds_count",
    ]


def test_metrics_route_serves_every_registered_collector() -> None:
    registry = MetricsRegistry()
    registry.register(lambda: [MetricFamily("up_parts", "gauge", "Parts up.").add(2)])
    app = FastAPI()
    app.include_router(build_metrics_router(registry))
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "up_parts 2" in response.text
