"""Tempo-compatible series, parsed back with prometheus_client as Prometheus would."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics_route import render, service_graph_families
from app.correlate.servicegraph_metrics import ServiceGraphMetrics
from app.domain import Endpoint, ErrorCause, L7MetricSample, L7Observation, NodeKind

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
    samples = parse(metrics)["traces_service_graph_request"]
    totals = {
        s.labels["server"]: s.labels["connection_type"] for s in samples if "server" in s.labels
    }
    assert totals == {"mysql": "database", "api.example.com": "virtual_node"}
    # Tempo's overflow series: every label replaced by metric_overflow="true".
    assert [s.labels for s in samples if "server" not in s.labels] == [{"metric_overflow": "true"}]


# ---- unattributed waypoint callers named from L4 ------------------------------------------------
from app.domain import L4Sample, Provenance, Reporter  # noqa: E402

WP = "default/waypoint"
CALLER_IP = Endpoint("unknown", "10.0.0.7", kind=NodeKind.UNKNOWN)
DETAILS = Endpoint("default", "details")


def unattributed(via: str = WP) -> L7Observation:
    return L7Observation(
        source=CALLER_IP,
        target=REVIEWS,
        end_ns=0,
        duration_ms=5.0,
        trace_id=b"\x02" * 16,
        via=via,
        provenance=Provenance.UNATTRIBUTED,
    )


def l4(source: Endpoint, via: str = WP, end_s: float = 1000.0) -> L4Sample:
    return L4Sample(
        source=source,
        target=REVIEWS,
        reporter=Reporter.SOURCE,
        start_s=end_s - 60,
        end_s=end_s,
        connections_opened=1,
        via_waypoint=via,
    )


def pairs(metrics: ServiceGraphMetrics) -> dict[tuple[str, str, str], int]:
    return {(k[0], k[1], k[3]): v.requests for k, v in metrics.snapshot().items()}


def test_single_l4_caller_names_unattributed_calls_counted_before_and_after() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe([unattributed(), unattributed()])
    assert pairs(metrics) == {("10.0.0.7", "reviews", "unknown"): 2}
    metrics.observe_l4([l4(PP)])
    metrics.observe([unattributed()])
    assert pairs(metrics) == {("productpage", "reviews", "default"): 3}
    metrics.observe_l4([l4(PP), l4(DETAILS)])  # a second caller later: the mapping is sticky
    metrics.observe([unattributed()])
    assert pairs(metrics) == {("productpage", "reviews", "default"): 4}


def test_several_l4_callers_or_another_waypoint_leave_the_caller_unknown() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe_l4([l4(PP), l4(DETAILS), l4(Endpoint("default", "ratings"), via="x/wp2")])
    metrics.observe([unattributed(), unattributed(via="x/wp2")])
    assert pairs(metrics) == {
        ("10.0.0.7", "reviews", "unknown"): 1,
        ("ratings", "reviews", "default"): 1,
    }


def test_callers_outside_the_horizon_are_not_candidates() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe_l4([l4(DETAILS, end_s=0.0), l4(PP, end_s=5000.0)])
    metrics.observe([unattributed()])
    assert pairs(metrics) == {("productpage", "reviews", "default"): 1}


def test_unknown_callers_waiting_for_l4_count_against_the_series_bound() -> None:
    metrics = ServiceGraphMetrics(max_series=3)
    callers = [Endpoint("unknown", f"10.0.0.{i}", kind=NodeKind.UNKNOWN) for i in range(10)]
    for caller in callers:
        metrics.observe(
            [
                L7Observation(
                    source=caller,
                    target=REVIEWS,
                    end_ns=0,
                    duration_ms=1.0,
                    trace_id=b"\x03" * 16,
                    via=WP,
                    provenance=Provenance.UNATTRIBUTED,
                )
            ]
        )
    snapshot = metrics.snapshot()
    assert len(snapshot) <= 4  # three series and the overflow
    assert snapshot[("__overflow__", "__overflow__", "", "", "")].requests == 7
    assert sum(s.requests for s in snapshot.values()) == 10  # nothing lost


def metric_sample(requests: int, error: bool = False) -> L7MetricSample:
    return L7MetricSample(
        source=PP,
        target=REVIEWS,
        start_s=0,
        end_s=15,
        requests=requests,
        status_code="503" if error else "200",
        error_cause=ErrorCause.HTTP_5XX if error else None,
        latency_sum_ms=requests * 20.0,
        latency_buckets=(("10", requests // 2), ("25", requests - requests // 2)),
    )


def test_waypoint_metrics_make_a_series_exact_for_good_and_keep_it_monotonic() -> None:
    metrics = ServiceGraphMetrics()
    metrics.observe([obs(5.0)])  # one sampled span counted before the metrics arrived
    metrics.observe_metrics([metric_sample(100), metric_sample(4, error=True)])
    metrics.observe([obs(5.0), obs(7.0)])  # sampled spans of requests the metrics counted
    families = parse(metrics)
    # the span counted first is one of the 104 requests the metrics count: not counted twice
    assert families["traces_service_graph_request"][0].value == 104
    assert families["traces_service_graph_request_failed"][0].value == 4
    server = families["traces_service_graph_request_server_seconds"]
    buckets = {s.labels["le"]: s.value for s in server if s.name.endswith("_bucket")}
    # 10 ms and 25 ms Istio buckets re-binned by their upper bound: 0.01 s and 0.05 s; the 5 ms
    # span kept its bucket, one of the metrics' 10 ms requests paid it back
    assert (buckets["0.01"], buckets["0.05"], buckets["+Inf"]) == (1 + 51, 104, 104)
    (total,) = [s for s in server if s.name.endswith("_sum")]
    assert abs(total.value - 104 * 0.02) < 1e-9
    before = families["traces_service_graph_request"][0].value
    metrics.observe_metrics([metric_sample(3)])
    assert parse(metrics)["traces_service_graph_request"][0].value == before + 3  # monotonic


def test_the_series_cap_follows_the_sample_budget() -> None:
    from app.correlate.servicegraph_metrics import SAMPLES_PER_SERIES, max_series_for

    budget = 50_000
    metrics = ServiceGraphMetrics(max_series=max_series_for(budget))
    metrics.observe([obs(1.0, target=Endpoint("default", f"svc-{i}")) for i in range(5000)])
    families = service_graph_families(metrics.snapshot())  # type: ignore[arg-type]
    samples = sum(len(f.samples) for f in families)
    assert samples == (max_series_for(budget) + 1) * SAMPLES_PER_SERIES
    assert samples <= budget - 2000


def test_a_series_state_is_made_once_per_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a new series builds its state (setdefault built one per observation, each with its
    bucket list: every span of a mesh past the series bound)."""
    from app.correlate import servicegraph_metrics

    made: list[object] = []

    class CountedState(servicegraph_metrics.SeriesState):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(servicegraph_metrics, "SeriesState", CountedState)
    metrics = ServiceGraphMetrics(max_series=2)
    metrics.observe([obs(1.0) for _ in range(50)])  # one series
    metrics.observe([unattributed() for _ in range(50)])  # one series pending its caller
    others = [Endpoint("default", f"s{i}") for i in range(30)]
    metrics.observe([obs(1.0, target=t) for t in others])  # past the bound: the overflow
    metrics.observe([unattributed(via=f"default/wp{i}") for i in range(30)])  # overflow too
    assert len(made) == 3
    snapshot = metrics.snapshot()
    assert sum(s.requests for s in snapshot.values()) == 160
