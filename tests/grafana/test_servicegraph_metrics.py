"""Tempo-compatible service-graph series on /metrics after the simulated bookinfo run
(tests/grafana/conftest.py), parsed with prometheus_client as Prometheus would scrape them.

Grafana's Tempo "Service Graph" reads `traces_service_graph_request_total`,
`..._request_failed_total` and `..._request_server_seconds_{bucket,sum,count}` with the labels
`client`, `server`, `connection_type` (grafana tempo/graphTransform.ts; reference §3).
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.sim import Coverage
from tests.grafana.conftest import Mesh

LABELS = {
    "client",
    "server",
    "connection_type",
    "client_service_namespace",
    "server_service_namespace",
}
FAMILIES = {
    "traces_service_graph_request": "counter",
    "traces_service_graph_request_failed": "counter",
    "traces_service_graph_request_server_seconds": "histogram",
    "traces_service_graph_request_client_seconds": "histogram",
}
Key = tuple[str, ...]


def parse(text: str) -> dict[str, dict[Key, dict[str, Any]]]:
    """family -> series (labels without `le`, as a sorted tuple) -> sample name/le -> value."""
    out: dict[str, dict[Key, dict[str, Any]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in FAMILIES:
            continue
        assert family.type == FAMILIES[family.name], family
        for sample in family.samples:
            labels = dict(sample.labels)
            le = labels.pop("le", None)
            assert set(labels) == LABELS, sample
            key = tuple(sorted(labels.items()))
            name = sample.name + (f"@{le}" if le is not None else "")
            out.setdefault(family.name, {}).setdefault(key, {})[name] = sample.value
    return out


def by_pair(family: dict[Key, dict[str, Any]], sample: str) -> dict[tuple[str, str], float]:
    """(client ns/name, server ns/name) -> value of `sample`, summed over connection types."""
    out: dict[tuple[str, str], float] = {}
    for key, samples in family.items():
        labels = dict(key)
        pair = (
            f"{labels['client_service_namespace']}/{labels['client']}",
            f"{labels['server_service_namespace']}/{labels['server']}",
        )
        out[pair] = out.get(pair, 0) + samples[sample]
    return out


@pytest.fixture(scope="module")
def after(mesh: Mesh) -> dict[str, dict[Key, dict[str, Any]]]:
    return parse(mesh.metrics_after)


def test_every_family_is_there_with_exactly_the_tempo_labels(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    assert set(after) == set(FAMILIES)
    keys = {name: set(series) for name, series in after.items()}
    assert len({frozenset(k) for k in keys.values()}) == 1, "every family has the same series"
    for series in after.values():
        for key in series:
            labels = dict(key)
            assert labels["client"] and labels["server"]
            assert labels["connection_type"] in {"", "virtual_node", "messaging_system", "database"}


def test_request_totals_per_server_equal_the_truths_l7_requests(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    totals = after["traces_service_graph_request"]
    failed = after["traces_service_graph_request_failed"]
    per_server: dict[str, list[float]] = {}
    for key in totals:
        labels = dict(key)
        server = f"{labels['server_service_namespace']}/{labels['server']}"
        sums = per_server.setdefault(server, [0, 0])
        sums[0] += totals[key]["traces_service_graph_request_total"]
        sums[1] += failed[key]["traces_service_graph_request_failed_total"]
    expected: dict[str, list[float]] = {}
    for edge in mesh.l7_edges().values():
        sums = expected.setdefault(edge.target, [0, 0])
        sums[0] += edge.requests
        sums[1] += edge.errors
    assert per_server == expected


def test_l7_edges_with_a_known_caller_have_exact_series(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    totals = by_pair(after["traces_service_graph_request"], "traces_service_graph_request_total")
    # reviews is instrumented, so the waypoint span's parent names the caller at ingest time.
    edge = mesh.truth.edge("bookinfo/reviews", "bookinfo/ratings")
    assert edge.coverage is Coverage.FULL
    assert totals[("bookinfo/reviews", "bookinfo/ratings")] == edge.requests
    # Blind spots carry no requests: no L4-only edge has a series.
    for key, truth in mesh.visible().items():
        if truth.coverage is Coverage.L4_ONLY:
            assert key not in totals


def test_an_attributed_waypoint_call_is_labelled_with_the_attributed_caller(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    totals = by_pair(after["traces_service_graph_request"], "traces_service_graph_request_total")
    edge = mesh.truth.edge("bookinfo/productpage", "bookinfo/reviews")
    assert totals.get(("bookinfo/productpage", "bookinfo/reviews")) == edge.requests


def test_the_uninstrumented_caller_is_named_from_l4_not_by_its_pod_ip(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    """productpage is not instrumented: its waypoint calls arrive unattributed and are named from
    the single L4 caller into reviews, as /graph does; no series is left under its pod IP."""
    productpage = next(s for s in mesh.topology.services if s.id == "bookinfo/productpage")
    ips = {w.ip for w in productpage.workloads}
    into_reviews = [
        dict(key)
        for key in after["traces_service_graph_request"]
        if dict(key)["server"] == "reviews"
    ]
    assert len(into_reviews) == 1
    labels = into_reviews[0]
    assert labels["client"] == "productpage" and labels["client"] not in ips, labels
    assert labels["client_service_namespace"] == "bookinfo"
    assert labels["connection_type"] == ""


def test_histograms_are_cumulative_and_agree_with_the_counters(
    after: dict[str, dict[Key, dict[str, Any]]],
) -> None:
    totals = after["traces_service_graph_request"]
    for name in ("server", "client"):
        family = f"traces_service_graph_request_{name}_seconds"
        for key, samples in after[family].items():
            buckets = sorted(
                ((float(k.partition("@")[2]), v) for k, v in samples.items() if "@" in k),
            )
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (key, buckets)
            assert buckets[-1][0] == float("inf")
            assert buckets[-1][1] == samples[f"{family}_count"]
            assert samples[f"{family}_count"] == totals[key]["traces_service_graph_request_total"]
            assert samples[f"{family}_sum"] > 0


def test_counters_are_monotonic_across_scrapes(
    mesh: Mesh, after: dict[str, dict[Key, dict[str, Any]]]
) -> None:
    before = parse(mesh.metrics_before)
    for family, series in before.items():
        for key, samples in series.items():
            assert key in after[family], (family, key)  # no series vanished
            for sample, value in samples.items():
                assert after[family][key][sample] >= value, (family, key, sample)
    # Traffic went on for another tick, so every request total grew.
    for key, samples in before["traces_service_graph_request"].items():
        now = after["traces_service_graph_request"][key]["traces_service_graph_request_total"]
        assert now > samples["traces_service_graph_request_total"], key
