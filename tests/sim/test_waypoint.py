"""The simulated waypoints: request metrics as Envoy's Istio stats filter prints them, read back
by meshstitch's own parser; trace sampling decided per trace."""

from __future__ import annotations

import httpx

from app.poll.exposition import ExpositionParser
from app.poll.waypoint_labels import group, is_waypoint_family, per_bucket
from app.sim import MeshSimulator, bookinfo
from app.sim.envoy_histogram import recorded_ms


def test_a_waypoint_prints_every_request_and_its_histograms_as_envoy_does() -> None:
    sim = MeshSimulator(bookinfo(), seed=3, trace_sampling=0.0)
    try:
        t0 = 1_800_000_000.0
        sim.tick(t0, t0 + 60)
        (url,) = sim.start_waypoints().values()
        assert url.endswith("/stats/prometheus")
        body = httpx.get(url, timeout=10).text
        assert (
            httpx.get(url.replace("/stats/prometheus", "/metrics"), timeout=10).status_code == 404
        )
    finally:
        sim.stop()
    samples = ExpositionParser(keep=is_waypoint_family).parse(body)
    entries = group(((s.name, s.labels, s.value) for s in samples), t0)
    truth = sim.truth
    through = [e for e in truth.edges.values() if e.via]
    assert through and sum(e.requests for e in through) == sum(e.requests for e in entries)
    for entry in entries:
        labels = entry.labels
        assert labels["reporter"] == "waypoint" and labels["source_cluster"] == "Kubernetes"
        assert labels["connection_security_policy"] == "mutual_tls"
        buckets = per_bucket(entry.cumulative)
        assert sum(n for _, n in buckets) == entry.requests  # +Inf holds them all
    by_code: dict[str, float] = {}
    for entry in entries:
        code = entry.labels["response_code"]
        by_code[code] = by_code.get(code, 0) + entry.requests
    expected: dict[str, int] = {}
    for edge in through:
        for code, n in edge.status_codes.items():
            expected[code] = expected.get(code, 0) + n
    assert by_code == expected


def test_whole_milliseconds_are_truncated_as_istio_records_them() -> None:
    assert recorded_ms(25_999_999) == 25
    assert recorded_ms(999_999) == 0
    assert recorded_ms(-5) == 0


def test_sampling_is_per_trace_seeded_and_near_the_rate() -> None:
    t0 = 1_800_000_000.0
    counts = []
    for _ in range(2):
        sim = MeshSimulator(bookinfo(), seed=9, trace_sampling=0.1)
        sim.tick(t0, t0 + 600)
        counts.append(sim.truth.edge("bookinfo/reviews", "bookinfo/ratings").sampled_requests)
        sim.stop()
    assert counts[0] == counts[1]  # seeded
    edge = sim.truth.edge("bookinfo/reviews", "bookinfo/ratings")
    share = edge.sampled_requests / edge.requests
    assert 0.07 < share < 0.13, share  # ~3,600 requests at 10 %: 4 standard deviations
    # an instrumented caller behind a waypoint: two spans per sampled request, none otherwise
    spans = MeshSimulator(bookinfo(), seed=9, trace_sampling=0.1)
    report = spans.tick(t0, t0 + 60)
    spans.stop()
    assert 0 < report.spans < report.requests
